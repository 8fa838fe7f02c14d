//! The broker's end of the explicit request protocol (see `protocol::wire`).
//!
//! A cooperating target sends requests over the socketpair it inherited at `BROKER_FD`; the
//! supervisor's loop calls [`ProtocolChannel::serve_one`] when the channel is readable. Requests
//! are decided by the same [`Server`] (and so the same [`crate::policy::Policy`]) as intercepted
//! calls, and answered with the descriptor attached (`SCM_RIGHTS`) or an errno and its reason.
//!
//! Everything on the channel is hostile: a message is received into a fixed buffer (a longer one
//! is cut by the kernel and refused), descriptors that come with a request are closed, decoding
//! is bounded by the wire limits, and replies are sent without blocking. A target that does not
//! read its replies loses the channel; the broker goes on serving its intercepted calls.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;

use protocol::fdpass::{self, RecvError};
use protocol::wire::{self, FileStat, Request, Response, MAX_MESSAGE, VERSION};

use crate::serve::{AnswerTo, Caller, FifoOpen, Reply, Server};

/// What serving one message led to.
pub enum Outcome {
    /// Answered (or nothing to answer); keep serving.
    Served,
    /// A FIFO open waits for its peer; the waiter answers on the channel.
    Deferred(FifoOpen),
    /// The channel is finished (closed by the target, or dropped for misbehaving).
    Closed(&'static str),
}

/// The broker's end of the channel and what it remembers about the conversation.
pub struct ProtocolChannel {
    sock: Arc<OwnedFd>,
    greeted: bool,
    /// The process decisions are attributed to (the target's first process).
    pid: u32,
    buf: Box<[u8; MAX_MESSAGE]>,
}

impl ProtocolChannel {
    pub fn new(sock: OwnedFd, pid: u32) -> Self {
        Self {
            sock: Arc::new(sock),
            greeted: false,
            pid,
            buf: Box::new([0u8; MAX_MESSAGE]),
        }
    }

    pub fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// Receive one message and answer it. [`Server::decision`] then holds the policy's decision
    /// on it, if one was made.
    pub fn serve_one(&mut self, server: &mut Server) -> Outcome {
        let n = match fdpass::recv_with_fd(self.sock.as_fd(), &mut self.buf[..]) {
            Ok((n, None)) => n,
            // Descriptors are never accepted; the one that came is closed here.
            Ok((_, Some(_))) | Err(RecvError::TooManyFds) => {
                return self.answer(&Response::error(
                    libc::EINVAL,
                    "requests carry no descriptors",
                ));
            }
            Err(RecvError::Truncated) => {
                return self.answer(&Response::error(
                    libc::EMSGSIZE,
                    format!("message longer than {MAX_MESSAGE} bytes"),
                ));
            }
            Err(RecvError::Closed) => return Outcome::Closed("the target closed it"),
            Err(RecvError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                return Outcome::Served
            }
            Err(RecvError::Io(_)) => return Outcome::Closed("receive failed"),
        };
        let req = match wire::decode_request(&self.buf[..n]) {
            Ok(r) => r,
            Err(e) => return self.answer(&Response::error(libc::EINVAL, e.to_string())),
        };
        match req {
            Request::Hello { version } if version == VERSION => {
                self.greeted = true;
                self.answer(&Response::Hello { version: VERSION })
            }
            Request::Hello { version } => self.answer(&Response::error(
                libc::EPROTONOSUPPORT,
                format!("client speaks protocol version {version}, this broker speaks {VERSION}"),
            )),
            _ if !self.greeted => self.answer(&Response::error(
                libc::EPROTO,
                "the first request must be Hello",
            )),
            Request::Open { path, flags, mode } => {
                let c = self.caller("protocol:open", "open");
                match server.open_for(&c, &path, flags, mode) {
                    Reply::Fd { fd, .. } => self.send(&Response::Opened, Some(fd.as_fd())),
                    Reply::Deferred => match server.fifo.take() {
                        Some(mut open) => {
                            open.to = AnswerTo::Channel(Arc::clone(&self.sock));
                            Outcome::Deferred(open)
                        }
                        None => self.answer(&refusal(server, libc::EIO)),
                    },
                    Reply::Errno(e) => self.answer(&refusal(server, e)),
                    Reply::Value(_) | Reply::Continue | Reply::Gone => {
                        self.answer(&refusal(server, libc::EIO))
                    }
                }
            }
            Request::Stat { path } => {
                let c = self.caller("protocol:stat", "stat");
                match server.stat_for(&c, &path) {
                    Ok(st) => self.answer(&Response::Stat(file_stat(&st))),
                    Err(e) => self.answer(&refusal(server, e)),
                }
            }
        }
    }

    /// Answer a request that could not even be started (best effort: the channel may be full).
    pub fn send_error(&self, errno: i32, reason: &str) {
        let _ = self.answer(&Response::error(errno, reason));
    }

    fn caller(&self, syscall: &'static str, action: &'static str) -> Caller {
        Caller {
            id: 0,
            pid: self.pid,
            syscall,
            action,
        }
    }

    fn answer(&self, resp: &Response) -> Outcome {
        self.send(resp, None)
    }

    fn send(&self, resp: &Response, fd: Option<BorrowedFd<'_>>) -> Outcome {
        match send_response(self.sock.as_fd(), resp, fd) {
            Ok(()) => Outcome::Served,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                Outcome::Closed("the target does not read its replies")
            }
            Err(_) => Outcome::Closed("send failed"),
        }
    }
}

/// Send one response without blocking (a full socket is `WouldBlock`).
pub fn send_response(
    sock: BorrowedFd<'_>,
    resp: &Response,
    fd: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let mut buf = [0u8; MAX_MESSAGE];
    let n = wire::encode_response(resp, &mut buf).map_err(io::Error::other)?;
    fdpass::send(sock, &buf[..n], fd, libc::MSG_DONTWAIT)
}

/// The error response for `errno`: the policy's reason when it decided, else the errno's text.
fn refusal(server: &Server, errno: i32) -> Response {
    match server.decision() {
        Some(d) if !d.allowed => Response::error(errno, d.reason.to_string()),
        _ => Response::error(errno, io::Error::from_raw_os_error(errno).to_string()),
    }
}

fn file_stat(st: &libc::stat) -> FileStat {
    FileStat {
        dev: st.st_dev,
        ino: st.st_ino,
        mode: st.st_mode,
        nlink: st.st_nlink,
        uid: st.st_uid,
        gid: st.st_gid,
        rdev: st.st_rdev,
        size: st.st_size,
        blksize: st.st_blksize,
        blocks: st.st_blocks,
        atime: (st.st_atime, st.st_atime_nsec),
        mtime: (st.st_mtime, st.st_mtime_nsec),
        ctime: (st.st_ctime, st.st_ctime_nsec),
    }
}
