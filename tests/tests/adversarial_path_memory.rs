//! The path in the target's memory: rewritten by another thread while the broker reads it, placed at page edges, unterminated, wild.
//! Part of the adversarial suite: one file per attack class, each case an unmodified program
//! attacking the real broker, judged from outside. Every case demands full Landlock enforcement.

use broker_tests::*;

#[test]
fn racing_path_rewrites_never_open_the_secret() {
    let s = Scratch::new("race");
    let r = probe_under(
        &s.hardened(),
        "race",
        &[&s.arg("allowed/file.txt"), &s.arg("secret.txt")],
    );
    assert!(
        r.line().starts_with("ok opened") && r.line().ends_with("leaked 0"),
        "{r:?}"
    );
    assert!(!r.stdout.contains(&s.token), "{r:?}");
}

#[test]
fn hostile_path_memory_is_read_safely() {
    let s = Scratch::new("pages");
    let f = s.arg("allowed/file.txt");
    assert_eq!(
        probe_under(&s.hardened(), "page-edge", &[&f]).line(),
        "ok allowed-content"
    );
    let r = probe_under(&s.hardened(), "page-nonul", &[&f]);
    assert_eq!(
        r.stdout.lines().collect::<Vec<_>>(),
        ["ok -1 14 -1 14", "ok allowed-content"],
        "{r:?}"
    );
}
