//! Thin, typed wrappers over the system calls the broker makes on its own behalf.

use std::ffi::{CStr, CString};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

pub fn cvt(r: libc::c_long) -> io::Result<libc::c_long> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut pp = [0; 2];
    // SAFETY: pp has room for two descriptors.
    cvt(unsafe { libc::pipe2(pp.as_mut_ptr(), libc::O_CLOEXEC) } as libc::c_long)?;
    // SAFETY: fresh descriptors, owned from here on.
    Ok(unsafe { (OwnedFd::from_raw_fd(pp[0]), OwnedFd::from_raw_fd(pp[1])) })
}

/// Move `fd` to a close-on-exec descriptor numbered 10 or more, so that a child that arranges
/// its low descriptors with dup2 cannot clobber it.
pub fn lift(fd: OwnedFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC returns a fresh descriptor.
    let r = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) } as libc::c_long)?;
    // SAFETY: fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// The absolute path `path` names, every symlink resolved, like `realpath`, in three system
/// calls whatever its depth (realpath reads each component's link: ~20 calls for a library):
/// open it `O_PATH`, and read where the kernel says the descriptor is. Without /proc, or for a
/// file /proc cannot name from our root, it falls back to the component-by-component walk.
pub fn canonicalize(path: &Path) -> io::Result<PathBuf> {
    let c = cstring(path.as_os_str().as_bytes())?;
    // SAFETY: a NUL-terminated path; the descriptor is owned below.
    // openat, not open: musl's open follows an O_CLOEXEC open with a redundant fcntl.
    let fd = cvt(
        unsafe { libc::openat(libc::AT_FDCWD, c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) }
            as libc::c_long,
    )?;
    // SAFETY: fresh descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    match readlink(&fd_path(fd.as_fd())?) {
        Ok(link) if link.first() == Some(&b'/') && !link.ends_with(b" (deleted)") => {
            Ok(PathBuf::from(std::ffi::OsString::from_vec(link)))
        }
        _ => std::fs::canonicalize(path),
    }
}

/// A NUL-terminated copy of `bytes`; a path with an inner NUL cannot exist.
/// `/proc/self/fd/N`: the broker's own link to its descriptor `fd` (to reopen it, or to read
/// where it points).
pub fn fd_path(fd: BorrowedFd<'_>) -> io::Result<CString> {
    cstring(format!("/proc/self/fd/{}", fd.as_raw_fd()).as_bytes())
}

/// The pid a /proc path component names (`b"1234"`), if it names one.
pub fn proc_pid(component: &[u8]) -> Option<u32> {
    std::str::from_utf8(component).ok()?.parse().ok()
}

/// Is `pid` the broker itself or one of its threads (whose /proc entries are the broker's)?
pub fn is_broker_task(pid: u32) -> bool {
    pid == std::process::id() || std::path::Path::new(&format!("/proc/self/task/{pid}")).exists()
}

pub fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// `openat2(dir, path, how)`; the result is always close-on-exec in the broker.
pub fn openat2(
    dir: Option<BorrowedFd<'_>>,
    path: &CStr,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    // SAFETY: open_how is plain data; all-zero is its documented default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    if flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE {
        how.mode = mode as u64;
    }
    how.resolve = resolve;
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // No retry on EINTR: a FIFO waiter relies on being interrupted.
    // SAFETY: path is NUL-terminated and how is a valid open_how of the size we pass.
    let r = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd,
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    // SAFETY: openat2 returned a fresh descriptor we now own.
    cvt(r).map(|fd| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    let mut st = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: st has room for a struct stat.
    if unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstat filled it.
    Ok(unsafe { st.assume_init() })
}

pub fn file_type(st: &libc::stat) -> u32 {
    st.st_mode & libc::S_IFMT
}

/// `readlink` into a fresh buffer.
pub fn readlink(path: &CStr) -> io::Result<Vec<u8>> {
    readlinkat(None, path)
}

pub fn readlinkat(dir: Option<BorrowedFd<'_>>, path: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; crate::path::PATH_MAX];
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: buf has buf.len() bytes of room.
    let n = unsafe { libc::readlinkat(dirfd, path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

pub fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    // SAFETY: plain fcntl on a live descriptor.
    let fl = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if fl < 0 {
        return Err(io::Error::last_os_error());
    }
    let new = if on {
        fl | libc::O_NONBLOCK
    } else {
        fl & !libc::O_NONBLOCK
    };
    // SAFETY: as above.
    if new != fl && unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, new) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `F_SETFL`: set the file status flags the kernel lets change (O_APPEND, O_NONBLOCK, ...).
pub fn set_status_flags(fd: BorrowedFd<'_>, flags: i32) -> io::Result<()> {
    // SAFETY: plain fcntl on a live descriptor.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn errno_of(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonicalize_agrees_with_the_walk() {
        let d = std::env::temp_dir().join(format!("canon-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("real/sub")).unwrap();
        std::fs::write(d.join("real/sub/f"), "x").unwrap();
        std::os::unix::fs::symlink("real", d.join("link")).unwrap();
        std::os::unix::fs::symlink("../link/sub/f", d.join("real/up")).unwrap();
        // SAFETY: mkfifo on a fresh path; canonicalize must not block opening it.
        let fifo = cstring(d.join("fifo").as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        for p in ["link/sub/f", "real/up", "link/./sub/../sub", "fifo", "."] {
            let p = d.join(p);
            assert_eq!(
                canonicalize(&p).unwrap(),
                std::fs::canonicalize(&p).unwrap(),
                "{}",
                p.display()
            );
        }
        std::os::unix::fs::symlink("nowhere", d.join("dangling")).unwrap();
        for p in ["missing", "dangling", "real/sub/f/below"] {
            assert!(canonicalize(&d.join(p)).is_err(), "{p}");
        }
        std::fs::remove_dir_all(&d).unwrap();
    }
}
