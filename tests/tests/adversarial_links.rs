//! Symlinks and hardlinks planted inside granted trees, before or during the run.
//! Part of the adversarial suite: one file per attack class, each case an unmodified program
//! attacking the real broker, judged from outside. Every case demands full Landlock enforcement.

use broker_tests::*;

#[test]
fn symlinks_cannot_lead_out_of_the_grant() {
    let s = Scratch::new("symlink");
    for path in ["allowed/link", "allowed/dirlink/secret.txt"] {
        let r = probe_under(&s.hardened(), "read", &[&s.arg(path)]);
        assert_eq!(r.line(), "err 13", "{path}: {r:?}");
        assert!(
            r.stderr
                .contains("a symlink leads outside the granted tree"),
            "{r:?}"
        );
    }
    // A symlink inside the tree that stays inside is followed.
    std::os::unix::fs::symlink("sub/inner.txt", s.path("allowed/inlink")).unwrap();
    assert_eq!(
        probe_under(&s.hardened(), "read", &[&s.arg("allowed/inlink")]).line(),
        "ok inner-content"
    );
    // An absolute symlink, even to an allowed file, is refused: it walks from outside.
    std::os::unix::fs::symlink(s.path("allowed/file.txt"), s.path("allowed/abslink")).unwrap();
    assert_eq!(
        probe_under(&s.hardened(), "read", &[&s.arg("allowed/abslink")]).line(),
        "err 13"
    );
}

#[test]
fn symlink_planted_in_a_writable_directory_opens_no_door() {
    let s = Scratch::new("planted");
    std::os::unix::fs::symlink(s.path("secret.txt"), s.path("rw/evil")).unwrap();
    std::os::unix::fs::symlink("../secret.txt", s.path("rw/evil2")).unwrap();
    for path in ["rw/evil", "rw/evil2"] {
        let r = probe_under(&s.hardened(), "read", &[&s.arg(path)]);
        assert_eq!(r.line(), "err 13", "{r:?}");
        let r = probe_under(&s.hardened(), "write", &[&s.arg(path), "pwned"]);
        assert!(r.line().starts_with("err"), "{r:?}");
    }
    assert_eq!(
        std::fs::read_to_string(s.path("secret.txt")).unwrap(),
        s.token
    );
    // Dangling symlink + O_CREAT must not create a file outside either.
    std::os::unix::fs::symlink("../outside/created", s.path("rw/dangling")).unwrap();
    let r = probe_under(&s.hardened(), "write", &[&s.arg("rw/dangling"), "x"]);
    assert!(r.line().starts_with("err"), "{r:?}");
    assert!(!s.path("outside/created").exists());
}

#[test]
fn links_are_never_created_so_no_hardlink_door_opens() {
    let s = Scratch::new("links");
    let pol = s.hardened();
    assert_eq!(
        probe_under(&pol, "link", &[&s.arg("secret.txt"), &s.arg("rw/hard")]).line(),
        "err 13"
    );
    assert_eq!(
        probe_under(&pol, "symlink", &[&s.arg("secret.txt"), &s.arg("rw/soft")]).line(),
        "err 13"
    );
    assert!(!s.path("rw/hard").exists() && !s.path("rw/soft").exists());
}
