//! RLIMIT_NOFILE exhausted while the broker injects descriptors.
//! Part of the adversarial suite: one file per attack class, each case an unmodified program
//! attacking the real broker, judged from outside. Every case demands full Landlock enforcement.

use broker_tests::*;

#[test]
fn descriptor_exhaustion_in_the_target_is_emfile_and_the_broker_carries_on() {
    let s = Scratch::new("nofile");
    let r = probe_under(
        &s.hardened(),
        "nofile",
        &[&s.path("allowed/file.txt").display().to_string()],
    );
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"ok emfile 24"), "{r:?}");
    assert_eq!(lines.get(1), Some(&"ok allowed-content"), "{r:?}");
}
