//! Policy files, `broker check`, the audit log, learn mode, the man page and completions.

use std::time::Duration;

use broker_tests::*;

fn write(s: &Scratch, rel: &str, text: &str) -> String {
    std::fs::write(s.path(rel), text).unwrap();
    s.arg(rel)
}

#[test]
fn learn_then_run_clean_and_nothing_more() {
    let s = Scratch::new("learn");
    let policy = s.arg("rw/p.toml");
    let r = broker(["--learn", &policy, "--", "sort", "/etc/hostname"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.stderr
            .contains("learn mode grants the program everything"),
        "{r:?}"
    );
    let learned = std::fs::read_to_string(&policy).unwrap();
    assert!(learned.contains("\"/etc/hostname\""), "{learned}");
    let rules = learned.split("[allow]").nth(1).expect("an [allow] table");
    assert!(
        !rules.contains("libc.so"),
        "the runtime allowance is not repeated: {learned}"
    );
    let expected = std::fs::read_to_string("/etc/hostname").unwrap();
    let r = broker(["--policy", &policy, "--", "sort", "/etc/hostname"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (Some(0), expected.as_str()),
        "{r:?}"
    );
    assert!(
        !r.stderr.contains("denied"),
        "the learned policy should run clean: {r:?}"
    );
    let r = broker(["--policy", &policy, "--", "cat", "/etc/passwd"]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.contains("denied open \"/etc/passwd\""), "{r:?}");
    let r = broker(["check", &policy]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.lines().any(|l| l == "read /etc/hostname"), "{r:?}");
}

#[test]
fn learn_keeps_reads_writes_and_fifos_apart() {
    let s = Scratch::new("learn-kinds");
    let policy = s.arg("p.toml");
    let fifo = s.path("in");
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        std::fs::write(fifo, "job").unwrap();
    });
    let probe = probe(false).display().to_string();
    let r = broker(["--learn", &policy, "--", &probe, "fifo-read", &s.arg("in")]);
    writer.join().unwrap();
    assert_eq!(r.line(), "ok job", "{r:?}");
    let r2 = broker([
        "--learn",
        &s.arg("p2.toml"),
        "--",
        &probe,
        "write",
        &s.arg("rw/out"),
        "x",
    ]);
    assert_eq!(r2.line(), "ok 1", "{r2:?}");
    let learned = std::fs::read_to_string(s.path("p.toml")).unwrap();
    assert!(
        learned.contains(&format!("fifo = [\n  \"{}\",\n]", s.arg("in"))),
        "{learned}"
    );
    let learned = std::fs::read_to_string(s.path("p2.toml")).unwrap();
    assert!(
        learned.contains(&format!("write = [\n  \"{}\",\n]", s.arg("rw/out"))),
        "{learned}"
    );
    assert!(!learned.contains("read = ["), "{learned}");
}

