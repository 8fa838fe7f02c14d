//! The child side of the sandbox: what runs between the child's creation and its `exec`.
//!
//! The broker builds an [`ExecPlan`] first: program path, argv and envp as C arrays, the
//! seccomp program as raw BPF, and the descriptor numbers involved. [`ExecPlan::spawn`] starts
//! the child with `clone3(CLONE_VM)` on a stack of its own, like `posix_spawn`: it shares the
//! broker's memory until it execs, so no page tables are copied, neither side takes
//! copy-on-write faults, and the exec has no copy to tear down. The child only makes raw
//! system calls ([`raw`]) on the prepared data: no allocation, no lock, no `errno` (which
//! lives in the broker's thread-local storage).
//!
//! The steps, in order (each failure is reported through the error pipe as a [`ShimFailure`]):
//! 1. reset signal dispositions and the signal mask inherited from the broker;
//! 2. `setsid`, so the target has no controlling terminal to push keystrokes into (TIOCSTI);
//! 3. `PR_SET_PDEATHSIG(SIGKILL)`, then check the broker did not already die;
//! 4. `PR_SET_NO_NEW_PRIVS`; drop every capability (bounding set, ambient set, then effective,
//!    permitted and inheritable, with `SECBIT_NOROOT` so a uid-0 exec regains none): the broker
//!    opens files, so the target needs no privilege of its own;
//! 5. move the channel to [`protocol::CHANNEL_FD`] and the error pipe to `CHANNEL_FD + 1`,
//!    close every other descriptor above 2, and install the filter with
//!    `SECCOMP_FILTER_FLAG_NEW_LISTENER`;
//! 6. send the listener to the broker with `SCM_RIGHTS`, close it, and wait for the go-ahead;
//! 7. restrict itself with the Landlock ruleset that came with the go-ahead, if one did: the
//!    broker builds it while the child sets itself up;
//! 8. `execve` the target. The error pipe is close-on-exec, so a successful exec reads as EOF.

pub mod raw;

use std::ffi::{CStr, CString};
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::ptr;

use raw::syscall;

/// The descriptor at which the child keeps the close-on-exec error pipe until it execs.
const ERROR_PIPE_FD: RawFd = protocol::CHANNEL_FD + 1;

/// The step of the child's set-up that failed. Sent to the broker as a `u32` with the errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ShimStage {
    Session = 1,
    ParentDeath = 2,
    Descriptors = 3,
    NoNewPrivs = 4,
    Seccomp = 5,
    SendListener = 6,
    AwaitGo = 7,
    Exec = 8,
    Landlock = 9,
    Capabilities = 10,
}

impl ShimStage {
    fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => Self::Session,
            2 => Self::ParentDeath,
            3 => Self::Descriptors,
            4 => Self::NoNewPrivs,
            5 => Self::Seccomp,
            6 => Self::SendListener,
            7 => Self::AwaitGo,
            8 => Self::Exec,
            9 => Self::Landlock,
            10 => Self::Capabilities,
            _ => return None,
        })
    }

    /// What the step does, for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Session => "start a new session",
            Self::ParentDeath => "arrange to die with the broker",
            Self::Descriptors => "set up descriptors",
            Self::NoNewPrivs => "set no_new_privs",
            Self::Seccomp => "install the seccomp filter",
            Self::SendListener => "send the seccomp listener to the broker",
            Self::AwaitGo => "wait for the broker",
            Self::Exec => "execute the program",
            Self::Landlock => "restrict itself with Landlock",
            Self::Capabilities => "drop its capabilities",
        }
    }
}

/// A failed child set-up, decoded from the error pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShimFailure {
    pub stage: ShimStage,
    pub errno: i32,
}

impl ShimFailure {
    /// The wire size of a report on the error pipe.
    pub const SIZE: usize = 8;

    /// Decode the 8 bytes the child wrote; `None` if they are not a report.
    pub fn decode(bytes: &[u8; Self::SIZE]) -> Option<Self> {
        let stage = u32::from_ne_bytes(bytes[..4].try_into().ok()?);
        let errno = i32::from_ne_bytes(bytes[4..].try_into().ok()?);
        Some(Self {
            stage: ShimStage::from_u32(stage)?,
            errno,
        })
    }
}

