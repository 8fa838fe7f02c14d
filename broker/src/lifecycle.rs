//! The run as a whole: its process tree, how it is ended, the clocks that end it, and what it
//! used.
//!
//! [`Tree`] ends every process the target started, whether or not it called setsid: through the
//! run cgroup's `cgroup.kill` when there is one, otherwise by walking the broker's descendants
//! (the broker is a child subreaper, so nothing the target starts can leave its subtree while
//! the broker lives). [`Watch`] is the wall clock and the tree-wide CPU check. [`Usage`] adds up
//! the resource usage of every process the broker reaps.

use std::time::{Duration, Instant};

use crate::cgroup::RunCgroup;

/// Why the broker ended the run itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// `--wall-time` ran out.
    WallTime,
    /// The tree used up `--cpu-time` (seen in the run cgroup's `cpu.stat`).
    CpuTime,
    /// The broker was told to stop twice (the first signal is passed on to the target).
    Stopped,
}

/// The target's process tree.
pub struct Tree {
    cgroup: Option<RunCgroup>,
}

impl Tree {
    /// A tree kept in `cgroup`, if there is one (with its death guard).
    pub fn new(cgroup: Option<RunCgroup>) -> Tree {
        Tree { cgroup }
    }

    pub fn cgroup(&self) -> Option<&RunCgroup> {
        self.cgroup.as_ref()
    }

    /// The death guard's pid (a child of the broker that is not part of the run).
    pub fn guard_pid(&self) -> Option<libc::pid_t> {
        self.cgroup.as_ref().map(RunCgroup::guard_pid)
    }

    /// SIGKILL every process of the run.
    pub fn kill(&self) {
        if let Some(cg) = &self.cgroup {
            if cg.kill().is_ok() {
                return;
            }
        }
        kill_descendants(self.guard_pid());
    }

    /// The tree is gone (killed, or ended by itself): the guard may go now, while the broker
    /// finishes up.
    pub fn stand_down_guard(&mut self) {
        if let Some(cg) = &mut self.cgroup {
            cg.stand_down_guard();
        }
    }

    /// The run is over: remove its cgroup (killing anything left) and let the guard go.
    pub fn finish(&mut self) {
        drop(self.cgroup.take());
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        self.finish();
    }
}

/// SIGKILL every descendant of the broker but `spare`: children of every broker thread, then
/// their children, breadth first. Processes forked meanwhile are caught by the next call (the
/// supervisor repeats it until the tree is gone).
fn kill_descendants(spare: Option<libc::pid_t>) {
    let mut queue: Vec<libc::pid_t> = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    let children_of = |dir: std::path::PathBuf, queue: &mut Vec<libc::pid_t>| {
        if let Ok(text) = std::fs::read_to_string(dir.join("children")) {
            queue.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<libc::pid_t>().ok()),
            );
        }
    };
    for task in tasks.flatten() {
        children_of(task.path(), &mut queue);
    }
    queue.retain(|&p| Some(p) != spare);
    let mut seen = 0;
    while seen < queue.len() {
        let pid = queue[seen];
        seen += 1;
        // SAFETY: signal a descendant of ours (a reused pid would have to be our child again,
        // since the broker reaps its children only after this).
        unsafe { libc::kill(pid, libc::SIGKILL) };
        if let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for t in threads.flatten() {
                children_of(t.path(), &mut queue);
            }
        }
        if queue.len() > 1_000_000 {
            break;
        }
    }
}

/// The clocks that end a run: the wall-time deadline and the tree-wide CPU-time check.
pub struct Watch {
    pub started: Instant,
    deadline: Option<Instant>,
    cpu_limit: Option<Duration>,
    next_cpu_check: Instant,
}

/// How often the run cgroup's CPU time is read.
pub const CPU_CHECK_EVERY: Duration = Duration::from_millis(20);

impl Watch {
    pub fn new(wall: Option<Duration>, tree_cpu: Option<Duration>) -> Watch {
        let started = Instant::now();
        Watch {
            started,
            deadline: wall.map(|w| started + w),
            cpu_limit: tree_cpu,
            next_cpu_check: started,
        }
    }

    /// How long the supervisor may sleep before the next check; `None`: no clock is running.
    pub fn timeout(&self, now: Instant) -> Option<Duration> {
        let wall = self.deadline.map(|d| d.saturating_duration_since(now));
        let cpu = self
            .cpu_limit
            .map(|_| self.next_cpu_check.saturating_duration_since(now));
        match (wall, cpu) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Has a limit run out?
    pub fn check(&mut self, now: Instant, cgroup: Option<&RunCgroup>) -> Option<Ending> {
        if self.deadline.is_some_and(|d| now >= d) {
            return Some(Ending::WallTime);
        }
        if let (Some(limit), Some(cg)) = (self.cpu_limit, cgroup) {
            if now >= self.next_cpu_check {
                self.next_cpu_check = now + CPU_CHECK_EVERY;
                if cg.cpu_usage().is_some_and(|u| u.total() >= limit) {
                    return Some(Ending::CpuTime);
                }
            }
        }
        None
    }
}

/// The resource usage of the processes the broker reaped (the target's includes whatever it
/// reaped itself).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub user: Duration,
    pub system: Duration,
    /// The largest resident set of any of them, in KiB.
    pub max_rss_kib: u64,
}

impl Usage {
    pub fn add(&mut self, ru: &libc::rusage) {
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        self.user += tv(ru.ru_utime);
        self.system += tv(ru.ru_stime);
        self.max_rss_kib = self.max_rss_kib.max(ru.ru_maxrss as u64);
    }
}
