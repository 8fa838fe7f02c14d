//! Serving intercepted calls: from a [`Notification`] to a [`Reply`].
//!
//! Every handler follows the same order: read the target's arguments once into our memory,
//! check the notification is still valid, resolve the path against the target's cwd or dirfd as
//! the kernel records them (never names the target supplies), normalise, ask the [`Policy`], and
//! act through the rule's anchor. Nothing here trusts target memory after it was copied.

use std::borrow::Cow;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use crate::memory;
use crate::notify::{Listener, Notification};
use crate::path::NormPath;
use crate::policy::{open_ancestor, Grant, Need, Policy, PolicyDecision};
use crate::sys;

/// How to answer a notification.
#[derive(Debug)]
pub enum Reply {
    /// Inject this descriptor and return its number.
    Fd { fd: OwnedFd, cloexec: bool },
    /// Return this value.
    Value(i64),
    /// Fail with this errno.
    Errno(i32),
    /// Let the kernel run the call: chdir, and exec in learn mode; never an open (see
    /// ARCHITECTURE.md).
    Continue,
    /// Another thread will answer (a FIFO open waiting for its peer).
    Deferred,
    /// The caller is gone; nothing to answer.
    Gone,
}

/// What the policy said about one request: the denial line on stderr, an audit-log record, and
/// what learn mode learns from.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The system call, e.g. `openat`.
    pub syscall: &'static str,
    /// What it does, e.g. `open` (the denial line's verb).
    pub action: &'static str,
    pub pid: u32,
    /// The path as the target gave it.
    pub given: Vec<u8>,
    /// The path as the broker resolved it.
    pub resolved: Vec<u8>,
    pub need: Need,
    pub allowed: bool,
    /// The pattern of the rule that decided, if one did.
    pub rule: Option<Arc<str>>,
    pub reason: Cow<'static, str>,
}

impl std::fmt::Display for Decision {
    /// The denial line: `denied open "../x" -> "/srv/x" (read) for pid 42: no rule grants it`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let given = String::from_utf8_lossy(&self.given);
        let verb = if self.allowed { "allowed" } else { "denied" };
        write!(f, "{verb} {} {:?}", self.action, given)?;
        if self.resolved != self.given {
            write!(f, " -> {:?}", String::from_utf8_lossy(&self.resolved))?;
        }
        write!(f, " ({}) for pid {}: {}", self.need, self.pid, self.reason)
    }
}

/// The kernel's access-mode bits: a target's flags are the kernel's, not the C library's.
/// (`libc::O_ACCMODE` under musl includes `O_PATH`, its `O_SEARCH`.)
const O_ACCMODE: i32 = 0o3;
/// The kernel's `O_LARGEFILE`. glibc defines it as 0 on 64-bit targets, where the kernel adds it
/// to every open itself, but a target may pass it (32-bit-minded code does).
const O_LARGEFILE: i32 = 0o100000;

/// Open flags the broker accepts; anything else is refused with EINVAL.
const KNOWN_OPEN_FLAGS: i32 = O_ACCMODE
    | libc::O_CREAT
    | libc::O_EXCL
    | libc::O_NOCTTY
    | libc::O_TRUNC
    | libc::O_APPEND
    | libc::O_NONBLOCK
    | libc::O_DSYNC
    | libc::O_SYNC
    | libc::O_DIRECT
    | O_LARGEFILE
    | libc::O_DIRECTORY
    | libc::O_NOFOLLOW
    | libc::O_NOATIME
    | libc::O_CLOEXEC
    | libc::O_PATH
    | libc::O_TMPFILE;

/// openat2 resolve flags the broker can honour on top of its own.
const PASSTHROUGH_RESOLVE: u64 =
    libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_NO_XDEV;

/// A resolved path argument.
struct Target {
    given: Vec<u8>,
    norm: NormPath,
    /// The path names something of the caller's own (see [`Own`]).
    own: Option<Own>,
}

/// What of its own a caller may name by path whatever the policy says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Own {
    /// A descriptor: `/dev/stdout`, `/dev/fd/N`, `/proc/self/fd/N`.
    Fd(i32),
    /// Its executable, `/proc/self/exe` (only `readlink` treats it specially).
    Exe,
}

/// Why resolving an argument ended the request early.
enum Stop {
    Errno(i32),
    Gone,
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Self {
        Stop::Errno(sys::errno_of(&e))
    }
}

impl Stop {
    /// The errno for a caller that cannot be "gone" (a protocol request).
    fn errno(self) -> i32 {
        match self {
            Stop::Errno(e) => e,
            Stop::Gone => libc::EIO,
        }
    }
}

type Served = Result<Reply, Stop>;

/// Who asked: what a decision records and where a deferred answer goes. A notification, or a
/// request on the explicit protocol channel.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    /// The notification id (0 for protocol requests).
    pub id: u64,
    /// The asking thread (for protocol requests, the target's first process).
    pub pid: u32,
    /// The system call or protocol request, e.g. `openat`.
    pub syscall: &'static str,
    /// What it does, e.g. `open` (the denial line's verb).
    pub action: &'static str,
}

impl From<&Notification> for Caller {
    fn from(n: &Notification) -> Self {
        let (syscall, action) = call_names(n.nr as i64);
        Caller {
            id: n.id,
            pid: n.pid,
            syscall,
            action,
        }
    }
}

/// Where a deferred answer goes.
#[derive(Debug)]
pub enum AnswerTo {
    /// Inject into the notified call with this id.
    Notification(u64),
    /// Send as a protocol response on the channel.
    Channel(Arc<OwnedFd>),
}

/// A FIFO open that must wait for its peer, handed to the supervisor's waiters.
pub struct FifoOpen {
    /// Where the descriptor goes once the FIFO has its peer.
    pub to: AnswerTo,
    /// `O_PATH` descriptor of the FIFO, checked to be one.
    pub fifo: OwnedFd,
    /// Flags for the real open: the access mode the target asked for.
    pub flags: i32,
    pub cloexec: bool,
}

/// The broker's side of every brokered call.
pub struct Server {
    pub policy: Arc<Policy>,
    pub deny_errno: i32,
    path_buf: Vec<u8>,
    /// The last decision (see [`Server::decision`]); its buffers are reused.
    decision: Decision,
    decided: bool,
    /// Learn mode: a FIFO met under a read or write grant is opened as a FIFO, not refused.
    pub learn: bool,
    /// A FIFO open the last call deferred.
    pub fifo: Option<FifoOpen>,
}

