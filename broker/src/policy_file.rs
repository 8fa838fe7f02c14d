//! Policy files: a TOML description of everything the command-line flags can say.
//!
//! ```toml
//! deny_errno = "EACCES"     # optional: the errno refused requests get
//! default_runtime = true    # optional: grant what the dynamic loader needs (default true)
//! require_landlock = false  # optional: refuse to run without full Landlock enforcement
//!
//! [allow]
//! read = ["/etc/hostname", "/srv/model/**"]
//! write = ["/srv/out/**"]
//! fifo = ["/run/jobs/in"]
//! exec = ["/usr/bin/convert"]
//! ```
//!
//! Unknown keys are errors. Every error names the file, line and column and what was expected;
//! a rule whose path does not exist is a warning, a relative rule path an error.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::policy::RuleKind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    deny_errno: Option<Spanned<String>>,
    default_runtime: Option<bool>,
    require_landlock: Option<bool>,
    #[serde(default)]
    allow: Allow,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Allow {
    #[serde(default)]
    read: Vec<Spanned<String>>,
    #[serde(default)]
    write: Vec<Spanned<String>>,
    #[serde(default)]
    fifo: Vec<Spanned<String>>,
    #[serde(default)]
    exec: Vec<Spanned<String>>,
}

/// Where a rule or setting was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// One rule from a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    pub kind: RuleKind,
    pub pattern: String,
    pub at: Location,
}

/// A program (or `DIR/**` of programs) the target may execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSpec {
    pub pattern: String,
    pub at: Location,
}

/// A parsed, checked policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFile {
    pub rules: Vec<RuleSpec>,
    pub exec: Vec<ExecSpec>,
    pub deny_errno: Option<i32>,
    pub default_runtime: Option<bool>,
    pub require_landlock: Option<bool>,
    /// Rules whose path does not exist (yet): worth a warning, not an error.
    pub warnings: Vec<String>,
}

