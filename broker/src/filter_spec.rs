//! The child's seccomp filter, as rules: a default-deny allow-list, compiled with libseccomp
//! **at build time** (`build.rs` includes this file) into the BPF that [`crate::filter`] hands
//! to the child. Compiling it at run time cost about 2 ms of every start.
//!
//! - Foreign architectures (i386 `int 0x80`) and x32 numbers hit the bad-arch action: the
//!   process is killed.
//! - [`NOTIFIED`] calls go to the broker, which serves them under the policy.
//! - [`ALLOWED`] calls run natively; [`REFUSED`] and path calls the broker does not serve fail
//!   with an errno; anything unknown gets `ENOSYS`, so new kernel calls never slip through.
//! - The policy's deny errno is not known at build time: path refusals carry
//!   [`PLACEHOLDER_ERRNO`], which no other rule uses, and the broker patches it at start.

use std::io::{Read, Seek};
use std::os::fd::{FromRawFd, OwnedFd};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};

/// Calls the broker serves itself (opens, metadata, directory changes in write trees).
pub const NOTIFIED: &[&str] = &[
    "open",
    "openat",
    "openat2",
    "creat", // opened by the broker, injected with ADDFD
    "stat",
    "lstat",
    "newfstatat",
    "statx", // metadata under the policy
    "access",
    "faccessat",
    "faccessat2",
    "readlink",
    "readlinkat",
    "chdir",
    "mkdir",
    "mkdirat",
    "rmdir",
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    // Mode, owner and time changes through a descriptor act on the inode, whatever access the
    // descriptor was opened with: the broker checks the descriptor's file against write rules.
    "fchmod",
    "fchown",
    // Created by the broker, sealed against exec: Landlock does not see memfds.
    "memfd_create",
];

/// Calls that run natively: they act only on memory, descriptors the target already holds,
/// or the target itself.
pub const ALLOWED: &[&str] = &[
    // descriptors already held
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "preadv",
    "pwritev",
    "preadv2",
    "pwritev2",
    "lseek",
    "close",
    "close_range",
    "dup",
    "dup2",
    "dup3",
    "fcntl",
    "flock",
    "fsync",
    "fdatasync",
    "sync_file_range",
    "ftruncate",
    "fallocate",
    "fadvise64",
    "sendfile",
    "splice",
    "tee",
    "vmsplice",
    "copy_file_range",
    "fstat",
    "fstatfs",
    "getdents",
    "getdents64",
    "fchdir",
    "fgetxattr",
    "flistxattr",
    "readahead",
    // memory
    "mmap",
    "munmap",
    "mprotect",
    "mremap",
    "madvise",
    "brk",
    "msync",
    "mincore",
    "mlock",
    "munlock",
    "mlock2",
    "mlockall",
    "munlockall",
    "membarrier",
    "get_mempolicy",
    "set_mempolicy",
    "mbind",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    // pipes, events, polling
    "pipe",
    "pipe2",
    "eventfd",
    "eventfd2",
    "signalfd",
    "signalfd4",
    "timerfd_create",
    "timerfd_settime",
    "timerfd_gettime",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    // sockets the target already holds (socket() itself is refused)
    "sendmsg",
    "recvmsg",
    "sendto",
    "recvfrom",
    "sendmmsg",
    "recvmmsg",
    "shutdown",
    "getsockopt",
    "setsockopt",
    "getsockname",
    "getpeername",
    "accept",
    "accept4",
    // processes and threads (clone is filtered on its flags below)
    "fork",
    "vfork",
    "exit",
    "exit_group",
    "wait4",
    "waitid",
    "kill",
    "tgkill",
    "tkill",
    "pidfd_open",
    "pidfd_send_signal",
    "set_tid_address",
    "set_robust_list",
    "get_robust_list",
    "rseq",
    "arch_prctl",
    // The shim restricts itself with the broker's Landlock ruleset after installing this
    // filter. A target can only restrict itself further, and has no ruleset of its own to do
    // it with: landlock_create_ruleset gets the default ENOSYS.
    "landlock_restrict_self",
    "futex",
    "futex_waitv",
    "restart_syscall",
    // signals
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "rt_sigpending",
    "rt_sigtimedwait",
    "rt_sigsuspend",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "sigaltstack",
    "pause",
    // scheduling and time
    "sched_yield",
    "sched_getaffinity",
    "sched_setaffinity",
    "sched_getparam",
    "sched_getscheduler",
    "sched_setparam",
    "sched_setscheduler",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_rr_get_interval",
    "sched_getattr",
    "sched_setattr",
    "getpriority",
    "setpriority",
    "nanosleep",
    "clock_nanosleep",
    "clock_gettime",
    "clock_getres",
    "gettimeofday",
    "time",
    "times",
    "alarm",
    "getitimer",
    "setitimer",
    "timer_create",
    "timer_settime",
    "timer_gettime",
    "timer_getoverrun",
    "timer_delete",
    // identity and limits
    "getpid",
    "getppid",
    "gettid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getresuid",
    "getresgid",
    "getgroups",
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setgroups",
    "setfsuid",
    "setfsgid",
    "capget",
    "capset",
    "getpgrp",
    "getpgid",
    "setpgid",
    "getsid",
    "setsid",
    "umask",
    "uname",
    "sysinfo",
    "getrusage",
    "getrlimit",
    "setrlimit",
    "getcwd",
    "getrandom",
    "personality",
    "getcpu",
];