/// The name of a notified call and the action it performs (the denial line's verb).
fn call_names(nr: i64) -> (&'static str, &'static str) {
    match nr {
        libc::SYS_open => ("open", "open"),
        libc::SYS_openat => ("openat", "open"),
        libc::SYS_openat2 => ("openat2", "open"),
        libc::SYS_creat => ("creat", "open"),
        libc::SYS_stat => ("stat", "stat"),
        libc::SYS_lstat => ("lstat", "stat"),
        libc::SYS_newfstatat => ("newfstatat", "stat"),
        libc::SYS_statx => ("statx", "stat"),
        libc::SYS_access => ("access", "access"),
        libc::SYS_faccessat => ("faccessat", "access"),
        libc::SYS_faccessat2 => ("faccessat2", "access"),
        libc::SYS_readlink => ("readlink", "readlink"),
        libc::SYS_readlinkat => ("readlinkat", "readlink"),
        libc::SYS_chdir => ("chdir", "chdir"),
        libc::SYS_mkdir => ("mkdir", "mkdir"),
        libc::SYS_mkdirat => ("mkdirat", "mkdir"),
        libc::SYS_rmdir => ("rmdir", "unlink"),
        libc::SYS_unlink => ("unlink", "unlink"),
        libc::SYS_unlinkat => ("unlinkat", "unlink"),
        libc::SYS_rename => ("rename", "rename"),
        libc::SYS_renameat => ("renameat", "rename"),
        libc::SYS_renameat2 => ("renameat2", "rename"),
        libc::SYS_fchmod => ("fchmod", "chmod"),
        libc::SYS_fchown => ("fchown", "chown"),
        libc::SYS_utimensat => ("utimensat", "utimes"),
        libc::SYS_memfd_create => ("memfd_create", "create"),
        libc::SYS_execve => ("execve", "exec"),
        libc::SYS_execveat => ("execveat", "exec"),
        _ => ("syscall", "call"),
    }
}

/// Flags no open accepts, whatever the path: unknown bits, or both O_WRONLY and O_RDWR.
fn check_open_flags(flags: i32) -> Result<(), Stop> {
    if flags & !KNOWN_OPEN_FLAGS != 0 || flags & O_ACCMODE == O_ACCMODE {
        return Err(Stop::Errno(libc::EINVAL));
    }
    Ok(())
}

/// A protocol request's path. The wire format admits only absolute paths
/// (`protocol::wire::Request::check`), normalised here lexically like any other request's.
fn protocol_target(path: &[u8]) -> Result<Target, Stop> {
    let norm = NormPath::new(None, path).ok_or(Stop::Errno(libc::EINVAL))?;
    Ok(Target {
        given: path.to_vec(),
        norm,
        own: None,
    })
}

/// What an open with `flags` needs: writing, creating or truncating is `Write`.
fn open_need(flags: i32) -> Need {
    let writes = flags & libc::O_PATH == 0
        && (flags & O_ACCMODE != libc::O_RDONLY
            || flags & (libc::O_CREAT | libc::O_TRUNC) != 0
            || flags & libc::O_TMPFILE == libc::O_TMPFILE);
    if writes {
        Need::Write
    } else {
        Need::Read
    }
}

/// `dirfd` arguments are C ints: the kernel looks only at the low 32 bits.
fn dirfd_arg(v: u64) -> i32 {
    v as u32 as i32
}

impl Server {
    pub fn new(policy: Arc<Policy>, deny_errno: i32) -> Self {
        Self {
            policy,
            deny_errno,
            path_buf: Vec::with_capacity(crate::path::PATH_MAX),
            decision: Decision {
                syscall: "",
                action: "",
                pid: 0,
                given: Vec::new(),
                resolved: Vec::new(),
                need: Need::Meta,
                allowed: false,
                rule: None,
                reason: Cow::Borrowed(""),
            },
            decided: false,
            learn: false,
            fifo: None,
        }
    }

    /// The decision the last call to [`Server::serve`] made, allowed or refused, if it made one
    /// (the report counts every request; the audit log and learn mode see every decision).
    pub fn decision(&self) -> Option<&Decision> {
        self.decided.then_some(&self.decision)
    }

    /// Forget the last request's decision and deferred FIFO open, before serving the next
    /// (or something that may not make a decision at all).
    pub fn clear_decision(&mut self) {
        self.decided = false;
        self.fifo = None;
    }

    /// Learn mode: open FIFOs met under any grant.
    pub fn learning(mut self, learn: bool) -> Self {
        self.learn = learn;
        self
    }

    /// Serve one notification; [`Server::decision`] then says what the policy decided.
    pub fn serve(&mut self, l: &Listener, n: &Notification) -> Reply {
        self.clear_decision();
        // The filter kills other architectures before they reach us; do not rely on it alone.
        if n.arch != crate::filter::AUDIT_ARCH_X86_64 {
            return Reply::Errno(libc::ENOSYS);
        }
        let a = n.args;
        let nr = n.nr as i64;
        let r = match nr {
            libc::SYS_open => self.open(l, n, libc::AT_FDCWD, a[0], a[1] as i32, a[2] as u32, 0),
            libc::SYS_openat => self.open(l, n, dirfd_arg(a[0]), a[1], a[2] as i32, a[3] as u32, 0),
            libc::SYS_creat => self.open(
                l,
                n,
                libc::AT_FDCWD,
                a[0],
                libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC,
                a[1] as u32,
                0,
            ),
            libc::SYS_openat2 => self.openat2(l, n),
            libc::SYS_stat => self.stat(l, n, libc::AT_FDCWD, a[0], a[1], 0, None),
            libc::SYS_lstat => self.stat(
                l,
                n,
                libc::AT_FDCWD,
                a[0],
                a[1],
                libc::AT_SYMLINK_NOFOLLOW,
                None,
            ),
            libc::SYS_newfstatat => self.stat(l, n, dirfd_arg(a[0]), a[1], a[2], a[3] as i32, None),
            libc::SYS_statx => self.stat(
                l,
                n,
                dirfd_arg(a[0]),
                a[1],
                a[4],
                a[2] as i32,
                Some(a[3] as u32),
            ),
            libc::SYS_access => self.access(l, n, libc::AT_FDCWD, a[0], a[1] as i32, 0),
            libc::SYS_faccessat => self.access(l, n, dirfd_arg(a[0]), a[1], a[2] as i32, 0),
            libc::SYS_faccessat2 => {
                self.access(l, n, dirfd_arg(a[0]), a[1], a[2] as i32, a[3] as i32)
            }
            libc::SYS_readlink => self.readlink(l, n, libc::AT_FDCWD, a[0], a[1], a[2] as i32),
            libc::SYS_readlinkat => self.readlink(l, n, dirfd_arg(a[0]), a[1], a[2], a[3] as i32),
            libc::SYS_chdir => self.chdir(l, n, a[0]),
            libc::SYS_mkdir => self.mkdir(l, n, libc::AT_FDCWD, a[0], a[1] as u32),
            libc::SYS_mkdirat => self.mkdir(l, n, dirfd_arg(a[0]), a[1], a[2] as u32),
            libc::SYS_rmdir => self.unlink(l, n, libc::AT_FDCWD, a[0], libc::AT_REMOVEDIR),
            libc::SYS_unlink => self.unlink(l, n, libc::AT_FDCWD, a[0], 0),
            libc::SYS_unlinkat => self.unlink(l, n, dirfd_arg(a[0]), a[1], a[2] as i32),
            libc::SYS_rename => self.rename(l, n, libc::AT_FDCWD, a[0], libc::AT_FDCWD, a[1], 0),
            libc::SYS_renameat => {
                self.rename(l, n, dirfd_arg(a[0]), a[1], dirfd_arg(a[2]), a[3], 0)
            }
            libc::SYS_renameat2 => self.rename(
                l,
                n,
                dirfd_arg(a[0]),
                a[1],
                dirfd_arg(a[2]),
                a[3],
                a[4] as u32,
            ),
            libc::SYS_fchmod | libc::SYS_fchown | libc::SYS_utimensat => self.fd_meta(l, n),
            libc::SYS_memfd_create => self.memfd(l, n),
            libc::SYS_execve => self.exec_learned(l, n, libc::AT_FDCWD, a[0]),
            libc::SYS_execveat => self.exec_learned(l, n, dirfd_arg(a[0]), a[1]),
            _ => Err(Stop::Errno(libc::ENOSYS)),
        };
        match r {
            Ok(reply) => reply,
            Err(Stop::Errno(e)) => Reply::Errno(e),
            Err(Stop::Gone) => Reply::Gone,
        }
    }

