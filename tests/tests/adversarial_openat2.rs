//! openat2 and flags that only exist there; unknown and contradictory open flags.
//! Part of the adversarial suite: one file per attack class, each case an unmodified program
//! attacking the real broker, judged from outside. Every case demands full Landlock enforcement.

use broker_tests::*;

#[test]
fn openat2_is_brokered_with_its_own_checks() {
    let s = Scratch::new("openat2");
    let pol = s.hardened();
    assert_eq!(
        probe_under(&pol, "openat2", &[&s.arg("allowed/file.txt"), "0"]).line(),
        "ok allowed-content"
    );
    assert_eq!(
        probe_under(&pol, "openat2", &[&s.arg("secret.txt"), "0"]).line(),
        "err 13"
    );
    // RESOLVE_NO_SYMLINKS (0x04) is honoured on top of the broker's own walk.
    std::os::unix::fs::symlink("sub/inner.txt", s.path("allowed/inlink")).unwrap();
    assert_eq!(
        probe_under(&pol, "openat2", &[&s.arg("allowed/inlink"), "4"]).line(),
        "err 40"
    );
    // RESOLVE_IN_ROOT (0x10) is relative to the caller's dirfd: refused, not approximated.
    assert_eq!(
        probe_under(&pol, "openat2", &[&s.arg("allowed/file.txt"), "16"]).line(),
        "err 22"
    );
    // A larger struct with a non-zero unknown tail: E2BIG, like the kernel.
    assert_eq!(
        probe_under(&pol, "openat2-big", &[&s.arg("allowed/file.txt")]).line(),
        "err 7"
    );
}

#[test]
fn unknown_and_contradictory_open_flags_are_refused() {
    let s = Scratch::new("flags");
    let f = s.arg("allowed/file.txt");
    // O_ACCMODE both bits set.
    assert_eq!(
        probe_under(&s.hardened(), "open-flags", &[&f, "3"]).line(),
        "err 22"
    );
    // O_RDONLY|O_TRUNC needs write access.
    assert_eq!(
        probe_under(&s.hardened(), "open-flags", &[&f, "0x200"]).line(),
        "err 13"
    );
    // O_LARGEFILE as the kernel spells it (glibc's headers make it 0 on x86_64): accepted.
    assert_eq!(
        probe_under(&s.hardened(), "open-flags", &[&f, "0x8000"]).line(),
        "ok allowed-content"
    );
    // An undefined flag bit.
    assert_eq!(
        probe_under(&s.hardened(), "open-flags", &[&f, "0x40000000"]).line(),
        "err 22"
    );
    // O_TMPFILE is not brokered.
    assert_eq!(
        probe_under(&s.hardened(), "open-flags", &[&s.arg("rw"), "0x410002"]).line(),
        "err 95"
    );
    assert_eq!(
        std::fs::read_to_string(s.path("allowed/file.txt")).unwrap(),
        "allowed-content\n"
    );
}
