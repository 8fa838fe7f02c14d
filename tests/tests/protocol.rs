//! The explicit request protocol end to end: `brokered-cat` and a hostile client under the real
//! broker, with and without `--explicit-only`.

use std::time::Duration;

use broker_tests::*;

fn brokered_cat() -> String {
    workspace_bin("brokered-cat").display().to_string()
}

fn hostile(s: &Scratch, scenario: &str) -> Run {
    let mut args = s.hardened();
    args.extend([
        "--".into(),
        env!("CARGO_BIN_EXE_hostile-client").into(),
        scenario.into(),
        s.arg("allowed/file.txt"),
    ]);
    broker(&args)
}

#[test]
fn brokered_cat_prints_an_allowed_file() {
    let s = Scratch::new("bcat");
    let mut args = s.hardened();
    args.extend(["--".into(), brokered_cat(), s.arg("allowed/file.txt")]);
    let r = broker(&args);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stdout, "allowed-content\n", "{r:?}");
    // It opens nothing itself (its doc says so): not even what Rust's start-up would read.
    let mut args = s.hardened();
    args.extend([
        "--explicit-only".into(),
        "--".into(),
        brokered_cat(),
        s.arg("allowed/file.txt"),
    ]);
    let r = broker(&args);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(!r.stderr.contains("denied"), "{r:?}");
}

#[test]
fn a_path_outside_the_policy_is_refused_with_the_reason() {
    let s = Scratch::new("bcat-deny");
    for path in ["secret.txt", "allowed/link", "allowed/dirlink/secret.txt"] {
        let mut args = s.hardened();
        args.extend(["--".into(), brokered_cat(), s.arg(path)]);
        let r = broker(&args);
        assert_eq!(r.code, Some(1), "{path}: {r:?}");
        assert!(!r.stdout.contains(&s.token), "{path} leaked: {r:?}");
        let reason = format!("brokered-cat: {}: ", s.arg(path));
        assert!(r.stderr.contains(&reason), "{path}: {r:?}");
        assert!(
            r.stderr.contains("no rule grants it")
                || r.stderr.contains("leads outside the granted tree"),
            "{path}: {r:?}"
        );
        // One request, one denial line.
        let denied = format!("denied open {:?}", s.arg(path));
        assert_eq!(r.stderr.matches(&denied).count(), 1, "{path}: {r:?}");
    }
}

#[test]
fn protocol_requests_follow_the_same_policy_as_intercepted_opens() {
    // Writing needs a write rule; the same FIFO rule serves FIFOs; the broker's own /proc is
    // out of reach over the protocol too.
    let s = Scratch::new("bcat-same");
    let mut args = s.hardened();
    args.extend(["--allow-read".into(), "/proc/**".into()]);
    args.extend([
        "--".into(),
        brokered_cat(),
        "/proc/self/environ".into(),
        s.arg("allowed/sub/inner.txt"),
    ]);
    let r = broker(&args);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert_eq!(r.stdout, "inner-content\n", "{r:?}");
    assert!(
        r.stderr.contains("brokered-cat: /proc/self/environ"),
        "{r:?}"
    );

    let writer = std::thread::spawn({
        let fifo = s.path("in");
        move || std::fs::write(fifo, "through-the-fifo\n").unwrap()
    });
    let mut args = s.hardened();
    args.extend(["--".into(), brokered_cat(), s.arg("in")]);
    let r = broker(&args);
    writer.join().unwrap();
    assert_eq!(r.stdout, "through-the-fifo\n", "{r:?}");
}

#[test]
fn explicit_only_refuses_the_programs_own_opens_but_serves_the_protocol() {
    let s = Scratch::new("explicit");
    let file = s.arg("allowed/file.txt");
    let mut args = s.hardened();
    args.extend([
        "--explicit-only".into(),
        "--".into(),
        "/bin/cat".into(),
        file.clone(),
    ]);
    let r = broker(&args);
    assert_ne!(r.code, Some(0), "{r:?}");
    assert!(!r.stdout.contains("allowed-content"), "{r:?}");
    assert!(r.stderr.contains("Permission denied"), "{r:?}");

    let mut args = s.hardened();
    args.extend([
        "--explicit-only".into(),
        "--".into(),
        brokered_cat(),
        file.clone(),
    ]);
    let r = broker(&args);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stdout, "allowed-content\n", "{r:?}");

    // Without the loader's files a dynamic program cannot start; the broker says why first.
    let mut args = s.hardened();
    args.extend([
        "--explicit-only".into(),
        "--no-default-runtime".into(),
        "--".into(),
        brokered_cat(),
        file,
    ]);
    let r = broker(&args);
    assert_ne!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.contains("is dynamically linked"), "{r:?}");
}

#[test]
fn without_a_broker_the_client_says_so() {
    let r = run_cmd(
        std::process::Command::new(brokered_cat()).arg("/etc/hostname"),
        Duration::from_secs(10),
    );
    assert_eq!(r.code, Some(2), "{r:?}");
    assert!(r.stderr.contains("BROKER_FD is not set"), "{r:?}");
}

#[test]
fn hostile_messages_get_clean_errors_and_serving_goes_on() {
    let s = Scratch::new("hostile");
    for scenario in [
        "garbage",
        "huge-length",
        "truncated",
        "oversize",
        "with-fds",
        "before-hello",
        "bad-version",
        "threads",
    ] {
        let r = hostile(&s, scenario);
        assert_eq!(r.code, Some(0), "{scenario}: {r:?}");
        assert!(
            r.stdout.starts_with(&format!("ok {scenario} ")),
            "{scenario}: {r:?}"
        );
        assert!(r.stdout.ends_with("allowed-content\n"), "{scenario}: {r:?}");
    }
    let r = hostile(&s, "threads");
    assert!(r.stdout.starts_with("ok threads 1600 "), "{r:?}");
}

#[test]
fn a_client_that_never_reads_loses_the_channel_not_the_broker() {
    let s = Scratch::new("noread");
    let r = hostile(&s, "no-read");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(r.stdout, "ok no-read allowed-content\n", "{r:?}");
    assert!(
        r.stderr
            .contains("dropped the protocol channel: the target does not read its replies"),
        "{r:?}"
    );
}

#[test]
fn the_brokers_descriptors_stay_flat_under_messages_with_descriptors() {
    let s = Scratch::new("proto-fds");
    let mut args = s.hardened();
    args.extend([
        "--quiet".into(),
        "--".into(),
        env!("CARGO_BIN_EXE_hostile-client").into(),
        "with-fds".into(),
        s.arg("allowed/file.txt"),
    ]);
    let (samples, out) = broker_fd_samples(&args, Duration::from_millis(10));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("ok with-fds"),
        "{out:?}"
    );
    // 12,000 messages carried over 800,000 descriptors; one kept per message would show at
    // once. A message in flight may hold up to a dozen for a moment (the kernel installs what
    // fits the control buffer, the broker closes them).
    assert_fd_count_flat(&samples, 16);
}
