//! The policy: which paths the target may open, and how.
//!
//! A [`Rule`] is a path pattern plus a [`RuleKind`]. `PATH` matches exactly that path;
//! `DIR/**` matches DIR and everything beneath it on a `/` boundary (`/srv/**` does not match
//! `/srvx`). Each rule keeps an *anchor* opened once at start-up: an `O_PATH` descriptor of the
//! tree's root (or of an exact file's parent directory). Every brokered open walks from that
//! anchor with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`, so whatever symlinks, `..` or renames a
//! target arranges, the file it receives lies inside the rule that allowed it.
//!
//! [`Policy::decide`] is the one place where a request becomes a [`PolicyDecision`].

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::path::{strip_base, NormPath};
use crate::sys;

/// What a rule grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RuleKind {
    /// Open read-only (and stat, readlink, chdir).
    Read,
    /// Read, write, create, truncate; inside a tree also mkdir, unlink and rename.
    Write,
    /// Open in any access mode, but only a FIFO, never a symlink to one.
    Fifo,
}

impl RuleKind {
    /// The word a policy file and `broker check` use for this kind.
    pub fn word(self) -> &'static str {
        match self {
            RuleKind::Read => "read",
            RuleKind::Write => "write",
            RuleKind::Fifo => "fifo",
        }
    }

    pub fn flag(self) -> &'static str {
        match self {
            RuleKind::Read => "--allow-read",
            RuleKind::Write => "--allow-write",
            RuleKind::Fifo => "--allow-fifo",
        }
    }
}

/// The access a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Read the file's content.
    Read,
    /// Write, create, truncate or remove.
    Write,
    /// Only metadata: stat, access(F_OK), readlink, chdir.
    Meta,
    /// Execute (decided by Landlock's exec policy, recorded only in learn mode).
    Exec,
}

impl Need {
    pub fn as_str(self) -> &'static str {
        match self {
            Need::Read => "read",
            Need::Write => "write",
            Need::Meta => "stat",
            Need::Exec => "exec",
        }
    }
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors in the rules themselves.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("rule path {0:?} is relative, expected an absolute path")]
    Relative(String),
    #[error("rule path {0:?}: expected PATH or DIR/**")]
    Pattern(String),
    #[error("rule path {0:?} contains a NUL byte")]
    Nul(String),
}

enum Anchor {
    /// The root directory of a `DIR/**` rule.
    Tree(OwnedFd),
    /// The parent directory of an exact rule, and the name to open in it.
    File { dir: OwnedFd, name: OsString },
    /// The anchor could not be opened at start-up; requests get this errno.
    Missing(i32),
}

/// One rule of the policy.
pub struct Rule {
    pub kind: RuleKind,
    /// The pattern as written, for messages (shared: every decision record names it).
    pub pattern: Arc<str>,
    recursive: bool,
    /// The base as written (normalised) and as resolved at start-up; a request may use either.
    bases: Vec<PathBuf>,
    anchor: Anchor,
    /// A walk from the anchor can end in /proc (`/**`, or a base under /proc), where the
    /// broker's own entries must be refused after the walk (see [`Grant::open`]).
    reaches_proc: bool,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.flag(), self.pattern)
    }
}

/// Check a rule pattern (`PATH` or `DIR/**`, absolute) and split it into its base and whether
/// it covers a tree. Every kind of rule, from flags or a policy file, goes through this.
pub fn parse_pattern(pattern: &str) -> Result<(&str, bool), PolicyError> {
    if pattern.as_bytes().contains(&0) {
        return Err(PolicyError::Nul(pattern.into()));
    }
    if !pattern.starts_with('/') {
        return Err(PolicyError::Relative(pattern.into()));
    }
    let (base, recursive) = match pattern.strip_suffix("/**") {
        Some(b) => (if b.is_empty() { "/" } else { b }, true),
        None => (pattern, false),
    };
    if base.contains('*') {
        return Err(PolicyError::Pattern(pattern.into()));
    }
    Ok((base, recursive))
}

/// Can a FIFO rule on `base` ever open something: is it a FIFO (or a directory of them)?
pub fn fits_fifo_rule(base: &str) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(base).is_ok_and(|m| m.file_type().is_fifo() || m.is_dir())
}

