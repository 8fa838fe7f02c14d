//! Landlock scoping: the target may not signal, or connect to abstract UNIX sockets of,
//! processes outside its own sandbox — the broker above all.
//!
//! The ruleset is created here, before fork; the child-shim applies it with one
//! `landlock_restrict_self` call. It handles no filesystem rights (the broker opens every file),
//! so descriptors the broker injects keep working.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

const CREATE_RULESET_VERSION: u32 = 1;
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1;
const SCOPE_SIGNAL: u64 = 2;
/// The first ABI with scopes (Linux 6.12).
const SCOPE_ABI: i64 = 6;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

/// The kernel's Landlock ABI version, or `None` when Landlock is unavailable.
pub fn abi_version() -> Option<i64> {
    // SAFETY: the version query takes no attribute.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    (v > 0).then_some(v)
}

/// A ruleset scoping signals and abstract UNIX sockets, or `None` when the kernel is too old.
pub fn scope_ruleset() -> io::Result<Option<OwnedFd>> {
    if abi_version().is_none_or(|v| v < SCOPE_ABI) {
        return Ok(None);
    }
    let attr = RulesetAttr {
        handled_access_fs: 0,
        handled_access_net: 0,
        scoped: SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL,
    };
    // SAFETY: attr is a valid ruleset attribute of the size we pass.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const RulesetAttr,
            std::mem::size_of::<RulesetAttr>(),
            0u32,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh (close-on-exec) ruleset descriptor.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
}
