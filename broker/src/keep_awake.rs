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
//! takes their CPU at once. They start on the second request of a burst and stop
//! [`SPIN_WINDOW`] after the last one: an idle or rarely-opening target costs nothing.
//! benchmarks.md measures what this buys and what it costs.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
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
}

impl Shared {
    fn now(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }
}

/// The helpers of one run; they are stopped and joined when this is dropped.
pub struct KeepAwake {
    shared: Arc<Shared>,
    helpers: usize,
    threads: Vec<JoinHandle<()>>,
}

impl KeepAwake {
    /// Helpers for every CPU the broker may run on but one (the one the target and the broker
    /// share), at most [`MAX_HELPERS`]. None on a single CPU. Threads start at the first burst.
    pub fn new() -> KeepAwake {
        KeepAwake {
            shared: Arc::new(Shared {
                started: Instant::now(),
                last_request: AtomicU64::new(u64::MAX),
                state: AtomicU32::new(IDLE),
                stop: AtomicBool::new(false),
            }),
            helpers: usable_cpus().saturating_sub(1).min(MAX_HELPERS),
            threads: Vec::new(),
        }
    }

    /// Note a request; the second of a burst wakes the helpers.
    pub fn request(&mut self) {
        if self.helpers == 0 {
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
        if self.threads.is_empty() {
            self.start();
            if self.helpers == 0 {
                return;
            }
        }
        self.shared.state.store(SPINNING, Ordering::Release);
        futex_wake(&self.shared.state);
    }

    /// Start the helpers. Those that cannot start only cost speed; if none can, bursts no
    /// longer try (so a failing spawn is not retried on every request).
    fn start(&mut self) {
        for _ in 0..self.helpers {
            let shared = Arc::clone(&self.shared);
            if let Ok(t) = std::thread::Builder::new()
                .name("keep-awake".into())
                .stack_size(64 * 1024)
                .spawn(move || helper(&shared))
            {
                self.threads.push(t);
            }
        }
        self.helpers = self.threads.len();
    }
}

impl Default for KeepAwake {
    fn default() -> Self {
        KeepAwake::new()
    }
}

impl Drop for KeepAwake {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.state.store(SPINNING, Ordering::Release);
        futex_wake(&self.shared.state);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
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

/// CPUs in the broker's affinity mask.
fn usable_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_start_on_a_burst_and_stop_with_the_run() {
        let mut k = KeepAwake::new();
        k.helpers = 2;
        k.request();
        assert!(k.threads.is_empty(), "one request is not a burst");
        k.request();
        assert_eq!(k.threads.len(), 2);
        assert_eq!(k.shared.state.load(Ordering::Acquire), SPINNING);
        // The helpers go idle on their own once the window has passed (generous bound: this
        // checks that they stop, not how fast).
        let deadline = Instant::now() + Duration::from_secs(10);
        while k.shared.state.load(Ordering::Acquire) != IDLE {
            assert!(Instant::now() < deadline, "the helpers never went idle");
            std::thread::sleep(SPIN_WINDOW);
        }
        drop(k);
    }
}
