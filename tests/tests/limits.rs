//! Resource limits, ending the whole tree, and the run report, with real misbehaving programs:
//! a memory hog, a busy loop, a sleeper, a fork bomb, a setsid daemon. Every report field these
//! runs produce is checked against what happened (exit status, files, processes, audit log).
//!
//! Which mechanism enforces a limit depends on the machine (a delegated cgroup v2 with
//! controllers, or rlimits); each test reads the report's `limits` to know which one it got and
//! checks that mechanism's promise.

use std::ffi::OsStr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use broker_tests::*;
use serde_json::Value;

/// Run the broker with `args` and `--report` into the scratch directory; the run and the report.
fn run_reported(s: &Scratch, args: &[&str]) -> (Run, Value) {
    let report = s.path("report.json");
    let _ = std::fs::remove_file(&report);
    let mut all: Vec<&OsStr> = vec![OsStr::new("--report"), report.as_os_str()];
    all.extend(args.iter().map(OsStr::new));
    let run = broker(all);
    let text =
        std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("no report ({e}): {run:?}"));
    assert_eq!(
        text.lines().count(),
        1,
        "one JSON object on one line: {text}"
    );
    let v: Value = serde_json::from_str(&text).expect("the report is JSON");
    (run, v)
}

fn probe_path() -> String {
    probe(false).display().to_string()
}

fn mechanism(report: &Value, limit: &str) -> String {
    report["limits"][limit]["mechanism"]
        .as_str()
        .unwrap_or_else(|| panic!("no {limit} in {report}"))
        .to_string()
}

/// The report's exit fields agree with the broker's own exit status.
fn assert_exit_fields_match(run: &Run, report: &Value) {
    let code = run.code.expect("the broker exits, it is not killed");
    match (&report["exit_code"], &report["signal"]) {
        (Value::Number(c), Value::Null) => assert_eq!(c.as_i64(), Some(code as i64), "{report}"),
        (Value::Null, Value::String(sig)) => {
            assert!(code > 128, "{run:?}");
            assert_eq!(sig, &signal_name(code - 128), "{report}");
        }
        other => panic!("exactly one of exit_code and signal: {other:?}"),
    }
}

fn signal_name(sig: i32) -> String {
    match sig {
        6 => "SIGABRT".into(),
        9 => "SIGKILL".into(),
        11 => "SIGSEGV".into(),
        15 => "SIGTERM".into(),
        24 => "SIGXCPU".into(),
        25 => "SIGXFSZ".into(),
        n => format!("SIG{n}"),
    }
}

fn ms(report: &Value, field: &str) -> u64 {
    report[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {report}"))
}

/// Is `pid` a live process (not gone, not a zombie)?
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn wait_until_dead(pid: i32, within: Duration) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    !alive(pid)
}

#[test]
fn a_memory_hog_is_stopped_and_reported_as_memory() {
    let s = Scratch::new("hog");
    let (run, report) = run_reported(&s, &["--memory", "64M", "--", &probe_path(), "hog"]);
    assert_eq!(report["status"], "memory", "{run:?}\n{report}");
    assert_exit_fields_match(&run, &report);
    let rss = ms(&report, "max_rss_kib");
    let how = mechanism(&report, "memory");
    if how.starts_with("RLIMIT_AS") {
        // The allocator was refused and the hog aborted, with about the limit resident.
        assert!(run.stderr.contains("hog: refused after"), "{run:?}");
        assert_eq!(report["signal"], "SIGABRT", "{report}");
        assert!((32 << 10..=64 << 10).contains(&rss), "max_rss_kib {rss}");
    } else {
        assert!(how.starts_with("cgroup memory.max"), "{how}");
        assert_eq!(report["signal"], "SIGKILL", "{report}");
        assert!(rss <= 72 << 10, "max_rss_kib {rss}");
    }
    assert_eq!(report["limits"]["memory"]["value"], 64 << 20);
    assert_eq!(report["limits"]["memory"]["enforced"], true);
}