    /// Open `path` for a protocol request: the checks of a notified open of the same absolute
    /// path (flags, policy, walk from the anchor, FIFO rules), without the views that need the
    /// caller's thread (own descriptors, `/proc/self`). A refusal is recorded as a decision.
    pub fn open_for(&mut self, c: &Caller, path: &[u8], flags: i32, mode: u32) -> Reply {
        self.clear_decision();
        let r = check_open_flags(flags).and_then(|()| {
            // Like openat2: a mode beyond the permission bits is an error, not ignored.
            if mode > 0o7777 {
                return Err(Stop::Errno(libc::EINVAL));
            }
            let t = protocol_target(path)?;
            self.open_path(c, &t, flags, mode, 0)
        });
        r.unwrap_or_else(|e| Reply::Errno(e.errno()))
    }

    /// `stat` `path` (following symlinks) for a protocol request, under the policy.
    pub fn stat_for(&mut self, c: &Caller, path: &[u8]) -> Result<libc::stat, i32> {
        self.clear_decision();
        let r = protocol_target(path).and_then(|t| {
            let fd = self.open_meta(c, &t, false)?;
            Ok(sys::fstat(fd.as_fd())?)
        });
        r.map_err(Stop::errno)
    }

    /// Read the path at `addr` and resolve it against `dirfd` as the target's kernel state has
    /// it. An empty path is `ENOENT`; `need` is what the caller will ask of it (for refusals).
    fn resolve(
        &mut self,
        l: &Listener,
        n: &Notification,
        dirfd: i32,
        addr: u64,
        need: Need,
    ) -> Result<Target, Stop> {
        self.resolve_or_empty(l, n, dirfd, addr, need)?
            .ok_or(Stop::Errno(libc::ENOENT))
    }

    /// Like [`Server::resolve`], but an empty path (AT_EMPTY_PATH) gives `None`: the call is
    /// about `dirfd` itself.
    fn resolve_or_empty(
        &mut self,
        l: &Listener,
        n: &Notification,
        dirfd: i32,
        addr: u64,
        need: Need,
    ) -> Result<Option<Target>, Stop> {
        memory::read_cstring(n.pid, addr, &mut self.path_buf)?;
        if !l.id_valid(n.id) {
            return Err(Stop::Gone);
        }
        let raw = &self.path_buf;
        if raw.is_empty() {
            return Ok(None);
        }
        let base = if raw[0] == b'/' {
            None
        } else {
            let base = dir_path(n.pid, dirfd)?;
            // The thread id could have been reused between the notification and the readlink.
            if !l.id_valid(n.id) {
                return Err(Stop::Gone);
            }
            Some(base)
        };
        let norm = NormPath::new(base.as_deref(), raw).ok_or(Stop::Errno(libc::ENOTDIR))?;
        let norm = dev_fd_alias(norm);
        let t = Target {
            given: raw.clone(),
            norm,
            own: None,
        };
        match proc_view(&t.norm, n.pid)? {
            ProcView::Unchanged => Ok(Some(t)),
            ProcView::Rewritten(norm, own) => Ok(Some(Target { norm, own, ..t })),
            ProcView::Broker => Err(self.deny(
                &n.into(),
                &t,
                need,
                "the broker's own /proc entries are never served".into(),
            )),
        }
    }

    /// Record a decision on `t`.
    fn record(
        &mut self,
        c: &Caller,
        t: &Target,
        need: Need,
        allowed: bool,
        rule: Option<Arc<str>>,
        reason: Cow<'static, str>,
    ) {
        // Reuse the buffers of the last decision: no allocation per request once warm.
        let d = &mut self.decision;
        d.syscall = c.syscall;
        d.action = c.action;
        d.pid = c.pid;
        d.given.clear();
        d.given.extend_from_slice(&t.given);
        d.resolved.clear();
        d.resolved.extend_from_slice(t.norm.as_bytes());
        d.need = need;
        d.allowed = allowed;
        d.rule = rule;
        d.reason = reason;
        self.decided = true;
    }

    /// Record an allowed request.
    fn record_allow(
        &mut self,
        c: &Caller,
        t: &Target,
        need: Need,
        rule: Option<Arc<str>>,
        reason: &'static str,
    ) {
        self.record(c, t, need, true, rule, Cow::Borrowed(reason));
    }

    /// Record a refusal for the denial line and turn it into `errno`.
    fn refuse(&mut self, c: &Caller, t: &Target, need: Need, reason: String, errno: i32) -> Stop {
        self.record(c, t, need, false, None, reason.into());
        Stop::Errno(errno)
    }

    /// A policy refusal: the configured deny errno.
    fn deny(&mut self, c: &Caller, t: &Target, need: Need, reason: String) -> Stop {
        self.refuse(c, t, need, reason, self.deny_errno)
    }