impl Rule {
    /// Parse `pattern` and open its anchor. A missing path is not an error here: the rule then
    /// answers ENOENT (see [`Rule::missing`]); the caller decides whether to warn.
    pub fn new(kind: RuleKind, pattern: &str) -> Result<Rule, PolicyError> {
        let (base, recursive) = parse_pattern(pattern)?;
        let given = NormPath::new(None, base.as_bytes()).expect("absolute");
        let given = given.as_path().to_path_buf();
        let (anchor, canonical) = if recursive {
            open_tree_anchor(&given)
        } else {
            open_file_anchor(&given, kind == RuleKind::Fifo)
        };
        let mut bases = vec![given];
        if let Some(c) = canonical {
            if !bases.contains(&c) {
                bases.push(c);
            }
        }
        let reaches_proc = recursive && base == "/" || bases.iter().any(|b| b.starts_with("/proc"));
        Ok(Rule {
            kind,
            pattern: pattern.into(),
            recursive,
            bases,
            anchor,
            reaches_proc,
        })
    }

    /// The errno of an anchor that could not be opened at start-up.
    pub fn missing(&self) -> Option<io::Error> {
        match self.anchor {
            Anchor::Missing(e) => Some(io::Error::from_raw_os_error(e)),
            _ => None,
        }
    }

    /// `/**`: everything.
    fn is_root_tree(&self) -> bool {
        self.recursive && self.bases.iter().any(|b| b.as_os_str() == "/")
    }

    fn grants(&self, need: Need) -> bool {
        match (self.kind, need) {
            (_, Need::Meta) => true,
            (RuleKind::Read, Need::Read) => true,
            (RuleKind::Read, Need::Write) => false,
            (_, Need::Exec) => false,
            (RuleKind::Write | RuleKind::Fifo, _) => true,
        }
    }

    /// The part of `path` below this rule's base, if the rule matches it.
    fn matches<'p>(&self, path: &'p [u8]) -> Option<&'p [u8]> {
        self.bases.iter().find_map(|b| {
            let b = b.as_os_str().as_bytes();
            if self.recursive {
                strip_base(path, b)
            } else if path == b {
                Some(&path[path.len()..])
            } else {
                None
            }
        })
    }

    fn is_below(&self, path: &[u8]) -> bool {
        self.bases
            .iter()
            .any(|b| strip_base(b.as_os_str().as_bytes(), path).is_some_and(|r| !r.is_empty()))
    }
}

fn open_tree_anchor(given: &Path) -> (Anchor, Option<PathBuf>) {
    let canonical = match crate::sys::canonicalize(given) {
        Ok(c) => c,
        Err(e) => return (Anchor::Missing(sys::errno_of(&e)), None),
    };
    match open_dir(&canonical) {
        Ok(fd) => (Anchor::Tree(fd), Some(canonical)),
        Err(e) => (Anchor::Missing(sys::errno_of(&e)), Some(canonical)),
    }
}

fn open_file_anchor(given: &Path, is_fifo: bool) -> (Anchor, Option<PathBuf>) {
    // Read and write rules follow a final symlink the user named; a FIFO rule never does.
    let full = if is_fifo {
        None
    } else {
        crate::sys::canonicalize(given).ok()
    };
    let canonical = full.or_else(|| {
        let parent = crate::sys::canonicalize(given.parent()?).ok()?;
        Some(parent.join(given.file_name()?))
    });
    let Some(canonical) = canonical else {
        return (Anchor::Missing(libc::ENOENT), None);
    };
    let (Some(parent), Some(name)) = (canonical.parent(), canonical.file_name()) else {
        return (Anchor::Missing(libc::EISDIR), Some(canonical));
    };
    match open_dir(parent) {
        Ok(dir) => (
            Anchor::File {
                dir,
                name: name.to_os_string(),
            },
            Some(canonical),
        ),
        Err(e) => (Anchor::Missing(sys::errno_of(&e)), Some(canonical)),
    }
}

fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let c = sys::cstring(path.as_os_str().as_bytes())?;
    sys::openat2(None, &c, libc::O_PATH | libc::O_DIRECTORY, 0, 0)
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyReason {
    /// No rule covers the path.
    NoRule,
    /// Rules cover the path but none grants the access asked for.
    AccessNotGranted(Arc<str>),
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyReason::NoRule => f.write_str("no rule grants it"),
            DenyReason::AccessNotGranted(p) => write!(f, "rule {p} grants read only"),
        }
    }
}

/// A request that a rule allows: the rule and the part of the path below its anchor.
pub struct Grant<'a> {
    pub rule: &'a Rule,
    rest: OsString,
}