#[test]
fn runs_within_the_memory_limit_are_not_reported_as_memory() {
    let s = Scratch::new("no-hog");
    // 8 MiB used of 64: a clean exit, with the resident set it really had.
    let (run, report) = run_reported(&s, &["--memory", "64M", "--", &probe_path(), "alloc", "8"]);
    assert_eq!(run.line(), "ok", "{run:?}");
    assert_eq!(report["status"], "exited", "{report}");
    assert_eq!(report["exit_code"], 0);
    let rss = ms(&report, "max_rss_kib");
    assert!((8 << 10..32 << 10).contains(&rss), "max_rss_kib {rss}");
    // A crash with little memory in use is a crash, not the memory limit.
    let (run, report) = run_reported(
        &s,
        &["--memory", "64M", "--", &probe_path(), "signal", "11"],
    );
    assert_eq!(report["status"], "signaled", "{run:?}\n{report}");
    assert_eq!(report["signal"], "SIGSEGV");
    assert_exit_fields_match(&run, &report);
}

#[test]
fn a_busy_loop_ends_at_the_cpu_limit() {
    let s = Scratch::new("spin");
    let (run, report) = run_reported(&s, &["--cpu-time", "1", "--", &probe_path(), "spin"]);
    assert_eq!(report["status"], "cpu", "{run:?}\n{report}");
    assert_exit_fields_match(&run, &report);
    let cpu = ms(&report, "cpu_user_ms") + ms(&report, "cpu_sys_ms");
    assert!((950..3000).contains(&cpu), "cpu {cpu} ms: {report}");
    // One thread on one CPU: the wall clock ran at least as long as the CPU time.
    assert!(ms(&report, "wall_ms") + 50 >= cpu, "{report}");
    assert_eq!(report["limits"]["cpu-time"]["value"], 1000);
}

#[test]
fn the_cpu_limit_of_a_cgroup_covers_the_whole_tree() {
    let s = Scratch::new("spin-tree");
    // Two children burn CPU while the target only waits.
    let (run, report) = run_reported(
        &s,
        &["--cpu-time", "1", "--", &probe_path(), "spin-children", "2"],
    );
    let cpu = ms(&report, "cpu_user_ms") + ms(&report, "cpu_sys_ms");
    if mechanism(&report, "cpu-time").starts_with("cgroup") {
        // Ended by the tree's total, which the report shows.
        assert_eq!(report["status"], "cpu", "{run:?}\n{report}");
        assert_eq!(report["signal"], "SIGKILL");
        assert!((950..3000).contains(&cpu), "cpu {cpu} ms: {report}");
    } else {
        // RLIMIT_CPU is per process: each child gets its own second, and the target, which
        // used none, exits normally once they are killed.
        assert_eq!(report["status"], "exited", "{run:?}\n{report}");
        assert!(cpu >= 1900, "cpu {cpu} ms: {report}");
    }
    assert_exit_fields_match(&run, &report);
}

#[test]
fn a_sleeper_ends_at_the_wall_limit() {
    let s = Scratch::new("sleeper");
    let (run, report) = run_reported(
        &s,
        &["--wall-time", "1", "--", &probe_path(), "sleep", "30"],
    );
    assert_eq!(report["status"], "timeout", "{run:?}\n{report}");
    assert_eq!(run.code, Some(137), "{run:?}");
    assert_exit_fields_match(&run, &report);
    let wall = ms(&report, "wall_ms");
    assert!((1000..10_000).contains(&wall), "wall {wall} ms");
    assert!(
        ms(&report, "cpu_user_ms") + ms(&report, "cpu_sys_ms") < 500,
        "{report}"
    );
    assert!(!run.stdout.contains("ok slept"), "{run:?}");
}

