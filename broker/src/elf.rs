//! Just enough ELF to find what the dynamic loader will need: `PT_INTERP`, and from
//! `PT_DYNAMIC` the `DT_NEEDED`, `DT_RPATH` and `DT_RUNPATH` strings.
//!
//! The file is untrusted (it is the target). Only the few structures needed are read, with
//! `pread` at checked offsets and bounded sizes; anything malformed yields `None`, never a panic
//! and never a large allocation.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_STRSZ: u64 = 10;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;
const EM_X86_64: u16 = 62;
/// Upper bounds on what is read: far above any real binary, far below a memory problem.
const MAX_PHDRS: usize = 256;
const MAX_DYNAMIC: u64 = 64 << 10;
const MAX_STRTAB: u64 = 4 << 20;
const MAX_INTERP: u64 = 4096;

/// What the loader needs to know about one ELF object.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dynamic {
    pub interp: Option<PathBuf>,
    pub needed: Vec<String>,
    pub rpath: Vec<String>,
    pub runpath: Vec<String>,
}

struct Phdr {
    kind: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?))
}

fn read_at(f: &File, offset: u64, len: u64, max: u64) -> Option<Vec<u8>> {
    if len > max {
        return None;
    }
    let mut buf = vec![0u8; len as usize];
    f.read_exact_at(&mut buf, offset).ok()?;
    Some(buf)
}

/// Parse `path` as a 64-bit little-endian x86_64 ELF. `None` for anything else (a static
/// binary is `Some` with no interpreter and nothing needed).
pub fn read(path: &Path) -> Option<Dynamic> {
    let f = File::open(path).ok()?;
    let phdrs = program_headers(&f)?;
    let mut out = Dynamic {
        interp: interp_of(&f, &phdrs)?,
        ..Dynamic::default()
    };
    let Some(dynamic) = phdrs.iter().find(|p| p.kind == PT_DYNAMIC) else {
        return Some(out);
    };
    let dyn_bytes = read_at(&f, dynamic.offset, dynamic.filesz, MAX_DYNAMIC)?;
    let entries: Vec<(u64, u64)> = dyn_bytes
        .chunks_exact(16)
        .map(|e| (u64_at(e, 0).unwrap_or(DT_NULL), u64_at(e, 8).unwrap_or(0)))
        .take_while(|&(tag, _)| tag != DT_NULL)
        .collect();
    let find = |tag| entries.iter().find(|e| e.0 == tag).map(|e| e.1);
    let (strtab, strsz) = (find(DT_STRTAB)?, find(DT_STRSZ)?);
    // DT_STRTAB is an address: map it to a file offset through the PT_LOAD that contains it.
    let load = phdrs.iter().find(|p| {
        p.kind == PT_LOAD
            && p.vaddr <= strtab
            && strtab
                .checked_add(strsz)
                .is_some_and(|end| end <= p.vaddr.saturating_add(p.filesz))
    })?;
    let strings = read_at(
        &f,
        load.offset.checked_add(strtab - load.vaddr)?,
        strsz,
        MAX_STRTAB,
    )?;
    let string = |off: u64| -> Option<String> {
        let s = strings.get(off as usize..)?;
        let end = s.iter().position(|&c| c == 0)?;
        std::str::from_utf8(&s[..end]).ok().map(String::from)
    };
    let split = |v: String| {
        v.split(':')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect::<Vec<_>>()
    };
    for &(tag, val) in &entries {
        match tag {
            DT_NEEDED => out.needed.extend(string(val)),
            DT_RPATH => out.rpath.extend(string(val).map(split).unwrap_or_default()),
            DT_RUNPATH => out
                .runpath
                .extend(string(val).map(split).unwrap_or_default()),
            _ => {}
        }
    }
    Some(out)
}

/// The interpreter (dynamic loader) the ELF at `path` asks for; `None` for a static binary or
/// anything [`read`] refuses. Only the headers are read: this is on the path of every start.
pub fn interp(path: &Path) -> Option<PathBuf> {
    let f = File::open(path).ok()?;
    interp_of(&f, &program_headers(&f)?)?
}

/// The program headers of `f`, if it is a 64-bit little-endian x86_64 ELF.
fn program_headers(f: &File) -> Option<Vec<Phdr>> {
    let eh = read_at(f, 0, 64, 64)?;
    // Magic, ELFCLASS64, ELFDATA2LSB, and the machine this broker filters for.
    if eh[..4] != *b"\x7fELF" || eh[4] != 2 || eh[5] != 1 || u16_at(&eh, 18)? != EM_X86_64 {
        return None;
    }
    let phoff = u64_at(&eh, 32)?;
    let phentsize = u16_at(&eh, 54)? as u64;
    let phnum = u16_at(&eh, 56)? as usize;
    if phentsize < 56 || phnum > MAX_PHDRS {
        return None;
    }
    let table = read_at(
        f,
        phoff,
        phentsize * phnum as u64,
        phentsize * MAX_PHDRS as u64,
    )?;
    (0..phnum)
        .map(|i| {
            let o = i * phentsize as usize;
            Some(Phdr {
                kind: u32_at(&table, o)?,
                offset: u64_at(&table, o + 8)?,
                vaddr: u64_at(&table, o + 16)?,
                filesz: u64_at(&table, o + 32)?,
            })
        })
        .collect()
}

/// `PT_INTERP`: `Some(None)` without one, `None` if it is malformed.
fn interp_of(f: &File, phdrs: &[Phdr]) -> Option<Option<PathBuf>> {
    let Some(p) = phdrs.iter().find(|p| p.kind == PT_INTERP) else {
        return Some(None);
    };
    let raw = read_at(f, p.offset, p.filesz, MAX_INTERP)?;
    let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
    Some(Some(PathBuf::from(std::str::from_utf8(&raw[..end]).ok()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_real_dynamic_binary() {
        let d = read(Path::new("/bin/true")).expect("ELF");
        assert_eq!(interp(Path::new("/bin/true")), d.interp);
        assert!(d
            .interp
            .unwrap()
            .to_string_lossy()
            .contains("ld-linux-x86-64"));
        assert!(
            d.needed.contains(&"libc.so.6".to_string()),
            "{:?}",
            d.needed
        );
    }

    #[test]
    fn a_library_has_needed_but_no_interpreter_of_its_own_to_run() {
        let d = read(Path::new("/lib/x86_64-linux-gnu/libseccomp.so.2")).expect("ELF");
        assert!(
            d.needed.contains(&"libc.so.6".to_string()),
            "{:?}",
            d.needed
        );
    }

    #[test]
    fn hostile_bytes_never_panic_or_parse() {
        let dir = std::env::temp_dir().join(format!("elf-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = std::fs::read("/bin/true").unwrap();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for i in 0..300 {
            let mut bytes = good[..good.len().min(8192)].to_vec();
            // Flip bytes in the headers, where the offsets and sizes live.
            for _ in 0..(1 + next() % 8) {
                let at = (next() % 128) as usize;
                bytes[at] = next() as u8;
            }
            bytes.truncate(
                (next() as usize % bytes.len()).max(1) * (i % 2) + bytes.len() * (1 - i % 2),
            );
            let p = dir.join("x");
            std::fs::write(&p, &bytes).unwrap();
            // The headers-only reader agrees with the full one wherever that one parses.
            if let Some(d) = read(&p) {
                assert_eq!(interp(&p), d.interp);
            }
        }
        std::fs::write(dir.join("x"), b"\x7fELF").unwrap();
        assert_eq!(read(&dir.join("x")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
