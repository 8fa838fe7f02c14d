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
fn a_read_rule_does_not_open_a_fifo() {
    let s = Scratch::new("fifo-readrule");
    mkfifo(&s.path("allowed/pipe"));
    let start = Instant::now();
    let r = probe_under(&s.policy(), "read", &[&s.arg("allowed/pipe")]);
    assert_eq!(r.line(), "err 13", "{r:?}");
    assert!(r.stderr.contains("is a FIFO"), "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(20));
}
