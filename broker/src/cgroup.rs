//! The run's own cgroup (v2): a membership the target cannot leave (its filter keeps it from
//! opening cgroup files, and Landlock from writing them), one write that kills the whole tree
//! (`cgroup.kill`, setsid daemons included), the tree's CPU time (`cpu.stat`, present without
//! any controller), and `memory.max` / `pids.max` where those controllers are delegated.
//!
//! The cgroup is made under the broker's own (`/proc/self/cgroup`), so it needs nothing but a
//! cgroup the broker may write: root's, or one delegated to the user (systemd `Delegate=yes`).
//! If the broker is the only process in its cgroup and a controller cannot be enabled there
//! (cgroup v2 allows controllers only for cgroups without processes of their own), the broker
//! first moves itself into a leaf beside the runs.
//!
//! A [`DeathGuard`] covers the broker's own death: a tiny process outside the run that kills
//! the run cgroup when the broker's end of a pipe closes, however the broker ended.

use std::ffi::CString;
use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use child_shim::raw::{spawn_vm, Stack};

use crate::sys::lift;

/// The controllers a run would like.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Controllers {
    pub memory: bool,
    pub pids: bool,
}

/// The tree's CPU time so far, from `cpu.stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuUsage {
    pub user: Duration,
    pub system: Duration,
}

impl CpuUsage {
    pub fn total(&self) -> Duration {
        self.user + self.system
    }
}

/// One run's cgroup; removed (after killing what is left in it) on drop.
#[derive(Debug)]
pub struct RunCgroup {
    dir: PathBuf,
    /// The directory, open for `CLONE_INTO_CGROUP`.
    fd: OwnedFd,
    controllers: Controllers,
    /// Armed before the directory is made: from its first moment, a cgroup whose broker dies
    /// is killed and removed. Dropped (and reaped) after the directory is removed.
    guard: DeathGuard,
}

/// Where cgroup v2 is usually mounted, on its own or beside v1 controllers.
const USUAL_MOUNTS: [&str; 2] = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"];
const CGROUP2_SUPER_MAGIC: libc::c_long = 0x6367_7270;

/// Where the cgroup v2 hierarchy is mounted, and the broker's own cgroup in it.
fn own_cgroup() -> Result<PathBuf, String> {
    let cgroups = read_small("/proc/self/cgroup").map_err(|e| format!("/proc/self/cgroup: {e}"))?;
    let own = cgroups
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("the broker is in no cgroup v2 hierarchy")?;
    // The usual mount first: /proc/self/mountinfo costs 30-90 µs to generate. A cgroup2 mount
    // there whose root is not the hierarchy's (a bind of a subtree) would rarely hold the same
    // relative path too; mountinfo below handles every other layout.
    if let Some(dir) = USUAL_MOUNTS
        .into_iter()
        .filter(|m| is_cgroup2(m))
        .find_map(|m| beneath(m, "/", own))
    {
        return Ok(dir);
    }
    let mounts = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("/proc/self/mountinfo: {e}"))?;
    mounts
        .lines()
        .find_map(|line| {
            let (fields, rest) = line.split_once(" - ")?;
            if !rest.starts_with("cgroup2 ") {
                return None;
            }
            let f: Vec<&str> = fields.split(' ').collect();
            beneath(
                f.get(4).copied().unwrap_or(""),
                f.get(3).copied().unwrap_or("/"),
                own,
            )
        })
        .ok_or_else(|| "no cgroup v2 mount holds the broker's cgroup".into())
}

/// The directory of cgroup `own` under a cgroup2 `mount` of the hierarchy's `root`, if it is
/// there.
fn beneath(mount: &str, root: &str, own: &str) -> Option<PathBuf> {
    let rel = own.strip_prefix(root.trim_end_matches('/'))?;
    // A whole path component: the root /x does not hold /xa.
    if !(rel.is_empty() || rel.starts_with('/')) {
        return None;
    }
    let rel = rel.trim_matches('/');
    let dir = if rel.is_empty() {
        PathBuf::from(mount)
    } else {
        Path::new(mount).join(rel)
    };
    dir.is_dir().then_some(dir)
}

fn is_cgroup2(path: &str) -> bool {
    let Ok(c) = CString::new(path) else {
        return false;
    };
    // SAFETY: statfs writes into a zeroed struct of the right type.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as libc::c_long == CGROUP2_SUPER_MAGIC
    }
}

/// A short kernel-generated file (procfs, cgroupfs), read with a page-sized buffer: these
/// report a size of 0, so `fs::read_to_string` starts with 32-byte reads and grows.
fn read_small(path: impl AsRef<Path>) -> io::Result<String> {
    read_text(fs::File::open(path)?)
}

