//! System calls without the C library: no `errno`, no thread-local storage, no locks.
//!
//! For code that runs in a process sharing the broker's memory (`CLONE_VM`) on a stack of its
//! own: the child before its exec, and the broker's death guard. The C library's wrappers
//! would write `errno` into the broker's main thread's thread-local storage. Each call returns
//! the kernel's result: a negative errno on failure.

use std::arch::asm;
use std::io;
use std::os::fd::RawFd;

#[cfg(not(target_arch = "x86_64"))]
compile_error!("the broker supports x86_64 only (README: Platform)");

/// `syscall(nr, a0, .., a5)`.
///
/// # Safety
/// The arguments must be valid for the call `nr` makes.
pub unsafe fn syscall6(nr: libc::c_long, a: [usize; 6]) -> isize {
    let ret: isize;
    asm!(
        "syscall",
        inlateout("rax") nr as isize => ret,
        in("rdi") a[0],
        in("rsi") a[1],
        in("rdx") a[2],
        in("r10") a[3],
        in("r8") a[4],
        in("r9") a[5],
        lateout("rcx") _,
        lateout("r11") _,
        options(nostack),
    );
    ret
}

/// A system call with fewer arguments (the rest are zero, as calls such as `prctl` require).
///
/// # Safety
/// As for [`syscall6`].
pub unsafe fn syscall(nr: libc::c_long, args: &[usize]) -> isize {
    let mut a = [0usize; 6];
    a[..args.len()].copy_from_slice(args);
    syscall6(nr, a)
}

/// A stack for a `CLONE_VM` child: an anonymous mapping with an inaccessible page below it, so
/// that an overflow faults instead of writing into the memory the child shares. Unmapped on
/// drop, which its owner may do only once nothing runs on it.
#[derive(Debug)]
pub struct Stack {
    base: *mut libc::c_void,
    len: usize,
}

const GUARD_PAGE: usize = 4096;

impl Stack {
    /// A stack of `len` bytes; only the pages the child touches are ever allocated.
    pub fn new(len: usize) -> io::Result<Stack> {
        // SAFETY: a fresh private mapping, owned by the Stack; its lowest page is made
        // inaccessible.
        unsafe {
            let map = libc::mmap(
                std::ptr::null_mut(),
                GUARD_PAGE + len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            );
            if map == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            if libc::mprotect(map, GUARD_PAGE, libc::PROT_NONE) != 0 {
                let e = io::Error::last_os_error();
                libc::munmap(map, GUARD_PAGE + len);
                return Err(e);
            }
            Ok(Stack {
                base: map.cast::<u8>().add(GUARD_PAGE).cast(),
                len,
            })
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: our own mapping, guard page included; nothing runs on it any more.
        unsafe {
            libc::munmap(
                self.base.cast::<u8>().sub(GUARD_PAGE).cast(),
                GUARD_PAGE + self.len,
            )
        };
    }
}

/// Start a `CLONE_VM` child (exit signal `SIGCHLD`) that runs `entry(arg)` on `stack`, in the
/// cgroup open at `cgroup` if given (`CLONE_INTO_CGROUP`, Linux 5.7). Every signal is blocked
/// across the clone: until the child has reset its handlers, which it must do first, a signal
/// would run the caller's handlers on its stack. Returns the child's pid, or a negative errno.
///
/// # Safety
/// `stack` must stay mapped until the child has exec'd or exited, and `entry` may only make
/// raw system calls on memory that stays valid as long: the child shares the caller's memory
/// and thread-local storage.
pub unsafe fn spawn_vm(
    stack: &Stack,
    cgroup: Option<RawFd>,
    entry: unsafe extern "C" fn(*const libc::c_void) -> !,
    arg: *const libc::c_void,
) -> isize {
    let args = CloneArgs {
        flags: libc::CLONE_VM as u64 | cgroup.map_or(0, |_| CLONE_INTO_CGROUP),
        exit_signal: libc::SIGCHLD as u64,
        stack: stack.base as u64,
        stack_size: stack.len as u64,
        cgroup: cgroup.map_or(0, |fd| fd as u64),
        ..CloneArgs::default()
    };
    let mut all: libc::sigset_t = std::mem::zeroed();
    let mut old: libc::sigset_t = std::mem::zeroed();
    libc::sigfillset(&mut all);
    libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    let pid = clone3(&args, entry, arg);
    libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    pid
}

/// The kernel's `struct clone_args` (Linux 5.7, with `cgroup`).
#[repr(C)]
#[derive(Debug, Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `clone3(args)`; the child runs `entry(arg)` on `args.stack` and never returns. Returns the
/// child's pid in the parent, or a negative errno.
unsafe fn clone3(
    args: &CloneArgs,
    entry: unsafe extern "C" fn(*const libc::c_void) -> !,
    arg: *const libc::c_void,
) -> isize {
    let ret: isize;
    asm!(
        "syscall",
        "test rax, rax",
        "jnz 2f",
        // The child, on its new stack (16-byte aligned; the call pushes the return address,
        // as the ABI expects at a function's entry).
        "xor ebp, ebp",
        "mov rdi, r13",
        "call r12",
        "ud2",
        "2:",
        inlateout("rax") libc::SYS_clone3 as isize => ret,
        in("rdi") args as *const CloneArgs,
        in("rsi") std::mem::size_of::<CloneArgs>(),
        in("r12") entry,
        in("r13") arg,
        lateout("rcx") _,
        lateout("r11") _,
        options(nostack),
    );
    ret
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_results_and_negative_errnos() {
        // SAFETY: getpid, and a close of a descriptor that cannot be open.
        unsafe {
            assert_eq!(syscall(libc::SYS_getpid, &[]), libc::getpid() as isize);
            assert_eq!(
                syscall(libc::SYS_close, &[-1i32 as usize]),
                -(libc::EBADF as isize)
            );
        }
    }

    unsafe extern "C" fn child(arg: *const libc::c_void) -> ! {
        // Only raw calls: write the byte the parent passed to the pipe it passed, and exit.
        let (fd, byte) = *(arg as *const (i32, u8));
        syscall(
            libc::SYS_write,
            &[fd as usize, &byte as *const u8 as usize, 1],
        );
        loop {
            syscall(libc::SYS_exit, &[7]);
        }
    }

    #[test]
    fn spawn_vm_runs_the_child_on_its_stack() {
        let stack = Stack::new(64 * 1024).unwrap();
        let mut pipe = [0; 2];
        // SAFETY: a pipe, a CLONE_VM child on `stack` (alive until it is reaped), then wait.
        unsafe {
            assert_eq!(libc::pipe(pipe.as_mut_ptr()), 0);
            let arg = (pipe[1], 42u8);
            let pid = spawn_vm(
                &stack,
                None,
                child,
                &arg as *const (i32, u8) as *const libc::c_void,
            );
            assert!(pid > 0, "clone3: {pid}");
            let mut status = 0;
            assert_eq!(libc::waitpid(pid as i32, &mut status, 0), pid as i32);
            assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 7);
            let mut b = [0u8; 1];
            assert_eq!(libc::read(pipe[0], b.as_mut_ptr().cast(), 1), 1);
            assert_eq!(b[0], 42);
        }
    }
}
