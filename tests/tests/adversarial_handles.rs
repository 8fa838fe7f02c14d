//! File handles: open_by_handle_at and name_to_handle_at would open files without a path.
//! Part of the adversarial suite: one file per attack class, each case an unmodified program
//! attacking the real broker, judged from outside. Every case demands full Landlock enforcement.

use broker_tests::*;

#[test]
fn open_by_handle_at_is_refused() {
    refused("open_by_handle", "err 1");
}

#[test]
fn name_to_handle_at_is_refused() {
    let s = Scratch::new("name-to-handle");
    let r = probe_under(
        &s.hardened(),
        "name_to_handle",
        &[&s.arg("allowed/file.txt")],
    );
    assert_eq!(r.line(), "err 1", "{r:?}");
}
