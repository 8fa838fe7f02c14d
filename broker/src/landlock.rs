//! Landlock: the second, kernel-enforced wall.
//!
//! The target gets no filesystem rights of its own: every right the kernel's Landlock ABI knows
//! is handled, and the only rules grant `EXECUTE` (with the `READ_FILE` an exec needs) on what
//! the exec policy allows. Landlock checks rights when a file is opened, so descriptors the
//! broker opened and injected keep working. Where the kernel supports scopes (ABI 6, Linux
//! 6.12), the target also cannot signal, or connect to the abstract UNIX sockets of, processes
//! outside its sandbox — the broker above all.
//!
//! The ruleset is built here, before fork; the child-shim applies it with one
//! `landlock_restrict_self` call after `no_new_privs`.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const CREATE_RULESET_VERSION: u32 = 1;
const RULE_PATH_BENEATH: u32 = 1;
const ACCESS_EXECUTE: u64 = 1 << 0;
const ACCESS_READ_FILE: u64 = 1 << 2;
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1;
const SCOPE_SIGNAL: u64 = 2;
/// The ABI this broker knows everything of: filesystem rights through IOCTL_DEV (5) and scopes (6).
pub const FULL_ABI: i64 = 6;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
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

/// Every filesystem right the given ABI knows.
fn fs_rights(abi: i64) -> u64 {
    let bits = match abi {
        1 => 13,     // EXECUTE .. MAKE_SYM
        2 => 14,     // + REFER
        3 | 4 => 15, // + TRUNCATE
        _ => 16,     // + IOCTL_DEV
    };
    (1u64 << bits) - 1
}

/// What the ruleset enforces on this kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforcement {
    /// No Landlock at all.
    None,
    /// Filesystem rights and exec policy, but not the signal and socket scopes (ABI < 6).
    FilesystemOnly(i64),
    /// Everything this broker knows: filesystem, exec policy, scopes.
    Full(i64),
}

impl fmt::Display for Enforcement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Enforcement::None => f.write_str("Landlock is not available: no filesystem wall, no exec policy, the target may signal the broker"),
            Enforcement::FilesystemOnly(abi) => write!(f, "Landlock ABI {abi}: filesystem wall and exec policy enforced; signal and socket scopes need ABI 6 (Linux 6.12)"),
            Enforcement::Full(abi) => write!(f, "Landlock ABI {abi}: filesystem wall, exec policy and scopes enforced"),
        }
    }
}

/// A ruleset ready for the child, and what it enforces.
pub struct Ruleset {
    pub fd: Option<OwnedFd>,
    pub enforcement: Enforcement,
}

/// Build the ruleset: no filesystem rights but `exec` (paths, or `DIR/**` trees, that may be
/// executed), plus the scopes where supported. A path in `exec` that cannot be opened is
/// skipped: executing it will fail, as it would have anyway.
pub fn ruleset(exec: &[String]) -> io::Result<Ruleset> {
    let Some(abi) = abi_version() else {
        return Ok(Ruleset {
            fd: None,
            enforcement: Enforcement::None,
        });
    };
    let attr = RulesetAttr {
        handled_access_fs: fs_rights(abi),
        handled_access_net: 0,
        scoped: if abi >= 6 {
            SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
        } else {
            0
        },
    };
    let size = if abi >= 6 {
        std::mem::size_of::<RulesetAttr>()
    } else {
        2 * std::mem::size_of::<u64>()
    };
    // SAFETY: attr is a valid ruleset attribute at least `size` bytes long.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const RulesetAttr,
            size,
            0u32,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh (close-on-exec) ruleset descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    for pattern in exec {
        let base = pattern.strip_suffix("/**").unwrap_or(pattern);
        let base = if base.is_empty() { "/" } else { base };
        let Ok(target) = crate::sys::cstring(base.as_bytes())
            .and_then(|c| crate::sys::openat2(None, &c, libc::O_PATH, 0, 0))
        else {
            continue;
        };
        let rule = PathBeneathAttr {
            allowed_access: ACCESS_EXECUTE | ACCESS_READ_FILE,
            parent_fd: target.as_raw_fd(),
        };
        // SAFETY: rule is a valid path-beneath attribute; both descriptors are live.
        let r = unsafe {
            libc::syscall(
                libc::SYS_landlock_add_rule,
                fd.as_raw_fd(),
                RULE_PATH_BENEATH,
                &rule as *const PathBeneathAttr,
                0u32,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let enforcement = if abi >= FULL_ABI {
        Enforcement::Full(abi)
    } else {
        Enforcement::FilesystemOnly(abi)
    };
    Ok(Ruleset {
        fd: Some(fd),
        enforcement,
    })
}
