//! `broker-bench`: one run measures native open+close, brokered open+close, the bare seccomp
//! user-notification round trip (a minimal echo supervisor built in here, the floor), and the
//! start-up cost of `broker -- /bin/true`, and reports each against its baseline as a ratio.
//!
//! Usage: `broker-bench [--iterations N] [--write FILE]`. The brokered cases run this same
//! binary as the target (`broker-bench open-loop PATH N`).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("getpid-loop") {
        let n: u64 = args[2].parse().expect("iterations");
        let start = Instant::now();
        for _ in 0..n {
            // SAFETY: getpid has no preconditions; a raw syscall so libc cannot cache it.
            unsafe { libc::syscall(libc::SYS_getpid) };
        }
        println!("{}", start.elapsed().as_nanos() as f64 / n as f64);
        return;
    }
    if args.get(1).map(String::as_str) == Some("open-loop") {
        let n: u64 = args[3].parse().expect("iterations");
        println!("{}", open_loop(&args[2], n));
        return;
    }
    let mut iterations = 20_000u64;
    let mut write: Option<PathBuf> = None;
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--iterations" => {
                iterations = args[i + 1].parse().expect("--iterations N");
                i += 1;
            }
            "--write" => {
                write = Some(PathBuf::from(&args[i + 1]));
                i += 1;
            }
            other => panic!("unknown argument {other}"),
        }
        i += 1;
    }
    let report = run(iterations);
    print!("{report}");
    if let Some(path) = write {
        std::fs::write(&path, report).expect("write report");
        eprintln!("wrote {}", path.display());
    }
}

/// ns per open+close of `path`, measured inside the process that opens.
fn open_loop(path: &str, n: u64) -> f64 {
    let c = CString::new(path).unwrap();
    let start = Instant::now();
    for _ in 0..n {
        // SAFETY: NUL-terminated path; the descriptor is closed at once.
        let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        assert!(fd >= 0, "open failed: {}", std::io::Error::last_os_error());
        unsafe { libc::close(fd) };
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .join(name)
}

/// Run `cmd` (which prints ns/op) and parse its answer.
fn measured(cmd: &mut Command) -> f64 {
    let out = cmd.env_remove("LD_LIBRARY_PATH").output().expect("run");
    assert!(
        out.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("ns/op")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn run(n: u64) -> String {
    let me = std::env::current_exe().unwrap();
    let broker = sibling("broker");
    let file = std::env::temp_dir().join(format!("broker-bench-{}", std::process::id()));
    std::fs::write(&file, "bench").unwrap();
    let f = file.to_str().unwrap().to_string();
    let rounds = 5;
    let mut native = Vec::new();
    let mut brokered = Vec::new();
    let mut brokered_pinned = Vec::new();
    let mut audited_pinned = Vec::new();
    let audit = std::env::temp_dir().join(format!("broker-bench-audit-{}", std::process::id()));
    let mut floor_pinned = Vec::new();
    let mut floor = Vec::new();
    let mut getpid_native = Vec::new();
    let mut getpid_brokered = Vec::new();
    let spins = (n * 50).to_string();
    for _ in 0..rounds {
        native.push(measured(Command::new(&me).args([
            "open-loop",
            &f,
            &n.to_string(),
        ])));
        // The same target under the broker: unpinned, on one CPU, and on one CPU with an
        // audit log.
        let under = |pinned: bool, extra: &[&std::ffi::OsStr]| {
            let mut cmd = Command::new(if pinned {
                "taskset"
            } else {
                broker.to_str().unwrap()
            });
            if pinned {
                cmd.args(["-c", "0"]).arg(&broker);
            }
            cmd.args(["--allow-read", &f])
                .args(extra)
                .arg("--")
                .arg(&me);
            cmd.args(["open-loop", &f, &n.to_string()]);
            measured(&mut cmd)
        };
        brokered.push(under(false, &[]));
        brokered_pinned.push(under(true, &[]));
        audited_pinned.push(under(true, &["--audit-log".as_ref(), audit.as_os_str()]));
        let _ = std::fs::remove_file(&audit);
        getpid_native.push(measured(Command::new(&me).args(["getpid-loop", &spins])));
        getpid_brokered.push(measured(
            Command::new(&broker)
                .arg("--")
                .arg(&me)
                .args(["getpid-loop", &spins]),
        ));
        floor_pinned.push(notify_floor(n, true));
        floor.push(notify_floor(n, false));
    }
    let startup_native = startup(Command::new("/bin/true"), 50);
    let mut under = Command::new(&broker);
    under.args(["--", "/bin/true"]);
    let startup_broker = startup(under, 50);
    let _ = std::fs::remove_file(&file);

    let (native, brokered, brokered_pinned) =
        (median(native), median(brokered), median(brokered_pinned));
    let audited_pinned = median(audited_pinned);
    let (getpid_native, getpid_brokered) = (median(getpid_native), median(getpid_brokered));
    let (floor_pinned, floor) = (median(floor_pinned), median(floor));
    let mut s = String::new();
    use std::fmt::Write;
    let _ = writeln!(s, "# Benchmarks\n");
    let _ = writeln!(s, "Generated by `cargo run --release -p broker --bin broker-bench -- --write docs/benchmarks.md`.");
    let _ = writeln!(
        s,
        "Machine: {} ({} CPUs), {}.",
        machine(),
        num_cpus(),
        kernel()
    );
    let _ = writeln!(
        s,
        "Method: medians of {rounds} rounds of {n} calls each, all measured in this one run; \
         open+close is timed inside the target; start-up is the median wall time of 50 runs. \
         \"Unpinned\" rows let the kernel place broker and target, which on these VMs usually \
         means a cross-CPU wake-up per request; \"one CPU\" rows run both under `taskset -c 0`, \
         which isolates the broker's own per-request work. The floor is a minimal supervisor \
         built into this benchmark that answers a notified `getppid` and does nothing else.\n"
    );
    let _ = writeln!(s, "| what | per call | baseline | ratio |");
    let _ = writeln!(s, "|---|---|---|---|");
    let row = |s: &mut String, what: &str, v: f64, base: &str, b: f64| {
        let _ = writeln!(
            s,
            "| {what} | {:.2} µs | {base} {:.2} µs | {:.2}× |",
            v / 1e3,
            b / 1e3,
            v / b
        );
    };
    row(&mut s, "native open+close", native, "itself", native);
    row(
        &mut s,
        "a syscall the filter allows (`getpid`) under the broker",
        getpid_brokered,
        "native",
        getpid_native,
    );
    row(
        &mut s,
        "bare user-notification round trip, one CPU (floor)",
        floor_pinned,
        "itself",
        floor_pinned,
    );
    row(
        &mut s,
        "bare user-notification round trip, unpinned",
        floor,
        "floor",
        floor_pinned,
    );
    row(
        &mut s,
        "brokered open+close, unpinned",
        brokered,
        "native",
        native,
    );
    row(
        &mut s,
        "brokered open+close, unpinned",
        brokered,
        "floor",
        floor_pinned,
    );
    row(
        &mut s,
        "brokered open+close, broker and target on one CPU",
        brokered_pinned,
        "floor",
        floor_pinned,
    );
    row(
        &mut s,
        "the same with `--audit-log` (every decision logged)",
        audited_pinned,
        "without",
        brokered_pinned,
    );
    let _ = writeln!(
        s,
        "| `broker -- /bin/true` wall time | {:.2} ms | `/bin/true` {:.2} ms | {:.2}× (+{:.2} ms) |",
        startup_broker.as_secs_f64() * 1e3,
        startup_native.as_secs_f64() * 1e3,
        startup_broker.as_secs_f64() / startup_native.as_secs_f64(),
        (startup_broker.as_secs_f64() - startup_native.as_secs_f64()) * 1e3
    );
    s
}

fn startup(mut cmd: Command, runs: usize) -> Duration {
    cmd.env_remove("LD_LIBRARY_PATH");
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let st = cmd.status().expect("run");
            assert!(st.success());
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Duration::from_secs_f64(times[runs / 2])
}

/// ns per notified `getppid` answered by a minimal supervisor that does nothing but reply.
fn notify_floor(n: u64, pinned: bool) -> f64 {
    let mut sv = [0; 2];
    // SAFETY: sv has room for two descriptors.
    assert_eq!(
        unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                sv.as_mut_ptr(),
            )
        },
        0
    );
    // SAFETY: fresh descriptors.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(sv[0]), OwnedFd::from_raw_fd(sv[1])) };
    if pinned {
        pin_to_cpu0();
    }
    // SAFETY: single-threaded here; the child only makes raw syscalls and exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe { floor_child(theirs.as_raw_fd(), n) }
    }
    drop(theirs);
    let mut buf = [0u8; 32];
    let (_, listener) = protocol::fdpass::recv_with_fd(ours.as_fd(), &mut buf).expect("listener");
    let listener = broker::notify::Listener::new(listener.expect("fd")).unwrap();
    let mut rbuf = listener.recv_buffer();
    for _ in 0..n {
        let note = listener.recv(&mut rbuf).expect("recv");
        listener.respond(note.id, 0, 0, 0).expect("respond");
    }
    let mut out = [0u8; 8];
    // SAFETY: read the child's result into out.
    let got = unsafe { libc::read(ours.as_raw_fd(), out.as_mut_ptr().cast(), 8) };
    assert_eq!(got, 8);
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    if pinned {
        unpin();
    }
    f64::from_ne_bytes(out)
}