/// Everything the child needs, built before `fork` so that the child allocates nothing.
pub struct ExecPlan {
    program: CString,
    // The CStrings own the bytes the pointer arrays point into; never mutated after build.
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    _envp: Vec<CString>,
    envp_ptrs: Vec<*const libc::c_char>,
    filter: Vec<libc::sock_filter>,
    channel: RawFd,
    error_pipe: RawFd,
    parent: libc::pid_t,
}

impl ExecPlan {
    /// Prepare an exec of `program` with `argv` and `envp` under `filter`.
    ///
    /// `channel` is the child's end of the socketpair and `error_pipe` the write end of a
    /// close-on-exec pipe; both must be above `ERROR_PIPE_FD` so that moving them into place
    /// cannot clobber one with the other.
    pub fn new(
        program: CString,
        argv: Vec<CString>,
        envp: Vec<CString>,
        filter: Vec<libc::sock_filter>,
        channel: RawFd,
        error_pipe: RawFd,
    ) -> Self {
        assert!(channel > ERROR_PIPE_FD && error_pipe > ERROR_PIPE_FD);
        let argv_ptrs = argv
            .iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(ptr::null()))
            .collect();
        let envp_ptrs = envp
            .iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(ptr::null()))
            .collect();
        Self {
            program,
            _argv: argv,
            argv_ptrs,
            _envp: envp,
            envp_ptrs,
            filter,
            channel,
            error_pipe,
            // SAFETY: getpid has no preconditions.
            parent: unsafe { libc::getpid() },
        }
    }

    /// The program that will be executed.
    pub fn program(&self) -> &CStr {
        &self.program
    }

    /// Start the child, in the cgroup `cgroup` (a directory descriptor) if the kernel can
    /// (`CLONE_INTO_CGROUP`); [`Child::placed`] says whether it did. The returned [`Child`]
    /// must be kept until the child has exec'd ([`Child::release`]); dropped before, it
    /// kills and reaps the child, whose stack it owns.
    pub fn spawn(&self, cgroup: Option<BorrowedFd<'_>>) -> io::Result<Child<'_>> {
        let stack = raw::Stack::new(STACK_SIZE)?;
        let arg = (self as *const ExecPlan).cast();
        let cgroup = cgroup.map(|cg| cg.as_raw_fd());
        // SAFETY: the child runs child_main on `stack`, which the returned Child owns, and only
        // reads `self`, which it borrows.
        unsafe {
            let mut pid = raw::spawn_vm(&stack, cgroup, child_main, arg);
            let placed = cgroup.is_some() && pid > 0;
            if pid < 0 && cgroup.is_some() {
                // The kernel refused the cgroup (older than 5.7, or a cgroup it cannot start
                // a process in): the broker moves the child there before the go-ahead.
                pid = raw::spawn_vm(&stack, None, child_main, arg);
            }
            if pid < 0 {
                return Err(io::Error::from_raw_os_error(-pid as i32));
            }
            Ok(Child {
                pid: pid as libc::pid_t,
                placed,
                stack: Some(stack),
                _plan: PhantomData,
            })
        }
    }

    /// The child's set-up, then the exec of the target. Never returns.
    ///
    /// # Safety
    /// Only in the child [`ExecPlan::spawn`] starts.
    unsafe fn exec_in_child(&self) -> ! {
        // Ignored signals survive exec, and a handler would be the broker's.
        set_dispositions(&[]);
        check(
            syscall(libc::SYS_setsid, &[]),
            self.error_pipe,
            ShimStage::Session,
        );
        let r = syscall(
            libc::SYS_prctl,
            &[libc::PR_SET_PDEATHSIG as usize, libc::SIGKILL as usize],
        );
        check(r, self.error_pipe, ShimStage::ParentDeath);
        if syscall(libc::SYS_getppid, &[]) != self.parent as isize {
            // The broker died before PDEATHSIG was armed: nobody is left to serve us.
            exit(125);
        }
        let r = syscall(libc::SYS_prctl, &[libc::PR_SET_NO_NEW_PRIVS as usize, 1]);
        check(r, self.error_pipe, ShimStage::NoNewPrivs);
        check(
            drop_capabilities(),
            self.error_pipe,
            ShimStage::Capabilities,
        );
        let r = syscall(
            libc::SYS_dup3,
            &[self.channel as usize, protocol::CHANNEL_FD as usize, 0],
        );
        check(r, self.error_pipe, ShimStage::Descriptors);
        let r = syscall(
            libc::SYS_dup3,
            &[
                self.error_pipe as usize,
                ERROR_PIPE_FD as usize,
                libc::O_CLOEXEC as usize,
            ],
        );
        check(r, self.error_pipe, ShimStage::Descriptors);
        let r = syscall(
            libc::SYS_close_range,
            &[(ERROR_PIPE_FD + 1) as usize, u32::MAX as usize, 0],
        );
        check(r, ERROR_PIPE_FD, ShimStage::Descriptors);
        let prog = libc::sock_fprog {
            len: self.filter.len() as libc::c_ushort,
            filter: self.filter.as_ptr() as *mut libc::sock_filter,
        };
        let listener = syscall(
            libc::SYS_seccomp,
            &[
                libc::SECCOMP_SET_MODE_FILTER as usize,
                libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as usize,
                &prog as *const libc::sock_fprog as usize,
            ],
        );
        check(listener, ERROR_PIPE_FD, ShimStage::Seccomp);
        let sent = send_listener(listener as RawFd);
        check(sent, ERROR_PIPE_FD, ShimStage::SendListener);
        syscall(libc::SYS_close, &[listener as usize]);
        let (go, ruleset) = recv_go_ahead();
        if !go {
            // The broker refused or died: do not run the target unsupervised.
            exit(125);
        }
        if let Some(ruleset) = ruleset {
            // After the filter, which allows this call: the target has no ruleset of its own
            // to pass it (landlock_create_ruleset is refused), and this one is close-on-exec.
            let r = syscall(libc::SYS_landlock_restrict_self, &[ruleset as usize, 0]);
            check(r, ERROR_PIPE_FD, ShimStage::Landlock);
        }
        let r = syscall(
            libc::SYS_execve,
            &[
                self.program.as_ptr() as usize,
                self.argv_ptrs.as_ptr() as usize,
                self.envp_ptrs.as_ptr() as usize,
            ],
        );
        report(ERROR_PIPE_FD, ShimStage::Exec, -r as i32);
    }
}

