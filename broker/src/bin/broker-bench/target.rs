//! The programs the benchmark runs, natively and under the broker: this same binary with a
//! subcommand. Each prints its figures on one line of stdout, measured inside the process.

use std::ffi::CString;
use std::io::{Read, Write};
use std::time::Instant;

use crate::cpu;

/// Run the subcommand in `args` (after the program name) if it is one; false otherwise.
pub fn dispatch(args: &[String]) -> bool {
    let num = |i: usize| -> u64 { args[i].parse().expect("a number") };
    match args.first().map(String::as_str) {
        Some("open-loop") => open_loop(&args[1], num(2)),
        Some("open-then-wait") => open_then_wait(&args[1], num(2)),
        Some("open-threads") => open_threads(&args[1], num(2) as usize, num(3)),
        Some("getpid-loop") => getpid_loop(num(1), false),
        Some("getpid-filtered") => getpid_loop(num(1), true),
        Some("fifo-read") => fifo_read(&args[1]),
        _ => return false,
    }
    true
}

fn open_close(path: &CString) {
    // SAFETY: a NUL-terminated path; the descriptor is closed at once.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    assert!(fd >= 0, "open: {}", std::io::Error::last_os_error());
    // SAFETY: our own descriptor.
    unsafe { libc::close(fd) };
}

/// `open-loop PATH N`: ns per open+close, and this process's CPU ns in all.
fn open_loop(path: &str, n: u64) {
    let c = CString::new(path).unwrap();
    let start = Instant::now();
    for _ in 0..n {
        open_close(&c);
    }
    let per = start.elapsed().as_nanos() as f64 / n as f64;
    println!("{per} {}", cpu::self_cpu_ns());
}

/// `open-then-wait PATH N`: open+close N times, say `ready`, then wait for stdin to close
/// (while the benchmark reads the broker's memory figures).
fn open_then_wait(path: &str, n: u64) {
    let c = CString::new(path).unwrap();
    for _ in 0..n {
        open_close(&c);
    }
    println!("ready");
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

/// `open-threads PATH THREADS N`: THREADS threads open+close N times each, all at once.
/// Prints the wall ns for all of them and the longest single open+close in ns.
fn open_threads(path: &str, threads: usize, n: u64) {
    let c = CString::new(path).unwrap();
    let barrier = std::sync::Barrier::new(threads + 1);
    let (wall, worst) = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (c, barrier) = (&c, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    let mut worst = 0u128;
                    for _ in 0..n {
                        let t = Instant::now();
                        open_close(c);
                        worst = worst.max(t.elapsed().as_nanos());
                    }
                    worst
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let worst = workers.into_iter().map(|w| w.join().unwrap()).max();
        (start.elapsed().as_nanos(), worst.unwrap_or(0))
    });
    println!("{wall} {worst}");
}

/// `getpid-loop N` / `getpid-filtered N`: ns per raw getpid, optionally under a filter that
/// allows everything (the cost of having any seccomp filter at all).
fn getpid_loop(n: u64, filtered: bool) {
    if filtered {
        // SAFETY: installs a filter on this process only.
        let r = unsafe { crate::mini::install(&crate::mini::ALLOW_ALL, false) };
        assert_eq!(r, 0, "seccomp: {}", std::io::Error::last_os_error());
    }
    let start = Instant::now();
    for _ in 0..n {
        // SAFETY: getpid has no preconditions; raw, so libc cannot cache it.
        unsafe { libc::syscall(libc::SYS_getpid) };
    }
    println!("{}", start.elapsed().as_nanos() as f64 / n as f64);
}

/// `fifo-read PATH`: read the FIFO to its end; ns from the open's return to EOF, and bytes.
fn fifo_read(path: &str) {
    let mut f = std::fs::File::open(path).expect("open the FIFO");
    let mut buf = vec![0u8; 1 << 16];
    let start = Instant::now();
    let mut total = 0u64;
    loop {
        match f.read(&mut buf).expect("read") {
            0 => break,
            k => total += k as u64,
        }
    }
    println!("{} {total}", start.elapsed().as_nanos());
}
