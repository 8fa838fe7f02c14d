//! The broker as a process supervisor: exit statuses, signals, descendants, and descriptors.

use std::time::Duration;

use broker_tests::*;

#[test]
fn exit_status_is_the_targets_own() {
    let s = Scratch::new("exit");
    assert_eq!(probe_under(&s.policy(), "exit", &["0"]).code, Some(0));
    assert_eq!(probe_under(&s.policy(), "exit", &["7"]).code, Some(7));
}

#[test]
fn a_signal_that_kills_the_target_becomes_128_plus_n() {
    let s = Scratch::new("signal");
    assert_eq!(probe_under(&s.policy(), "signal", &["9"]).code, Some(137));
    assert_eq!(probe_under(&s.policy(), "signal", &["15"]).code, Some(143));
}

#[test]
fn not_found_is_127_not_executable_is_126_bad_flags_125() {
    let r = broker(["--", "/nonexistent/program"]);
    assert_eq!(r.code, Some(127), "{r:?}");
    assert!(r.stderr.starts_with("broker: program not found"), "{r:?}");
    let r = broker(["--", "no-such-program-anywhere"]);
    assert_eq!(r.code, Some(127), "{r:?}");
    let s = Scratch::new("noexec");
    std::fs::write(s.path("allowed/file.txt"), "data").unwrap();
    let r = broker(["--", &s.path("allowed/file.txt").display().to_string()]);
    assert_eq!(r.code, Some(126), "{r:?}");
    let r = broker(["--", "/tmp"]);
    assert_eq!(r.code, Some(126), "{r:?}");
    let r = broker(["--bogus-flag", "--", "/bin/true"]);
    assert_eq!(r.code, Some(125), "{r:?}");
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    let r = broker(["--allow-read", "relative/path", "--", "/bin/true"]);
    assert_eq!(r.code, Some(125), "{r:?}");
    assert!(r.stderr.contains("relative"), "{r:?}");
    let r = broker(["--deny-errno", "EWHATEVER", "--", "/bin/true"]);
    assert_eq!(r.code, Some(125), "{r:?}");
}

#[test]
fn sigterm_to_the_broker_is_forwarded_to_the_target() {
    let probe = probe(false);
    let mut child = broker_command(["--"])
        .arg(&probe)
        .arg("sigterm-exit")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    // SAFETY: signal our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ok got 15");
    assert_eq!(status.code(), Some(42));
}

#[test]
fn forks_and_threads_are_all_served() {
    let s = Scratch::new("fork");
    let f = s.path("allowed/file.txt").display().to_string();
    assert_eq!(
        probe_under(&s.policy(), "fork-read", &[&f]).line(),
        "ok allowed-content"
    );
    let r = probe_under(&s.policy(), "threads", &[&f, "32", "20"]);
    assert_eq!(r.line(), "ok 640", "{r:?}");
}

#[test]
fn descendants_left_behind_are_ended_with_the_target() {
    let s = Scratch::new("daemon");
    let start = std::time::Instant::now();
    let r = probe_under(&s.policy(), "daemon", &[]);
    assert_eq!(r.line(), "ok", "{r:?}");
    assert_eq!(r.code, Some(0));
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "broker waited for the daemon"
    );
}

#[test]
fn only_stdio_and_the_documented_channel_reach_the_target() {
    let s = Scratch::new("fds");
    let r = probe_under(&s.policy(), "fds", &[]);
    let fds: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("fd ")).collect();
    assert_eq!(
        fds,
        vec![format!("fd 3 mode {:o}", libc::S_IFSOCK).as_str()],
        "{r:?}"
    );
    assert!(r.stdout.contains("ok env 3"), "{r:?}");
}

#[test]
fn descriptor_exhaustion_in_the_target_is_emfile_and_the_broker_carries_on() {
    let s = Scratch::new("nofile");
    let r = probe_under(
        &s.policy(),
        "nofile",
        &[&s.path("allowed/file.txt").display().to_string()],
    );
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"ok emfile 24"), "{r:?}");
    assert_eq!(lines.get(1), Some(&"ok allowed-content"), "{r:?}");
}

#[test]
fn real_programs_run_unmodified() {
    let s = Scratch::new("real");
    let f = s.path("allowed/file.txt").display().to_string();
    let r = broker(["--allow-read", &f, "--", "cat", &f]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (Some(0), "allowed-content\n"),
        "{r:?}"
    );
    std::fs::write(s.path("allowed/lines"), "b\nc\na\n").unwrap();
    let l = s.path("allowed/lines").display().to_string();
    let r = broker(["--allow-read", &l, "--", "sort", &l]);
    assert_eq!((r.code, r.stdout.as_str()), (Some(0), "a\nb\nc\n"), "{r:?}");
    assert!(
        r.stderr.is_empty(),
        "the runtime allowance should cover sort: {r:?}"
    );
    let r = broker(["--", "cat", &s.path("secret.txt").display().to_string()]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(!r.stdout.contains(&s.token));
}

#[test]
fn without_the_runtime_allowance_a_dynamic_program_cannot_load() {
    let r = broker(["--quiet", "--no-default-runtime", "--", "/bin/true"]);
    assert_ne!(r.code, Some(0), "{r:?}");
    let r = broker(["--", "/bin/true"]);
    assert_eq!(r.code, Some(0), "{r:?}");
}