    /// Decide `need` on `t`; a refusal is recorded. `None` means "an ancestor directory of a
    /// granted path", which only metadata calls accept.
    fn decide<'p>(
        &mut self,
        policy: &'p Policy,
        c: &Caller,
        t: &Target,
        need: Need,
    ) -> Result<Option<Grant<'p>>, Stop> {
        match policy.decide(&t.norm, need) {
            PolicyDecision::Allow(g) => {
                self.record_allow(
                    c,
                    t,
                    need,
                    Some(g.rule.pattern.clone()),
                    "granted by the rule",
                );
                Ok(Some(g))
            }
            PolicyDecision::Ancestor => {
                self.record_allow(c, t, need, None, "a directory above a granted path");
                Ok(None)
            }
            PolicyDecision::Deny(reason) => {
                let rule = match &reason {
                    crate::policy::DenyReason::AccessNotGranted(p) => Some(p.clone()),
                    crate::policy::DenyReason::NoRule => None,
                };
                self.record(c, t, need, false, rule, reason.to_string().into());
                Err(Stop::Errno(self.deny_errno))
            }
        }
    }

    /// Like [`Server::decide`], but a directory above a grant is not enough.
    fn decide_granted<'p>(
        &mut self,
        policy: &'p Policy,
        c: &Caller,
        t: &Target,
        need: Need,
    ) -> Result<Grant<'p>, Stop> {
        match self.decide(policy, c, t, need)? {
            Some(g) => Ok(g),
            None => Err(self.deny(
                c,
                t,
                need,
                "only the directory's metadata is granted".into(),
            )),
        }
    }

    /// An `O_PATH` descriptor of `t` for metadata calls (grant or ancestor).
    fn open_meta(&mut self, c: &Caller, t: &Target, nofollow: bool) -> Result<OwnedFd, Stop> {
        let policy = Arc::clone(&self.policy);
        let flags = libc::O_PATH | if nofollow { libc::O_NOFOLLOW } else { 0 };
        match self.decide(&policy, c, t, Need::Meta)? {
            Some(g) => g
                .open(flags, 0, 0)
                .map_err(|e| self.walk_error(c, t, Need::Meta, e)),
            None => Ok(open_ancestor(&t.norm, nofollow)?),
        }
    }

    /// `EXDEV` from a walk means a symlink or `..` tried to leave the granted tree: a denial.
    fn walk_error(&mut self, c: &Caller, t: &Target, need: Need, e: io::Error) -> Stop {
        match e.raw_os_error() {
            Some(libc::EXDEV) => self.deny(
                c,
                t,
                need,
                "a symlink leads outside the granted tree, or into the broker's own /proc".into(),
            ),
            Some(libc::ELOOP) if need != Need::Meta => self.refuse(
                c,
                t,
                need,
                "a symlink is not followed here".into(),
                libc::ELOOP,
            ),
            _ => e.into(),
        }
    }

    fn openat2(&mut self, l: &Listener, n: &Notification) -> Served {
        let (dirfd, path, how_addr, size) = (dirfd_arg(n.args[0]), n.args[1], n.args[2], n.args[3]);
        let base = std::mem::size_of::<libc::open_how>() as u64;
        if size < base || size > 4096 {
            return Err(Stop::Errno(if size < base {
                libc::EINVAL
            } else {
                libc::E2BIG
            }));
        }
        let mut raw = vec![0u8; size as usize];
        memory::read_exact(n.pid, how_addr, &mut raw)?;
        // Like the kernel: a larger struct is accepted only if the unknown tail is zero.
        if raw[base as usize..].iter().any(|&b| b != 0) {
            return Err(Stop::Errno(libc::E2BIG));
        }
        let word = |i: usize| u64::from_ne_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap());
        let (flags, mode, resolve) = (word(0), word(1), word(2));
        if flags > i32::MAX as u64 || flags as i32 & !KNOWN_OPEN_FLAGS != 0 {
            return Err(Stop::Errno(libc::EINVAL));
        }
        if resolve & !(PASSTHROUGH_RESOLVE | libc::RESOLVE_CACHED) != 0 {
            // RESOLVE_BENEATH and RESOLVE_IN_ROOT are relative to the target's own dirfd,
            // which the broker does not walk from; refuse rather than approximate them.
            return Err(Stop::Errno(libc::EINVAL));
        }
        let creating =
            flags as i32 & libc::O_CREAT != 0 || flags as i32 & libc::O_TMPFILE == libc::O_TMPFILE;
        if mode > 0o7777 || (mode != 0 && !creating) {
            return Err(Stop::Errno(libc::EINVAL));
        }
        self.open(
            l,
            n,
            dirfd,
            path,
            flags as i32,
            mode as u32,
            resolve & PASSTHROUGH_RESOLVE,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn open(
        &mut self,
        l: &Listener,
        n: &Notification,
        dirfd: i32,
        addr: u64,
        flags: i32,
        mode: u32,
        resolve: u64,
    ) -> Served {
        check_open_flags(flags)?;
        let need = open_need(flags);
        let t = self.resolve(l, n, dirfd, addr, need)?;
        if let Some(Own::Fd(fd)) = t.own {
            let cloexec = flags & libc::O_CLOEXEC != 0;
            return self.reopen_own(l, n, &t, fd, flags, need, cloexec);
        }
        self.open_path(&n.into(), &t, flags, mode, resolve)
    }

    /// Open `t` (resolved, not one of the caller's own descriptors) under the policy: the part
    /// of an open that intercepted calls and protocol requests share.
    fn open_path(&mut self, c: &Caller, t: &Target, flags: i32, mode: u32, resolve: u64) -> Served {
        let need = open_need(flags);
        if flags & libc::O_TMPFILE == libc::O_TMPFILE {
            let reason = "O_TMPFILE is not brokered".into();
            return Err(self.refuse(c, t, need, reason, libc::EOPNOTSUPP));
        }
        let cloexec = flags & libc::O_CLOEXEC != 0;
        let policy = Arc::clone(&self.policy);
        self.open_granted(&policy, c, t, need, flags, mode, resolve, cloexec)
    }

    /// Reopen one of the caller's own descriptors (`/dev/stdout`, `/proc/self/fd/N`): allowed
    /// only with access the descriptor already has, so a read-only descriptor never becomes
    /// writable and an append-only one never becomes overwritable.
    #[allow(clippy::too_many_arguments)]
    fn reopen_own(
        &mut self,
        l: &Listener,
        n: &Notification,
        t: &Target,
        fd: i32,
        flags: i32,
        need: Need,
        cloexec: bool,
    ) -> Served {
        // Our own duplicate of the caller's open file: a thread swapping descriptor `fd`
        // meanwhile cannot change what is checked and reopened below.
        let file = target_file(n.pid, fd)?;
        if !l.id_valid(n.id) {
            return Err(Stop::Gone);
        }
        // SAFETY: F_GETFL on our own descriptor.
        let held = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
        let (can_read, can_write) = match held & O_ACCMODE {
            _ if held & libc::O_PATH != 0 => (false, false),
            libc::O_RDONLY => (true, false),
            libc::O_WRONLY => (false, true),
            _ => (true, true),
        };
        let path_only = flags & libc::O_PATH != 0;
        let acc = flags & O_ACCMODE;
        let wants_read = !path_only && acc != libc::O_WRONLY;
        let wants_write = need == Need::Write;
        if (wants_read && !can_read) || (wants_write && !can_write) {
            let reason = format!("descriptor {fd} was not opened for {need}");
            return Err(self.deny(&n.into(), t, need, reason));
        }
        if wants_write && held & libc::O_APPEND != 0 && flags & libc::O_APPEND == 0 {
            let reason = format!("descriptor {fd} is append-only");
            return Err(self.deny(&n.into(), t, need, reason));
        }
        let open_flags = if path_only {
            flags & (libc::O_PATH | libc::O_DIRECTORY)
        } else {
            // O_NONBLOCK: a pipe whose other end is gone must not hang the broker.
            (flags & !(libc::O_CLOEXEC | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW))
                | libc::O_NOCTTY
                | libc::O_NONBLOCK
        };
        self.record_allow(&n.into(), t, need, None, "the caller's own descriptor");
        let reopened = reopen(file.as_fd(), open_flags)?;
        if flags & (libc::O_PATH | libc::O_NONBLOCK) == 0 {
            sys::set_nonblocking(reopened.as_fd(), false)?;
        }
        Ok(Reply::Fd {
            fd: reopened,
            cloexec,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn open_granted(
        &mut self,
        policy: &Policy,
        c: &Caller,
        t: &Target,
        need: Need,
        flags: i32,
        mode: u32,
        resolve: u64,
        cloexec: bool,
    ) -> Served {
        let grant = self.decide_granted(policy, c, t, need)?;
        let mut flags = flags;
        if t.norm.trailing_slash {
            if flags & libc::O_CREAT != 0 {
                return Err(Stop::Errno(libc::EISDIR));
            }
            flags |= libc::O_DIRECTORY;
        }
        if grant.rule.kind == crate::policy::RuleKind::Fifo {
            return self.open_fifo(c, t, &grant, flags, cloexec);
        }
        if self.learn && flags & libc::O_PATH == 0 {
            let st = grant
                .open(libc::O_PATH, 0, resolve)
                .ok()
                .map(|fd| sys::fstat(fd.as_fd()));
            if matches!(st, Some(Ok(st)) if sys::file_type(&st) == libc::S_IFIFO) {
                return self.open_fifo(c, t, &grant, flags, cloexec);
            }
        }
        let open_flags = if flags & libc::O_PATH != 0 {
            flags & (libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW)
        } else {
            // Never block the broker on a FIFO or a device: FIFOs are refused below, and the
            // target's own blocking mode is restored before the descriptor is handed over.
            (flags & !libc::O_CLOEXEC) | libc::O_NOCTTY | libc::O_NONBLOCK
        };
        let mode = if flags & libc::O_CREAT != 0 {
            creation_mode(c.pid, mode)?
        } else {
            0
        };
        let fd = grant
            .open(open_flags, mode, resolve)
            .map_err(|e| self.walk_error(c, t, need, e))?;
        let st = sys::fstat(fd.as_fd())?;
        if sys::file_type(&st) == libc::S_IFIFO && flags & libc::O_PATH == 0 {
            let reason = format!(
                "it is a FIFO and rule {} is not a FIFO rule",
                grant.rule.pattern
            );
            return Err(self.deny(c, t, need, reason));
        }
        if flags & (libc::O_PATH | libc::O_NONBLOCK) == 0 {
            // The status flags it was opened with, less O_NONBLOCK: one fcntl, no F_GETFL.
            sys::set_status_flags(fd.as_fd(), open_flags & !libc::O_NONBLOCK)?;
        }
        Ok(Reply::Fd { fd, cloexec })
    }

    fn open_fifo(
        &mut self,
        c: &Caller,
        t: &Target,
        grant: &Grant<'_>,
        flags: i32,
        cloexec: bool,
    ) -> Served {
        let need = if flags & O_ACCMODE == libc::O_RDONLY {
            Need::Read
        } else {
            Need::Write
        };
        let fifo = grant
            .open(libc::O_PATH, 0, libc::RESOLVE_NO_SYMLINKS)
            .map_err(|e| self.walk_error(c, t, need, e))?;
        let st = sys::fstat(fifo.as_fd())?;
        if sys::file_type(&st) != libc::S_IFIFO {
            return Err(self.deny(c, t, need, "FIFO rule, but the file is not a FIFO".into()));
        }
        if flags & libc::O_PATH != 0 {
            return Ok(Reply::Fd { fd: fifo, cloexec });
        }
        if flags & libc::O_DIRECTORY != 0 {
            return Err(Stop::Errno(libc::ENOTDIR));
        }
        if flags & (libc::O_CREAT | libc::O_EXCL) == libc::O_CREAT | libc::O_EXCL {
            return Err(Stop::Errno(libc::EEXIST));
        }
        let access = flags & (O_ACCMODE | libc::O_NONBLOCK | libc::O_APPEND);
        if flags & libc::O_NONBLOCK != 0 {
            // Does not wait for a peer: answer now.
            let fd = reopen(fifo.as_fd(), access)?;
            return Ok(Reply::Fd { fd, cloexec });
        }
        self.fifo = Some(FifoOpen {
            to: AnswerTo::Notification(c.id),
            fifo,
            flags: access,
            cloexec,
        });
        Ok(Reply::Deferred)
    }

    #[allow(clippy::too_many_arguments)]
    fn stat(
        &mut self,
        l: &Listener,
        n: &Notification,
        dirfd: i32,
        addr: u64,
        buf: u64,
        flags: i32,
        statx_mask: Option<u32>,
    ) -> Served {
        let known = libc::AT_SYMLINK_NOFOLLOW
            | libc::AT_EMPTY_PATH
            | libc::AT_NO_AUTOMOUNT
            | libc::AT_STATX_SYNC_TYPE;
        if flags & !known != 0 {
            return Err(Stop::Errno(libc::EINVAL));
        }
        let nofollow = flags & libc::AT_SYMLINK_NOFOLLOW != 0;
        let empty_ok = flags & libc::AT_EMPTY_PATH != 0;
        let fd = match self.resolve_or_empty(l, n, dirfd, addr, Need::Meta)? {
            None if !empty_ok => return Err(Stop::Errno(libc::ENOENT)),
            None => target_fd(n.pid, dirfd)?,
            Some(Target {
                own: Some(Own::Fd(fd)),
                ..
            }) => target_fd(n.pid, fd)?,
            Some(t) => self.open_meta(&n.into(), &t, nofollow)?,
        };
        let bytes: Vec<u8> = match statx_mask {
            Some(mask) => {
                // SAFETY: zeroed statx is valid; the kernel fills it.
                let mut stx: libc::statx = unsafe { std::mem::zeroed() };
                sys::cvt(unsafe {
                    libc::statx(
                        fd.as_raw_fd(),
                        c"".as_ptr(),
                        libc::AT_EMPTY_PATH | (flags & libc::AT_STATX_SYNC_TYPE),
                        mask,
                        &mut stx,
                    )
                } as libc::c_long)?;
                as_bytes(&stx).to_vec()
            }
            None => as_bytes(&sys::fstat(fd.as_fd())?).to_vec(),
        };
        if !l.id_valid(n.id) {
            return Err(Stop::Gone);
        }
        memory::write_all(n.pid, buf, &bytes)?;
        Ok(Reply::Value(0))
    }

    fn access(
        &mut self,
        l: &Listener,
        n: &Notification,
        dirfd: i32,
        addr: u64,
        mode: i32,
        flags: i32,
    ) -> Served {
        if mode & !(libc::R_OK | libc::W_OK | libc::X_OK) != 0
            || flags & !(libc::AT_EACCESS | libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) != 0
        {
            return Err(Stop::Errno(libc::EINVAL));
        }
        let nofollow = flags & libc::AT_SYMLINK_NOFOLLOW != 0;
        let need = if mode & libc::W_OK != 0 {
            Need::Write
        } else if mode & libc::R_OK != 0 {
            Need::Read
        } else {
            Need::Meta
        };
        let fd = match self.resolve_or_empty(l, n, dirfd, addr, need)? {
            None if flags & libc::AT_EMPTY_PATH == 0 => return Err(Stop::Errno(libc::ENOENT)),
            None => target_fd(n.pid, dirfd)?,
            Some(t) => {
                if need != Need::Meta {
                    let policy = Arc::clone(&self.policy);
                    self.decide_granted(&policy, &n.into(), &t, need)?;
                }
                self.open_meta(&n.into(), &t, nofollow)?
            }
        };
        // SAFETY: plain syscall on our own descriptor with a static empty path.
        sys::cvt(unsafe {
            libc::syscall(
                libc::SYS_faccessat2,
                fd.as_raw_fd(),
                c"".as_ptr(),
                mode,
                libc::AT_EMPTY_PATH | (flags & libc::AT_EACCESS),
            )
        })?;
        Ok(Reply::Value(0))
    }

    fn readlink(
        &mut self,
        l: &Listener,
        n: &Notification,
        dirfd: i32,
        addr: u64,
        buf: u64,
        size: i32,
    ) -> Served {
        if size <= 0 {
            return Err(Stop::Errno(libc::EINVAL));
        }
        let t = self.resolve(l, n, dirfd, addr, Need::Meta)?;
        let mut target = match t.own {
            // The target may learn where its own program lives (static glibc asks at start-up),
            // and what its own descriptors are.
            Some(Own::Exe) => sys::readlink(&proc_link(n.pid, None)?)?,
            Some(Own::Fd(fd)) => sys::readlink(&proc_link(n.pid, Some(fd))?)?,
            None => {
                let fd = self.open_meta(&n.into(), &t, true)?;
                sys::readlinkat(Some(fd.as_fd()), c"")?
            }
        };
        target.truncate(size as usize);
        if !l.id_valid(n.id) {
            return Err(Stop::Gone);
        }
        memory::write_all(n.pid, buf, &target)?;
        Ok(Reply::Value(target.len() as i64))
    }

    fn chdir(&mut self, l: &Listener, n: &Notification, addr: u64) -> Served {
        let t = self.resolve(l, n, libc::AT_FDCWD, addr, Need::Meta)?;
        let fd = self.open_meta(&n.into(), &t, false)?;
        if sys::file_type(&sys::fstat(fd.as_fd())?) != libc::S_IFDIR {
            return Err(Stop::Errno(libc::ENOTDIR));
        }
        // The kernel re-reads the path, so a racing thread could land the target in another
        // directory. That only moves the base of later relative paths, which the broker resolves
        // from the kernel's record of the cwd and checks again; no open is ever continued.
        Ok(Reply::Continue)
    }

    /// The parent directory and name of `t` in a write grant, for entry-changing calls.
    fn write_entry(
        &mut self,
        n: &Notification,
        t: &Target,
    ) -> Result<(OwnedFd, std::ffi::OsString), Stop> {
        let policy = Arc::clone(&self.policy);
        let grant = self.decide_granted(&policy, &n.into(), t, Need::Write)?;
        grant
            .open_parent()
            .map_err(|e| self.walk_error(&n.into(), t, Need::Write, e))
    }

    fn mkdir(
        &mut self,
        l: &Listener,
        n: &Notification,
        dirfd: i32,
        addr: u64,
        mode: u32,
    ) -> Served {
        let t = self.resolve(l, n, dirfd, addr, Need::Write)?;
        let (parent, name) = self.write_entry(n, &t)?;
        let name = sys::cstring(name.as_bytes())?;
        let mode = creation_mode(n.pid, mode)?;
        // SAFETY: our own descriptor and a NUL-terminated single component.
        sys::cvt(
            unsafe { libc::mkdirat(parent.as_raw_fd(), name.as_ptr(), mode) } as libc::c_long,
        )?;
        Ok(Reply::Value(0))
    }

    fn unlink(
        &mut self,
        l: &Listener,
        n: &Notification,
        dirfd: i32,
        addr: u64,
        flags: i32,
    ) -> Served {
        if flags & !libc::AT_REMOVEDIR != 0 {
            return Err(Stop::Errno(libc::EINVAL));
        }
        let t = self.resolve(l, n, dirfd, addr, Need::Write)?;
        let (parent, name) = self.write_entry(n, &t)?;
        let name = sys::cstring(name.as_bytes())?;
        // SAFETY: as in mkdir.
        sys::cvt(
            unsafe { libc::unlinkat(parent.as_raw_fd(), name.as_ptr(), flags) } as libc::c_long,
        )?;
        Ok(Reply::Value(0))
    }

    #[allow(clippy::too_many_arguments)]
    fn rename(
        &mut self,
        l: &Listener,
        n: &Notification,
        olddir: i32,
        old: u64,
        newdir: i32,
        new: u64,
        flags: u32,
    ) -> Served {
        if flags & !(libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE) != 0 {
            return Err(Stop::Errno(libc::EINVAL));
        }
        let from = self.resolve(l, n, olddir, old, Need::Write)?;
        let to = self.resolve(l, n, newdir, new, Need::Write)?;
        let (fp, fname) = self.write_entry(n, &from)?;
        let (tp, tname) = self.write_entry(n, &to)?;
        let (fname, tname) = (
            sys::cstring(fname.as_bytes())?,
            sys::cstring(tname.as_bytes())?,
        );
        // SAFETY: our own descriptors and single NUL-terminated components.
        sys::cvt(unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                fp.as_raw_fd(),
                fname.as_ptr(),
                tp.as_raw_fd(),
                tname.as_ptr(),
                flags,
            )
        })?;
        Ok(Reply::Value(0))
    }

    /// execve and execveat reach the broker only in learn mode (a trusted run, where the exec
    /// policy grants everything): note the program and let the kernel run it.
    fn exec_learned(&mut self, l: &Listener, n: &Notification, dirfd: i32, addr: u64) -> Served {
        if !self.learn {
            return Err(Stop::Errno(libc::ENOSYS));
        }
        // An exec of a descriptor (AT_EMPTY_PATH) names no path to learn.
        if let Some(t) = self.resolve_or_empty(l, n, dirfd, addr, Need::Exec)? {
            self.record_allow(
                &n.into(),
                &t,
                Need::Exec,
                Some("/**".into()),
                "learn mode runs anything",
            );
        }
        Ok(Reply::Continue)
    }

    /// memfd_create, done by the broker with `MFD_NOEXEC_SEAL`: memory files live on an internal
    /// mount Landlock does not check, so an executable one would be a way around the exec
    /// policy. `MFD_EXEC` is refused.
    fn memfd(&mut self, l: &Listener, n: &Notification) -> Served {
        const MFD_HUGE_MASK: u32 = 0x3f << 26;
        let flags = n.args[1] as u32;
        let known = libc::MFD_CLOEXEC
            | libc::MFD_ALLOW_SEALING
            | libc::MFD_HUGETLB
            | libc::MFD_NOEXEC_SEAL
            | libc::MFD_EXEC
            | MFD_HUGE_MASK;
        if flags & !known != 0 {
            return Err(Stop::Errno(libc::EINVAL));
        }
        if flags & libc::MFD_EXEC != 0 {
            return Err(Stop::Errno(self.deny_errno));
        }
        memory::read_cstring(n.pid, n.args[0], &mut self.path_buf)?;
        // The kernel's limit on a memfd name (MFD_NAME_MAX_LEN).
        if self.path_buf.len() > 249 {
            return Err(Stop::Errno(libc::EINVAL));
        }
        if !l.id_valid(n.id) {
            return Err(Stop::Gone);
        }
        let name = sys::cstring(&self.path_buf)?;
        let ours = (flags & !libc::MFD_CLOEXEC) | libc::MFD_NOEXEC_SEAL | libc::MFD_CLOEXEC;
        // SAFETY: a NUL-terminated name; a fresh descriptor owned at once.
        let fd = sys::cvt(unsafe { libc::syscall(libc::SYS_memfd_create, name.as_ptr(), ours) })?;
        // SAFETY: memfd_create returned a fresh descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        Ok(Reply::Fd {
            fd,
            cloexec: flags & libc::MFD_CLOEXEC != 0,
        })
    }

    /// fchmod, fchown and futimens act on the file behind a descriptor: allowed only when that
    /// file lies in a write grant, whatever access the descriptor itself was opened with.
    fn fd_meta(&mut self, l: &Listener, n: &Notification) -> Served {
        let a = n.args;
        let fd = target_fd(n.pid, dirfd_arg(a[0]))?;
        // Decide on our own copy, so another thread swapping the target's fd cannot race us.
        let own_path = sys::fd_path(fd.as_fd())?;
        let path = sys::readlink(&own_path)?;
        let Some(norm) = NormPath::new(None, &path) else {
            return Err(Stop::Errno(self.deny_errno));
        };
        let t = Target {
            given: path,
            norm,
            own: None,
        };
        let policy = Arc::clone(&self.policy);
        self.decide_granted(&policy, &n.into(), &t, Need::Write)?;
        // SAFETY: NUL-terminated path to our own descriptor; times read into our memory.
        let r = unsafe {
            match n.nr as i64 {
                libc::SYS_fchmod => libc::chmod(own_path.as_ptr(), a[1] as libc::mode_t),
                libc::SYS_fchown => libc::chown(own_path.as_ptr(), a[1] as u32, a[2] as u32),
                _ => {
                    if a[3] as i32 & !libc::AT_SYMLINK_NOFOLLOW != 0 {
                        return Err(Stop::Errno(libc::EINVAL));
                    }
                    let mut times = [0u8; 2 * std::mem::size_of::<libc::timespec>()];
                    let tp = if a[2] == 0 {
                        std::ptr::null()
                    } else {
                        memory::read_exact(n.pid, a[2], &mut times)?;
                        times.as_ptr().cast::<libc::timespec>()
                    };
                    libc::utimensat(libc::AT_FDCWD, own_path.as_ptr(), tp, 0)
                }
            }
        };
        if !l.id_valid(n.id) {
            return Err(Stop::Gone);
        }
        sys::cvt(r as libc::c_long)?;
        Ok(Reply::Value(0))
    }
}