/// Calls refused with `EPERM`: ways around the broker or into the kernel's riskier corners.
pub const REFUSED: &[&str] = &[
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "kcmp",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "open_by_handle_at",
    "name_to_handle_at",
    "add_key",
    "request_key",
    "keyctl",
    "mount",
    "umount2",
    "mount_setattr",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "unshare",
    "setns",
    "seccomp",
    "chroot",
    "pivot_root",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "iopl",
    "ioperm",
    "modify_ldt",
    "syslog",
    "vhangup",
    "settimeofday",
    "clock_settime",
    "adjtimex",
    "clock_adjtime",
    "sethostname",
    "setdomainname",
    "fanotify_init",
    "lookup_dcookie",
    "uselib",
];

/// Path calls the broker does not serve: refused with the policy's deny errno.
pub const PATH_REFUSED: &[&str] = &[
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "chmod",
    "fchmodat",
    "fchmodat2",
    "chown",
    "lchown",
    "fchownat",
    "truncate",
    "utime",
    "utimes",
    "futimesat",
    "mknod",
    "mknodat",
    "setxattr",
    "lsetxattr",
    "removexattr",
    "lremovexattr",
    "statfs",
    "inotify_add_watch",
    "fanotify_mark",
    "socket",
    "bind",
    "connect",
    "listen",
    "fsetxattr",
    "fremovexattr",
];

/// Reading extended attributes by path answers "not supported", which programs handle quietly.
pub const XATTR_UNSUPPORTED: &[&str] = &["getxattr", "lgetxattr", "listxattr", "llistxattr"];

const NAMESPACE_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
];