/// The child [`ExecPlan::spawn`] started. Until [`Child::release`] (after its exec), it may
/// still run on the stack this owns: dropping it first kills and reaps the child.
#[derive(Debug)]
pub struct Child<'plan> {
    pid: libc::pid_t,
    placed: bool,
    stack: Option<raw::Stack>,
    /// The child reads the plan until it execs.
    _plan: PhantomData<&'plan ExecPlan>,
}

impl Child<'_> {
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// Did it start in the cgroup it was given?
    pub fn placed(&self) -> bool {
        self.placed
    }

    /// The child has exec'd (or was reaped): its stack and the plan are free again.
    pub fn release(mut self) {
        drop(self.stack.take());
    }
}

impl Drop for Child<'_> {
    fn drop(&mut self) {
        if self.stack.is_some() {
            // SAFETY: kill and reap our own child, so that nothing runs on its stack.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                while libc::waitpid(self.pid, ptr::null_mut(), 0) < 0
                    && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
                {
                }
            }
        }
    }
}

/// Plenty for the shim's few frames; only the pages it touches are ever allocated.
const STACK_SIZE: usize = 256 * 1024;

/// Where the child starts, on its own stack.
unsafe extern "C" fn child_main(plan: *const libc::c_void) -> ! {
    (*(plan as *const ExecPlan)).exec_in_child()
}

