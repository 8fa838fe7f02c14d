//! Finding the program to run, with the shell's exit codes for failures (126, 127).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Why the program cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum ProgramError {
    #[error("program not found: {0}")]
    NotFound(String),
    #[error("cannot execute {0}: {1}")]
    NotExecutable(String, &'static str),
}

impl ProgramError {
    pub fn exit_code(&self) -> i32 {
        match self {
            ProgramError::NotFound(_) => 127,
            ProgramError::NotExecutable(..) => 126,
        }
    }
}

fn check(path: &Path, shown: &str) -> Result<PathBuf, ProgramError> {
    let meta = std::fs::metadata(path).map_err(|_| ProgramError::NotFound(shown.into()))?;
    if meta.is_dir() {
        return Err(ProgramError::NotExecutable(shown.into(), "is a directory"));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(ProgramError::NotExecutable(
            shown.into(),
            "permission denied",
        ));
    }
    Ok(path.to_path_buf())
}

/// Look `name` up like `execvp`: a name with a `/` is used as is, others are searched in `path`.
pub fn find(name: &OsStr, path: Option<&OsStr>) -> Result<PathBuf, ProgramError> {
    let shown = name.to_string_lossy().into_owned();
    if name.as_bytes().contains(&b'/') {
        return check(Path::new(name), &shown);
    }
    if name.is_empty() {
        return Err(ProgramError::NotFound(shown));
    }
    let dirs = path.map_or(&b"/usr/local/bin:/usr/bin:/bin"[..], |p| p.as_bytes());
    let mut denied = None;
    for dir in dirs.split(|&c| c == b':') {
        let dir = if dir.is_empty() { &b"."[..] } else { dir };
        let candidate = Path::new(OsStr::from_bytes(dir)).join(name);
        match check(&candidate, &shown) {
            Ok(p) => return Ok(p),
            Err(e @ ProgramError::NotExecutable(..)) => denied = denied.or(Some(e)),
            Err(_) => {}
        }
    }
    Err(denied.unwrap_or(ProgramError::NotFound(shown)))
}
