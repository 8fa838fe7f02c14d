//! Reading and writing the target's memory with `process_vm_readv`/`process_vm_writev`.
//!
//! Everything read here is hostile: it may be unmapped, unterminated, or rewritten by another
//! thread while we read it. We read once into our own buffer and decide on that copy only.

use std::io;

use crate::path::PATH_MAX;

const PAGE: u64 = 4096;

/// Most paths fit in this much; only longer ones cost a second read.
const FIRST_READ: usize = 256;

/// Read a NUL-terminated string of at most `PATH_MAX` bytes (NUL included) at `addr`.
///
/// A first read takes `FIRST_READ` bytes and a second the rest, only if no NUL was in the
/// first. Errors: `EFAULT` if the string runs into unreadable memory, `ENAMETOOLONG` if no NUL
/// appears within `PATH_MAX` bytes.
pub fn read_cstring(pid: u32, addr: u64, buf: &mut Vec<u8>) -> io::Result<()> {
    if addr == 0 {
        return Err(io::Error::from_raw_os_error(libc::EFAULT));
    }
    buf.clear();
    buf.resize(PATH_MAX, 0);
    let mut got = 0;
    for window in [FIRST_READ, PATH_MAX] {
        let at = addr
            .checked_add(got as u64)
            .ok_or(io::Error::from_raw_os_error(libc::EFAULT))?;
        let n = read_split(pid, at, &mut buf[got..window])?;
        if let Some(end) = buf[got..got + n].iter().position(|&c| c == 0) {
            buf.truncate(got + end);
            return Ok(());
        }
        got += n;
        if got < window {
            // A short read: the next byte is not readable.
            return Err(io::Error::from_raw_os_error(libc::EFAULT));
        }
    }
    Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG))
}

/// Read up to `out.len()` bytes at `addr`, as far as memory is readable; at least one byte.
///
/// The read is split on page boundaries so that a string ending just before an unmapped page
/// is still read (the kernel refuses to split a single iovec).
fn read_split(pid: u32, addr: u64, out: &mut [u8]) -> io::Result<usize> {
    let mut iovs = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; PATH_MAX / PAGE as usize + 1];
    let mut local = [libc::iovec {
        iov_base: out.as_mut_ptr().cast(),
        iov_len: out.len(),
    }];
    let mut count = 0;
    let mut at = addr;
    let mut left = out.len() as u64;
    while left > 0 {
        let chunk = (PAGE - at % PAGE).min(left);
        iovs[count] = libc::iovec {
            iov_base: at as *mut libc::c_void,
            iov_len: chunk as usize,
        };
        count += 1;
        left -= chunk;
        match at.checked_add(chunk) {
            Some(next) => at = next,
            None => break,
        }
    }
    // SAFETY: local describes out; remote iovecs are only read by the kernel in the target.
    let n = unsafe {
        libc::process_vm_readv(
            pid as libc::pid_t,
            local.as_mut_ptr(),
            1,
            iovs.as_ptr(),
            count as libc::c_ulong,
            0,
        )
    };
    match n {
        n if n > 0 => Ok(n as usize),
        0 => Err(io::Error::from_raw_os_error(libc::EFAULT)),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Read exactly `out.len()` bytes at `addr`.
pub fn read_exact(pid: u32, addr: u64, out: &mut [u8]) -> io::Result<()> {
    transfer(pid, addr, out.as_mut_ptr(), out.len(), false)
}

/// Write all of `data` at `addr` in the target.
pub fn write_all(pid: u32, addr: u64, data: &[u8]) -> io::Result<()> {
    transfer(pid, addr, data.as_ptr() as *mut u8, data.len(), true)
}

/// One whole transfer between our `local` bytes and the target's `addr`; short is EFAULT.
fn transfer(pid: u32, addr: u64, local: *mut u8, len: usize, write: bool) -> io::Result<()> {
    let local = libc::iovec {
        iov_base: local.cast(),
        iov_len: len,
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: len,
    };
    let pid = pid as libc::pid_t;
    // SAFETY: local describes len bytes the caller owns (only read by the kernel for a write).
    let n = unsafe {
        if write {
            libc::process_vm_writev(pid, &local, 1, &remote, 1, 0)
        } else {
            libc::process_vm_readv(pid, &local, 1, &remote, 1, 0)
        }
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if n as usize != len {
        return Err(io::Error::from_raw_os_error(libc::EFAULT));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two pages, the second unmapped: a string can be placed to end right at the gap.
    struct Edge {
        base: *mut u8,
    }

    impl Edge {
        fn new() -> Edge {
            // SAFETY: a fresh private mapping; the second page is made inaccessible.
            unsafe {
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    2 * PAGE as usize,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                assert_ne!(p, libc::MAP_FAILED);
                libc::mprotect(p.add(PAGE as usize), PAGE as usize, libc::PROT_NONE);
                Edge { base: p.cast() }
            }
        }

        /// Put `s` so that its last byte is the last readable one; return its address.
        fn place(&self, s: &[u8]) -> u64 {
            let at = PAGE as usize - s.len();
            // SAFETY: inside the first (writable) page.
            unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), self.base.add(at), s.len()) };
            self.base as u64 + at as u64
        }
    }

    impl Drop for Edge {
        fn drop(&mut self) {
            // SAFETY: the mapping made in new.
            unsafe { libc::munmap(self.base.cast(), 2 * PAGE as usize) };
        }
    }

    fn read(addr: u64) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        read_cstring(std::process::id(), addr, &mut buf).map(|()| buf)
    }

    #[test]
    fn short_and_long_strings_end_at_their_nul() {
        let e = Edge::new();
        assert_eq!(read(e.place(b"/etc/hosts\0")).unwrap(), b"/etc/hosts");
        // Longer than the first read, ending right before the unmapped page.
        let mut long = vec![b'a'; 3000];
        long.push(0);
        assert_eq!(read(e.place(&long)).unwrap(), &long[..3000]);
        let mut exact = vec![b'b'; FIRST_READ - 1];
        exact.push(0);
        assert_eq!(read(e.place(&exact)).unwrap(), &exact[..FIRST_READ - 1]);
    }

    #[test]
    fn a_string_running_into_unmapped_memory_is_efault() {
        let e = Edge::new();
        for len in [10, FIRST_READ, FIRST_READ + 1, 3000] {
            let err = read(e.place(&vec![b'x'; len])).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EFAULT), "length {len}");
        }
        assert_eq!(read(0).unwrap_err().raw_os_error(), Some(libc::EFAULT));
        assert_eq!(
            read(u64::MAX - 10).unwrap_err().raw_os_error(),
            Some(libc::EFAULT)
        );
    }

    #[test]
    fn no_nul_within_path_max_is_enametoolong() {
        let long = vec![b'y'; PATH_MAX + 100];
        let err = read(long.as_ptr() as u64).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENAMETOOLONG));
        let mut fits = vec![b'y'; PATH_MAX - 1];
        fits.push(0);
        assert_eq!(read(fits.as_ptr() as u64).unwrap().len(), PATH_MAX - 1);
    }
}
