//! Executing what the exec policy does not allow: other programs, a copy written into a
//! writable directory, a memfd (by `execveat` and through `/proc/self/fd`).
//! Part of the adversarial suite: one file per attack class, each case an unmodified program
//! attacking the real broker, judged from outside. Every case demands full Landlock enforcement.

use broker_tests::*;

#[test]
fn only_the_program_itself_may_be_executed_by_default() {
    let s = Scratch::new("exec-other");
    let r = probe_under(&s.hardened(), "exec", &["/usr/bin/true"]);
    assert_eq!(r.line(), "err 13", "{r:?}");
    let mut pol = s.hardened();
    pol.extend(["--allow-exec".into(), "/usr/bin/true".into()]);
    let r = probe_under(&pol, "exec", &["/usr/bin/true"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (Some(0), ""),
        "--allow-exec grants it: {r:?}"
    );
}

#[test]
fn a_program_written_into_a_writable_directory_cannot_be_run() {
    let s = Scratch::new("exec-copy");
    let mut pol = s.hardened();
    pol.extend(["--allow-read".into(), "/usr/bin/true".into()]);
    let r = probe_under(&pol, "copy-exec", &["/usr/bin/true", &s.arg("rw/payload")]);
    assert_eq!(r.line(), "err 13", "{r:?}");
    assert!(s.path("rw/payload").exists(), "the copy itself was allowed");
}

#[test]
fn memfds_are_never_executable() {
    let s = Scratch::new("exec-memfd");
    let mut pol = s.hardened();
    pol.extend(["--allow-read".into(), "/usr/bin/true".into()]);
    // fchmod is refused (not in a write grant), execveat and /proc/self/fd/N exec both fail.
    let r = probe_under(&pol, "exec-memfd", &["/usr/bin/true"]);
    assert_eq!(r.line(), "ok -1/13 13 13", "{r:?}");
    assert_eq!(
        probe_under(&s.hardened(), "memfd-exec-flag", &[]).line(),
        "err 13"
    );
    // Memfds still work as memory files, close-on-exec as asked.
    assert_eq!(
        probe_under(&s.hardened(), "memfd-rw", &[]).line(),
        "ok memfd-data 1"
    );
}

#[test]
fn full_enforcement_is_there_and_required() {
    let r = broker(["--require-landlock", "--", "/bin/true"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stderr.is_empty(), "{r:?}");
}
