//! FIFOs: both directions, refused when the path is not a FIFO, and a FIFO open that never
//! completes must not stall anything else or keep the broker alive.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use broker_tests::*;

#[test]
fn target_reads_from_an_allowed_fifo() {
    let s = Scratch::new("fifo-read");
    let fifo = s.path("in");
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        let mut f = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
        f.write_all(b"job-1").unwrap();
    });
    let r = probe_under(&s.policy(), "fifo-read", &[&s.arg("in")]);
    writer.join().unwrap();
    assert_eq!(r.line(), "ok job-1", "{r:?}");
}

#[test]
fn target_writes_to_an_allowed_fifo() {
    let s = Scratch::new("fifo-write");
    let fifo = s.path("in");
    let reader = std::thread::spawn(move || {
        let mut f = std::fs::File::open(fifo).unwrap();
        let mut out = String::new();
        f.read_to_string(&mut out).unwrap();
        out
    });
    let r = probe_under(&s.policy(), "fifo-write", &[&s.arg("in"), "result-1"]);
    assert_eq!(r.line(), "ok 8", "{r:?}");
    assert_eq!(reader.join().unwrap(), "result-1");
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

#[test]
fn a_read_rule_does_not_open_a_fifo() {
    let s = Scratch::new("fifo-readrule");
    mkfifo(&s.path("allowed/pipe"));
    let start = Instant::now();
    let r = probe_under(&s.policy(), "read", &[&s.arg("allowed/pipe")]);
    assert_eq!(r.line(), "err 13", "{r:?}");
    assert!(r.stderr.contains("is a FIFO"), "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_blocked_fifo_open_stalls_nothing_and_dies_with_the_target() {
    let s = Scratch::new("fifo-stall");
    // One thread blocks opening the FIFO (no writer ever comes); the other opens a file and the
    // process exits. The broker must serve the file and then exit with the target.
    let r = probe_under(
        &s.policy(),
        "fifo-stall",
        &[&s.arg("in"), &s.arg("allowed/file.txt")],
    );
    assert_eq!(r.line(), "ok allowed-content", "{r:?}");
    assert_eq!(r.code, Some(0), "{r:?}");
}