/// The outcome of [`Policy::decide`].
pub enum PolicyDecision<'a> {
    /// A rule allows it; open through the grant.
    Allow(Grant<'a>),
    /// Metadata of a directory above a granted path (so realpath and cd can walk down to it).
    Ancestor,
    Deny(DenyReason),
}

/// The ordered set of rules.
#[derive(Default)]
pub struct Policy {
    rules: Vec<Rule>,
}

impl Policy {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, rule: Rule) {
        self.rules.push(rule);
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Decide `need` on `path`. The most specific matching rules (those whose base is longest:
    /// an exact rule on a file beats any tree above it) decide alone, so a read-only subtree
    /// inside a write tree stays read-only. Among equally specific rules, any that grants the
    /// access allows it, a FIFO rule first.
    pub fn decide(&self, path: &NormPath, need: Need) -> PolicyDecision<'_> {
        let bytes = path.as_bytes();
        let matching: Vec<(&Rule, &[u8])> = self
            .rules
            .iter()
            .filter_map(|r| r.matches(bytes).map(|rest| (r, rest)))
            .collect();
        let Some(closest) = matching.iter().map(|(_, rest)| rest.len()).min() else {
            if need == Need::Meta && self.rules.iter().any(|r| r.is_below(bytes)) {
                return PolicyDecision::Ancestor;
            }
            return PolicyDecision::Deny(DenyReason::NoRule);
        };
        let specific = matching.iter().filter(|(_, rest)| rest.len() == closest);
        let granting = specific
            .clone()
            .filter(|(r, _)| r.grants(need))
            .max_by_key(|(r, _)| r.kind);
        match granting {
            Some(&(rule, rest)) => {
                let rest = match &rule.anchor {
                    Anchor::File { name, .. } => name.clone(),
                    _ if rest.is_empty() => OsString::from("."),
                    _ => OsStr::from_bytes(rest).to_os_string(),
                };
                PolicyDecision::Allow(Grant { rule, rest })
            }
            None => {
                let (rule, _) = specific.clone().next().expect("closest exists");
                PolicyDecision::Deny(DenyReason::AccessNotGranted(rule.pattern.clone()))
            }
        }
    }
}

/// Resolution flags for every walk from an anchor: never above it, never through /proc magic.
const BENEATH: u64 = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;

impl Grant<'_> {
    /// Open the granted path with `flags` (and `mode` when creating), walking from the rule's
    /// anchor. `extra_resolve` adds the target's own restrictions (openat2's `resolve`).
    pub fn open(&self, flags: i32, mode: u32, extra_resolve: u64) -> io::Result<OwnedFd> {
        let (dir, resolve) = self.anchor()?;
        let rest = sys::cstring(self.rest.as_bytes())?;
        let fd = sys::openat2(
            Some(dir.as_fd()),
            &rest,
            flags,
            mode,
            resolve | extra_resolve,
        )?;
        if self.rule.reaches_proc && names_broker_proc(fd.as_fd())? {
            // A symlink such as /tmp/x -> /proc/self/environ is resolved in the broker's
            // context, so it names the broker. The walk ended outside what the target may see.
            return Err(io::Error::from_raw_os_error(libc::EXDEV));
        }
        Ok(fd)
    }

    /// The parent directory (as an `O_PATH` descriptor) and final name, for calls that act on a
    /// directory entry (mkdir, unlink, rename). The anchor itself has no entry to act on.
    pub fn open_parent(&self) -> io::Result<(OwnedFd, OsString)> {
        let (dir, resolve) = self.anchor()?;
        let rest = Path::new(&self.rest);
        let (parent, name) = match (rest.parent(), rest.file_name()) {
            (Some(p), Some(n)) if self.rest != "." => (p, n),
            _ => return Err(io::Error::from_raw_os_error(libc::EBUSY)),
        };
        let parent = if parent.as_os_str().is_empty() {
            c".".to_owned()
        } else {
            sys::cstring(parent.as_os_str().as_bytes())?
        };
        let fd = sys::openat2(
            Some(dir.as_fd()),
            &parent,
            libc::O_PATH | libc::O_DIRECTORY,
            0,
            resolve,
        )?;
        Ok((fd, name.to_os_string()))
    }

    fn anchor(&self) -> io::Result<(&OwnedFd, u64)> {
        match &self.rule.anchor {
            // With `/` as the root, IN_ROOT resolves exactly as the kernel would (absolute
            // symlinks included), which BENEATH refuses; either way nothing leaves the tree.
            Anchor::Tree(fd) if self.rule.is_root_tree() => {
                Ok((fd, libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS))
            }
            Anchor::Tree(fd) => Ok((fd, BENEATH)),
            // The exact file was resolved at start-up; a symlink put there since is refused.
            Anchor::File { dir, .. } => Ok((dir, BENEATH | libc::RESOLVE_NO_SYMLINKS)),
            Anchor::Missing(e) => Err(io::Error::from_raw_os_error(*e)),
        }
    }
}

