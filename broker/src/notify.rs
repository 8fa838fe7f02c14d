//! The seccomp user-notification listener: receive, validate, answer, inject.
//!
//! Raw ioctls rather than libseccomp's notify API, so that receiving allocates nothing and
//! descriptors can be injected with `SECCOMP_IOCTL_NOTIF_ADDFD` (which libseccomp does not wrap).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use crate::sys::cvt;

/// One intercepted system call.
#[derive(Debug, Clone, Copy)]
pub struct Notification {
    pub id: u64,
    /// The thread that made the call.
    pub pid: u32,
    pub nr: i32,
    pub arch: u32,
    pub args: [u64; 6],
}

/// The listener descriptor the child-shim sent us.
pub struct Listener {
    fd: OwnedFd,
    /// Receive buffer sized by `SECCOMP_GET_NOTIF_SIZES`, so a newer kernel's larger struct fits.
    recv_words: usize,
}

impl Listener {
    pub fn new(fd: OwnedFd) -> io::Result<Self> {
        let mut sizes = libc::seccomp_notif_sizes {
            seccomp_notif: 0,
            seccomp_notif_resp: 0,
            seccomp_data: 0,
        };
        // SAFETY: SECCOMP_GET_NOTIF_SIZES writes one seccomp_notif_sizes.
        cvt(unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_GET_NOTIF_SIZES,
                0,
                &mut sizes as *mut libc::seccomp_notif_sizes,
            )
        })?;
        let bytes = (sizes.seccomp_notif as usize).max(std::mem::size_of::<libc::seccomp_notif>());
        Ok(Self {
            fd,
            recv_words: bytes.div_ceil(8),
        })
    }

    /// Ask the kernel for synchronous wake-ups (`SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP`, Linux
    /// 6.6): a notifying thread wakes the broker on its own CPU and the answer wakes the caller
    /// on the broker's, so each request is a hand-off on one CPU instead of a cross-CPU wake-up.
    /// Only a hint for the scheduler: an older kernel (`EINVAL`) serves the same, slower.
    pub fn set_sync_wakeup(&self) -> io::Result<()> {
        const SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: u64 = 1;
        // SAFETY: NOTIF_SET_FLAGS takes the flags as its argument value.
        cvt(unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS,
                SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP,
            ) as libc::c_long
        })
        .map(drop)
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }

    /// A zeroed buffer for [`Listener::recv`]; allocate once, reuse for every call.
    pub fn recv_buffer(&self) -> Vec<u64> {
        vec![0u64; self.recv_words]
    }

    /// Receive one notification. `ENOENT` means the caller went away before we got it.
    pub fn recv(&self, buf: &mut [u64]) -> io::Result<Notification> {
        assert!(buf.len() >= self.recv_words);
        buf.fill(0);
        // SAFETY: buf is at least as large as the kernel's seccomp_notif and zeroed as required.
        cvt(unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_RECV,
                buf.as_mut_ptr(),
            ) as libc::c_long
        })?;
        // SAFETY: the kernel wrote a seccomp_notif at the start of buf (8-byte aligned).
        let n = unsafe { &*(buf.as_ptr() as *const libc::seccomp_notif) };
        Ok(Notification {
            id: n.id,
            pid: n.pid,
            nr: n.data.nr,
            arch: n.data.arch,
            args: n.data.args,
        })
    }

    /// Is the notification still pending (its caller alive and waiting)? Check after every read
    /// of the caller's memory, before acting on what was read.
    pub fn id_valid(&self, id: u64) -> bool {
        let mut id = id;
        // SAFETY: NOTIF_ID_VALID reads one u64.
        unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
                &mut id as *mut u64,
            ) == 0
        }
    }

    /// Answer with a return value (`error == 0`) or a negated errno.
    pub fn respond(&self, id: u64, val: i64, error: i32, flags: u32) -> io::Result<()> {
        let mut resp = libc::seccomp_notif_resp {
            id,
            val,
            error,
            flags,
        };
        // SAFETY: NOTIF_SEND reads one seccomp_notif_resp.
        cvt(unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SEND,
                &mut resp as *mut libc::seccomp_notif_resp,
            ) as libc::c_long
        })
        .map(drop)
    }

    /// Install `fd` in the caller and answer the call with its number, atomically
    /// (`SECCOMP_ADDFD_FLAG_SEND`): if the caller is interrupted, no descriptor is left behind.
    /// On failure (e.g. EMFILE in the caller) the call is still pending and must be answered.
    pub fn inject_and_send(&self, id: u64, fd: BorrowedFd<'_>, cloexec: bool) -> io::Result<i32> {
        let mut addfd = libc::seccomp_notif_addfd {
            id,
            flags: libc::SECCOMP_ADDFD_FLAG_SEND as u32,
            srcfd: fd.as_raw_fd() as u32,
            newfd: 0,
            newfd_flags: if cloexec { libc::O_CLOEXEC as u32 } else { 0 },
        };
        // SAFETY: NOTIF_ADDFD reads one seccomp_notif_addfd.
        let r = cvt(unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_ADDFD,
                &mut addfd as *mut libc::seccomp_notif_addfd,
            ) as libc::c_long
        })?;
        Ok(r as i32)
    }
}