unsafe fn floor_child(sock: i32, n: u64) -> ! {
    const LOAD_NR: libc::sock_filter = libc::sock_filter {
        code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
        jt: 0,
        jf: 0,
        k: 0,
    };
    let prog = [
        LOAD_NR,
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: libc::SYS_getppid as u32,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_USER_NOTIF,
        },
        libc::sock_filter {
            code: (libc::BPF_RET | libc::BPF_K) as u16,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut _,
    };
    libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    let l = libc::syscall(
        libc::SYS_seccomp,
        libc::SECCOMP_SET_MODE_FILTER,
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
        &fprog,
    );
    if l < 0 {
        libc::_exit(1);
    }
    let _ = protocol::fdpass::send_with_fd(
        std::os::fd::BorrowedFd::borrow_raw(sock),
        b"l",
        std::os::fd::BorrowedFd::borrow_raw(l as i32),
    );
    libc::close(l as i32);
    let mut t0: libc::timespec = std::mem::zeroed();
    let mut t1: libc::timespec = std::mem::zeroed();
    libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t0);
    for _ in 0..n {
        libc::syscall(libc::SYS_getppid);
    }
    libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t1);
    let ns = (t1.tv_sec - t0.tv_sec) as f64 * 1e9 + (t1.tv_nsec - t0.tv_nsec) as f64;
    let per = (ns / n as f64).to_ne_bytes();
    libc::write(sock, per.as_ptr().cast(), 8);
    libc::_exit(0)
}

fn pin_to_cpu0() {
    // SAFETY: a zeroed cpu_set_t with CPU 0 set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn unpin() {
    // SAFETY: as above, with every CPU set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for c in 0..num_cpus() {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Online CPUs (not the affinity mask, which pinning narrows).
fn num_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| format!("Linux {}", s.trim()))
        .unwrap_or_default()
}

fn machine() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
