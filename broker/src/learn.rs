//! `--learn FILE`: record what a trusted run asks for and write the smallest policy that allows
//! exactly that run.
//!
//! Learn mode grants everything, so it is for programs you trust, under your watch. Every
//! allowed request is recorded by resolved path and access. At the end the policy keeps reads
//! apart from writes (a path both read and written is a write), recognises FIFOs, leaves out
//! what the default runtime allowance already grants and the process-specific `/proc/<pid>`
//! entries, and collapses sibling files into `DIR/**` only where that is safe and useful: at
//! least [`COLLAPSE_AT`] entries of one kind in one existing directory at least
//! [`MIN_COLLAPSE_DEPTH`] levels deep, outside `/proc`, `/sys` and `/dev`. A comment lists
//! everything seen.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use crate::policy::{Need, RuleKind};
use crate::serve::Decision;

/// At most this many distinct paths are remembered; a run that asks for more gets a warning and
/// an incomplete policy rather than unbounded memory.
pub const MAX_SEEN: usize = 100_000;

/// How many entries of one kind in one directory make it worth a `DIR/**`.
pub const COLLAPSE_AT: usize = 3;
/// `/usr/lib/locale` (depth 3) may collapse; `/etc`, `/home/alice` never do.
pub const MIN_COLLAPSE_DEPTH: usize = 3;
const NEVER_COLLAPSE_UNDER: &[&str] = &["/proc", "/sys", "/dev"];

#[derive(Default, Clone, Copy)]
struct Seen {
    read: bool,
    write: bool,
    meta: bool,
    exec: bool,
    count: u32,
}

/// What learn mode has seen so far.
pub struct Learner {
    seen: BTreeMap<PathBuf, Seen>,
    /// Paths the default runtime allowance grants anyway.
    runtime: BTreeSet<PathBuf>,
    /// Programs the default exec policy allows anyway (the program and its interpreters).
    default_exec: BTreeSet<PathBuf>,
    /// More than [`MAX_SEEN`] paths were asked for.
    overflowed: bool,
}

impl Learner {
    pub fn new(runtime: BTreeSet<PathBuf>, default_exec: BTreeSet<PathBuf>) -> Self {
        Self {
            seen: BTreeMap::new(),
            runtime,
            default_exec,
            overflowed: false,
        }
    }

    /// Note one decision (only allowed requests under a rule teach anything).
    pub fn record(&mut self, d: &Decision) {
        if !d.allowed || d.rule.is_none() {
            return;
        }
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(&d.resolved));
        if self.seen.len() >= MAX_SEEN && !self.seen.contains_key(&path) {
            if !self.overflowed {
                self.overflowed = true;
                eprintln!("broker: warning: learn mode saw more than {MAX_SEEN} paths; the policy will be incomplete");
            }
            return;
        }
        let seen = self.seen.entry(path).or_default();
        seen.count += 1;
        match d.need {
            Need::Read => seen.read = true,
            Need::Write => seen.write = true,
            Need::Meta => seen.meta = true,
            Need::Exec => seen.exec = true,
        }
    }

    /// The learned policy as a commented TOML document.
    pub fn policy(&self, command: &str) -> String {
        let mut classes: BTreeMap<RuleKind, BTreeSet<PathBuf>> = BTreeMap::new();
        let mut execs = BTreeSet::new();
        for (path, seen) in &self.seen {
            if seen.exec {
                let program = crate::sys::canonicalize(path).unwrap_or_else(|_| path.clone());
                if !self.default_exec.contains(&program) {
                    execs.insert(program);
                }
            }
            if !(seen.read || seen.write || seen.meta) {
                continue;
            }
            if self.runtime.contains(path) || is_process_specific(path) {
                continue;
            }
            if seen.meta && !seen.read && !seen.write && self.has_learned_beneath(path) {
                // Metadata of a directory above a granted path is granted anyway.
                continue;
            }
            let is_fifo = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo());
            let kind = if is_fifo {
                RuleKind::Fifo
            } else if seen.write {
                RuleKind::Write
            } else {
                RuleKind::Read
            };
            classes.entry(kind).or_default().insert(path.clone());
        }
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# Learned by `broker --learn` from a trusted run of:\n#   {command}"
        );
        let _ = writeln!(
            out,
            "# It allows exactly what that run asked for; review it before you rely on it."
        );
        let _ = writeln!(
            out,
            "# Not included: the default runtime allowance (the dynamic loader's files),"
        );
        let _ = writeln!(
            out,
            "# which `broker` grants by itself unless default_runtime = false.\n#"
        );
        let _ = writeln!(out, "# Seen (access, times, path):");
        for (path, seen) in &self.seen {
            let access = match (seen.write, seen.read, seen.meta) {
                (true, _, _) => "write",
                (false, true, _) => "read",
                (false, false, true) => "stat",
                _ => "exec",
            };
            let note = if self.runtime.contains(path) {
                "  (runtime allowance)"
            } else if is_process_specific(path) {
                "  (process-specific, not learned)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "#   {access:5} {:4} {}{note}",
                seen.count,
                path.display()
            );
        }
        let _ = writeln!(out, "\n[allow]");
        for kind in [RuleKind::Read, RuleKind::Write, RuleKind::Fifo] {
            let Some(paths) = classes.remove(&kind) else {
                continue;
            };
            let patterns = if kind == RuleKind::Fifo {
                exact(paths)
            } else {
                collapse(paths)
            };
            let _ = writeln!(out, "{} = [", kind.word());
            for p in patterns {
                let _ = writeln!(out, "  {},", toml_string(&p));
            }
            let _ = writeln!(out, "]");
        }
        if !execs.is_empty() {
            let _ = writeln!(out, "exec = [");
            for p in execs {
                let _ = writeln!(out, "  {},", toml_string(&p.display().to_string()));
            }
            let _ = writeln!(out, "]");
        }
        out
    }
}

