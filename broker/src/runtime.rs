//! The default runtime allowance: what the dynamic loader needs to start a program.
//!
//! For a dynamically linked target the broker grants read-only access, as exact paths, to:
//! the ELF interpreter; `/etc/ld.so.cache` and `/etc/ld.so.preload`; and every shared library
//! the program needs, found the way glibc's loader finds them (DT_RPATH, LD_LIBRARY_PATH,
//! DT_RUNPATH with `$ORIGIN`, `/etc/ld.so.cache`, the default directories), transitively.
//! A `#!` script gets its interpreter's allowance plus the script itself. Static binaries get
//! nothing. Libraries a program `dlopen`s at run time are not included.
//!
//! The target binary is untrusted input: [`crate::elf`] reads only the headers it needs, with
//! bounded sizes, and a malformed file just yields no allowance (the target then fails to load,
//! visibly).

use std::collections::{BTreeSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::policy::{Policy, Rule, RuleKind};

const LD_SO_CACHE: &str = "/etc/ld.so.cache";
const LD_SO_PRELOAD: &str = "/etc/ld.so.preload";
/// The loader's built-in search path on x86_64 Debian and most other distributions.
const DEFAULT_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];
/// Subdirectories glibc probes first in each search directory.
const HWCAPS: &[&str] = &[
    "glibc-hwcaps/x86-64-v4",
    "glibc-hwcaps/x86-64-v3",
    "glibc-hwcaps/x86-64-v2",
];
/// At most this many objects are followed, whatever the dependency graph looks like.
const MAX_OBJECTS: usize = 512;

/// A program's runtime allowance, to be granted when the policy needs it: the target's first
/// call, not its start. The supervisor grants it while the target execs.
#[derive(Debug, Clone)]
pub struct RuntimeGrant {
    program: PathBuf,
    ld_library_path: Option<OsString>,
}

impl RuntimeGrant {
    pub fn new(program: &Path, ld_library_path: Option<&OsStr>) -> RuntimeGrant {
        RuntimeGrant {
            program: program.to_path_buf(),
            ld_library_path: ld_library_path.map(OsStr::to_os_string),
        }
    }

    /// The paths themselves ([`allowance`]).
    pub fn paths(&self) -> BTreeSet<PathBuf> {
        allowance(&self.program, self.ld_library_path.as_deref())
    }

    /// Grant the allowance read-only in `policy`, and in `own_calls` too if there is one.
    pub fn grant(&self, policy: &mut Policy, own_calls: Option<&mut Policy>) {
        grant(&self.paths(), policy, own_calls);
    }
}

/// Grant `paths` read-only, each as an exact rule, in `policy` and `own_calls`.
pub fn grant(paths: &BTreeSet<PathBuf>, policy: &mut Policy, mut own_calls: Option<&mut Policy>) {
    for path in paths {
        for p in [Some(&mut *policy), own_calls.as_deref_mut()]
            .into_iter()
            .flatten()
        {
            if let Ok(rule) = Rule::new(RuleKind::Read, &path.to_string_lossy()) {
                p.push(rule);
            }
        }
    }
}

/// The paths to grant read-only, in a stable order.
pub fn allowance(program: &Path, ld_library_path: Option<&OsStr>) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let program = crate::sys::canonicalize(program).unwrap_or_else(|_| program.to_path_buf());
    let start = match script_interpreter(&program) {
        Some(interp) => {
            out.insert(program.clone());
            interp
        }
        None => program,
    };
    let Some(first) = Object::load(&start) else {
        return out;
    };
    let Some(interp) = first.interp.clone() else {
        return out; // static: the loader is not involved
    };
    out.insert(interp.clone());
    if let Ok(c) = crate::sys::canonicalize(&interp) {
        out.insert(c);
    }
    out.insert(LD_SO_CACHE.into());
    out.insert(LD_SO_PRELOAD.into());
    let cache = LdCache::load();
    let env_dirs: Vec<PathBuf> = ld_library_path
        .map(|p| {
            p.as_bytes()
                .split(|&c| c == b':' || c == b';')
                .filter(|d| !d.is_empty())
                .map(|d| PathBuf::from(OsStr::from_bytes(d)))
                .collect()
        })
        .unwrap_or_default();
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([first]);
    while let Some(obj) = queue.pop_front() {
        if seen.len() >= MAX_OBJECTS {
            break;
        }
        for lib in &obj.needed {
            if !seen.insert(lib.clone()) {
                continue;
            }
            for path in locate(lib, &obj, &env_dirs, &cache, &mut out) {
                if let Some(o) = Object::load(&path) {
                    queue.push_back(o);
                }
            }
        }
    }
    out
}

/// What executing `program` runs: the program itself, the interpreter of a `#!` script, and the
/// ELF interpreter (dynamic loader) of whichever binary that is. These are the only files the
/// target may execute by default.
pub fn exec_allowance(program: &Path) -> Vec<PathBuf> {
    let program = crate::sys::canonicalize(program).unwrap_or_else(|_| program.to_path_buf());
    let mut out = vec![program.clone()];
    let binary = match script_interpreter(&program) {
        Some(interp) => {
            let interp = crate::sys::canonicalize(&interp).unwrap_or(interp);
            out.push(interp.clone());
            interp
        }
        None => program,
    };
    if let Some(loader) = crate::elf::interp(&binary) {
        out.push(crate::sys::canonicalize(&loader).unwrap_or(loader));
    }
    out
}

/// The interpreter of a `#!` script, if `path` is one.
fn script_interpreter(path: &Path) -> Option<PathBuf> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(path).ok()?.read(&mut head).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = &line[..line.iter().position(|&c| c == b'\n').unwrap_or(line.len())];
    let word = line
        .split(|&c| c == b' ' || c == b'\t')
        .find(|w| !w.is_empty())?;
    Some(PathBuf::from(OsStr::from_bytes(word)))
}

