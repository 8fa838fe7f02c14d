//! System calls without the C library: no `errno`, no thread-local storage, no locks.
//!
//! For code that runs in a process sharing the broker's memory (`CLONE_VM`) on a stack of its
//! own, where the C library's wrappers would write `errno` into the broker's main thread's
//! thread-local storage. Each call returns the kernel's result: a negative errno on failure.

use std::arch::asm;

/// `syscall(nr, a0, a1, a2, a3)`.
///
/// # Safety
/// The arguments must be valid for the call `nr` makes.
#[cfg(target_arch = "x86_64")]
pub unsafe fn syscall4(nr: libc::c_long, a0: usize, a1: usize, a2: usize, a3: usize) -> isize {
    let ret: isize;
    asm!(
        "syscall",
        inlateout("rax") nr as isize => ret,
        in("rdi") a0,
        in("rsi") a1,
        in("rdx") a2,
        in("r10") a3,
        lateout("rcx") _,
        lateout("r11") _,
        options(nostack),
    );
    ret
}

#[cfg(not(target_arch = "x86_64"))]
compile_error!("the broker supports x86_64 only (README: Platform)");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_results_and_negative_errnos() {
        // SAFETY: getpid and a close of a descriptor that cannot be open.
        unsafe {
            assert_eq!(
                syscall4(libc::SYS_getpid, 0, 0, 0, 0),
                libc::getpid() as isize
            );
            assert_eq!(
                syscall4(libc::SYS_close, -1i32 as usize, 0, 0, 0),
                -(libc::EBADF as isize)
            );
        }
    }
}