/// What `file` holds, in one page-sized read (see [`read_small`]).
fn read_text(mut file: fs::File) -> io::Result<String> {
    let mut buf = Vec::with_capacity(4096);
    std::io::Read::read_to_end(&mut file, &mut buf)?;
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn has_word(text: &str, word: &str) -> bool {
    text.split_whitespace().any(|w| w == word)
}

/// Enable the wanted controllers for `parent`'s children, as far as they are available there.
fn enable(parent: &Path, want: Controllers) -> Controllers {
    if want == Controllers::default() {
        return want; // nothing to enable, nothing to read
    }
    let available = read_small(parent.join("cgroup.controllers")).unwrap_or_default();
    let mut got = Controllers::default();
    for (wanted, name, slot) in [
        (want.memory, "memory", &mut got.memory),
        (want.pids, "pids", &mut got.pids),
    ] {
        if !wanted || !has_word(&available, name) {
            continue;
        }
        let enabled = read_small(parent.join("cgroup.subtree_control")).unwrap_or_default();
        *slot = has_word(&enabled, name)
            || fs::write(parent.join("cgroup.subtree_control"), format!("+{name}")).is_ok();
    }
    got
}

impl RunCgroup {
    /// Make a cgroup for one run under the broker's own; `Err` says why there is none.
    pub fn create(want: Controllers) -> Result<RunCgroup, String> {
        static RUNS: AtomicU32 = AtomicU32::new(0);
        let parent = own_cgroup()?;
        let mut controllers = enable(&parent, want);
        if controllers != want && is_alone_in(&parent) {
            // Controllers need a parent without processes of its own: step aside into a leaf.
            let leaf = parent.join("broker-supervisor");
            let _ = fs::create_dir(&leaf);
            if fs::write(leaf.join("cgroup.procs"), std::process::id().to_string()).is_ok() {
                controllers = enable(&parent, want);
            }
        }
        let name = format!(
            "broker-{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::Relaxed)
        );
        let dir = parent.join(name);
        let guard =
            DeathGuard::arm(&dir).map_err(|e| format!("cannot start the death guard: {e}"))?;
        fs::create_dir(&dir)
            .map_err(|e| format!("cannot create a cgroup in {}: {e}", parent.display()))?;
        let fd = fs::File::open(&dir)
            .map(OwnedFd::from)
            .map_err(|e| format!("cannot open {}: {e}", dir.display()));
        let fd = match fd {
            Ok(fd) => fd,
            Err(e) => {
                let _ = fs::remove_dir(&dir);
                return Err(e);
            }
        };
        let cg = RunCgroup {
            dir,
            fd,
            controllers,
            guard,
        };
        // cgroup.kill (Linux 5.14) is what ends the tree; without it the cgroup is of no use.
        if cg.open("cgroup.kill", libc::O_PATH).is_err() {
            return Err("the kernel has no cgroup.kill (Linux 5.14+)".into());
        }
        Ok(cg)
    }

    /// The run cgroup's directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The controllers this run has.
    pub fn controllers(&self) -> Controllers {
        self.controllers
    }

    /// Write `value` to the cgroup's `file`.
    pub fn write(&self, file: &str, value: &str) -> io::Result<()> {
        self.open(file, libc::O_WRONLY)?.write_all(value.as_bytes())
    }

    fn read(&self, file: &str) -> io::Result<String> {
        read_text(self.open(file, libc::O_RDONLY)?)
    }

    /// The cgroup's `file`, looked up from the cgroup's own descriptor: one path component
    /// instead of the whole cgroupfs path, for each of a run's reads and writes.
    fn open(&self, file: &str, flags: i32) -> io::Result<fs::File> {
        let name = crate::sys::cstring(file.as_bytes())?;
        crate::sys::openat2(
            Some(self.fd.as_fd()),
            &name,
            flags,
            0,
            libc::RESOLVE_BENEATH,
        )
        .map(fs::File::from)
    }

    /// The cgroup's directory, for `CLONE_INTO_CGROUP`: a child started there needs no
    /// migration afterwards, which costs milliseconds (the kernel waits for an RCU grace
    /// period).
    pub fn dir_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Move process `pid` (and all its threads) into the cgroup.
    pub fn add(&self, pid: libc::pid_t) -> io::Result<()> {
        self.write("cgroup.procs", &pid.to_string())
    }

    /// SIGKILL everything in the cgroup, including processes forked meanwhile.
    pub fn kill(&self) -> io::Result<()> {
        self.write("cgroup.kill", "1")
    }

    /// Does any process remain in it?
    pub fn populated(&self) -> bool {
        self.read("cgroup.events")
            .map(|e| e.lines().any(|l| l == "populated 1"))
            .unwrap_or(false)
    }

    /// The tree's CPU time so far (including processes that have exited).
    pub fn cpu_usage(&self) -> Option<CpuUsage> {
        let stat = self.read("cpu.stat").ok()?;
        let field = |name: &str| {
            stat.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<u64>().ok())
        };
        Some(CpuUsage {
            user: Duration::from_micros(field("user_usec")?),
            system: Duration::from_micros(field("system_usec")?),
        })
    }

    /// How many times the kernel's OOM killer struck in the cgroup (needs the memory controller).
    pub fn oom_kills(&self) -> u64 {
        self.read("memory.events")
            .ok()
            .and_then(|e| {
                e.lines()
                    .find_map(|l| l.strip_prefix("oom_kill ")?.parse().ok())
            })
            .unwrap_or(0)
    }

    /// The death guard's pid (a child of the broker that is not part of the run).
    pub fn guard_pid(&self) -> libc::pid_t {
        self.guard.pid()
    }

    /// The tree is gone (killed, or ended by itself): the guard may go now, while the broker
    /// finishes up. A broker killed after this can leave the cgroup behind, empty, but nothing
    /// running.
    pub fn stand_down_guard(&mut self) {
        self.guard.stand_down();
    }
}