struct Object {
    dir: PathBuf,
    interp: Option<PathBuf>,
    needed: Vec<String>,
    rpath: Vec<String>,
    runpath: Vec<String>,
}

impl Object {
    fn load(path: &Path) -> Option<Object> {
        let d = crate::elf::read(path)?;
        let canonical = crate::sys::canonicalize(path).ok()?;
        Some(Object {
            dir: canonical.parent()?.to_path_buf(),
            interp: d.interp,
            needed: d.needed,
            rpath: d.rpath,
            runpath: d.runpath,
        })
    }

    fn expand(&self, dir: &str) -> PathBuf {
        let origin = self.dir.to_string_lossy();
        PathBuf::from(
            dir.replace("${ORIGIN}", &origin)
                .replace("$ORIGIN", &origin),
        )
    }
}

/// Find `lib` as the loader would, granting every path the loader may try on the way. Returns
/// the files to follow further.
fn locate(
    lib: &str,
    obj: &Object,
    env_dirs: &[PathBuf],
    cache: &LdCache,
    out: &mut BTreeSet<PathBuf>,
) -> Vec<PathBuf> {
    if lib.contains('/') {
        let p = PathBuf::from(lib);
        grant_file(&p, out);
        return vec![p];
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    if obj.runpath.is_empty() {
        dirs.extend(obj.rpath.iter().map(|d| obj.expand(d)));
    }
    dirs.extend(env_dirs.iter().cloned());
    dirs.extend(obj.runpath.iter().map(|d| obj.expand(d)));
    for dir in &dirs {
        for sub in HWCAPS {
            grant_file(&dir.join(sub).join(lib), out);
        }
        let p = dir.join(lib);
        grant_file(&p, out);
        if p.exists() {
            return vec![p];
        }
    }
    let cached = cache.lookup(lib);
    if !cached.is_empty() {
        for p in &cached {
            grant_file(p, out);
        }
        return cached;
    }
    for dir in DEFAULT_DIRS {
        let p = Path::new(dir).join(lib);
        if p.exists() {
            grant_file(&p, out);
            return vec![p];
        }
    }
    Vec::new()
}

fn grant_file(p: &Path, out: &mut BTreeSet<PathBuf>) {
    if p.is_absolute() {
        out.insert(p.to_path_buf());
    }
}

/// glibc's `/etc/ld.so.cache` (new format), searched in place for x86-64 entries: only the few
/// libraries a program needs are looked up, so nothing is built from its hundreds of entries.
struct LdCache {
    bytes: Vec<u8>,
    /// Where the new-format table starts in `bytes`.
    start: usize,
}

impl LdCache {
    const MAGIC: &'static [u8] = b"glibc-ld.so.cache1.1";
    /// FLAG_ELF_LIBC6 | FLAG_X8664_LIB64.
    const X86_64_LIBC6: i32 = 0x0303;
    const HEADER: usize = 48;
    const ENTRY: usize = 24;

    fn load() -> LdCache {
        let bytes = std::fs::read(LD_SO_CACHE).unwrap_or_default();
        let start = bytes
            .windows(Self::MAGIC.len())
            .position(|w| w == Self::MAGIC)
            .unwrap_or(bytes.len());
        LdCache { bytes, start }
    }

    /// The paths the cache gives for `lib`, in its order.
    fn lookup(&self, lib: &str) -> Vec<PathBuf> {
        let table = &self.bytes[self.start..];
        let u32_at = |off: usize| -> Option<usize> {
            Some(u32::from_ne_bytes(table.get(off..off + 4)?.try_into().ok()?) as usize)
        };
        let cstr = |off: usize| -> Option<&[u8]> {
            let s = table.get(off..)?;
            Some(&s[..s.iter().position(|&c| c == 0)?])
        };
        let nlibs = u32_at(20).unwrap_or(0).min(100_000);
        let mut out = Vec::new();
        for i in 0..nlibs {
            let e = Self::HEADER + i * Self::ENTRY;
            let (Some(flags), Some(key), Some(value)) = (u32_at(e), u32_at(e + 4), u32_at(e + 8))
            else {
                break; // a truncated table: what was read so far stands
            };
            if flags as i32 & 0xffff != Self::X86_64_LIBC6 || cstr(key) != Some(lib.as_bytes()) {
                continue;
            }
            if let Some(v) = cstr(value) {
                out.push(PathBuf::from(OsStr::from_bytes(v)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_program_gets_loader_and_libc() {
        let a = allowance(Path::new("/bin/cat"), None);
        assert!(
            a.iter().any(|p| p.to_string_lossy().contains("ld-linux")),
            "{a:?}"
        );
        assert!(
            a.iter().any(|p| p.to_string_lossy().ends_with("libc.so.6")),
            "{a:?}"
        );
        assert!(a.contains(Path::new(LD_SO_CACHE)));
    }

    #[test]
    fn exec_allowance_is_the_program_and_its_loader() {
        let e = exec_allowance(Path::new("/bin/true"));
        assert_eq!(e[0], std::fs::canonicalize("/bin/true").unwrap());
        assert!(e[1].to_string_lossy().contains("ld-linux"), "{e:?}");
        assert_eq!(e.len(), 2);
    }

    #[test]
    fn garbage_is_not_an_elf() {
        let dir = std::env::temp_dir().join(format!("rt-garbage-{}", std::process::id()));
        std::fs::write(&dir, b"\x7fELF\x02\x01\x01garbage-garbage-garbage").unwrap();
        assert!(allowance(&dir, None).is_empty());
        std::fs::remove_file(&dir).unwrap();
    }
}