/// Wait for the go-ahead on the channel: whether it came, intact, and the Landlock ruleset
/// attached to it, if any (close-on-exec). Raw system calls, in `protocol::fdpass`'s layout.
unsafe fn recv_go_ahead() -> (bool, Option<RawFd>) {
    let mut go = [0u8; 8];
    let mut ruleset = None;
    let mut extra = false;
    let received = protocol::fdpass::receive_message(
        &mut go,
        |msg| on_channel(libc::SYS_recvmsg, msg, libc::MSG_CMSG_CLOEXEC),
        |fd| {
            if ruleset.is_none() {
                ruleset = Some(fd);
            } else {
                extra = true;
            }
        },
    );
    let intact = |flags: libc::c_int| flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) == 0;
    let go = matches!(received, Ok((n, flags)) if intact(flags) && go[..n] == *protocol::HANDSHAKE_GO)
        && !extra;
    (go, ruleset)
}

/// Send the seccomp listener to the broker over the channel, with `SCM_RIGHTS`, laid out as
/// `protocol::fdpass` lays out every message, but sent with a raw system call.
unsafe fn send_listener(listener: RawFd) -> isize {
    protocol::fdpass::with_message(
        protocol::HANDSHAKE_LISTENER,
        Some(BorrowedFd::borrow_raw(listener)),
        |msg| on_channel(libc::SYS_sendmsg, msg, libc::MSG_NOSIGNAL),
    )
}

/// `sendmsg` or `recvmsg` (`nr`) of `msg` on the channel, retried on EINTR.
unsafe fn on_channel(nr: libc::c_long, msg: *const libc::msghdr, flags: libc::c_int) -> isize {
    loop {
        let r = syscall(
            nr,
            &[protocol::CHANNEL_FD as usize, msg as usize, flags as usize],
        );
        if r != -(libc::EINTR as isize) {
            return r;
        }
    }
}

const PR_CAPBSET_DROP: libc::c_int = 24;
const PR_SET_SECUREBITS: libc::c_int = 28;
const PR_CAP_AMBIENT: libc::c_int = 47;
const PR_CAP_AMBIENT_CLEAR_ALL: libc::c_ulong = 4;
/// SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP | its lock.
const SECURE_NOROOT: libc::c_ulong = 0x0f;
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Drop every capability for good. Bounding-set and securebits changes need CAP_SETPCAP, which
/// an unprivileged broker's child lacks (and then has nothing to drop): their errors are
/// ignored. Clearing the effective, permitted and inheritable sets always succeeds.
unsafe fn drop_capabilities() -> isize {
    syscall(
        libc::SYS_prctl,
        &[PR_SET_SECUREBITS as usize, SECURE_NOROOT as usize],
    );
    // Capabilities are numbered from 0 up to the kernel's last: EINVAL marks the end.
    for cap in 0..64 {
        let r = syscall(libc::SYS_prctl, &[PR_CAPBSET_DROP as usize, cap]);
        if r == -(libc::EINVAL as isize) {
            break;
        }
    }
    syscall(
        libc::SYS_prctl,
        &[PR_CAP_AMBIENT as usize, PR_CAP_AMBIENT_CLEAR_ALL as usize],
    );
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let header = Header {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [
        Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        },
        Data {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        },
    ];
    syscall(
        libc::SYS_capset,
        &[&header as *const Header as usize, data.as_ptr() as usize],
    )
}

/// The kernel's `struct sigaction` (not the C library's).
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Put every catchable signal's disposition to default, except those in `ignored`, which are
/// ignored; then unblock them all. Raw system calls only.
///
/// # Safety
/// Changes the calling process's signal handling.
pub unsafe fn set_dispositions(ignored: &[libc::c_int]) {
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        let act = KernelSigaction {
            handler: if ignored.contains(&sig) {
                libc::SIG_IGN
            } else {
                libc::SIG_DFL
            },
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        syscall(
            libc::SYS_rt_sigaction,
            &[sig as usize, &act as *const KernelSigaction as usize, 0, 8],
        );
    }
    let empty: u64 = 0;
    syscall(
        libc::SYS_rt_sigprocmask,
        &[
            libc::SIG_SETMASK as usize,
            &empty as *const u64 as usize,
            0,
            8,
        ],
    );
}

/// End the child now (`exit_group`: it is its own thread group).
unsafe fn exit(code: i32) -> ! {
    loop {
        syscall(libc::SYS_exit_group, &[code as usize]);
    }
}

