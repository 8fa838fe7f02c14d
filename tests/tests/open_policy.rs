//! Opens decided by the policy: what is granted works, everything else is refused, and no path
//! trick (.., //, symlinks, dirfds, cwd) reaches a file outside the grant.

use broker_tests::*;

#[test]
fn allowed_read_works_and_secret_is_refused() {
    let s = Scratch::new("read");
    let r = probe_under(&s.policy(), "read", &[&s.arg("allowed/file.txt")]);
    assert_eq!(r.line(), "ok allowed-content", "{r:?}");
    let r = probe_under(&s.policy(), "read", &[&s.arg("secret.txt")]);
    assert_eq!(r.line(), "err 13", "{r:?}");
    assert!(!r.stdout.contains(&s.token));
    let want = format!(
        "broker: denied open \"{}\" (read) for pid",
        s.arg("secret.txt")
    );
    assert!(r.stderr.contains(&want), "{r:?}");
    assert!(r.stderr.contains(": no rule grants it"), "{r:?}");
}

#[test]
fn exact_rule_grants_only_that_file() {
    let s = Scratch::new("exact");
    let pol = vec!["--allow-read".into(), s.arg("allowed/file.txt")];
    assert_eq!(
        probe_under(&pol, "read", &[&s.arg("allowed/file.txt")]).line(),
        "ok allowed-content"
    );
    assert_eq!(
        probe_under(&pol, "read", &[&s.arg("allowed/sub/inner.txt")]).line(),
        "err 13"
    );
}

#[test]
fn close_on_exec_is_kept_and_never_invented_and_blocking_mode_is_restored() {
    let s = Scratch::new("cloexec");
    let f = s.arg("allowed/file.txt");
    assert_eq!(probe_under(&s.policy(), "cloexec", &[&f]).line(), "ok 1 0");
    assert_eq!(probe_under(&s.policy(), "nonblock", &[&f]).line(), "ok 0");
}

#[test]
fn write_rules_create_truncate_and_read_rules_do_not() {
    let s = Scratch::new("write");
    let r = probe_under(&s.policy(), "write", &[&s.arg("rw/out.txt"), "hello"]);
    assert_eq!(r.line(), "ok 5", "{r:?}");
    assert_eq!(
        std::fs::read_to_string(s.path("rw/out.txt")).unwrap(),
        "hello"
    );
    let r = probe_under(&s.policy(), "write", &[&s.arg("allowed/file.txt"), "x"]);
    assert_eq!(r.line(), "err 13", "{r:?}");
    assert!(r.stderr.contains("grants read only"), "{r:?}");
    let r = probe_under(&s.policy(), "append", &[&s.arg("allowed/file.txt"), "x"]);
    assert_eq!(r.line(), "err 13", "{r:?}");
    let r = probe_under(&s.policy(), "write", &[&s.arg("outside/new"), "x"]);
    assert_eq!(r.line(), "err 13");
    assert!(!s.path("outside/new").exists());
    assert_eq!(
        std::fs::read_to_string(s.path("allowed/file.txt")).unwrap(),
        "allowed-content\n"
    );
}

#[test]
fn deny_errno_and_quiet_change_how_refusals_look() {
    let s = Scratch::new("errno");
    let mut pol = s.policy();
    pol.extend(["--deny-errno".into(), "ENOENT".into(), "--quiet".into()]);
    let r = probe_under(&pol, "read", &[&s.arg("secret.txt")]);
    assert_eq!(r.line(), "err 2", "{r:?}");
    assert!(!r.stderr.contains("denied"), "{r:?}");
}

#[test]
fn a_missing_file_in_a_granted_tree_is_enoent_not_a_denial() {
    let s = Scratch::new("enoent");
    let r = probe_under(&s.policy(), "read", &[&s.arg("allowed/nope")]);
    assert_eq!(r.line(), "err 2", "{r:?}");
    assert!(!r.stderr.contains("denied"), "{r:?}");
}

#[test]
fn static_and_dynamic_targets_are_both_served() {
    let s = Scratch::new("static");
    for static_ in [false, true] {
        let r = probe_under_as(&s.policy(), static_, "read", &[&s.arg("allowed/file.txt")]);
        assert_eq!(r.line(), "ok allowed-content", "static={static_}: {r:?}");
        let r = probe_under_as(&s.policy(), static_, "read-raw", &[&s.arg("secret.txt")]);
        assert_eq!(r.line(), "err 13", "static={static_}: {r:?}");
    }
}

#[test]
fn dev_stdout_and_stderr_work_without_any_grant() {
    let s = Scratch::new("stdio");
    let r = probe_under(&[], "write", &["/dev/stdout", "to-stdout"]);
    assert!(r.stdout.starts_with("to-stdout"), "{r:?}");
    let r = probe_under(&[], "write", &["/dev/stderr", "to-stderr"]);
    assert!(r.stderr.contains("to-stderr"), "{r:?}");
    // Descriptors the target does not have stay closed doors.
    let r = probe_under(&s.policy(), "read", &["/dev/fd/9"]);
    assert_eq!(r.line(), "err 2", "{r:?}");
}