/// Why the filter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("seccomp filter")]
    Seccomp(#[from] libseccomp::error::SeccompError),
    #[error("seccomp filter export")]
    Export(#[from] std::io::Error),
}

fn rule(ctx: &mut ScmpFilterContext, action: ScmpAction, name: &str) -> Result<(), FilterError> {
    // A name this libseccomp does not know cannot be added; the default (ENOSYS) covers it.
    if let Ok(sys) = ScmpSyscall::from_name(name) {
        ctx.add_rule(action, sys)?;
    }
    Ok(())
}

fn cond(
    ctx: &mut ScmpFilterContext,
    action: ScmpAction,
    name: &str,
    cmp: &[ScmpArgCompare],
) -> Result<(), FilterError> {
    ctx.add_rule_conditional(action, ScmpSyscall::from_name(name)?, cmp)?;
    Ok(())
}

/// Compare the low 32 bits of argument `arg`: the kernel truncates `int` arguments, so a
/// comparison on all 64 bits could be dodged by setting the high ones. Only for rules whose
/// syscall has no unconditional rule (see guard_prefix).
fn low32(arg: u32, value: u64) -> ScmpArgCompare {
    ScmpArgCompare::new(arg, ScmpCompareOp::MaskedEqual(0xffff_ffff), value)
}

/// Calls that run programs: allowed (Landlock decides what may run), or in learn mode sent to
/// the broker so that it can record them.
pub const EXEC: &[&str] = &["execve", "execveat"];

/// Stands for the policy's deny errno in the compiled program (the kernel's `MAX_ERRNO`, which
/// no rule here uses).
pub const PLACEHOLDER_ERRNO: i32 = 4094;

/// Build the filter; `deny_errno` answers path calls the broker does not serve; `notify_exec`
/// (learn mode) sends [`EXEC`] calls to the broker.
pub fn build(deny_errno: i32, notify_exec: bool) -> Result<ScmpFilterContext, FilterError> {
    let mut ctx = ScmpFilterContext::new(ScmpAction::Errno(libc::ENOSYS))?;
    ctx.set_act_badarch(ScmpAction::KillProcess)?;
    ctx.set_ctl_nnp(false)?;
    ctx.set_ctl_optimize(2)?;
    debug_assert!(ctx.is_arch_present(ScmpArch::native())?);
    for name in NOTIFIED {
        rule(&mut ctx, ScmpAction::Notify, name)?;
    }
    for name in ALLOWED {
        rule(&mut ctx, ScmpAction::Allow, name)?;
    }
    let exec_action = if notify_exec {
        ScmpAction::Notify
    } else {
        ScmpAction::Allow
    };
    for name in EXEC {
        rule(&mut ctx, exec_action, name)?;
    }
    for name in REFUSED {
        rule(&mut ctx, ScmpAction::Errno(libc::EPERM), name)?;
    }
    for name in PATH_REFUSED {
        rule(&mut ctx, ScmpAction::Errno(deny_errno), name)?;
    }
    for name in XATTR_UNSUPPORTED {
        rule(&mut ctx, ScmpAction::Errno(libc::EOPNOTSUPP), name)?;
    }
    // clone3 has no rule on purpose: it passes its flags in memory the filter cannot read, and
    // the default ENOSYS makes libc fall back to clone, whose flags it can.
    // clone: no new namespaces. The two rule sets are disjoint: allowed iff no flag is set.
    let all_ns = NAMESPACE_FLAGS.iter().fold(0, |a, f| a | f);
    cond(
        &mut ctx,
        ScmpAction::Allow,
        "clone",
        &[ScmpArgCompare::new(
            0,
            ScmpCompareOp::MaskedEqual(all_ns),
            0,
        )],
    )?;
    for &flag in NAMESPACE_FLAGS {
        cond(
            &mut ctx,
            ScmpAction::Errno(libc::EPERM),
            "clone",
            &[ScmpArgCompare::new(
                0,
                ScmpCompareOp::MaskedEqual(flag),
                flag,
            )],
        )?;
    }
    // ioctl and prctl are allowed here; the exceptions (TIOCSTI, TIOCLINUX, PR_SET_SECCOMP) are
    // in guard_prefix, because libseccomp lets an unconditional allow win over them.
    rule(&mut ctx, ScmpAction::Allow, "ioctl")?;
    rule(&mut ctx, ScmpAction::Allow, "prctl")?;
    // socketpair: AF_UNIX only.
    cond(
        &mut ctx,
        ScmpAction::Allow,
        "socketpair",
        &[low32(0, libc::AF_UNIX as u64)],
    )?;
    // prlimit64: only on itself; never lower the broker's limits.
    cond(
        &mut ctx,
        ScmpAction::Allow,
        "prlimit64",
        &[ScmpArgCompare::new(0, ScmpCompareOp::Equal, 0)],
    )?;
    cond(
        &mut ctx,
        ScmpAction::Errno(libc::EPERM),
        "prlimit64",
        &[ScmpArgCompare::new(0, ScmpCompareOp::NotEqual, 0)],
    )?;
    // utimensat(fd, NULL, ...) is futimens: served like fchmod. With a path it is refused.
    cond(
        &mut ctx,
        ScmpAction::Notify,
        "utimensat",
        &[ScmpArgCompare::new(1, ScmpCompareOp::Equal, 0)],
    )?;
    cond(
        &mut ctx,
        ScmpAction::Errno(deny_errno),
        "utimensat",
        &[ScmpArgCompare::new(1, ScmpCompareOp::NotEqual, 0)],
    )?;
    Ok(ctx)
}

const fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

const fn jeq(k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    }
}

