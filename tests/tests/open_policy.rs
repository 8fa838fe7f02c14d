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
fn recursive_rule_matches_on_a_slash_boundary() {
    let s = Scratch::new("boundary");
    std::fs::create_dir(s.path("allowedx")).unwrap();
    std::fs::write(s.path("allowedx/f"), "x").unwrap();
    let r = probe_under(&s.policy(), "read", &[&s.arg("allowedx/f")]);
    assert_eq!(r.line(), "err 13", "{r:?}");
    let r = probe_under(&s.policy(), "read", &[&s.arg("allowed/sub/inner.txt")]);
    assert_eq!(r.line(), "ok inner-content", "{r:?}");
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
fn dot_dot_and_double_slash_are_normalised_before_deciding() {
    let s = Scratch::new("dots");
    for path in [
        "allowed/../secret.txt",
        "allowed/./../allowed/../secret.txt",
        "allowed/file.txt/../../secret.txt",
    ] {
        let r = probe_under(&s.policy(), "read", &[&s.arg(path)]);
        assert_eq!(r.line(), "err 13", "{path}: {r:?}");
        assert!(!r.stdout.contains(&s.token));
    }
    let r = probe_under(
        &s.policy(),
        "read",
        &[&format!("{}//allowed///file.txt", s.dir.display())],
    );
    assert_eq!(r.line(), "ok allowed-content", "{r:?}");
}

#[test]
fn symlinks_cannot_lead_out_of_the_grant() {
    let s = Scratch::new("symlink");
    for path in ["allowed/link", "allowed/dirlink/secret.txt"] {
        let r = probe_under(&s.policy(), "read", &[&s.arg(path)]);
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
        probe_under(&s.policy(), "read", &[&s.arg("allowed/inlink")]).line(),
        "ok inner-content"
    );
    // An absolute symlink, even to an allowed file, is refused: it walks from outside.
    std::os::unix::fs::symlink(s.path("allowed/file.txt"), s.path("allowed/abslink")).unwrap();
    assert_eq!(
        probe_under(&s.policy(), "read", &[&s.arg("allowed/abslink")]).line(),
        "err 13"
    );
}

#[test]
fn symlink_planted_in_a_writable_directory_opens_no_door() {
    let s = Scratch::new("planted");
    std::os::unix::fs::symlink(s.path("secret.txt"), s.path("rw/evil")).unwrap();
    std::os::unix::fs::symlink("../secret.txt", s.path("rw/evil2")).unwrap();
    for path in ["rw/evil", "rw/evil2"] {
        let r = probe_under(&s.policy(), "read", &[&s.arg(path)]);
        assert_eq!(r.line(), "err 13", "{r:?}");
        let r = probe_under(&s.policy(), "write", &[&s.arg(path), "pwned"]);
        assert!(r.line().starts_with("err"), "{r:?}");
    }
    assert_eq!(
        std::fs::read_to_string(s.path("secret.txt")).unwrap(),
        s.token
    );
    // Dangling symlink + O_CREAT must not create a file outside either.
    std::os::unix::fs::symlink("../outside/created", s.path("rw/dangling")).unwrap();
    let r = probe_under(&s.policy(), "write", &[&s.arg("rw/dangling"), "x"]);
    assert!(r.line().starts_with("err"), "{r:?}");
    assert!(!s.path("outside/created").exists());
}

#[test]
fn dirfd_and_cwd_relative_opens_resolve_against_the_real_directory() {
    let s = Scratch::new("relative");
    let pol = s.policy();
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
fn openat2_is_brokered_with_its_own_checks() {
    let s = Scratch::new("openat2");
    let pol = s.policy();
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
        probe_under(&s.policy(), "open-flags", &[&f, "3"]).line(),
        "err 22"
    );
    // O_RDONLY|O_TRUNC needs write access.
    assert_eq!(
        probe_under(&s.policy(), "open-flags", &[&f, "0x200"]).line(),
        "err 13"
    );
    // An undefined flag bit.
    assert_eq!(
        probe_under(&s.policy(), "open-flags", &[&f, "0x40000000"]).line(),
        "err 22"
    );
    // O_TMPFILE is not brokered.
    assert_eq!(
        probe_under(&s.policy(), "open-flags", &[&s.arg("rw"), "0x410002"]).line(),
        "err 95"
    );
    assert_eq!(
        std::fs::read_to_string(s.path("allowed/file.txt")).unwrap(),
        "allowed-content\n"
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
fn racing_path_rewrites_never_open_the_secret() {
    let s = Scratch::new("race");
    let r = probe_under(
        &s.policy(),
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
fn proc_self_is_the_target_and_the_brokers_proc_is_never_served() {
    let s = Scratch::new("proc");
    let mut pol = s.policy();
    pol.extend(["--allow-read".into(), "/proc/**".into()]);
    let r = probe_under(&pol, "read", &["/proc/self/comm"]);
    assert_eq!(r.line(), "ok probe", "{r:?}");
    for entry in ["environ", "status", "mem"] {
        let r = probe_under(&pol, "read-ppid", &[entry]);
        assert_eq!(r.line(), "err 13", "{entry}: {r:?}");
        assert!(
            r.stderr
                .contains("the broker's own /proc entries are never served"),
            "{r:?}"
        );
    }
    // Magic links are never followed, even under a /proc grant (own descriptors are reopened
    // by their own rules, see own_descriptors_reopen_with_the_access_they_have_and_no_more).
    for path in ["/proc/self/root/etc/hostname", "/proc/self/cwd/secret.txt"] {
        let r = probe_under(&pol, "read", &[path]);
        assert!(r.line().starts_with("err"), "{path}: {r:?}");
    }
}

#[test]
fn hostile_path_memory_is_read_safely() {
    let s = Scratch::new("pages");
    let f = s.arg("allowed/file.txt");
    assert_eq!(
        probe_under(&s.policy(), "page-edge", &[&f]).line(),
        "ok allowed-content"
    );
    let r = probe_under(&s.policy(), "page-nonul", &[&f]);
    assert_eq!(
        r.stdout.lines().collect::<Vec<_>>(),
        ["ok -1 14 -1 14", "ok allowed-content"],
        "{r:?}"
    );
}

#[test]
fn renames_racing_the_brokers_open_never_lead_outside() {
    let s = Scratch::new("rename-race");
    std::fs::create_dir(s.path("allowed/d")).unwrap();
    std::fs::write(s.path("allowed/d/f"), "inside").unwrap();
    std::fs::write(s.path("outside/f"), &s.token).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (stop, d, real, out) = (
            stop.clone(),
            s.path("allowed/d"),
            s.path("allowed/d.real"),
            s.path("outside"),
        );
        std::thread::spawn(move || {
            let mut swaps = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // d is the real directory; then, briefly, a symlink to the secret's directory.
                std::fs::rename(&d, &real).unwrap();
                std::os::unix::fs::symlink(&out, &d).unwrap();
                std::fs::remove_file(&d).unwrap();
                std::os::unix::fs::symlink("../../outside", &d).unwrap();
                std::fs::remove_file(&d).unwrap();
                std::fs::rename(&real, &d).unwrap();
                swaps += 1;
            }
            swaps
        })
    };
    let r = probe_under(&s.policy(), "loop-read", &[&s.arg("allowed/d/f"), "3000"]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(
        r.line().starts_with("ok ") && r.line().ends_with(" leaked 0"),
        "{r:?}"
    );
    assert!(!r.stdout.contains(&s.token));
    assert!(swaps > 10, "the race did not run ({swaps} swaps)");
}

#[test]
fn own_descriptors_reopen_with_the_access_they_have_and_no_more() {
    let s = Scratch::new("reopen");
    std::fs::write(s.path("rw/log"), "").unwrap();
    let r = probe_under(
        &s.policy(),
        "reopen",
        &[&s.arg("allowed/file.txt"), &s.arg("rw/log")],
    );
    // A read-only descriptor does not reopen for writing; an append-only one does not reopen
    // without O_APPEND; the same access works.
    assert_eq!(r.line(), "ok -1/13 -1/13 allowed-content 1", "{r:?}");
    assert!(r.stderr.contains("was not opened for write"), "{r:?}");
    assert!(r.stderr.contains("is append-only"), "{r:?}");
    assert_eq!(
        std::fs::read_to_string(s.path("allowed/file.txt")).unwrap(),
        "allowed-content\n"
    );
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
