//! Many threads opening at once.
//! Part of the adversarial suite: one file per attack class, each case an unmodified program
//! attacking the real broker, judged from outside. Every case demands full Landlock enforcement.

use broker_tests::*;

#[test]
fn forks_and_threads_are_all_served() {
    let s = Scratch::new("fork");
    let f = s.path("allowed/file.txt").display().to_string();
    assert_eq!(
        probe_under(&s.hardened(), "fork-read", &[&f]).line(),
        "ok allowed-content"
    );
    let r = probe_under(&s.hardened(), "threads", &[&f, "32", "20"]);
    assert_eq!(r.line(), "ok 640", "{r:?}");
}