#[test]
fn check_accepts_good_files_and_points_at_bad_lines() {
    let s = Scratch::new("check");
    let good = write(
        &s,
        "good.toml",
        &format!("# comment\ndeny_errno = \"ENOENT\"\n[allow]\nwrite = [\"{}\"]\nread = [\"/etc/hostname\"]\n", s.tree("rw")),
    );
    let r = broker(["check", &good]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let want = format!(
        "deny-errno ENOENT\ndefault-runtime on\nread /etc/hostname\nwrite {}\n",
        s.tree("rw")
    );
    assert_eq!(r.stdout, want);
    let bad = write(
        &s,
        "bad.toml",
        "[allow]\nread = [\"/etc/hostname\"]\nwrtie = [\"/tmp/**\"]\n",
    );
    let r = broker(["check", &bad]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr
            .starts_with(&format!("broker: {bad}:3:1: unknown field `wrtie`")),
        "{r:?}"
    );
    let rel = write(&s, "rel.toml", "[allow]\nread = [\n  \"data/x\",\n]\n");
    let r = broker(["check", &rel]);
    assert!(
        r.stderr.starts_with(&format!(
            "broker: {rel}:3:3: rule path \"data/x\" is relative"
        )),
        "{r:?}"
    );
    let missing = write(&s, "missing.toml", "[allow]\nread = [\"/nonexistent/x\"]\n");
    let r = broker(["check", &missing]);
    assert_eq!(r.code, Some(0), "a missing path is only a warning: {r:?}");
    assert!(
        r.stderr.contains(&format!(
            "{missing}:2:9: warning: /nonexistent/x does not exist"
        )),
        "{r:?}"
    );
    // Running with a bad policy fails as a broker error.
    let r = broker(["--policy", &bad, "--", "/bin/true"]);
    assert_eq!(r.code, Some(125), "{r:?}");
}

#[test]
fn flags_add_to_the_policy_file() {
    let s = Scratch::new("flags-add");
    let policy = write(
        &s,
        "p.toml",
        &format!(
            "deny_errno = \"ENOENT\"\n[allow]\nread = [\"{}\"]\n",
            s.arg("allowed/file.txt")
        ),
    );
    let mut args = vec![
        "--policy".to_string(),
        policy,
        "--allow-write".into(),
        s.tree("rw"),
    ];
    let r = probe_under(&args, "read", &[&s.arg("allowed/file.txt")]);
    assert_eq!(r.line(), "ok allowed-content", "{r:?}");
    let r = probe_under(&args, "write", &[&s.arg("rw/o"), "x"]);
    assert_eq!(r.line(), "ok 1", "{r:?}");
    let r = probe_under(&args, "read", &[&s.arg("secret.txt")]);
    assert_eq!(r.line(), "err 2", "deny_errno from the file: {r:?}");
    args.extend(["--deny-errno".into(), "EPERM".into()]);
    let r = probe_under(&args, "read", &[&s.arg("secret.txt")]);
    assert_eq!(r.line(), "err 1", "the flag wins over the file: {r:?}");
}

#[test]
fn the_audit_log_is_json_lines_with_every_decision() {
    let s = Scratch::new("audit");
    let log = s.arg("audit.jsonl");
    let mut pol = s.policy();
    pol.extend(["--audit-log".into(), log.clone()]);
    probe_under(&pol, "read", &[&s.arg("allowed/file.txt")]);
    probe_under(
        &pol,
        "read",
        &[&format!("{}/allowed/../secret.txt", s.dir.display())],
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    for r in &records {
        for key in [
            "time", "pid", "syscall", "path", "access", "decision", "rule", "reason",
        ] {
            assert!(r.get(key).is_some(), "{key} missing in {r}");
        }
    }
    let allow = records
        .iter()
        .find(|r| r["path"] == s.arg("allowed/file.txt"))
        .expect("the allowed open");
    assert_eq!(allow["decision"], "allow");
    assert_eq!(allow["access"], "read");
    assert_eq!(allow["rule"], s.tree("allowed"));
    assert!(allow.get("resolved").is_none(), "{allow}");
    let deny = records
        .iter()
        .find(|r| r["decision"] == "deny")
        .expect("the refused open");
    assert_eq!(deny["resolved"], s.arg("secret.txt"));
    assert_eq!(deny["rule"], serde_json::Value::Null);
    assert_eq!(deny["reason"], "no rule grants it");
    assert_eq!(deny["syscall"], "openat");
}

#[test]
fn common_mistakes_get_clear_messages() {
    let s = Scratch::new("mistakes");
    let r = broker([
        "--allow-fifo",
        &s.arg("allowed/file.txt"),
        "--",
        "/bin/true",
    ]);
    assert!(r.stderr.contains("not a FIFO"), "{r:?}");
    let r = broker(["--quiet", "--no-default-runtime", "--", "/bin/true"]);
    assert!(
        r.stderr
            .contains("is dynamically linked and the policy does not grant what its loader needs"),
        "{r:?}"
    );
    let r = broker(["--", "no-such-program-here"]);
    assert_eq!(
        r.stderr.trim(),
        "broker: program not found: no-such-program-here"
    );
}

#[test]
fn man_page_and_completions_are_generated_from_the_cli() {
    let r = broker(["man"]);
    assert_eq!(r.code, Some(0));
    assert!(
        r.stdout.contains(".TH broker 1") && r.stdout.contains("allow\\-read"),
        "{}",
        &r.stdout[..200.min(r.stdout.len())]
    );
    for shell in ["bash", "zsh", "fish"] {
        let r = broker(["completions", shell]);
        assert_eq!(r.code, Some(0), "{shell}: {r:?}");
        assert!(r.stdout.contains("allow-read"), "{shell}");
    }
    let r = broker(["--help"]);
    assert!(r.stdout.contains("Examples:"), "{r:?}");
}

#[test]
fn a_closed_stdout_is_an_error_not_a_death() {
    // The broker starts at the C entry point, without Rust's runtime, which would have set
    // SIGPIPE to ignored: the broker does it itself.
    let mut child = broker_command(["man"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    assert!(status.code().is_some(), "killed by a signal: {status:?}");
}

#[test]
fn learn_records_the_programs_a_run_executes() {
    let s = Scratch::new("learn-exec");
    let policy = s.arg("p.toml");
    let script = "cat /etc/hostname";
    let r = broker(["--learn", &policy, "--", "sh", "-c", script]);
    assert_eq!(r.code, Some(0), "{r:?}");
    let learned = std::fs::read_to_string(&policy).unwrap();
    let cat = std::fs::canonicalize("/usr/bin/cat").unwrap();
    assert!(
        learned.contains(&format!("exec = [\n  \"{}\",\n]", cat.display())),
        "{learned}"
    );
    // Without the learned exec rule the shell cannot run cat; with the policy it runs clean.
    let r = broker(["--quiet", "--", "sh", "-c", script]);
    assert_ne!(r.code, Some(0), "{r:?}");
    let r = broker(["--policy", &policy, "--", "sh", "-c", script]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(!r.stderr.contains("denied"), "{r:?}");
    let r = broker(["check", &policy]);
    assert!(
        r.stdout
            .lines()
            .any(|l| l == format!("exec {}", cat.display())),
        "{r:?}"
    );
}
