//! `broker-bench`: every performance figure of the broker in one run, each against a baseline
//! measured in the same run (these machines are shared and noisy; absolute times drift).
//!
//! Usage: `broker-bench [--iterations N] [--rounds R] [--write FILE]`. It measures brokered
//! open+close against native opens and against minimal user-notification supervisors built
//! in here (the floor, see `mini`), allowed syscalls (getpid, 1 GiB through a FIFO), start-up,
//! 32 threads opening at once, and the broker's resident memory. The programs it runs are this
//! same binary with a subcommand (see `target`).

mod cpu;
mod mini;
mod target;

use std::ffi::CString;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use mini::{Mini, Placement};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if target::dispatch(&args[1..]) {
        return;
    }
    let mut iterations = 20_000u64;
    let mut rounds = 5usize;
    let mut write: Option<PathBuf> = None;
    let mut i = 1;
    while i < args.len() {
        let value = args.get(i + 1).map(String::as_str);
        match (args[i].as_str(), value) {
            ("--iterations", Some(v)) => iterations = v.parse().expect("--iterations N"),
            ("--rounds", Some(v)) => rounds = v.parse().expect("--rounds R"),
            ("--write", Some(v)) => write = Some(PathBuf::from(v)),
            (other, _) => {
                eprintln!("broker-bench: unknown argument {other}; usage: broker-bench [--iterations N] [--rounds R] [--write FILE]");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    let bench = Bench::new(iterations);
    let report = bench.run(rounds);
    print!("{report}");
    if let Some(path) = write {
        std::fs::write(&path, report).expect("write the report");
        eprintln!("wrote {}", path.display());
    }
}

struct Bench {
    me: PathBuf,
    broker: PathBuf,
    dir: PathBuf,
    file: String,
    n: u64,
}

/// What one run of a program printed, and what it (and everything it waited for) used.
struct Ran {
    out: String,
    cpu_ns: i64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Field `i` of a program's one-line answer.
fn field(out: &str, i: usize) -> f64 {
    out.split_whitespace()
        .nth(i)
        .and_then(|f| f.parse().ok())
        .unwrap_or_else(|| panic!("no figure {i} in {out:?}"))
}

/// Run `cmd` to its end; its stdout and the CPU time it and its children used. Reaped with
/// wait4 (for the rusage), not `Child::wait`.
#[allow(clippy::zombie_processes)]
fn run(cmd: &mut Command) -> Ran {
    let mut child = cmd
        .env_remove("LD_LIBRARY_PATH")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn");
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let (status, ru) = wait4(child.id() as i32);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?} failed ({status:#x})"
    );
    Ran {
        out,
        cpu_ns: cpu::rusage_ns(&ru),
    }
}

fn wait4(pid: i32) -> (i32, libc::rusage) {
    let mut status = 0;
    // SAFETY: zeroed rusage for wait4 to fill; pid is our child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid, "wait4");
    (status, ru)
}

impl Bench {
    fn new(n: u64) -> Bench {
        let me = std::env::current_exe().unwrap();
        let broker = me.parent().unwrap().join("broker");
        assert!(
            broker.exists(),
            "{} is missing: build the workspace first",
            broker.display()
        );
        let dir = std::env::temp_dir().join(format!("broker-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("file");
        std::fs::write(&file, "bench").unwrap();
        Bench {
            me,
            broker,
            file: file.to_str().unwrap().to_string(),
            dir,
            n,
        }
    }

    /// This binary, natively.
    fn native(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.me);
        c.args(args);
        c
    }

    /// This binary under the broker with `broker_args`, on CPU 0 only if `one_cpu`.
    fn brokered(&self, one_cpu: bool, broker_args: &[&str], args: &[&str]) -> Command {
        let mut c = if one_cpu {
            let mut c = Command::new("taskset");
            c.args(["-c", "0"]).arg(&self.broker);
            c
        } else {
            Command::new(&self.broker)
        };
        c.arg("-q")
            .args(broker_args)
            .arg("--")
            .arg(&self.me)
            .args(args);
        c
    }

    fn run(&self, rounds: usize) -> String {
        let n = self.n.to_string();
        let f = self.file.as_str();
        let cf = CString::new(f).unwrap();
        let read = ["--allow-read", f];
        let audit = self.dir.join("audit.jsonl");
        let audited = ["--allow-read", f, "--audit-log", audit.to_str().unwrap()];
        let no_keep = ["--allow-read", f, "--no-keep-awake"];
        let open = ["open-loop", f, &n];
        let spins = (self.n * 50).to_string();
        let mut s = Samples::default();
        for round in 0..rounds {
            eprintln!("broker-bench: round {} of {rounds}", round + 1);
            s.native.push(field(&run(&mut self.native(&open)).out, 0));
            let r = run(&mut self.brokered(false, &read, &open));
            s.ours.push(field(&r.out, 0));
            s.ours_cpu
                .push((r.cpu_ns as f64 - field(&r.out, 1)) / self.n as f64);
            s.ours_one_cpu
                .push(field(&run(&mut self.brokered(true, &read, &open)).out, 0));
            let r = run(&mut self.brokered(false, &no_keep, &open));
            s.ours_no_keep.push(field(&r.out, 0));
            s.ours_no_keep_cpu
                .push((r.cpu_ns as f64 - field(&r.out, 1)) / self.n as f64);
            s.audited.push(field(
                &run(&mut self.brokered(false, &audited, &open)).out,
                0,
            ));
            let _ = std::fs::remove_file(&audit);
            s.floor
                .push(mini::run(self.n, Mini::Echo, &cf, Placement::OneCpu));
            s.echo_anywhere
                .push(mini::run(self.n, Mini::Echo, &cf, Placement::Anywhere));
            s.echo_sync
                .push(mini::run(self.n, Mini::Echo, &cf, Placement::AnywhereSync));
            s.inject_one_cpu
                .push(mini::run(self.n, Mini::Inject, &cf, Placement::OneCpu));
            s.mini_open_one_cpu
                .push(mini::run(self.n, Mini::Open, &cf, Placement::OneCpu));
            s.mini_open_anywhere
                .push(mini::run(self.n, Mini::Open, &cf, Placement::Anywhere));
            let getpid = ["getpid-loop", spins.as_str()];
            s.getpid_native
                .push(field(&run(&mut self.native(&getpid)).out, 0));
            s.getpid_filtered.push(field(
                &run(&mut self.native(&["getpid-filtered", &spins])).out,
                0,
            ));
            s.getpid_ours
                .push(field(&run(&mut self.brokered(false, &[], &getpid)).out, 0));
        }
        eprintln!("broker-bench: FIFO, start-up, threads, memory");
        let (fifo_native, fifo_ours) = self.fifo(rounds);
        let mut under = Command::new(&self.broker);
        under.args(["--", "/bin/true"]);
        let (startup_native, startup_ours) =
            startup(&mut Command::new("/bin/true"), &mut under, 100);
        let threads = self.threads(rounds);
        let rss_small = self.broker_memory(1_000);
        let rss_large = self.broker_memory(100_000);
        let _ = std::fs::remove_dir_all(&self.dir);
        let m = s.map(median);
        report(Report {
            rounds,
            n: self.n,
            m,
            fifo_native,
            fifo_ours,
            startup_native,
            startup_ours,
            threads,
            rss_small,
            rss_large,
        })
    }

    /// ns to read 1 GiB through a FIFO written by this process: natively, and with the reader
    /// under the broker (its open brokered, its reads allowed by the filter).
    fn fifo(&self, rounds: usize) -> (f64, f64) {
        let fifo = self.dir.join("fifo");
        let fifo_s = fifo.to_str().unwrap();
        let c = CString::new(fifo_s).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
        let (mut native, mut ours) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            for under in [false, true] {
                let args = ["fifo-read", fifo_s];
                let mut cmd = if under {
                    self.brokered(false, &["--allow-fifo", fifo_s], &args)
                } else {
                    self.native(&args)
                };
                let mut child = cmd
                    .env_remove("LD_LIBRARY_PATH")
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("spawn the reader");
                let mut w = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&fifo)
                    .expect("open the FIFO");
                let chunk = vec![7u8; 1 << 16];
                for _ in 0..(1u64 << 30) / chunk.len() as u64 {
                    w.write_all(&chunk).expect("write");
                }
                drop(w);
                let mut out = String::new();
                child
                    .stdout
                    .take()
                    .unwrap()
                    .read_to_string(&mut out)
                    .unwrap();
                assert!(child.wait().unwrap().success(), "the FIFO reader failed");
                assert_eq!(field(&out, 1) as u64, 1 << 30, "bytes through the FIFO");
                if under { &mut ours } else { &mut native }.push(field(&out, 0));
            }
        }
        (median(native), median(ours))
    }

    /// One thread opening alone vs 32 at once, under the broker: opens per second each way,
    /// and the longest single open+close among the 32.
    fn threads(&self, rounds: usize) -> Threads {
        let read = ["--allow-read", self.file.as_str()];
        let (mut one, mut many, mut worst) = (Vec::new(), Vec::new(), 0f64);
        let per_thread = (self.n / 32).max(100);
        for _ in 0..rounds {
            let n = self.n.to_string();
            let r = run(&mut self.brokered(false, &read, &["open-threads", &self.file, "1", &n]));
            one.push(self.n as f64 / field(&r.out, 0) * 1e9);
            let p = per_thread.to_string();
            let r = run(&mut self.brokered(false, &read, &["open-threads", &self.file, "32", &p]));
            many.push((32 * per_thread) as f64 / field(&r.out, 0) * 1e9);
            worst = worst.max(field(&r.out, 1));
        }
        Threads {
            one: median(one),
            many: median(many),
            worst_ns: worst,
        }
    }

    /// The broker's peak and current resident memory (KiB) after `opens` brokered opens.
    fn broker_memory(&self, opens: u64) -> (u64, u64) {
        let n = opens.to_string();
        let mut child = self
            .brokered(
                false,
                &["--allow-read", &self.file],
                &["open-then-wait", &self.file, &n],
            )
            .env_remove("LD_LIBRARY_PATH")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready");
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
        let kib = |key: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        let figures = (kib("VmHWM:"), kib("VmRSS:"));
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success());
        figures
    }
}

/// Median wall time in ns of `runs` runs of `cmd`.
/// Median wall ns of `native` and of `ours`, each run `runs` times, alternating, so that both
/// see the same moments of a noisy host.
fn startup(native: &mut Command, ours: &mut Command, runs: usize) -> (f64, f64) {
    for cmd in [&mut *native, &mut *ours] {
        cmd.env_remove("LD_LIBRARY_PATH")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: nothing to do in the child but exec; keeps the spawn path the same each time.
        unsafe { cmd.pre_exec(|| Ok(())) };
    }
    let time = |cmd: &mut Command| {
        let t = Instant::now();
        assert!(cmd.status().expect("run").success());
        t.elapsed().as_nanos() as f64
    };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        a.push(time(native));
        b.push(time(ours));
    }
    (median(a), median(b))
}