/// The daemon's pid, from the probe's `daemon <pid>` line.
fn daemon_pid(stdout: &str) -> i32 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("daemon ")?.parse().ok())
        .unwrap_or_else(|| panic!("no daemon line in {stdout:?}"))
}

#[test]
fn a_setsid_daemon_is_ended_with_the_run() {
    let s = Scratch::new("daemon");
    // The wall limit ends a target whose daemon lives in another session.
    let (run, report) = run_reported(
        &s,
        &["--wall-time", "1", "--", &probe_path(), "daemon-pid", "30"],
    );
    assert_eq!(report["status"], "timeout", "{run:?}\n{report}");
    let daemon = daemon_pid(&run.stdout);
    assert!(
        wait_until_dead(daemon, Duration::from_secs(2)),
        "daemon {daemon} outlived the run"
    );
    // A target that exits at once takes its daemon with it too.
    let (run, report) = run_reported(&s, &["--", &probe_path(), "daemon-pid", "0"]);
    assert_eq!(report["status"], "exited", "{run:?}\n{report}");
    assert_eq!(report["exit_code"], 0);
    let daemon = daemon_pid(&run.stdout);
    assert!(
        wait_until_dead(daemon, Duration::from_secs(2)),
        "daemon {daemon} outlived the run"
    );
}

/// The run of a broker with a limit, if this machine gives it no run cgroup (a limit makes the
/// broker say how the tree is ended: through a run cgroup, or not).
fn without_run_cgroup() -> Option<Run> {
    let check = broker(["--wall-time", "10", "--", "true"]);
    check.stderr.contains("no run cgroup").then_some(check)
}

/// The probe doing `action` under the broker (stderr discarded).
fn spawn_probe(action: &[&str], stdout: Stdio) -> std::process::Child {
    let probe = probe(false);
    let mut args = vec![OsStr::new("--"), probe.as_os_str()];
    args.extend(action.iter().map(OsStr::new));
    broker_command(args)
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Where the brokers this test starts make their run cgroups (the test's own cgroup), or
/// `None`, said on stderr, on a machine where runs get no cgroup.
fn run_cgroup_parent() -> Option<std::path::PathBuf> {
    if without_run_cgroup().is_some() {
        eprintln!("no run cgroup on this machine: nothing to leave behind");
        return None;
    }
    Some(own_cgroup_dir().expect("the test's own cgroup v2 directory"))
}

/// The run cgroups in `parent` made by the brokers `pids`.
fn run_cgroups(parent: &std::path::Path, pids: &[u32]) -> Vec<String> {
    std::fs::read_dir(parent)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| pids.iter().any(|p| n.starts_with(&format!("broker-{p}-"))))
        .collect()
}

#[test]
fn a_killed_broker_takes_the_whole_tree_with_it() {
    if let Some(check) = without_run_cgroup() {
        // Without a cgroup only the target dies with the broker (PDEATHSIG); the log says so.
        assert!(check
            .stderr
            .contains("a descendant can outlive a broker that is killed"));
        eprintln!("no run cgroup on this machine: only the log's warning is checked");
        return;
    }
    let mut child = spawn_probe(&["daemon-pid", "30"], Stdio::piped());
    let daemon = daemon_pid(&first_line(&mut child));
    assert!(alive(daemon));
    // SAFETY: kill the broker we started.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    assert!(
        wait_until_dead(daemon, Duration::from_secs(5)),
        "daemon {daemon} outlived the killed broker"
    );
}

/// The cgroup v2 directory this test runs in (the broker makes its run cgroups beneath it).
fn own_cgroup_dir() -> Option<std::path::PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let own = own.lines().find_map(|l| l.strip_prefix("0::"))?.to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mounts.lines().find_map(|l| {
        let (fields, rest) = l.split_once(" - ")?;
        if !rest.starts_with("cgroup2 ") {
            return None;
        }
        let f: Vec<&str> = fields.split(' ').collect();
        let rel = own.strip_prefix(f.get(3)?.trim_end_matches('/'))?;
        Some(std::path::Path::new(f.get(4)?).join(rel.trim_start_matches('/')))
    })
}

