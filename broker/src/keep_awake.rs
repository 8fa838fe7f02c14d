//! `KeepAwake`: while requests stream in, keep the other CPUs from going idle, so that the
//! scheduler keeps the target and the broker on one CPU.
//!
//! A brokered open puts each side to sleep twice (the notification, then `ADDFD`, which waits
//! for the target to install the descriptor). The listener's synchronous wake-up brings the
//! broker to the target's CPU, but the kernel wakes the target with a plain completion, and the
//! scheduler sends a woken task to an idle CPU when there is one. On these VMs an idle vCPU has
//! halted, and waking it costs ~20 µs, several times the whole request. With every other CPU
//! busy, the woken side waits its turn on the CPU it shares with the other side instead.
//!
//! The helpers spin with `sched_yield`, so any runnable thread (the target's own included)
//! takes their CPU at once. They spin from the target's exec (its loader's opens are a burst)
//! and again from the second request of a burst, and stop `SPIN_WINDOW` after the last
//! request: an idle or rarely-opening target costs nothing. The first thread is made while the
//! child sets itself up (and makes the others), and they sleep on a futex between bursts.
//! benchmarks.md measures what this buys and what it costs.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Requests closer together than this are a burst worth spinning for.
const BURST_GAP: Duration = Duration::from_micros(200);
/// How long the helpers keep spinning after the last request.
const SPIN_WINDOW: Duration = Duration::from_millis(1);
/// At most this many helpers, whatever the machine.
const MAX_HELPERS: usize = 3;

const IDLE: u32 = 0;
const SPINNING: u32 = 1;

struct Shared {
    started: Instant,
    /// Nanoseconds since `started` at the last request.
    last_request: AtomicU64,
    /// A futex word: `IDLE` (helpers asleep) or `SPINNING`.
    state: AtomicU32,
    stop: AtomicBool,
    /// Cleared once there are known to be no helpers: requests then skip them entirely.
    active: AtomicBool,
}

impl Shared {
    fn now(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    /// Set the helpers spinning (or, with `stop` set, on their way out).
    fn spin(&self) {
        self.state.store(SPINNING, Ordering::Release);
        futex_wake(&self.state);
    }
}

/// The helpers of one run; they are told to stop when this is dropped, and exit on their own.
pub struct KeepAwake {
    shared: Arc<Shared>,
}

impl KeepAwake {
    /// Helpers for every CPU the broker may use but one (the one the target and the broker
    /// share), at most `MAX_HELPERS`; none on a single CPU, or under a CPU quota of one. They
    /// start asleep. Those that cannot start only cost speed.
    ///
    /// Only the first is started here, and only if the affinity mask has a second CPU. It
    /// works out how many are wanted (the quota takes a dozen cgroup files to read, 0.05 ms)
    /// and starts the others, off the broker's own path.
    pub fn new() -> KeepAwake {
        let shared = Arc::new(Shared {
            started: Instant::now(),
            last_request: AtomicU64::new(u64::MAX),
            state: AtomicU32::new(IDLE),
            stop: AtomicBool::new(false),
            active: AtomicBool::new(affinity_cpus() > 1),
        });
        if shared.active.load(Ordering::Relaxed) && start_helper(&shared, first_helper).is_err() {
            shared.active.store(false, Ordering::Relaxed);
        }
        KeepAwake { shared }
    }

    /// Spin now, as if a burst had begun: the target is about to exec, and its loader's opens
    /// follow one another closely.
    pub fn wake(&self) {
        if !self.shared.active.load(Ordering::Relaxed) {
            return;
        }
        self.shared
            .last_request
            .store(self.shared.now(), Ordering::Relaxed);
        self.shared.spin();
    }

