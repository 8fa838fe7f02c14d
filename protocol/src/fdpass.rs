//! Passing descriptors over a UNIX socket with `SCM_RIGHTS`.
//!
//! Invariants kept here rather than by callers:
//! - a received descriptor is close-on-exec from the moment it exists (`MSG_CMSG_CLOEXEC`) and is
//!   wrapped in [`OwnedFd`] before anything else can fail;
//! - a message whose control data was truncated (`MSG_CTRUNC`) or whose payload was truncated
//!   (`MSG_TRUNC`) is refused, and every descriptor that arrived with it is closed;
//! - more than one descriptor in a message is refused (all of them closed).

use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Room for one `cmsghdr` carrying up to [`MAX_FDS_PER_MESSAGE`] descriptors, 8-byte aligned.
const CMSG_BUF_WORDS: usize = 8;

/// The most descriptors a peer may attach before we refuse the message. We still need room to
/// receive (and close) a few extra ones, so the buffer is larger than one descriptor.
const MAX_FDS_PER_MESSAGE: usize = 1;

/// A connected pair of close-on-exec `SOCK_SEQPACKET` UNIX sockets (one message per datagram):
/// the broker channel's two ends.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socketpair returned two fresh descriptors.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Send `payload` with one descriptor attached.
///
/// Allocation-free and lock-free: safe to call in a child between `fork` and `exec`.
pub fn send_with_fd(sock: BorrowedFd<'_>, payload: &[u8], fd: BorrowedFd<'_>) -> io::Result<()> {
    send(sock, payload, Some(fd), 0)
}

/// Send `payload` as one message, with `fd` attached if given. `flags` are added to
/// `MSG_NOSIGNAL` (e.g. `MSG_DONTWAIT`). Allocation-free, like [`send_with_fd`].
pub fn send(
    sock: BorrowedFd<'_>,
    payload: &[u8],
    fd: Option<BorrowedFd<'_>>,
    flags: libc::c_int,
) -> io::Result<()> {
    with_message(payload, fd, |msg| loop {
        // SAFETY: msg is fully initialised and its pointers outlive the call.
        let n = unsafe { libc::sendmsg(sock.as_raw_fd(), msg, libc::MSG_NOSIGNAL | flags) };
        if n >= 0 {
            return if n as usize == payload.len() {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(libc::EMSGSIZE))
            };
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    })
}

/// Call `f` with a `msghdr` for one message: `payload`, with `fd` attached (`SCM_RIGHTS`) if
/// given. The layout [`send`] uses, for callers that must make the `sendmsg` call themselves
/// (the child-shim, which may not touch `errno`). Allocation-free; the header points into
/// this function's frame, so it is valid only inside `f`.
pub fn with_message<R>(
    payload: &[u8],
    fd: Option<BorrowedFd<'_>>,
    f: impl FnOnce(&libc::msghdr) -> R,
) -> R {
    let mut cmsg_buf = [0u64; CMSG_BUF_WORDS];
    let mut iov = libc::iovec {
        iov_base: payload.as_ptr() as *mut libc::c_void,
        iov_len: payload.len(),
    };
    // SAFETY: zeroed msghdr is a valid "empty" header; fields are filled below.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if let Some(fd) = fd {
        msg.msg_control = cmsg_buf.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE is a pure computation.
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(mem::size_of::<RawFd>() as u32) } as _;
        // SAFETY: msg_control points at a buffer of at least msg_controllen bytes, so
        // CMSG_FIRSTHDR returns a header inside it with room for one descriptor.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(mem::size_of::<RawFd>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd.as_raw_fd());
        }
    }
    f(&msg)
}

/// Why a received message was refused.
#[derive(Debug)]
pub enum RecvError {
    /// The peer closed the socket.
    Closed,
    /// The message did not fit and was cut by the kernel.
    Truncated,
    /// More descriptors than allowed were attached (all were closed).
    TooManyFds,
    /// The socket call itself failed.
    Io(io::Error),
}

impl std::fmt::Display for RecvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecvError::Closed => write!(f, "peer closed the channel"),
            RecvError::Truncated => write!(f, "message truncated"),
            RecvError::TooManyFds => write!(f, "too many descriptors attached"),
            RecvError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RecvError {}

