//! The child's seccomp filter as raw BPF, ready for `seccomp(SECCOMP_SET_MODE_FILTER)`.
//!
//! The rules live in `filter_spec.rs`; `build.rs` compiles them with libseccomp when the broker
//! is built, so starting a run costs a copy and a patch instead of a compilation. libseccomp's
//! `load()` also allocates, so the program is always installed by the child with one raw call.

/// One instruction as `build.rs` writes it: code, jump if true, jump if false, constant.
type Insn = (u16, u8, u8, u32);

// PROGRAM, PROGRAM_NOTIFY_EXEC, AUDIT_ARCH_X86_64 and PLACEHOLDER_ERRNO (an errno no rule
// uses, compiled in place of the policy's deny errno).
include!(concat!(env!("OUT_DIR"), "/filter_bpf.rs"));

const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// The filter for a run: path calls the broker does not serve fail with `deny_errno`;
/// `notify_exec` (learn mode) sends `execve`/`execveat` to the broker.
pub fn program(deny_errno: i32, notify_exec: bool) -> Vec<libc::sock_filter> {
    let compiled: &[Insn] = if notify_exec {
        &PROGRAM_NOTIFY_EXEC
    } else {
        &PROGRAM
    };
    let placeholder = libc::SECCOMP_RET_ERRNO | PLACEHOLDER_ERRNO;
    // Only return instructions carry actions; a comparison constant is never patched.
    let errno = libc::SECCOMP_RET_ERRNO | (deny_errno as u32 & libc::SECCOMP_RET_DATA);
    compiled
        .iter()
        .map(|&(code, jt, jf, k)| libc::sock_filter {
            code,
            jt,
            jf,
            k: if code == RET_K && k == placeholder {
                errno
            } else {
                k
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter_spec;

    fn same(a: &[libc::sock_filter], b: &[libc::sock_filter]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| (x.code, x.jt, x.jf, x.k) == (y.code, y.jt, y.jf, y.k))
    }

    /// The patched program is exactly what libseccomp builds for that errno now, for deny
    /// errnos that no other rule uses (with one that another rule uses, libseccomp may merge
    /// the two actions; the patched program still answers each call the same way).
    #[test]
    fn the_patched_program_equals_a_fresh_build() {
        for errno in [libc::EACCES, libc::ENOENT, libc::EROFS] {
            for notify_exec in [false, true] {
                let fresh = filter_spec::build(errno, notify_exec).unwrap();
                let fresh = filter_spec::export(&fresh).unwrap();
                assert!(
                    same(&program(errno, notify_exec), &fresh),
                    "errno {errno}, notify_exec {notify_exec}"
                );
            }
        }
    }

    #[test]
    fn no_placeholder_is_left() {
        let p = program(libc::EACCES, false);
        let placeholder = libc::SECCOMP_RET_ERRNO | PLACEHOLDER_ERRNO;
        assert!(p.iter().all(|i| i.k != placeholder));
        assert!(p
            .iter()
            .any(|i| i.code == RET_K && i.k == libc::SECCOMP_RET_ERRNO | libc::EACCES as u32));
    }
}
