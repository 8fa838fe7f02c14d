//! The client library for programs that know they run under the broker.
//!
//! ```no_run
//! use std::io::Read;
//! use protocol::client::Client;
//!
//! # fn main() -> std::io::Result<()> {
//! let client = Client::from_env()?;
//! let mut file = std::fs::File::from(client.open("/etc/hostname", libc::O_RDONLY)?);
//! let mut text = String::new();
//! file.read_to_string(&mut text)?;
//! # Ok(())
//! # }
//! ```
//!
//! Calls are blocking and may be made from several threads: a mutex keeps one request in flight
//! on the channel at a time, so a request that waits (a FIFO open waiting for its peer) holds up
//! the others. The channel belongs to one process: [`Client::from_env`] makes it close-on-exec,
//! and a child that inherits it across `fork` must not use it while the parent does.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::fdpass::{self, RecvError};
use crate::wire::{self, FileStat, Request, Response, MAX_MESSAGE, VERSION};

/// A refusal or failure reported by the broker: the errno and its reason. It is the inner error
/// of the [`io::Error`] the client returns (whose kind matches the errno); see [`Refusal::of`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub errno: i32,
    pub reason: String,
}

impl Refusal {
    /// The broker's refusal behind `e`, if `e` is one.
    pub fn of(e: &io::Error) -> Option<&Refusal> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<Refusal>())
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let os = io::Error::from_raw_os_error(self.errno);
        write!(f, "{} (broker: {})", os, self.reason)
    }
}

impl std::error::Error for Refusal {}

fn refused(errno: i32, reason: String) -> io::Error {
    let kind = io::Error::from_raw_os_error(errno).kind();
    io::Error::new(kind, Refusal { errno, reason })
}

fn protocol_error(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("broker protocol: {what}"),
    )
}

/// Set once the environment's channel has been taken, so that two owners never share it.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// A connection to the broker over the inherited channel.
pub struct Client {
    sock: Mutex<OwnedFd>,
}

impl Client {
    /// Take the channel named by `BROKER_FD` (see [`crate::CHANNEL_ENV`]), check that it is a
    /// `SOCK_SEQPACKET` socket, make it close-on-exec, and greet the broker. Only the first call
    /// in a process succeeds; later ones fail with `AlreadyExists`.
    pub fn from_env() -> io::Result<Client> {
        let value = std::env::var(crate::CHANNEL_ENV).map_err(|_| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{} is not set: not running under the broker",
                    crate::CHANNEL_ENV
                ),
            )
        })?;
        let fd: RawFd = value.parse().ok().filter(|fd| *fd >= 0).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}={value:?} is not a descriptor number",
                    crate::CHANNEL_ENV
                ),
            )
        })?;
        if TAKEN.swap(true, Ordering::AcqRel) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the broker channel is already taken in this process",
            ));
        }
        // SAFETY: F_SETFD on a number we checked nothing else in this process claims (TAKEN);
        // it fails with EBADF if the descriptor is not open.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
            TAKEN.store(false, Ordering::Release);
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the descriptor is open (F_SETFD succeeded) and owned by nobody else (TAKEN).
        Client::from_fd(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Use `sock` as the channel (it must be a `SOCK_SEQPACKET` socket) and greet the broker.
    pub fn from_fd(sock: OwnedFd) -> io::Result<Client> {
        let mut kind: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: SO_TYPE writes one int into `kind`.
        let r = unsafe {
            libc::getsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TYPE,
                (&mut kind as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if r < 0 || kind != libc::SOCK_SEQPACKET {
            return Err(protocol_error("the channel is not a SOCK_SEQPACKET socket"));
        }
        let client = Client {
            sock: Mutex::new(sock),
        };
        match client.call(&Request::Hello { version: VERSION })? {
            (Response::Hello { version }, None) if version == VERSION => Ok(client),
            (other, _) => Err(protocol_error(format!(
                "unexpected answer to hello: {other:?}"
            ))),
        }
    }

    /// Open `path` with `open(2)` `flags` (`O_CREAT` files get mode 0o666 less the umask).
    /// Relative paths are made absolute against the current directory first.
    pub fn open(&self, path: impl AsRef<Path>, flags: i32) -> io::Result<OwnedFd> {
        self.open_with_mode(path, flags, 0o666)
    }

    /// Like [`Client::open`], with the mode for a file it creates.
    pub fn open_with_mode(
        &self,
        path: impl AsRef<Path>,
        flags: i32,
        mode: u32,
    ) -> io::Result<OwnedFd> {
        let path = absolute(path.as_ref())?;
        match self.call(&Request::Open { path, flags, mode })? {
            (Response::Opened, Some(fd)) => Ok(fd),
            (other, _) => Err(protocol_error(format!(
                "unexpected answer to open: {other:?}"
            ))),
        }
    }

    /// `stat(2)` `path` through the broker.
    pub fn stat(&self, path: impl AsRef<Path>) -> io::Result<FileStat> {
        let path = absolute(path.as_ref())?;
        match self.call(&Request::Stat { path })? {
            (Response::Stat(st), None) => Ok(st),
            (other, _) => Err(protocol_error(format!(
                "unexpected answer to stat: {other:?}"
            ))),
        }
    }

    /// Send one request and wait for its response; an error response becomes an `io::Error`.
    fn call(&self, req: &Request) -> io::Result<(Response, Option<OwnedFd>)> {
        let mut buf = [0u8; MAX_MESSAGE];
        let n = wire::encode_request(req, &mut buf)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // A poisoned lock only means another thread panicked mid-call; the socket is still fine.
        let sock = self.sock.lock().unwrap_or_else(|p| p.into_inner());
        fdpass::send(sock.as_fd(), &buf[..n], None, 0)?;
        let (n, fd) = recv(sock.as_fd(), &mut buf)?;
        match wire::decode_response(&buf[..n]).map_err(protocol_error)? {
            Response::Error { errno, reason } => Err(refused(errno, reason)),
            resp => Ok((resp, fd)),
        }
    }
}

fn recv(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    fdpass::recv_with_fd(sock, buf).map_err(|e| match e {
        RecvError::Io(e) => e,
        RecvError::Closed => io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "the broker closed the channel",
        ),
        e => protocol_error(e),
    })
}

fn absolute(path: &Path) -> io::Result<Vec<u8>> {
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    Ok(path.as_os_str().as_bytes().to_vec())
}