/// What [`proc_view`] makes of a path.
enum ProcView {
    Unchanged,
    /// `/proc/self/...` or `/proc/thread-self/...` rewritten to the target's own pid, or a path
    /// under its own pid that names something of its own.
    Rewritten(NormPath, Option<Own>),
    /// An entry of the broker's own process.
    Broker,
}

/// Paths under /proc name processes from the caller's point of view: `/proc/self` is the
/// target, not the broker. The broker's own entries are never served, whatever the policy says
/// (its memory, descriptors and environment are exactly what a sandbox must not reach).
fn proc_view(norm: &NormPath, tid: u32) -> Result<ProcView, Stop> {
    let Some(rest) = crate::path::strip_base(norm.as_bytes(), b"/proc") else {
        return Ok(ProcView::Unchanged);
    };
    let (first, tail) = match rest.iter().position(|&c| c == b'/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, &b""[..]),
    };
    let tgid = match first {
        b"self" | b"thread-self" => tgid_of(tid)?,
        _ => {
            let Some(pid) = sys::proc_pid(first) else {
                return Ok(ProcView::Unchanged);
            };
            if sys::is_broker_task(pid) {
                return Ok(ProcView::Broker);
            }
            if pid != tgid_of(tid)? {
                return Ok(ProcView::Unchanged);
            }
            pid
        }
    };
    let head = if first == b"thread-self" {
        format!("/proc/{tgid}/task/{tid}")
    } else {
        format!("/proc/{tgid}")
    };
    let mut path = head.into_bytes();
    path.extend_from_slice(tail);
    let own_fd = |p: &[u8]| -> Option<i32> {
        let rest = p
            .strip_prefix(format!("/proc/{tgid}/fd/").as_bytes())
            .or_else(|| p.strip_prefix(format!("/proc/{tgid}/task/{tid}/fd/").as_bytes()))?;
        std::str::from_utf8(rest).ok()?.parse().ok()
    };
    let own = if let Some(fd) = own_fd(&path) {
        Some(Own::Fd(fd))
    } else if path == format!("/proc/{tgid}/exe").as_bytes()
        || path == format!("/proc/{tgid}/task/{tid}/exe").as_bytes()
    {
        Some(Own::Exe)
    } else if first != b"self" && first != b"thread-self" {
        return Ok(ProcView::Unchanged);
    } else {
        None
    };
    let mut out = NormPath::new(None, &path).ok_or(Stop::Errno(libc::ENOENT))?;
    out.trailing_slash = norm.trailing_slash;
    Ok(ProcView::Rewritten(out, own))
}

