//! Minimal user-notification supervisors, built in so that every ratio's baseline is measured
//! in the same run: an echo (the kernel's own round trip, the floor) and an open broker that
//! does nothing but read the path, open it and inject the descriptor.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use broker::notify::Listener;

use crate::cpu;

/// What the minimal supervisor answers.
#[derive(Clone, Copy, PartialEq)]
pub enum Mini {
    /// A notified `getppid`, answered with 0: the bare user-notification round trip.
    Echo,
    /// A notified `openat` answered by injecting a descriptor opened once beforehand with
    /// ADDFD+SEND: what injecting costs, without reading the path or opening anything.
    Inject,
    /// A notified `openat` of the bench file: read the path, open it, inject the descriptor
    /// with ADDFD+SEND. No policy, no checks: the least any open broker must do.
    Open,
}

/// How the two sides are placed.
#[derive(Clone, Copy, PartialEq)]
pub enum Placement {
    /// Both on CPU 0.
    OneCpu,
    /// Wherever the kernel puts them (a supervisor that handles each notification on
    /// whatever CPU it wakes on).
    Anywhere,
    /// Anywhere, with the listener's synchronous wake-up (Linux 6.6).
    AnywhereSync,
}

/// ns per notified call (timed in the child) answered by a minimal supervisor.
pub fn run(n: u64, mini: Mini, path: &CString, placement: Placement) -> f64 {
    let (ours, theirs) = protocol::fdpass::seqpacket_pair().expect("socketpair");
    if placement == Placement::OneCpu {
        cpu::pin_to_cpu0();
    }
    // SAFETY: single-threaded here; the child makes raw syscalls only and exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: the freshly forked child.
        unsafe { child(theirs.as_raw_fd(), n, mini, path) }
    }
    drop(theirs);
    let mut buf = [0u8; 32];
    let (_, listener) = protocol::fdpass::recv_with_fd(ours.as_fd(), &mut buf).expect("listener");
    let listener = Listener::new(listener.expect("a listener fd")).expect("listener");
    if placement == Placement::AnywhereSync {
        listener
            .set_sync_wakeup()
            .expect("SECCOMP_IOCTL_NOTIF_SET_FLAGS");
    }
    let mut rbuf = listener.recv_buffer();
    let mut name = Vec::with_capacity(4096);
    let opened = std::fs::File::open(path.to_str().unwrap()).expect("open the bench file");
    for _ in 0..n {
        let note = listener.recv(&mut rbuf).expect("recv");
        match mini {
            Mini::Echo => listener.respond(note.id, 0, 0, 0).expect("respond"),
            Mini::Inject => {
                listener
                    .inject_and_send(note.id, opened.as_fd(), true)
                    .expect("addfd");
            }
            Mini::Open => {
                broker::memory::read_cstring(note.pid, note.args[1], &mut name).expect("path");
                assert!(listener.id_valid(note.id));
                name.push(0);
                // SAFETY: a NUL-terminated path; the descriptor is owned at once.
                let fd = unsafe {
                    OwnedFd::from_raw_fd(libc::open(name.as_ptr().cast(), libc::O_RDONLY))
                };
                listener
                    .inject_and_send(note.id, fd.as_fd(), true)
                    .expect("addfd");
            }
        }
    }
    let mut out = [0u8; 8];
    // SAFETY: read the child's result into out.
    let got = unsafe { libc::read(ours.as_raw_fd(), out.as_mut_ptr().cast(), 8) };
    assert_eq!(got, 8, "the child's result");
    // SAFETY: reap our child.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    if placement == Placement::OneCpu {
        cpu::unpin();
    }
    f64::from_ne_bytes(out)
}

const fn insn(code: u32, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// Install `prog` with no-new-privs; returns the listener if `listen`.
///
/// # Safety
/// Raw syscalls only; safe after fork.
pub unsafe fn install(prog: &[libc::sock_filter], listen: bool) -> i64 {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut _,
    };
    libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    let flags = if listen {
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
    } else {
        0
    };
    libc::syscall(
        libc::SYS_seccomp,
        libc::SECCOMP_SET_MODE_FILTER,
        flags,
        &fprog,
    )
}

/// A one-instruction filter that allows everything: what any seccomp filter costs an
/// allowed call.
pub const ALLOW_ALL: [libc::sock_filter; 1] = [insn(
    libc::BPF_RET | libc::BPF_K,
    0,
    0,
    libc::SECCOMP_RET_ALLOW,
)];

unsafe fn child(sock: i32, n: u64, mini: Mini, path: &CString) -> ! {
    let nr = match mini {
        Mini::Echo => libc::SYS_getppid,
        Mini::Inject | Mini::Open => libc::SYS_openat,
    };
    let prog = [
        insn(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0),
        insn(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, 0, 1, nr as u32),
        insn(
            libc::BPF_RET | libc::BPF_K,
            0,
            0,
            libc::SECCOMP_RET_USER_NOTIF,
        ),
        insn(libc::BPF_RET | libc::BPF_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ];
    let l = install(&prog, true);
    if l < 0 {
        libc::_exit(1);
    }
    let _ = protocol::fdpass::send_with_fd(
        BorrowedFd::borrow_raw(sock),
        b"l",
        BorrowedFd::borrow_raw(l as i32),
    );
    libc::close(l as i32);
    let t0 = cpu::monotonic_ns();
    for _ in 0..n {
        match mini {
            Mini::Echo => {
                libc::syscall(libc::SYS_getppid);
            }
            Mini::Inject | Mini::Open => {
                let fd = libc::syscall(
                    libc::SYS_openat,
                    libc::AT_FDCWD,
                    path.as_ptr(),
                    libc::O_RDONLY | libc::O_CLOEXEC,
                );
                if fd < 0 {
                    libc::_exit(2);
                }
                libc::close(fd as i32);
            }
        }
    }
    let per = ((cpu::monotonic_ns() - t0) as f64 / n as f64).to_ne_bytes();
    libc::write(sock, per.as_ptr().cast(), 8);
    libc::_exit(0)
}
