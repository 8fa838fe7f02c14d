//! The child side of the sandbox: what runs between `fork` and `exec`.
//!
//! The broker builds an [`ExecPlan`] *before* forking: program path, argv and envp as C arrays,
//! the seccomp program as raw BPF, and the descriptor numbers involved. After `fork`,
//! [`ExecPlan::exec_in_child`] only makes raw system calls on that prepared data. It never
//! allocates and never takes a lock, so it is sound even when the parent had other threads.
//!
//! The steps, in order (each failure is reported through the error pipe as a [`ShimFailure`]):
//! 1. reset signal dispositions and the signal mask inherited from the broker;
//! 2. `setsid`, so the target has no controlling terminal to push keystrokes into (TIOCSTI);
//! 3. `PR_SET_PDEATHSIG(SIGKILL)`, then check the broker did not already die;
//! 4. `PR_SET_NO_NEW_PRIVS`; drop every capability (bounding set, ambient set, then effective,
//!    permitted and inheritable, with `SECBIT_NOROOT` so a uid-0 exec regains none): the broker
//!    opens files, so the target needs no privilege of its own; then restrict itself with the
//!    broker's Landlock ruleset, if any;
//! 5. move the channel to [`protocol::CHANNEL_FD`] and the error pipe to `CHANNEL_FD + 1`,
//!    close every other descriptor above 2, and install the filter with
//!    `SECCOMP_FILTER_FLAG_NEW_LISTENER`;
//! 6. send the listener to the broker with `SCM_RIGHTS`, close it, and wait for the go-ahead;
//! 7. `execve` the target. The error pipe is close-on-exec, so a successful exec reads as EOF.

use std::ffi::{CStr, CString};
use std::os::fd::{BorrowedFd, RawFd};
use std::ptr;

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
    landlock: Option<RawFd>,
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
            landlock: None,
            // SAFETY: getpid has no preconditions.
            parent: unsafe { libc::getpid() },
        }
    }

    /// Restrict the child with this Landlock ruleset (applied after no_new_privs).
    pub fn with_landlock(mut self, ruleset: RawFd) -> Self {
        self.landlock = Some(ruleset);
        self
    }

    /// The program that will be executed.
    pub fn program(&self) -> &CStr {
        &self.program
    }

    /// Run the child's set-up and exec the target. Never returns.
    ///
    /// # Safety
    /// Call only in the child right after `fork`. Only async-signal-safe system calls are made.
    pub unsafe fn exec_in_child(&self) -> ! {
        reset_signals();
        if libc::setsid() < 0 {
            fail(self.error_pipe, ShimStage::Session);
        }
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) < 0
        {
            fail(self.error_pipe, ShimStage::ParentDeath);
        }
        if libc::getppid() != self.parent {
            // The broker died before PDEATHSIG was armed: nobody is left to serve us.
            libc::_exit(125);
        }
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 {
            fail(self.error_pipe, ShimStage::NoNewPrivs);
        }
        if drop_capabilities() < 0 {
            fail(self.error_pipe, ShimStage::Capabilities);
        }
        if let Some(ruleset) = self.landlock {
            if libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0) < 0 {
                fail(self.error_pipe, ShimStage::Landlock);
            }
        }
        if libc::dup2(self.channel, protocol::CHANNEL_FD) < 0
            || libc::dup2(self.error_pipe, ERROR_PIPE_FD) < 0
            || libc::fcntl(ERROR_PIPE_FD, libc::F_SETFD, libc::FD_CLOEXEC) < 0
            || libc::close_range((ERROR_PIPE_FD + 1) as u32, u32::MAX, 0) < 0
        {
            fail(self.error_pipe, ShimStage::Descriptors);
        }
        let prog = libc::sock_fprog {
            len: self.filter.len() as libc::c_ushort,
            filter: self.filter.as_ptr() as *mut libc::sock_filter,
        };
        let listener = libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &prog as *const libc::sock_fprog,
        );
        if listener < 0 {
            fail(ERROR_PIPE_FD, ShimStage::Seccomp);
        }
        let listener = listener as RawFd;
        let sent = protocol::fdpass::send_with_fd(
            BorrowedFd::borrow_raw(protocol::CHANNEL_FD),
            protocol::HANDSHAKE_LISTENER,
            BorrowedFd::borrow_raw(listener),
        );
        if let Err(e) = sent {
            report(
                ERROR_PIPE_FD,
                ShimStage::SendListener,
                e.raw_os_error().unwrap_or(0),
            );
        }
        libc::close(listener);
        let mut go = [0u8; 8];
        let n = loop {
            let n = libc::read(protocol::CHANNEL_FD, go.as_mut_ptr().cast(), go.len());
            if n >= 0 || errno() != libc::EINTR {
                break n;
            }
        };
        if n != protocol::HANDSHAKE_GO.len() as isize || go[..n as usize] != *protocol::HANDSHAKE_GO
        {
            // The broker refused or died: do not run the target unsupervised.
            libc::_exit(125);
        }
        libc::execve(
            self.program.as_ptr(),
            self.argv_ptrs.as_ptr(),
            self.envp_ptrs.as_ptr(),
        );
        fail(ERROR_PIPE_FD, ShimStage::Exec);
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
unsafe fn drop_capabilities() -> libc::c_long {
    libc::prctl(PR_SET_SECUREBITS, SECURE_NOROOT, 0, 0, 0);
    for cap in 0..64 {
        libc::prctl(PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0);
    }
    libc::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
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
    libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr())
}

unsafe fn reset_signals() {
    // Dispositions: ignored signals survive exec, so put every catchable one back to default.
    for sig in 1..libc::SIGRTMAX() {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
    let mut set: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut set);
    libc::sigprocmask(libc::SIG_SETMASK, &set, ptr::null_mut());
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

unsafe fn report(pipe: RawFd, stage: ShimStage, errno: i32) -> ! {
    let mut msg = [0u8; ShimFailure::SIZE];
    msg[..4].copy_from_slice(&(stage as u32).to_ne_bytes());
    msg[4..].copy_from_slice(&errno.to_ne_bytes());
    libc::write(pipe, msg.as_ptr().cast(), msg.len());
    libc::_exit(if stage == ShimStage::Exec && errno == libc::ENOENT {
        127
    } else if stage == ShimStage::Exec {
        126
    } else {
        125
    });
}

unsafe fn fail(pipe: RawFd, stage: ShimStage) -> ! {
    report(pipe, stage, errno())
}