/// A policy file that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum PolicyFileError {
    #[error("{}: {}", .0.display(), .1)]
    Read(PathBuf, std::io::Error),
    #[error("{at}: {message}")]
    Invalid { at: Location, message: String },
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl PolicyFile {
    /// Read and check `path`.
    pub fn load(path: &Path) -> Result<PolicyFile, PolicyFileError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| PolicyFileError::Read(path.into(), e))?;
        Self::parse(path, &text)
    }

    /// Check `text`, reporting positions as in `path`.
    pub fn parse(path: &Path, text: &str) -> Result<PolicyFile, PolicyFileError> {
        let at = |offset: usize| {
            let (line, column) = line_col(text, offset);
            Location {
                file: path.into(),
                line,
                column,
            }
        };
        let file: File = toml::from_str(text).map_err(|e| PolicyFileError::Invalid {
            at: at(e.span().map_or(0, |s| s.start)),
            message: e.message().trim().to_string(),
        })?;
        let deny_errno = match &file.deny_errno {
            None => None,
            Some(name) => Some(crate::errno::parse(name.get_ref()).ok_or_else(|| {
                PolicyFileError::Invalid {
                    at: at(name.span().start),
                    message: format!(
                        "unknown errno {:?} for deny_errno, expected one of {}",
                        name.get_ref(),
                        crate::errno::names().collect::<Vec<_>>().join(", ")
                    ),
                }
            })?),
        };
        let mut rules = Vec::new();
        let mut exec = Vec::new();
        let mut warnings = Vec::new();
        let lists = [
            (Some(RuleKind::Read), &file.allow.read),
            (Some(RuleKind::Write), &file.allow.write),
            (Some(RuleKind::Fifo), &file.allow.fifo),
            (None, &file.allow.exec),
        ];
        for (kind, list) in lists {
            for entry in list {
                let pattern = entry.get_ref().clone();
                let here = at(entry.span().start);
                let base = crate::policy::parse_pattern(&pattern)
                    .map_err(|e| PolicyFileError::Invalid {
                        at: here.clone(),
                        message: e.to_string(),
                    })?
                    .0;
                if std::fs::symlink_metadata(base).is_err() {
                    warnings.push(format!(
                        "{here}: warning: {base} does not exist; requests for it will fail"
                    ));
                } else if kind == Some(RuleKind::Fifo) && !crate::policy::fits_fifo_rule(base) {
                    warnings.push(format!(
                        "{here}: warning: {base} is not a FIFO; opening it will be refused"
                    ));
                }
                match kind {
                    Some(kind) => rules.push(RuleSpec {
                        kind,
                        pattern,
                        at: here,
                    }),
                    None => exec.push(ExecSpec { pattern, at: here }),
                }
            }
        }
        Ok(PolicyFile {
            rules,
            exec,
            deny_errno,
            default_runtime: file.default_runtime,
            require_landlock: file.require_landlock,
            warnings,
        })
    }

    /// The effective settings and rules, one per line, in a stable order (for `broker check`).
    pub fn effective_lines(&self) -> Vec<String> {
        let mut out = vec![
            format!(
                "deny-errno {}",
                crate::errno::name(self.deny_errno.unwrap_or(libc::EACCES))
            ),
            format!(
                "default-runtime {}",
                if self.default_runtime.unwrap_or(true) {
                    "on"
                } else {
                    "off"
                }
            ),
        ];
        if self.require_landlock == Some(true) {
            out.push("require-landlock on".into());
        }
        // Kinds in a fixed order (read, write, fifo, exec), paths sorted within each.
        let mut rules: Vec<(u8, &str, &str)> = self
            .rules
            .iter()
            .map(|r| (r.kind as u8, r.kind.word(), r.pattern.as_str()))
            .chain(
                self.exec
                    .iter()
                    .map(|e| (u8::MAX, "exec", e.pattern.as_str())),
            )
            .collect();
        rules.sort();
        rules.dedup();
        out.extend(rules.into_iter().map(|(_, k, p)| format!("{k} {p}")));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PolicyFile, PolicyFileError> {
        PolicyFile::parse(Path::new("p.toml"), text)
    }

    #[test]
    fn a_good_file_gives_rules_in_a_stable_order() {
        let p = parse("deny_errno = \"ENOENT\"\n[allow]\nwrite = [\"/tmp/**\"]\nread = [\"/etc/hostname\", \"/etc/hostname\"]\n").unwrap();
        assert_eq!(p.deny_errno, Some(libc::ENOENT));
        assert_eq!(
            p.effective_lines(),
            [
                "deny-errno ENOENT",
                "default-runtime on",
                "read /etc/hostname",
                "write /tmp/**"
            ]
        );
        let write = p.rules.iter().find(|r| r.kind == RuleKind::Write).unwrap();
        assert_eq!((write.at.line, write.at.column), (3, 10));
    }

    #[test]
    fn mistakes_point_at_their_line_and_column() {
        let e = parse("[allow]\nread = [\"/etc/hostname\"]\nreed = [\"/x\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "p.toml:3:1: unknown field `reed`, expected one of `read`, `write`, `fifo`, `exec`"
            ),
            "{e}"
        );
        let e = parse("[allow]\nread = [\n  \"/ok\",\n  \"relative/x\",\n]\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("p.toml:4:3: rule path \"relative/x\" is relative"),
            "{e}"
        );
        let e = parse("deny_errno = \"EWHAT\"\n").unwrap_err().to_string();
        assert!(e.starts_with("p.toml:1:14: unknown errno"), "{e}");
        let e = parse("[allow]\nread = \"/etc/hostname\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("p.toml:2:8:"), "{e}");
        let e = parse("[allow\n").unwrap_err().to_string();
        assert!(e.starts_with("p.toml:1:"), "{e}");
        let e = parse("[allow]\nread = [\"/a/*.txt\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected PATH or DIR/**"), "{e}");
    }

    #[test]
    fn a_missing_path_is_a_warning() {
        let p = parse("[allow]\nread = [\"/nonexistent/thing\"]\nfifo = [\"/etc/hostname\"]\n")
            .unwrap();
        assert_eq!(p.rules.len(), 2);
        assert!(
            p.warnings[0].starts_with("p.toml:2:9: warning: /nonexistent/thing does not exist"),
            "{:?}",
            p.warnings
        );
        assert!(
            p.warnings[1].contains("/etc/hostname is not a FIFO"),
            "{:?}",
            p.warnings
        );
    }
}
