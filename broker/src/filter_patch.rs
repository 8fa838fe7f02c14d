//! Writing the policy's deny errno into the compiled filter. Shared by `build.rs`, which checks
//! the result against libseccomp's own build on every build, and `filter.rs`, which does it at
//! run time.

/// One instruction as `build.rs` writes it: code, jump if true, jump if false, constant.
pub type Insn = (u16, u8, u8, u32);

/// `prog` with every `RET ERRNO(placeholder)` answering `deny_errno` instead. Only return
/// instructions carry actions; a comparison constant is never touched.
pub fn patch(prog: &[Insn], placeholder: u32, deny_errno: i32) -> Vec<libc::sock_filter> {
    let ret_k = (libc::BPF_RET | libc::BPF_K) as u16;
    let from = libc::SECCOMP_RET_ERRNO | placeholder;
    let to = libc::SECCOMP_RET_ERRNO | (deny_errno as u32 & libc::SECCOMP_RET_DATA);
    prog.iter()
        .map(|&(code, jt, jf, k)| libc::sock_filter {
            code,
            jt,
            jf,
            k: if code == ret_k && k == from { to } else { k },
        })
        .collect()
}