/// Is `fd` an entry of the broker's own process in /proc (`/proc/<broker pid or tid>/...`)?
fn names_broker_proc(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: zeroed statfs is valid; fstatfs fills it.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatfs on our own descriptor.
    if unsafe { libc::fstatfs(fd.as_raw_fd(), &mut fs) } < 0 {
        return Err(io::Error::last_os_error());
    }
    if fs.f_type as libc::c_long != libc::PROC_SUPER_MAGIC {
        return Ok(false);
    }
    let link = sys::readlink(&sys::fd_path(fd)?)?;
    let Some(rest) = link.strip_prefix(b"/proc/") else {
        // Another procfs mount: its pid entries are the broker's view too. Refuse.
        return Ok(true);
    };
    let first = rest.split(|&c| c == b'/').next().unwrap_or(b"");
    Ok(sys::proc_pid(first).is_some_and(sys::is_broker_task))
}

/// Open a directory above granted paths for metadata only. Such paths are fixed by the policy
/// (they are prefixes of rule bases), never taken from a target's symlink.
pub fn open_ancestor(path: &NormPath, nofollow: bool) -> io::Result<OwnedFd> {
    let c = sys::cstring(path.as_bytes())?;
    let flags = libc::O_PATH | if nofollow { libc::O_NOFOLLOW } else { 0 };
    sys::openat2(None, &c, flags, 0, libc::RESOLVE_NO_MAGICLINKS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> PathBuf {
        let d = std::env::temp_dir().join(format!("policy-unit-{}", std::process::id()));
        std::fs::create_dir_all(d.join("data/sub")).unwrap();
        std::fs::write(d.join("data/sub/f"), "x").unwrap();
        d
    }

    fn decide(p: &Policy, path: &Path, need: Need) -> String {
        let n = NormPath::new(None, path.as_os_str().as_bytes()).unwrap();
        match p.decide(&n, need) {
            PolicyDecision::Allow(g) => {
                format!("allow {} {}", g.rule.pattern, g.rest.to_string_lossy())
            }
            PolicyDecision::Ancestor => "ancestor".into(),
            PolicyDecision::Deny(r) => format!("deny {r}"),
        }
    }

    #[test]
    fn the_most_specific_rule_wins_in_both_directions() {
        let d = scratch();
        let tree = format!("{}/data/**", d.display());
        let sub = format!("{}/data/sub/**", d.display());
        let mut p = Policy::new();
        p.push(Rule::new(RuleKind::Write, &tree).unwrap());
        p.push(Rule::new(RuleKind::Read, &sub).unwrap());
        let f = d.join("data/sub/f");
        assert_eq!(decide(&p, &f, Need::Read), format!("allow {sub} f"));
        // A read-only subtree inside a write tree stays read-only.
        assert_eq!(
            decide(&p, &f, Need::Write),
            format!("deny rule {sub} grants read only")
        );
        assert_eq!(
            decide(&p, &d.join("data/g"), Need::Write),
            format!("allow {tree} g")
        );
        assert_eq!(
            decide(&p, &d.join("data"), Need::Read),
            format!("allow {tree} .")
        );
        assert_eq!(decide(&p, &d, Need::Meta), "ancestor");
        assert_eq!(decide(&p, &d, Need::Read), "deny no rule grants it");
        assert_eq!(
            decide(&p, &d.join("datax"), Need::Meta),
            "deny no rule grants it"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn rule_patterns_are_checked() {
        assert!(matches!(
            Rule::new(RuleKind::Read, "rel/x"),
            Err(PolicyError::Relative(_))
        ));
        assert!(matches!(
            Rule::new(RuleKind::Read, "/a/*.txt"),
            Err(PolicyError::Pattern(_))
        ));
        assert!(matches!(
            Rule::new(RuleKind::Read, "/a\0b"),
            Err(PolicyError::Nul(_))
        ));
        let missing = Rule::new(RuleKind::Read, "/nonexistent/dir/**").unwrap();
        assert_eq!(
            missing.missing().and_then(|e| e.raw_os_error()),
            Some(libc::ENOENT)
        );
    }
}
