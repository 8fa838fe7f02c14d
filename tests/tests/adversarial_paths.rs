//! `..`, `//`, dirfds and the cwd: every spelling of a path is resolved before deciding.
//! Part of the adversarial suite: one file per attack class, each case an unmodified program
//! attacking the real broker, judged from outside. Every case demands full Landlock enforcement.

use broker_tests::*;

#[test]
fn dot_dot_and_double_slash_are_normalised_before_deciding() {
    let s = Scratch::new("dots");
    for path in [
        "allowed/../secret.txt",
        "allowed/./../allowed/../secret.txt",
        "allowed/file.txt/../../secret.txt",
    ] {
        let r = probe_under(&s.hardened(), "read", &[&s.arg(path)]);
        assert_eq!(r.line(), "err 13", "{path}: {r:?}");
        assert!(!r.stdout.contains(&s.token));
    }
    let r = probe_under(
        &s.hardened(),
        "read",
        &[&format!("{}//allowed///file.txt", s.dir.display())],
    );
    assert_eq!(r.line(), "ok allowed-content", "{r:?}");
}

#[test]
fn dirfd_and_cwd_relative_opens_resolve_against_the_real_directory() {
    let s = Scratch::new("relative");
    let pol = s.hardened();
    assert_eq!(
        probe_under(&pol, "openat", &[&s.arg("allowed"), "file.txt"]).line(),
        "ok allowed-content"
    );
    assert_eq!(
        probe_under(&pol, "openat", &[&s.arg("allowed"), "../secret.txt"]).line(),
        "err 13"
    );
    assert_eq!(
        probe_under(&pol, "chdir-read", &[&s.arg("allowed"), "sub/inner.txt"]).line(),
        "ok inner-content"
    );
    assert_eq!(
        probe_under(&pol, "chdir-read", &[&s.arg("allowed/sub"), "../file.txt"]).line(),
        "ok allowed-content"
    );
    assert_eq!(
        probe_under(&pol, "chdir-read", &[&s.arg("allowed"), "../secret.txt"]).line(),
        "err 13"
    );
    assert_eq!(
        probe_under(&pol, "fchdir-read", &[&s.arg("allowed"), "file.txt"]).line(),
        "ok allowed-content"
    );
    assert_eq!(
        probe_under(&pol, "fchdir-read", &[&s.arg("allowed"), "../secret.txt"]).line(),
        "err 13"
    );
    // chdir into a directory no rule covers is refused.
    assert_eq!(
        probe_under(&pol, "chdir-read", &[&s.arg("outside"), "x"]).line(),
        "err 13"
    );
}

#[test]
fn recursive_rule_matches_on_a_slash_boundary() {
    let s = Scratch::new("boundary");
    std::fs::create_dir(s.path("allowedx")).unwrap();
    std::fs::write(s.path("allowedx/f"), "x").unwrap();
    let r = probe_under(&s.hardened(), "read", &[&s.arg("allowedx/f")]);
    assert_eq!(r.line(), "err 13", "{r:?}");
    let r = probe_under(&s.hardened(), "read", &[&s.arg("allowed/sub/inner.txt")]);
    assert_eq!(r.line(), "ok inner-content", "{r:?}");
}