/// `seccomp_data` offsets: the low 32 bits of argument `i` (x86_64 is little-endian).
const fn arg_low(i: u32) -> u32 {
    16 + 8 * i
}

/// EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE (linux/audit.h).
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

const LOAD: u32 = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
const RET: u32 = libc::BPF_RET | libc::BPF_K;

/// Checks that must win over libseccomp's allow rules, run before its program. Jump offsets
/// count from the next instruction: 14 refuses with EPERM, 15 is libseccomp's first. Each compares
/// the low 32 bits only, as the kernel does for these `int` arguments, so setting the high bits
/// cannot dodge them. Falls through to libseccomp's program (which does the full arch checks).
fn guard_prefix() -> Vec<libc::sock_filter> {
    let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    let prefix = vec![
        /* 0 */ stmt(LOAD, 4), // arch
        /* 1 */ jeq(AUDIT_ARCH_X86_64, 1, 0),
        /* 2 */ stmt(RET, libc::SECCOMP_RET_KILL_PROCESS),
        /* 3 */ stmt(LOAD, 0), // nr
        /* 4 */ jeq(libc::SYS_ioctl as u32, 0, 6),
        /* 5 */ stmt(LOAD, arg_low(1)),
        /* 6 */ jeq(libc::TIOCSTI as u32, 7, 0),
        /* 7 */ jeq(libc::TIOCLINUX as u32, 6, 0),
        // Inode flags (chattr) act on the file whatever access the descriptor has.
        /* 8 */
        jeq(FS_IOC_SETFLAGS, 5, 0),
        /* 9 */ jeq(FS_IOC32_SETFLAGS, 4, 0),
        /* 10 */ jeq(FS_IOC_FSSETXATTR, 3, 4),
        /* 11 */ jeq(libc::SYS_prctl as u32, 0, 3),
        /* 12 */ stmt(LOAD, arg_low(0)),
        /* 13 */ jeq(libc::PR_SET_SECCOMP as u32, 0, 1),
        /* 14 */ stmt(RET, eperm),
        // 15: libseccomp's program follows
    ];
    assert_eq!(prefix.len(), GUARD_PREFIX_LEN);
    prefix
}

/// How many instructions [`guard_prefix`] has: libseccomp's program starts after them.
pub const GUARD_PREFIX_LEN: usize = 15;

const FS_IOC_SETFLAGS: u32 = 0x4008_6602;
const FS_IOC32_SETFLAGS: u32 = 0x4004_6602;
const FS_IOC_FSSETXATTR: u32 = 0x401c_5820;

/// Export `ctx` as raw BPF instructions behind [`guard_prefix`], ready for
/// `seccomp(SECCOMP_SET_MODE_FILTER)`.
pub fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>, FilterError> {
    // SAFETY: memfd_create with a static name; the fd is owned at once.
    let raw = unsafe { libc::memfd_create(c"broker-bpf".as_ptr(), libc::MFD_CLOEXEC) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: fresh descriptor.
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(raw) });
    ctx.export_bpf(&file)?;
    file.rewind()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let mut prog = guard_prefix();
    prog.extend(bytes.chunks_exact(8).map(|c| libc::sock_filter {
        code: u16::from_ne_bytes([c[0], c[1]]),
        jt: c[2],
        jf: c[3],
        k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
    }));
    Ok(prog)
}