/// Receive one message into `buf`, with at most one descriptor attached.
///
/// Returns the payload length and the descriptor, if any. Every descriptor received is owned
/// before this function can fail, so none leaks on any error path.
pub fn recv_with_fd(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
) -> Result<(usize, Option<OwnedFd>), RecvError> {
    let mut fds: Vec<OwnedFd> = Vec::new();
    let received = receive_message(
        buf,
        |msg| loop {
            // SAFETY: msg points at live buffers of the stated sizes.
            let n = unsafe { libc::recvmsg(sock.as_raw_fd(), msg, libc::MSG_CMSG_CLOEXEC) };
            if n >= 0 {
                break n;
            }
            let err = io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO);
            if err != libc::EINTR {
                break -(err as isize);
            }
        },
        // SAFETY: each descriptor the kernel attached is ours alone.
        |raw| fds.push(unsafe { OwnedFd::from_raw_fd(raw) }),
    );
    let (n, flags) = received.map_err(|e| RecvError::Io(io::Error::from_raw_os_error(e)))?;
    if flags & libc::MSG_TRUNC != 0 {
        return Err(RecvError::Truncated);
    }
    // Control data is cut only when more descriptors came than the buffer holds.
    if flags & libc::MSG_CTRUNC != 0 || fds.len() > MAX_FDS_PER_MESSAGE {
        return Err(RecvError::TooManyFds);
    }
    if n == 0 && fds.is_empty() {
        return Err(RecvError::Closed);
    }
    Ok((n, fds.pop()))
}

/// Receive one message into `buf` with `recvmsg`, a call the caller makes itself (returning
/// the byte count or a negated errno): the layout [`recv_with_fd`] uses, for the child-shim,
/// which may neither allocate nor touch `errno`. Every descriptor attached goes to `on_fd`,
/// which then owns it. Returns the payload length and the message flags (`MSG_TRUNC`,
/// `MSG_CTRUNC`), or the errno.
pub fn receive_message(
    buf: &mut [u8],
    recvmsg: impl FnOnce(&mut libc::msghdr) -> isize,
    mut on_fd: impl FnMut(RawFd),
) -> Result<(usize, libc::c_int), i32> {
    let mut cmsg_buf = [0u64; CMSG_BUF_WORDS];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: as in with_message.
    let mut msg: libc::msghdr = unsafe { mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg_buf.as_mut_ptr().cast();
    msg.msg_controllen = mem::size_of_val(&cmsg_buf) as _;
    let n = recvmsg(&mut msg);
    if n < 0 {
        return Err(-n as i32);
    }
    // SAFETY: the kernel filled msg_control/msg_controllen; the CMSG macros walk only within it.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let header = data.offset_from(cmsg.cast::<u8>()) as usize;
                let count = ((*cmsg).cmsg_len as usize - header) / mem::size_of::<RawFd>();
                for i in 0..count {
                    on_fd(std::ptr::read_unaligned(data.cast::<RawFd>().add(i)));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n as usize, msg.msg_flags))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn pair() -> (OwnedFd, OwnedFd) {
        seqpacket_pair().unwrap()
    }

    #[test]
    fn descriptor_arrives_close_on_exec() {
        let (a, b) = pair();
        let file = std::fs::File::open("/dev/null").unwrap();
        send_with_fd(a.as_fd(), b"hello", file.as_fd()).unwrap();
        let mut buf = [0u8; 16];
        let (n, fd) = recv_with_fd(b.as_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        let fd = fd.expect("descriptor");
        // SAFETY: fd is a live descriptor.
        let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
        assert_ne!(flags & libc::FD_CLOEXEC, 0);
    }

    #[test]
    fn truncated_payload_is_refused_and_fd_closed() {
        let (a, b) = pair();
        let file = std::fs::File::open("/dev/null").unwrap();
        send_with_fd(a.as_fd(), b"a longer payload", file.as_fd()).unwrap();
        let mut buf = [0u8; 4];
        assert!(matches!(
            recv_with_fd(b.as_fd(), &mut buf),
            Err(RecvError::Truncated)
        ));
    }

    #[test]
    fn closed_peer_is_reported() {
        let (a, b) = pair();
        drop(a);
        let mut buf = [0u8; 4];
        assert!(matches!(
            recv_with_fd(b.as_fd(), &mut buf),
            Err(RecvError::Closed)
        ));
    }
}