/// The broker's children (all its threads'): the target and, with a run cgroup, the guard.
fn children_of(pid: u32) -> Vec<i32> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    out
}

#[test]
fn a_run_leaves_neither_its_cgroup_nor_its_guard_behind() {
    let Some(parent) = run_cgroup_parent() else {
        return;
    };
    let mut child = spawn_probe(&["sigterm-exit"], Stdio::piped());
    assert_eq!(first_line(&mut child).trim(), "ready");
    let pid = child.id();
    let runs = || run_cgroups(&parent, &[pid]);
    // While the target runs: its cgroup, and two children (the target and the guard).
    assert_eq!(
        runs().len(),
        1,
        "no run cgroup broker-{pid}-* in {}",
        parent.display()
    );
    let children = children_of(pid);
    assert_eq!(children.len(), 2, "target and guard expected: {children:?}");
    // SAFETY: signal the broker we started; it passes SIGTERM on and the target ends (by its
    // exit, or by SIGPIPE since nobody reads its stdout any more).
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    child.wait().unwrap();
    assert!(runs().is_empty(), "run cgroup left behind: {:?}", runs());
    for c in children {
        assert!(
            !alive(c),
            "process {c} (target or guard) outlived the broker"
        );
    }
}

#[test]
fn a_start_that_fails_once_the_child_exists_leaves_nothing_behind() {
    let Some(parent) = run_cgroup_parent() else {
        return;
    };
    // The audit log is opened while the child sets itself up, in its run cgroup: the error
    // must end the child and remove the cgroup.
    let probe = probe(false);
    let mut child = broker_command([
        OsStr::new("--audit-log"),
        OsStr::new("/nonexistent/audit.jsonl"),
        OsStr::new("--"),
        probe.as_os_str(),
        OsStr::new("sleep"),
        OsStr::new("30"),
    ])
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let pid = child.id();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(125));
    let left = run_cgroups(&parent, &[pid]);
    assert!(left.is_empty(), "run cgroup left behind: {left:?}");
}

#[test]
fn a_broker_killed_while_it_starts_leaves_no_cgroup_behind() {
    let Some(parent) = run_cgroup_parent() else {
        return;
    };
    // Kill it at moments spread over its start (before, while and after it makes the
    // cgroup): the guard must exist before the cgroup does.
    let mut seed = std::process::id() as u64;
    let mut pids = Vec::new();
    for _ in 0..40 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut child = spawn_probe(&["sleep", "30"], Stdio::null());
        std::thread::sleep(Duration::from_micros((seed >> 33) % 3000));
        child.kill().unwrap();
        child.wait().unwrap();
        pids.push(child.id());
    }
    // The guards remove what was made; give them a moment.
    let left = || run_cgroups(&parent, &pids);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !left().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(left().is_empty(), "cgroups left behind: {:?}", left());
}

/// The processes (not threads) that run as `uid`.
fn processes_of(uid: u32) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter(|e| {
            std::fs::read_to_string(e.path().join("status")).is_ok_and(|st| {
                st.lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|u| u.split_whitespace().next()?.parse::<u32>().ok())
                    == Some(uid)
            })
        })
        .count()
}