/// The standard aliases of the caller's own descriptors, as every Linux system links them:
/// `/dev/stdin`, `/dev/stdout`, `/dev/stderr` and `/dev/fd/N` name `/proc/self/fd/N`.
fn dev_fd_alias(norm: NormPath) -> NormPath {
    let b = norm.as_bytes();
    let fd: Option<&[u8]> = match b {
        b"/dev/stdin" => Some(b"0"),
        b"/dev/stdout" => Some(b"1"),
        b"/dev/stderr" => Some(b"2"),
        _ => b.strip_prefix(b"/dev/fd/"),
    };
    match fd {
        Some(n) if !n.is_empty() && n.iter().all(u8::is_ascii_digit) => {
            let mut p = b"/proc/self/fd/".to_vec();
            p.extend_from_slice(n);
            NormPath::new(None, &p).unwrap_or(norm)
        }
        _ => norm,
    }
}

/// The process a thread belongs to.
fn tgid_of(tid: u32) -> Result<u32, Stop> {
    status_field(tid, "Tgid:", 10)
}

/// The permission bits a file or directory created for `tid` gets: the mode it asked for, less
/// its own umask (the broker's umask, applied by the kernel too, can only narrow further).
fn creation_mode(tid: u32, mode: u32) -> Result<u32, Stop> {
    Ok(mode & 0o777 & !status_field(tid, "Umask:", 8)?)
}

