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
    std::fs::write(s.path("rw/garbage"), "not a program").unwrap();
    std::fs::set_permissions(
        s.path("rw/garbage"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let r = broker(["--", &s.path("rw/garbage").display().to_string()]);
    assert_eq!(r.code, Some(126), "{r:?}");
    assert_eq!(r.stderr.matches("Exec format error").count(), 1, "{r:?}");
    let r = broker(["--bogus-flag", "--", "/bin/true"]);
    assert_eq!(r.code, Some(125), "{r:?}");
    assert_eq!(r.stderr.lines().count(), 1, "{r:?}");
    let r = broker(["--allow-read", "relative/path", "--", "/bin/true"]);
    assert_eq!(r.code, Some(125), "{r:?}");
    // One line, the cause said once.
    assert_eq!(
        r.stderr,
        "broker: --allow-read relative/path: rule path \"relative/path\" is relative, \
         expected an absolute path\n"
    );
    let r = broker(["--audit-log", "/nonexistent/audit.jsonl", "--", "/bin/true"]);
    assert_eq!(r.code, Some(125), "{r:?}");
    assert_eq!(
        r.stderr,
        "broker: audit log /nonexistent/audit.jsonl: No such file or directory (os error 2)\n"
    );
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
    // The loader's needs are covered; only optional C-library probes (locale) may be refused.
    let loader_denials = r
        .stderr
        .lines()
        .filter(|l| l.contains(".so") || l.contains("ld.so"));
    assert_eq!(
        loader_denials.count(),
        0,
        "the runtime allowance should cover sort: {r:?}"
    );
    let r = broker(["--", "cat", &s.path("secret.txt").display().to_string()]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(!r.stdout.contains(&s.token));
}

#[test]
fn scripts_run_with_their_interpreter_allowance() {
    let s = Scratch::new("script");
    let script = s.path("rw/job.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"hello from $0\"\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let r = broker(["--", &script.display().to_string()]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stdout, format!("hello from {}\n", script.display()));
}

#[test]
fn without_the_runtime_allowance_a_dynamic_program_cannot_load() {
    let r = broker(["--quiet", "--no-default-runtime", "--", "/bin/true"]);
    assert_ne!(r.code, Some(0), "{r:?}");
    let r = broker(["--", "/bin/true"]);
    assert_eq!(r.code, Some(0), "{r:?}");
}