#[test]
fn a_fork_bomb_is_contained() {
    if !is_root() {
        eprintln!("needs root to run the bomb as a uid of its own");
        return;
    }
    // A uid no other test uses, so that the per-user RLIMIT_NPROC counts only this run.
    let uid = 61_000 + std::process::id() % 1000;
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .args(["--clear-groups", "--"])
        .arg(broker_bin())
        .args([
            "-q",
            "--max-procs",
            "20",
            "--wall-time",
            "3",
            "--report",
            "-",
            "--",
        ])
        .arg(probe(false))
        .arg("forkbomb")
        .env_remove("LD_LIBRARY_PATH")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let started = Instant::now();
    let mut most = 0;
    let mut responsive = true;
    while started.elapsed() < Duration::from_secs(2) {
        most = most.max(processes_of(uid));
        // The machine still starts programs while the bomb runs.
        responsive &= Command::new("true").status().is_ok_and(|s| s.success());
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(responsive, "could not start a program during the bomb");
    assert!(most >= 5, "the bomb did not fork ({most}): {stderr}");
    assert!(
        most <= 20,
        "{most} processes of uid {uid} with --max-procs 20: {stderr}"
    );
    let report: Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert_eq!(report["status"], "timeout", "{report}");
    assert_eq!(report["limits"]["max-procs"]["enforced"], true, "{report}");
    // Nothing of the bomb is left.
    let end = Instant::now() + Duration::from_secs(5);
    while processes_of(uid) > 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(processes_of(uid), 0, "bomb processes survived the run");
}

#[test]
fn a_limit_that_cannot_be_enforced_refuses_to_run() {
    if !is_root() {
        eprintln!("as an ordinary user RLIMIT_NPROC binds: nothing to refuse");
        return;
    }
    let s = Scratch::new("unenforceable");
    let marker = s.path("rw/ran");
    let args = |extra: &[&str]| {
        let mut a: Vec<String> = extra.iter().map(|x| x.to_string()).collect();
        a.extend(s.policy());
        a.extend(["--".into(), probe_path(), "write".into()]);
        a.extend([marker.display().to_string(), "x".into()]);
        a
    };
    let run = broker(args(&["--max-procs", "10"]));
    if run.code == Some(0) {
        // A pids controller is delegated here: the limit is enforced.
        assert!(run.stderr.contains("cgroup pids.max"), "{run:?}");
        return;
    }
    assert_eq!(run.code, Some(125), "{run:?}");
    assert!(
        run.stderr.contains("--max-procs cannot be enforced here"),
        "{run:?}"
    );
    assert_eq!(run.stderr.lines().count(), 1, "one line: {run:?}");
    assert!(!marker.exists(), "the target ran");
    // --best-effort-limits runs, and says the limit is not enforced, in the log and the report.
    let run = broker(args(&[
        "--max-procs",
        "10",
        "--best-effort-limits",
        "--report",
        "-",
    ]));
    assert_eq!(run.line(), "ok 1", "{run:?}");
    assert!(
        run.stderr.contains("--max-procs 10: NOT ENFORCED"),
        "{run:?}"
    );
    let report: Value = serde_json::from_str(run.stderr.lines().last().unwrap()).unwrap();
    assert_eq!(report["limits"]["max-procs"]["enforced"], false, "{report}");
}

#[test]
fn the_open_files_limit_covers_injected_descriptors() {
    let s = Scratch::new("nofile-limit");
    let file = s.arg("allowed/file.txt");
    let mut args = s.policy();
    args.extend(["--max-open-files".into(), "10".into()]);
    let run = probe_under(&args, "fill-fds", &[&file]);
    // 0-2, the channel at 3, and six more; then the broker's descriptor cannot be injected.
    assert_eq!(
        run.line(),
        "ok dups 6 dup-errno 24 open -1 open-errno 24",
        "{run:?}"
    );
}

#[test]
fn the_file_size_limit_stops_a_big_write() {
    let s = Scratch::new("fsize");
    let out = s.arg("rw/big");
    let policy = s.policy();
    let mut args: Vec<&str> = policy.iter().map(String::as_str).collect();
    let probe = probe_path();
    args.extend([
        "--max-file-size",
        "10K",
        "--",
        &probe,
        "write-big",
        &out,
        "100000",
    ]);
    let (run, report) = run_reported(&s, &args);
    assert_eq!(report["status"], "signaled", "{run:?}\n{report}");
    assert_eq!(report["signal"], "SIGXFSZ");
    assert_exit_fields_match(&run, &report);
    assert_eq!(std::fs::metadata(&out).unwrap().len(), 10 << 10);
}

#[test]
fn the_report_counts_what_the_audit_log_recorded() {
    let s = Scratch::new("report-counts");
    let audit = s.path("audit.jsonl");
    let policy = s.policy();
    let mut args: Vec<&str> = policy.iter().map(String::as_str).collect();
    let audit_arg = audit.display().to_string();
    let (secret, allowed) = (s.arg("secret.txt"), s.arg("allowed/file.txt"));
    // Shell redirections: the shell's own opens, without running other programs.
    let script = format!("read a < {allowed}; read b < {secret}; read c < {secret}; exit 3");
    args.extend(["--audit-log", &audit_arg, "--", "/bin/sh", "-c", &script]);
    let (run, report) = run_reported(&s, &args);
    assert_eq!(report["status"], "exited", "{run:?}\n{report}");
    assert_eq!(report["exit_code"], 3);
    assert_eq!(report["signal"], Value::Null);
    let log = std::fs::read_to_string(&audit).unwrap();
    let count = |d: &str| {
        log.lines()
            .filter(|l| l.contains(&format!("\"decision\":\"{d}\"")))
            .count() as u64
    };
    assert!(count("allow") >= 2, "{log}");
    assert_eq!(
        ms(&report, "requests_allowed"),
        count("allow"),
        "{report}\n{log}"
    );
    assert_eq!(
        ms(&report, "requests_denied"),
        count("deny"),
        "{report}\n{log}"
    );
    let denials = report["denials"].as_array().unwrap();
    let secrets: Vec<&Value> = denials
        .iter()
        .filter(|d| d["path"] == secret.as_str())
        .collect();
    assert_eq!(secrets.len(), 2, "{report}");
    for d in secrets {
        assert_eq!(d["syscall"], "openat");
        assert_eq!(d["reason"], "no rule grants it");
        assert!(d["pid"].as_u64().is_some_and(|p| p > 1), "{d}");
    }
    assert!(!run.stdout.contains(&s.token));
}

#[test]
fn a_run_that_cannot_start_is_reported_as_a_broker_error() {
    let s = Scratch::new("report-error");
    let missing = s.arg("no-such-program");
    let (run, report) = run_reported(&s, &["--", &missing]);
    assert_eq!(run.code, Some(127), "{run:?}");
    assert_eq!(report["status"], "broker-error", "{report}");
    assert_eq!(report["exit_code"], Value::Null);
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("program not found"),
        "{report}"
    );
    // An unwritable report fails before the target runs.
    let marker = s.path("rw/ran");
    let mut args = s.policy();
    args.extend([
        "--report".into(),
        "/nonexistent/dir/report.json".into(),
        "--".into(),
    ]);
    args.extend([
        probe_path(),
        "write".into(),
        marker.display().to_string(),
        "x".into(),
    ]);
    let run = broker(args);
    assert_eq!(run.code, Some(125), "{run:?}");
    assert!(
        run.stderr.starts_with("broker: cannot write the report"),
        "{run:?}"
    );
    assert!(!marker.exists());
}

#[test]
fn bad_limit_values_are_refused() {
    for (flag, value) in [
        ("--memory", "0"),
        ("--memory", "12Q"),
        ("--memory", "99999999999T"),
        ("--cpu-time", "-1"),
        ("--cpu-time", "inf"),
        ("--wall-time", "soon"),
        ("--max-procs", "1.5"),
        ("--max-open-files", "0"),
    ] {
        let run = broker([format!("{flag}={value}").as_str(), "--", "true"]);
        assert_eq!(run.code, Some(125), "{flag} {value}: {run:?}");
        assert!(run.stderr.starts_with("broker: "), "{run:?}");
        assert!(run.stderr.contains(flag), "{flag} {value}: {run:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
    }
}