impl Learner {
    /// Was something beneath `dir` read or written (so that `dir` will be an ancestor of a rule)?
    fn has_learned_beneath(&self, dir: &Path) -> bool {
        self.seen
            .range(dir.to_path_buf()..)
            .skip(1)
            .take_while(|(p, _)| p.starts_with(dir))
            .any(|(p, s)| (s.read || s.write) && !self.runtime.contains(p))
    }
}

fn is_process_specific(path: &Path) -> bool {
    let mut c = path.components().skip(1);
    c.next().is_some_and(|p| p.as_os_str() == "proc")
        && c.next().is_some_and(|p| {
            p.as_os_str()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
}

fn exact(paths: BTreeSet<PathBuf>) -> Vec<String> {
    paths.into_iter().map(|p| p.display().to_string()).collect()
}

/// Replace sibling files by `DIR/**` where safe and useful (see the module docs).
fn collapse(paths: BTreeSet<PathBuf>) -> Vec<String> {
    let mut by_dir: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
    for p in paths {
        let dir = p
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        by_dir.entry(dir).or_default().push(p);
    }
    let mut out = Vec::new();
    for (dir, files) in by_dir {
        let depth = dir.components().count() - 1;
        let protected = NEVER_COLLAPSE_UNDER.iter().any(|p| dir.starts_with(p));
        if files.len() >= COLLAPSE_AT && depth >= MIN_COLLAPSE_DEPTH && !protected && dir.is_dir() {
            out.push(format!("{}/**", dir.display()));
        } else {
            out.extend(files.iter().map(|f| f.display().to_string()));
        }
    }
    // A file under a collapsed directory needs no rule of its own.
    let trees: Vec<String> = out
        .iter()
        .filter_map(|p| p.strip_suffix("/**"))
        .map(|d| format!("{d}/"))
        .collect();
    out.retain(|p| p.ends_with("/**") || !trees.iter().any(|t| p.starts_with(t.as_str())));
    out.sort();
    out
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.into()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapses_only_deep_existing_directories_with_enough_entries() {
        let deep = std::env::temp_dir()
            .join(format!("learn-unit-{}", std::process::id()))
            .join("d");
        std::fs::create_dir_all(&deep).unwrap();
        let d = deep.display().to_string();
        let mut paths: BTreeSet<PathBuf> = ["a", "b", "c"].iter().map(|f| deep.join(f)).collect();
        for p in [
            "/nonexistent/dir/d/a",
            "/nonexistent/dir/d/b",
            "/nonexistent/dir/d/c",
        ] {
            paths.insert(p.into()); // deep and numerous, but not there
        }
        paths.insert(deep.join("sub/e")); // covered by the collapsed tree
        for p in ["/etc/a", "/etc/b", "/etc/c", "/proc/x/a/b"] {
            paths.insert(p.into()); // too shallow, or under /proc
        }
        let mut want = vec![
            "/etc/a".to_string(),
            "/etc/b".into(),
            "/etc/c".into(),
            "/nonexistent/dir/d/a".into(),
            "/nonexistent/dir/d/b".into(),
            "/nonexistent/dir/d/c".into(),
            "/proc/x/a/b".into(),
            format!("{d}/**"),
        ];
        want.sort();
        assert_eq!(collapse(paths), want);
        std::fs::remove_dir_all(deep.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_directory_only_stated_above_learned_files_needs_no_rule() {
        let mut l = Learner::new(BTreeSet::new(), BTreeSet::new());
        let decision = |path: &str, need| Decision {
            syscall: "x",
            action: "x",
            pid: 1,
            given: path.as_bytes().to_vec(),
            resolved: path.as_bytes().to_vec(),
            need,
            allowed: true,
            rule: Some("/**".into()),
            reason: "".into(),
        };
        l.record(&decision("/srv/data", Need::Meta));
        l.record(&decision("/srv/data/f", Need::Read));
        l.record(&decision("/srv/other", Need::Meta));
        let policy = l.policy("test");
        let rules = policy.split("[allow]").nth(1).unwrap();
        assert!(
            rules.contains("\"/srv/data/f\"") && rules.contains("\"/srv/other\""),
            "{policy}"
        );
        assert!(!rules.contains("\"/srv/data\","), "{policy}");
    }

    #[test]
    fn proc_pid_paths_are_process_specific() {
        assert!(is_process_specific(Path::new("/proc/123/status")));
        assert!(!is_process_specific(Path::new("/proc/cpuinfo")));
        assert!(!is_process_specific(Path::new("/etc/123")));
    }
}
