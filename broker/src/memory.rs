//! Reading and writing the target's memory with `process_vm_readv`/`process_vm_writev`.
//!
//! Everything read here is hostile: it may be unmapped, unterminated, or rewritten by another
//! thread while we read it. We read once into our own buffer and decide on that copy only.

use std::io;

use crate::path::PATH_MAX;

const PAGE: u64 = 4096;

/// Read a NUL-terminated string of at most `PATH_MAX` bytes (NUL included) at `addr`.
///
/// The read is split on page boundaries so that a string ending just before an unmapped page
/// is still read (the kernel refuses to split a single iovec). Errors: `EFAULT` if nothing is
/// readable, `ENAMETOOLONG` if no NUL appears within `PATH_MAX` bytes.
pub fn read_cstring(pid: u32, addr: u64, buf: &mut Vec<u8>) -> io::Result<()> {
    if addr == 0 {
        return Err(io::Error::from_raw_os_error(libc::EFAULT));
    }
    buf.clear();
    buf.resize(PATH_MAX, 0);
    let mut iovs = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; PATH_MAX / PAGE as usize + 1];
    let mut local = [libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: PATH_MAX,
    }];
    let mut count = 0;
    let mut at = addr;
    let mut left = PATH_MAX as u64;
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
    // SAFETY: local describes buf; remote iovecs are only read by the kernel in the target.
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
    if n <= 0 {
        let err = io::Error::last_os_error();
        return Err(if n == 0 {
            io::Error::from_raw_os_error(libc::EFAULT)
        } else {
            err
        });
    }
    buf.truncate(n as usize);
    match buf.iter().position(|&c| c == 0) {
        Some(end) => {
            buf.truncate(end);
            Ok(())
        }
        None if (n as usize) < PATH_MAX => Err(io::Error::from_raw_os_error(libc::EFAULT)),
        None => Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG)),
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