/// Every per-call figure of a run: each round's samples (`Samples`), then their medians.
#[derive(Default)]
struct PerCall<T> {
    native: T,
    ours: T,
    ours_cpu: T,
    ours_one_cpu: T,
    ours_no_keep: T,
    ours_no_keep_cpu: T,
    audited: T,
    floor: T,
    echo_anywhere: T,
    echo_sync: T,
    inject_one_cpu: T,
    mini_open_one_cpu: T,
    mini_open_anywhere: T,
    getpid_native: T,
    getpid_filtered: T,
    getpid_ours: T,
}

type Samples = PerCall<Vec<f64>>;
type Medians = PerCall<f64>;

impl<T> PerCall<T> {
    fn map<U>(self, f: impl Fn(T) -> U) -> PerCall<U> {
        PerCall {
            native: f(self.native),
            ours: f(self.ours),
            ours_cpu: f(self.ours_cpu),
            ours_one_cpu: f(self.ours_one_cpu),
            ours_no_keep: f(self.ours_no_keep),
            ours_no_keep_cpu: f(self.ours_no_keep_cpu),
            audited: f(self.audited),
            floor: f(self.floor),
            echo_anywhere: f(self.echo_anywhere),
            echo_sync: f(self.echo_sync),
            inject_one_cpu: f(self.inject_one_cpu),
            mini_open_one_cpu: f(self.mini_open_one_cpu),
            mini_open_anywhere: f(self.mini_open_anywhere),
            getpid_native: f(self.getpid_native),
            getpid_filtered: f(self.getpid_filtered),
            getpid_ours: f(self.getpid_ours),
        }
    }
}