    /// Note a request; the second of a burst wakes the helpers.
    pub fn request(&self) {
        if !self.shared.active.load(Ordering::Relaxed) {
            return;
        }
        let s = &self.shared;
        let now = s.now();
        let last = s.last_request.swap(now, Ordering::Relaxed);
        // The first request (last is u64::MAX) starts no burst.
        if now
            .checked_sub(last)
            .is_none_or(|gap| gap > BURST_GAP.as_nanos() as u64)
            || s.state.load(Ordering::Relaxed) == SPINNING
        {
            return;
        }
        s.spin();
    }
}

impl Default for KeepAwake {
    fn default() -> Self {
        KeepAwake::new()
    }
}

impl Drop for KeepAwake {
    /// Not joined: waiting for the threads to exit would add to every run's end, and each
    /// exits at its next look at `stop`.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.spin();
    }
}

fn start_helper(shared: &Arc<Shared>, run: fn(&Arc<Shared>)) -> std::io::Result<()> {
    let shared = Arc::clone(shared);
    std::thread::Builder::new()
        .name("keep-awake".into())
        .stack_size(64 * 1024)
        .spawn(move || run(&shared))
        .map(drop)
}

/// The first helper: start the others, or none and go, then spin like them.
fn first_helper(s: &Arc<Shared>) {
    let wanted = wanted_helpers();
    if wanted == 0 {
        s.active.store(false, Ordering::Relaxed);
        return;
    }
    for _ in 1..wanted {
        let _ = start_helper(s, |s| helper(s));
    }
    helper(s);
}

/// One helper per CPU the broker may use (affinity and CPU quota) but one, at most
/// `MAX_HELPERS`.
fn wanted_helpers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_sub(1)
        .min(MAX_HELPERS)
}

fn helper(s: &Shared) {
    let window = SPIN_WINDOW.as_nanos() as u64;
    while !s.stop.load(Ordering::Acquire) {
        if s.state.load(Ordering::Acquire) == IDLE {
            futex_wait(&s.state, IDLE);
            continue;
        }
        // SAFETY: sched_yield has no preconditions.
        unsafe { libc::sched_yield() };
        if s.now()
            .saturating_sub(s.last_request.load(Ordering::Relaxed))
            > window
        {
            s.state.store(IDLE, Ordering::Release);
        }
    }
}

fn futex_wait(word: &AtomicU32, expected: u32) {
    // SAFETY: a private futex wait on a live atomic; returns at once if the value differs.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            std::ptr::null::<libc::timespec>(),
        )
    };
}

fn futex_wake(word: &AtomicU32) {
    // SAFETY: a private futex wake on a live atomic.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        )
    };
}

/// CPUs in the broker's affinity mask (one system call; `available_parallelism` also reads the
/// cgroup's CPU quota, which [`first_helper`] does).
fn affinity_cpus() -> usize {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) != 0 {
            return 1;
        }
        libc::CPU_COUNT(&set) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The helpers go idle on their own once the window has passed (generous bound: this
    /// checks that they stop, not how fast).
    fn wait_until_idle(k: &KeepAwake) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while k.shared.state.load(Ordering::Acquire) != IDLE {
            assert!(Instant::now() < deadline, "the helpers never went idle");
            std::thread::sleep(SPIN_WINDOW);
        }
    }

    #[test]
    fn the_exec_wakes_the_helpers_and_they_go_idle() {
        let k = KeepAwake::new();
        if wanted_helpers() == 0 {
            return; // one CPU: nothing to keep awake
        }
        assert_eq!(k.shared.state.load(Ordering::Acquire), IDLE, "made asleep");
        k.wake();
        assert_eq!(k.shared.state.load(Ordering::Acquire), SPINNING);
        wait_until_idle(&k);
    }

    #[test]
    fn helpers_spin_on_a_burst_and_go_idle() {
        let k = KeepAwake::new();
        if wanted_helpers() == 0 {
            return; // one CPU: nothing to keep awake
        }
        k.request();
        assert_eq!(
            k.shared.state.load(Ordering::Acquire),
            IDLE,
            "one request is no burst"
        );
        k.request();
        assert_eq!(k.shared.state.load(Ordering::Acquire), SPINNING);
        wait_until_idle(&k);
        drop(k);
    }
}