/// A failed step: report it on `pipe` (when `r` is a negative errno) and exit.
unsafe fn check(r: isize, pipe: RawFd, stage: ShimStage) {
    if r < 0 {
        report(pipe, stage, -r as i32);
    }
}

unsafe fn report(pipe: RawFd, stage: ShimStage, errno: i32) -> ! {
    let mut msg = [0u8; ShimFailure::SIZE];
    msg[..4].copy_from_slice(&(stage as u32).to_ne_bytes());
    msg[4..].copy_from_slice(&errno.to_ne_bytes());
    syscall(
        libc::SYS_write,
        &[pipe as usize, msg.as_ptr() as usize, msg.len()],
    );
    exit(if stage == ShimStage::Exec && errno == libc::ENOENT {
        127
    } else if stage == ShimStage::Exec {
        126
    } else {
        125
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsFd, FromRawFd, OwnedFd};

    fn lifted(fd: OwnedFd) -> OwnedFd {
        // SAFETY: F_DUPFD_CLOEXEC returns a fresh descriptor, owned at once.
        unsafe { OwnedFd::from_raw_fd(libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10)) }
    }

    /// A plan for `/bin/true` under an allow-all filter; our ends of the channel and the
    /// error pipe, and the child's ends (to close once it has started, as the broker does).
    fn plan() -> (ExecPlan, OwnedFd, OwnedFd, [OwnedFd; 2]) {
        let (ours, theirs) = protocol::fdpass::seqpacket_pair().unwrap();
        let mut p = [0; 2];
        // SAFETY: a fresh pipe, owned at once.
        let (err_read, err_write) = unsafe {
            assert_eq!(libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC), 0);
            (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1]))
        };
        let allow = libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        };
        let (theirs, err_write) = (lifted(theirs), lifted(err_write));
        let plan = ExecPlan::new(
            CString::new("/bin/true").unwrap(),
            vec![CString::new("true").unwrap()],
            Vec::new(),
            vec![allow],
            theirs.as_raw_fd(),
            err_write.as_raw_fd(),
        );
        (plan, ours, err_read, [theirs, err_write])
    }

    fn receive_listener(ours: &OwnedFd) {
        let mut buf = [0u8; 64];
        let (n, fd) = protocol::fdpass::recv_with_fd(ours.as_fd(), &mut buf).unwrap();
        assert_eq!(&buf[..n], protocol::HANDSHAKE_LISTENER);
        assert!(fd.is_some(), "the listener comes with the handshake");
    }

    #[test]
    fn a_child_dropped_before_its_exec_is_killed_and_reaped() {
        let (plan, ours, _err, childs) = plan();
        let child = plan.spawn(None).unwrap();
        drop(childs);
        let pid = child.pid();
        receive_listener(&ours);
        // It waits for the go-ahead on its stack; dropping the Child must end it first.
        drop(child);
        // SAFETY: waitpid on a pid that must no longer be our child.
        let r = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        assert_eq!(r, -1, "the child was not reaped");
        assert_eq!(
            io::Error::last_os_error().raw_os_error(),
            Some(libc::ECHILD)
        );
    }

    #[test]
    fn a_child_given_the_go_ahead_execs_the_program() {
        let (plan, ours, err_read, childs) = plan();
        let child = plan.spawn(None).unwrap();
        drop(childs);
        let pid = child.pid();
        receive_listener(&ours);
        // SAFETY: writes to our own socket, reads from our own pipe, waits for our child.
        unsafe {
            let go = protocol::HANDSHAKE_GO;
            assert_eq!(
                libc::send(ours.as_raw_fd(), go.as_ptr().cast(), go.len(), 0),
                go.len() as isize
            );
            // The error pipe closes at the exec and carries nothing.
            let mut b = [0u8; ShimFailure::SIZE];
            assert_eq!(
                libc::read(err_read.as_raw_fd(), b.as_mut_ptr().cast(), b.len()),
                0
            );
            child.release();
            let mut status = 0;
            assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
            assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        }
    }
}