/// A numeric field of `/proc/<tid>/status`.
fn status_field(tid: u32, field: &str, radix: u32) -> Result<u32, Stop> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| u32::from_str_radix(v.trim(), radix).ok())
        .ok_or(Stop::Errno(libc::ESRCH))
}

/// Reopen a file the broker holds (a checked FIFO, or a duplicate of a target's descriptor)
/// through `/proc/self/fd` with the access the target asked for.
pub fn reopen(file: BorrowedFd<'_>, flags: i32) -> io::Result<OwnedFd> {
    sys::openat2(None, &sys::fd_path(file)?, flags | libc::O_NOCTTY, 0, 0)
}

/// The kernel's link to what the target holds: `/proc/<tid>/fd/<fd>`, `/proc/<tid>/cwd` for
/// `AT_FDCWD`, `/proc/<tid>/exe` for `None`.
fn proc_link(tid: u32, fd: Option<i32>) -> Result<CString, Stop> {
    let link = match fd {
        None => format!("/proc/{tid}/exe"),
        Some(libc::AT_FDCWD) => format!("/proc/{tid}/cwd"),
        Some(fd) if fd < 0 => return Err(Stop::Errno(libc::EBADF)),
        Some(fd) => format!("/proc/{tid}/fd/{fd}"),
    };
    Ok(sys::cstring(link.as_bytes())?)
}