struct Threads {
    /// Opens per second, one thread.
    one: f64,
    /// Opens per second, 32 threads at once.
    many: f64,
    worst_ns: f64,
}

struct Report {
    rounds: usize,
    n: u64,
    m: Medians,
    fifo_native: f64,
    fifo_ours: f64,
    startup_native: f64,
    startup_ours: f64,
    threads: Threads,
    /// (peak, current) KiB.
    rss_small: (u64, u64),
    rss_large: (u64, u64),
}

fn us(ns: f64) -> String {
    format!("{:.2} µs", ns / 1e3)
}

fn ms(ns: f64) -> String {
    format!("{:.2} ms", ns / 1e6)
}

fn report(r: Report) -> String {
    let m = &r.m;
    let mut s = String::new();
    let _ = writeln!(s, "# Benchmarks\n");
    let _ = writeln!(
        s,
        "Generated by `cargo run --release -p broker --bin broker-bench -- --write docs/benchmarks.md` \
         (`scripts/bench.sh` builds and runs it). What each figure means and what was tried to \
         move it: [performance.md](performance.md).\n"
    );
    let _ = writeln!(
        s,
        "Machine: {} ({} CPUs), {}. Method: every baseline is measured in this same run; \
         per-call figures are medians of {} rounds of {} calls, timed inside the calling \
         process; the FIFO and thread figures are medians of as many rounds, native and \
         brokered alternating; start-up is the median wall time of 100 runs of each, \
         alternating. \
         \"Anywhere\" lets the kernel place broker and target (how users run it); \"one CPU\" \
         runs both under `taskset -c 0`. The floor and the minimal brokers are built into the \
         benchmark (`broker/src/bin/broker-bench/mini.rs`).\n",
        cpu::machine(),
        cpu::online(),
        cpu::kernel(),
        r.rounds,
        r.n
    );
    let _ = writeln!(s, "## Targets\n");
    let _ = writeln!(s, "| target | figure | baseline | ratio | met |");
    let _ = writeln!(s, "|---|---|---|---|---|");
    let mut target = |what: &str, figure: String, baseline: String, ratio: String, yes: bool| {
        let _ = writeln!(
            s,
            "| {what} | {figure} | {baseline} | {ratio} | {} |",
            if yes { "yes" } else { "**no**" }
        );
    };
    let ratio = m.ours / m.floor;
    target(
        "brokered open+close ≤ 1.5 × the bare round trip on one CPU",
        us(m.ours),
        format!("floor {}", us(m.floor)),
        format!("{ratio:.2}×"),
        ratio <= 1.5,
    );
    let speedup = m.mini_open_anywhere / m.ours;
    target(
        "≥ 5 × faster than a minimal broker that handles each notification where it wakes",
        us(m.ours),
        format!("minimal broker {}", us(m.mini_open_anywhere)),
        format!("{speedup:.2}× faster"),
        speedup >= 5.0,
    );
    let g = m.getpid_ours / m.getpid_native;
    target(
        "an allowed syscall (`getpid`) ≤ 1.05 × native",
        us(m.getpid_ours),
        format!("native {}", us(m.getpid_native)),
        format!("{g:.3}×"),
        g <= 1.05,
    );
    let fr = r.fifo_ours / r.fifo_native;
    target(
        "1 GiB through a FIFO ≤ 1.05 × native",
        ms(r.fifo_ours),
        format!("native {}", ms(r.fifo_native)),
        format!("{fr:.3}×"),
        fr <= 1.05,
    );
    let extra = r.startup_ours - r.startup_native;
    target(
        "`broker -- /bin/true` ≤ 1 ms more than `/bin/true`",
        ms(r.startup_ours),
        format!("`/bin/true` {}", ms(r.startup_native)),
        format!("+{}", ms(extra)),
        extra <= 1e6,
    );
    let t = &r.threads;
    target(
        "32 threads opening at once: throughput ≥ one thread's",
        format!("{:.0} opens/s", t.many),
        format!("one thread {:.0} opens/s", t.one),
        format!("{:.2}×", t.many / t.one),
        t.many >= t.one,
    );
    target(
        "… and no request waits more than 100 ms",
        format!("longest {}", ms(t.worst_ns)),
        "100 ms".into(),
        format!("{:.3}×", t.worst_ns / 1e8),
        t.worst_ns <= 1e8,
    );
    let peak = r.rss_small.0 as f64 / 1024.0;
    target(
        "broker resident memory ≤ 8 MiB for a 1000-open run",
        format!("peak {peak:.2} MiB"),
        "8 MiB".into(),
        format!("{:.2}×", peak / 8.0),
        peak <= 8.0,
    );
    let growth = r.rss_large.0 as i64 - r.rss_small.0 as i64;
    target(
        "… flat: no growth per request",
        format!(
            "peak {:.2} MiB after 100000 opens",
            r.rss_large.0 as f64 / 1024.0
        ),
        format!("{peak:.2} MiB after 1000"),
        format!("{growth:+} KiB"),
        growth <= 64,
    );
    let _ = writeln!(s, "\n## Every figure\n");
    let _ = writeln!(s, "| what | per call | baseline | ratio |");
    let _ = writeln!(s, "|---|---|---|---|");
    let mut row = |what: &str, v: f64, base: &str, b: f64| {
        let _ = writeln!(
            s,
            "| {what} | {} | {base} {} | {:.2}× |",
            us(v),
            us(b),
            v / b
        );
    };
    row("native open+close", m.native, "itself", m.native);
    row(
        "bare user-notification round trip, one CPU (**the floor**)",
        m.floor,
        "itself",
        m.floor,
    );
    row(
        "bare round trip, anywhere",
        m.echo_anywhere,
        "floor",
        m.floor,
    );
    row(
        "bare round trip, anywhere, synchronous wake-up",
        m.echo_sync,
        "floor",
        m.floor,
    );
    row(
        "round trip answered by ADDFD of a descriptor opened beforehand, one CPU",
        m.inject_one_cpu,
        "floor",
        m.floor,
    );
    row(
        "minimal open broker (read path, open, ADDFD), one CPU",
        m.mini_open_one_cpu,
        "floor",
        m.floor,
    );
    row(
        "minimal open broker, anywhere",
        m.mini_open_anywhere,
        "floor",
        m.floor,
    );
    row(
        "**broker: open+close, anywhere (as users run it)**",
        m.ours,
        "floor",
        m.floor,
    );
    row(
        "broker: open+close, anywhere",
        m.ours,
        "minimal open broker, one CPU",
        m.mini_open_one_cpu,
    );
    row(
        "broker: open+close, one CPU",
        m.ours_one_cpu,
        "floor",
        m.floor,
    );
    row(
        "broker: open+close, anywhere, `--no-keep-awake`",
        m.ours_no_keep,
        "with",
        m.ours,
    );
    row(
        "broker: open+close with `--audit-log` (every decision logged)",
        m.audited,
        "without",
        m.ours,
    );
    row(
        "broker CPU per open (broker and helpers, target excluded)",
        m.ours_cpu,
        "`--no-keep-awake`",
        m.ours_no_keep_cpu,
    );
    row(
        "`getpid` under the broker's filter",
        m.getpid_ours,
        "native",
        m.getpid_native,
    );
    row(
        "`getpid` under a one-instruction allow-all filter",
        m.getpid_filtered,
        "native",
        m.getpid_native,
    );
    row(
        "`getpid` under the broker's filter",
        m.getpid_ours,
        "allow-all filter",
        m.getpid_filtered,
    );
    let _ = writeln!(
        s,
        "| 1 GiB through a FIFO, reader under the broker | {} | native {} | {:.3}× |",
        ms(r.fifo_ours),
        ms(r.fifo_native),
        r.fifo_ours / r.fifo_native
    );
    let _ = writeln!(
        s,
        "| `broker -- /bin/true` wall time | {} | `/bin/true` {} | {:.2}× (+{}) |",
        ms(r.startup_ours),
        ms(r.startup_native),
        r.startup_ours / r.startup_native,
        ms(extra)
    );
    let _ = writeln!(
        s,
        "| broker memory after 1000 / 100000 opens (peak, now) | {} / {} KiB, {} / {} KiB | | |",
        r.rss_small.0, r.rss_small.1, r.rss_large.0, r.rss_large.1
    );
    s
}
