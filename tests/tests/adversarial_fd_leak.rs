//! Descriptors: nothing leaks into the target, and the broker's own count stays flat whatever the target does.
//! Part of the adversarial suite: one file per attack class, each case an unmodified program
//! attacking the real broker, judged from outside. Every case demands full Landlock enforcement.

use std::time::Duration;

use broker_tests::*;

#[test]
fn only_stdio_and_the_documented_channel_reach_the_target() {
    let s = Scratch::new("fds");
    let r = probe_under(&s.hardened(), "fds", &[]);
    let fds: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("fd ")).collect();
    assert_eq!(
        fds,
        vec![format!("fd 3 mode {:o}", libc::S_IFSOCK).as_str()],
        "{r:?}"
    );
    assert!(r.stdout.contains("ok env 3"), "{r:?}");
}

#[test]
fn the_brokers_descriptors_stay_flat_under_a_flood_of_requests() {
    let s = Scratch::new("flood");
    let f = s.path("allowed/file.txt").display().to_string();
    let secret = s.path("secret.txt").display().to_string();
    let probe = probe(false);
    let mut args: Vec<String> = s.hardened();
    args.extend(["--quiet".into(), "--".into(), probe.display().to_string()]);
    args.extend(["flood".into(), f.clone(), "3000".into(), secret]);
    let (samples, out) = broker_fd_samples(&args, Duration::from_millis(20));
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(line.starts_with("ok 24000 12000"), "{line}");
    // Rules' anchors, the listener, the channel, signalfd, stdio; a request in flight may hold
    // one or two more for a moment (the first samples may predate start-up).
    assert_fd_count_flat(&samples, 3);
}