/// The absolute path of the target's `dirfd` (or cwd), as the kernel records it.
fn dir_path(pid: u32, dirfd: i32) -> Result<Vec<u8>, Stop> {
    match sys::readlink(&proc_link(pid, Some(dirfd))?) {
        Ok(p) if p.first() == Some(&b'/') => Ok(p),
        // A pipe, socket or anonymous inode: not a directory.
        Ok(_) => Err(Stop::Errno(libc::ENOTDIR)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Err(Stop::Errno(libc::EBADF)),
        Err(e) => Err(e.into()),
    }
}

/// An `O_PATH` descriptor of the file behind the target's `fd` (or its cwd).
fn target_fd(pid: u32, fd: i32) -> Result<OwnedFd, Stop> {
    sys::openat2(None, &proc_link(pid, Some(fd))?, libc::O_PATH, 0, 0).map_err(|e| {
        if e.raw_os_error() == Some(libc::ENOENT) {
            Stop::Errno(libc::EBADF)
        } else {
            e.into()
        }
    })
}

/// Our own duplicate of the caller's descriptor `fd` (the same open file description, taken
/// with `pidfd_getfd`), close-on-exec.
fn target_file(tid: u32, fd: i32) -> Result<OwnedFd, Stop> {
    let tgid = tgid_of(tid)?;
    // SAFETY: pidfd_open and pidfd_getfd return fresh descriptors we own at once.
    unsafe {
        let pidfd = sys::cvt(libc::syscall(libc::SYS_pidfd_open, tgid, 0))?;
        let pidfd = OwnedFd::from_raw_fd(pidfd as i32);
        match sys::cvt(libc::syscall(
            libc::SYS_pidfd_getfd,
            pidfd.as_raw_fd(),
            fd,
            0,
        )) {
            Ok(file) => Ok(OwnedFd::from_raw_fd(file as i32)),
            Err(e) if e.raw_os_error() == Some(libc::EBADF) => Err(Stop::Errno(libc::ENOENT)),
            Err(e) => Err(e.into()),
        }
    }
}

fn as_bytes<T>(v: &T) -> &[u8] {
    // SAFETY: T is a plain C struct (stat, statx) with no padding we care to hide.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
}
