//! Changing what a read grant protects through its descriptor: chmod, utimes, inode flags.
//! Part of the adversarial suite: one file per attack class, each case an unmodified program
//! attacking the real broker, judged from outside. Every case demands full Landlock enforcement.

use broker_tests::*;

#[test]
fn a_read_grant_does_not_allow_changing_mode_or_times_through_the_descriptor() {
    let s = Scratch::new("fdmeta");
    let before = std::fs::metadata(s.path("allowed/file.txt")).unwrap();
    let pol = s.hardened();
    assert_eq!(
        probe_under(&pol, "fchmod", &[&s.arg("allowed/file.txt")]).line(),
        "err 13"
    );
    assert_eq!(
        probe_under(&pol, "futimens", &[&s.arg("allowed/file.txt")]).line(),
        "err 13"
    );
    assert_eq!(
        probe_under(&pol, "chmod", &[&s.arg("allowed/file.txt")]).line(),
        "err 13"
    );
    let after = std::fs::metadata(s.path("allowed/file.txt")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (before.mode(), before.mtime()),
        (after.mode(), after.mtime())
    );
    // In a write grant they work.
    std::fs::write(s.path("rw/f"), "x").unwrap();
    assert_eq!(
        probe_under(&pol, "fchmod", &[&s.arg("rw/f")]).line(),
        "ok 0"
    );
    assert_eq!(
        std::fs::metadata(s.path("rw/f")).unwrap().mode() & 0o777,
        0o777
    );
    assert_eq!(
        probe_under(&pol, "futimens", &[&s.arg("rw/f")]).line(),
        "ok 0"
    );
    assert_eq!(std::fs::metadata(s.path("rw/f")).unwrap().mtime(), 1);
}

#[test]
fn inode_flags_cannot_be_changed_through_a_read_only_descriptor() {
    let s = Scratch::new("chattr");
    let f = s.path("allowed/file.txt").display().to_string();
    let r = probe_under(&s.hardened(), "chattr", &[&f]);
    assert_eq!(r.line(), "err 1", "{r:?}");
}