impl Drop for RunCgroup {
    fn drop(&mut self) {
        // Usually the tree is gone already and rmdir is all it takes.
        if fs::remove_dir(&self.dir).is_ok() {
            return;
        }
        let _ = self.kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.populated() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = fs::remove_dir(&self.dir);
    }
}

/// Is the broker the only process in `cgroup`?
fn is_alone_in(cgroup: &Path) -> bool {
    let me = std::process::id().to_string();
    fs::read_to_string(cgroup.join("cgroup.procs"))
        .map(|procs| procs.lines().all(|p| p == me))
        .unwrap_or(false)
}

/// A process outside the run that kills the run cgroup when the broker is gone. It blocks on a
/// pipe whose only write end the broker holds; end of file (the broker exited, was killed, or
/// dropped the guard) makes it write `cgroup.kill`, remove the cgroup, and exit. A byte on the
/// pipe ([`RunCgroup::stand_down_guard`]) makes it exit at once.
///
/// It shares the broker's memory (`CLONE_VM`) and runs on a stack of its own: a fork would
/// copy the broker's page tables to start it and tear them down when it exits, about 0.1 ms
/// of every run. The memory stays mapped while either process lives, so the guard outlives a
/// killed broker; the broker is not dumpable, and that holds for the memory they share.
#[derive(Debug)]
pub struct DeathGuard {
    pid: libc::pid_t,
    /// Closing it wakes the guard.
    alive: Option<OwnedFd>,
    /// What the guard reads and runs on: dropped after `Drop::drop` has reaped it.
    _setup: Box<GuardSetup>,
    _stack: Stack,
}

/// The guard's arguments, prepared before it starts.
#[derive(Debug)]
struct GuardSetup {
    /// The cgroup and its `cgroup.kill`, which need not exist yet.
    path: CString,
    kill: CString,
    alive: OwnedFd,
}

const GUARD_STACK: usize = 64 * 1024;

impl DeathGuard {
    /// Start a guard for the cgroup `dir`, which may not exist yet.
    fn arm(dir: &Path) -> io::Result<DeathGuard> {
        let (read_end, write_end) = crate::sys::pipe()?;
        let setup = Box::new(GuardSetup {
            path: crate::sys::cstring(dir.as_os_str().as_bytes())?,
            kill: crate::sys::cstring(dir.join("cgroup.kill").as_os_str().as_bytes())?,
            // Above the low descriptor the guard moves it to.
            alive: lift(read_end)?,
        });
        let stack = Stack::new(GUARD_STACK)?;
        // SAFETY: the guard runs guard_entry on its own stack, making only raw system calls on
        // `setup`; both outlive it (dropped after the guard has been reaped).
        let pid = unsafe {
            spawn_vm(
                &stack,
                None,
                guard_entry,
                (&*setup as *const GuardSetup).cast(),
            )
        };
        if pid < 0 {
            return Err(io::Error::from_raw_os_error(-pid as i32));
        }
        Ok(DeathGuard {
            pid: pid as libc::pid_t,
            alive: Some(write_end),
            _setup: setup,
            _stack: stack,
        })
    }

    /// The guard's process id.
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// Tell the guard its work is done: it exits without killing, while the broker removes
    /// the cgroup itself. Only once the tree is gone.
    fn stand_down(&mut self) {
        if let Some(alive) = self.alive.take() {
            // SAFETY: a one-byte write to our own pipe.
            unsafe { libc::write(alive.as_raw_fd(), b"0".as_ptr().cast(), 1) };
        }
    }
}

