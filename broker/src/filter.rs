//! The child's seccomp filter as raw BPF, ready for `seccomp(SECCOMP_SET_MODE_FILTER)`.
//!
//! The rules live in `filter_spec.rs`; `build.rs` compiles them with libseccomp when the broker
//! is built and recompiles libseccomp's program as a search over syscall-number ranges
//! (`filter_tree.rs`, checked against libseccomp's by emulation), so starting a run costs a
//! copy and a patch instead of a compilation, and the kernel installs 209 instructions
//! instead of 454. libseccomp's
//! `load()` also allocates, so the program is always installed by the child with one raw call.

use crate::filter_patch::{patch, Insn};

// PROGRAM, PROGRAM_NOTIFY_EXEC, AUDIT_ARCH_X86_64 and PLACEHOLDER_ERRNO (an errno no rule
// uses, compiled in place of the policy's deny errno).
include!(concat!(env!("OUT_DIR"), "/filter_bpf.rs"));

/// The filter for a run: path calls the broker does not serve fail with `deny_errno`;
/// `notify_exec` (learn mode) sends `execve`/`execveat` to the broker.
pub fn program(deny_errno: i32, notify_exec: bool) -> Vec<libc::sock_filter> {
    let compiled: &[Insn] = if notify_exec {
        &PROGRAM_NOTIFY_EXEC
    } else {
        &PROGRAM
    };
    patch(compiled, PLACEHOLDER_ERRNO, deny_errno)
}

#[cfg(test)]
mod tests {
    use super::*;

    // build.rs checks that the patched program decides as libseccomp's own build for real
    // errnos.

    #[test]
    fn the_deny_errno_replaces_every_placeholder() {
        let p = program(libc::EACCES, false);
        let placeholder = libc::SECCOMP_RET_ERRNO | PLACEHOLDER_ERRNO;
        assert!(p.iter().all(|i| i.k != placeholder));
        let ret_k = (libc::BPF_RET | libc::BPF_K) as u16;
        assert!(p
            .iter()
            .any(|i| i.code == ret_k && i.k == libc::SECCOMP_RET_ERRNO | libc::EACCES as u32));
        assert_eq!(p.len(), PROGRAM.len());
    }
}
