//! Lexical path normalisation.
//!
//! The broker decides on, and opens, one normalised absolute path: no `.`, no `..`, no empty
//! components. `..` is resolved lexically (clamped at `/`); because every open then walks from a
//! granted root with `RESOLVE_BENEATH`, a symlink followed by `..` can never lead outside the
//! tree the decision was made for, it can only differ from the kernel's reading inside it.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The longest path the kernel accepts, including the terminating NUL.
pub const PATH_MAX: usize = libc::PATH_MAX as usize;

/// A normalised absolute path, and whether the request ended in `/` (which demands a directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormPath {
    path: PathBuf,
    pub trailing_slash: bool,
}

impl NormPath {
    /// Normalise `raw`; a relative `raw` is taken relative to `base`, which must be absolute.
    /// Returns `None` when `raw` is relative and there is no usable base.
    pub fn new(base: Option<&[u8]>, raw: &[u8]) -> Option<Self> {
        let mut parts: Vec<&[u8]> = Vec::new();
        if raw.first() != Some(&b'/') {
            let base = base.filter(|b| b.first() == Some(&b'/'))?;
            push_components(&mut parts, base);
        }
        push_components(&mut parts, raw);
        let trailing_slash = raw.ends_with(b"/")
            || raw.ends_with(b"/.")
            || raw.ends_with(b"/..")
            || raw == b"."
            || raw == b"..";
        let mut out = Vec::with_capacity(raw.len() + base.map_or(0, |b| b.len()) + 1);
        for p in &parts {
            out.push(b'/');
            out.extend_from_slice(p);
        }
        if out.is_empty() {
            out.push(b'/');
        }
        Some(Self {
            path: PathBuf::from(OsStr::from_bytes(&out)),
            trailing_slash,
        })
    }

    pub fn as_path(&self) -> &Path {
        &self.path
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.path.as_os_str().as_bytes()
    }

    /// The parent directory and the last component; `None` for `/`.
    pub fn split_last(&self) -> Option<(&[u8], &[u8])> {
        let b = self.as_bytes();
        if b == b"/" {
            return None;
        }
        let slash = b.iter().rposition(|&c| c == b'/')?;
        let parent = if slash == 0 { &b[..1] } else { &b[..slash] };
        Some((parent, &b[slash + 1..]))
    }
}

fn push_components<'a>(parts: &mut Vec<&'a [u8]>, path: &'a [u8]) {
    for comp in path.split(|&c| c == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
}

/// If `path` equals `base` or lies beneath it on a `/` boundary, the rest after `base`
/// (empty for `base` itself, never starting with `/`).
pub fn strip_base<'a>(path: &'a [u8], base: &[u8]) -> Option<&'a [u8]> {
    if base == b"/" {
        return Some(path.strip_prefix(b"/").unwrap_or(path));
    }
    let rest = path.strip_prefix(base)?;
    match rest.first() {
        None => Some(rest),
        Some(b'/') => Some(&rest[1..]),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(base: Option<&str>, raw: &str) -> String {
        let n = NormPath::new(base.map(str::as_bytes), raw.as_bytes()).unwrap();
        String::from_utf8(n.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn normalises_dots_and_slashes() {
        assert_eq!(norm(None, "/a//b/./c/"), "/a/b/c");
        assert_eq!(norm(None, "/a/b/../../../etc"), "/etc");
        assert_eq!(norm(None, "/.."), "/");
        assert_eq!(norm(Some("/srv/x"), "../y"), "/srv/y");
        assert_eq!(norm(Some("/srv/x"), "."), "/srv/x");
        assert!(NormPath::new(None, b"rel").is_none());
        assert!(NormPath::new(Some(b"pipe:[3]"), b"rel").is_none());
    }

    #[test]
    fn trailing_slash_is_remembered() {
        assert!(NormPath::new(None, b"/a/").unwrap().trailing_slash);
        assert!(!NormPath::new(None, b"/a").unwrap().trailing_slash);
    }

    #[test]
    fn base_matches_on_component_boundary() {
        assert_eq!(strip_base(b"/mbogo/x", b"/mbogo"), Some(&b"x"[..]));
        assert_eq!(strip_base(b"/mbogo", b"/mbogo"), Some(&b""[..]));
        assert_eq!(strip_base(b"/mbogos", b"/mbogo"), None);
        assert_eq!(strip_base(b"/etc/x", b"/"), Some(&b"etc/x"[..]));
    }

    #[test]
    fn split_last_component() {
        let n = NormPath::new(None, b"/a/b").unwrap();
        assert_eq!(n.split_last(), Some((&b"/a"[..], &b"b"[..])));
        let n = NormPath::new(None, b"/a").unwrap();
        assert_eq!(n.split_last(), Some((&b"/"[..], &b"a"[..])));
        assert_eq!(NormPath::new(None, b"/").unwrap().split_last(), None);
    }
}