impl Drop for DeathGuard {
    /// Closing the pipe lets the guard go. Once it has exited (whoever reaped it: `waitpid`
    /// fails with ECHILD only for a child that is gone), nothing runs on its stack or reads
    /// its setup any more: the fields that hold them are dropped after this.
    fn drop(&mut self) {
        drop(self.alive.take());
        loop {
            // SAFETY: wait for our own child; it exits at once when its pipe closes.
            let r = unsafe { libc::waitpid(self.pid, std::ptr::null_mut(), 0) };
            if r >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                break;
            }
        }
    }
}

/// Where the guard starts, on its own stack.
///
/// # Safety
/// `arg` is the GuardSetup that DeathGuard keeps alive for the guard's life.
unsafe extern "C" fn guard_entry(arg: *const libc::c_void) -> ! {
    let setup = &*(arg as *const GuardSetup);
    guard_main(setup.alive.as_raw_fd(), &setup.kill, &setup.path)
}

/// The guard's whole life. Raw system calls only: it shares the broker's memory, and the C
/// library's wrappers would write `errno` in the broker's main thread's thread-local storage.
unsafe fn guard_main(alive: RawFd, kill: &CString, path: &CString) -> ! {
    use child_shim::raw::syscall;
    // Out of the broker's process group and session, so that a signal to the broker's job
    // does not take the guard with it. The signals a terminal sends are ignored, and every
    // handler the broker installed is reset: they would run the broker's code on our stack.
    syscall(libc::SYS_setsid, &[]);
    child_shim::set_dispositions(&[
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGPIPE,
    ]);
    if syscall(libc::SYS_dup3, &[alive as usize, 0, 0]) < 0 {
        guard_exit();
    }
    syscall(libc::SYS_close_range, &[1, u32::MAX as usize, 0]);
    let mut b = [0u8; 1];
    loop {
        let n = syscall(libc::SYS_read, &[0, b.as_mut_ptr() as usize, 1]);
        if n == 1 {
            // The broker stood the guard down: the tree is gone.
            guard_exit();
        }
        if n == 0 || (n < 0 && n != -(libc::EINTR as isize)) {
            break;
        }
    }
    // The broker is gone. No cgroup (it died before making it, or removed it): nothing to do.
    let fd = syscall(
        libc::SYS_openat,
        &[
            libc::AT_FDCWD as usize,
            kill.as_ptr() as usize,
            (libc::O_WRONLY | libc::O_CLOEXEC) as usize,
        ],
    );
    if fd < 0 {
        guard_exit();
    }
    syscall(libc::SYS_write, &[fd as usize, b"1".as_ptr() as usize, 1]);
    syscall(libc::SYS_close, &[fd as usize]);
    // rmdir succeeds once the killed processes are gone.
    let pause = libc::timespec {
        tv_sec: 0,
        tv_nsec: 5_000_000,
    };
    for _ in 0..2000 {
        let r = syscall(
            libc::SYS_unlinkat,
            &[
                libc::AT_FDCWD as usize,
                path.as_ptr() as usize,
                libc::AT_REMOVEDIR as usize,
            ],
        );
        if r != -(libc::EBUSY as isize) {
            break;
        }
        syscall(
            libc::SYS_nanosleep,
            &[&pause as *const libc::timespec as usize, 0],
        );
    }
    guard_exit();
}

/// End the guard alone (`exit`, not `exit_group`; it is its own thread group anyway).
unsafe fn guard_exit() -> ! {
    loop {
        child_shim::raw::syscall(libc::SYS_exit, &[0]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cgroup_is_found_beneath_its_mount_whatever_root_the_mount_has() {
        let m = std::env::temp_dir().join(format!("cgroup-unit-{}", std::process::id()));
        fs::create_dir_all(m.join("a/b")).unwrap();
        let mount = m.to_str().unwrap();
        assert_eq!(beneath(mount, "/", "/a/b"), Some(m.join("a/b")));
        assert_eq!(beneath(mount, "/", "/"), Some(m.clone()));
        // A mount of the subtree /x shows /x/a/b at a/b, and /x itself at its top.
        assert_eq!(beneath(mount, "/x/", "/x/a/b"), Some(m.join("a/b")));
        assert_eq!(beneath(mount, "/x", "/x"), Some(m.clone()));
        // Not under the mount's root, or not there: another mount must hold it.
        assert_eq!(beneath(mount, "/y", "/x/a/b"), None);
        assert_eq!(beneath(mount, "/x", "/xa/b"), None);
        assert_eq!(beneath(mount, "/", "/a/missing"), None);
        fs::remove_dir_all(&m).unwrap();
    }
}
