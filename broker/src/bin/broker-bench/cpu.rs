//! Placement, clocks and what the machine is.

/// Run this thread (and what it forks) on CPU 0 only.
pub fn pin_to_cpu0() {
    // SAFETY: a zeroed cpu_set_t with CPU 0 set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Undo [`pin_to_cpu0`]: every online CPU.
pub fn unpin() {
    // SAFETY: as above, with every CPU set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for c in 0..online() {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Online CPUs (not the affinity mask, which pinning narrows).
pub fn online() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize
}

/// CLOCK_MONOTONIC in ns, callable after fork.
pub fn monotonic_ns() -> i64 {
    // SAFETY: clock_gettime writes one timespec.
    unsafe {
        let mut t: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t);
        t.tv_sec * 1_000_000_000 + t.tv_nsec
    }
}

/// CPU time (user + system) this process has used, in ns.
pub fn self_cpu_ns() -> i64 {
    // SAFETY: getrusage writes one rusage.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    rusage_ns(&ru)
}

pub fn rusage_ns(ru: &libc::rusage) -> i64 {
    let tv = |t: libc::timeval| t.tv_sec * 1_000_000_000 + t.tv_usec * 1000;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

pub fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| format!("Linux {}", s.trim()))
        .unwrap_or_default()
}

pub fn machine() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
