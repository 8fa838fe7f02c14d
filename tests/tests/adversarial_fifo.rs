//! FIFO opens that never complete, and more of them than the broker keeps waiters for.
//! Part of the adversarial suite: one file per attack class, each case an unmodified program
//! attacking the real broker, judged from outside. Every case demands full Landlock enforcement.

use std::time::Duration;

use broker_tests::*;

#[test]
fn a_blocked_fifo_open_stalls_nothing_and_dies_with_the_target() {
    let s = Scratch::new("fifo-stall");
    // One thread blocks opening the FIFO (no writer ever comes); the other opens a file and the
    // process exits. The broker must serve the file and then exit with the target.
    let r = probe_under(
        &s.hardened(),
        "fifo-stall",
        &[&s.arg("in"), &s.arg("allowed/file.txt")],
    );
    assert_eq!(r.line(), "ok allowed-content", "{r:?}");
    assert_eq!(r.code, Some(0), "{r:?}");
}

#[test]
fn fifo_waiters_are_bounded_and_the_rest_get_eagain() {
    let s = Scratch::new("fifo-flood");
    let start = std::time::Instant::now();
    let r = probe_under(
        &s.hardened(),
        "fifo-flood",
        &[&s.path("in").display().to_string(), "100"],
    );
    assert_eq!(r.line(), "ok 1", "{r:?}");
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_fifo_rule_on_a_regular_file_or_symlink_is_refused() {
    let s = Scratch::new("fifo-confusion");
    std::fs::write(s.path("notfifo"), "plain").unwrap();
    std::os::unix::fs::symlink(s.path("secret.txt"), s.path("fifolink")).unwrap();
    let pol = vec![
        "--allow-fifo".to_string(),
        s.arg("notfifo"),
        "--allow-fifo".to_string(),
        s.arg("fifolink"),
    ];
    let r = probe_under(&pol, "read", &[&s.arg("notfifo")]);
    assert_eq!(r.line(), "err 13", "{r:?}");
    assert!(r.stderr.contains("not a FIFO"), "{r:?}");
    let r = probe_under(&pol, "read", &[&s.arg("fifolink")]);
    assert!(r.line().starts_with("err"), "{r:?}");
    assert!(!r.stdout.contains(&s.token));
}
