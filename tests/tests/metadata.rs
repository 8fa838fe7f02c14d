//! Path calls other than open: stat, access, readlink and the directory changes a write grant
//! allows. None of them may reveal or change anything outside the policy.

use broker_tests::*;

#[test]
fn stat_access_and_readlink_follow_the_policy() {
    let s = Scratch::new("stat");
    let pol = s.policy();
    assert_eq!(
        probe_under(&pol, "stat", &[&s.arg("allowed/file.txt")]).line(),
        "ok 16"
    );
    assert_eq!(
        probe_under(&pol, "stat", &[&s.arg("secret.txt")]).line(),
        "err 13"
    );
    // Directories above a grant may be stat'ed (realpath walks them), not their other entries.
    assert!(probe_under(&pol, "stat", &[&s.arg("")])
        .line()
        .starts_with("ok"));
    assert_eq!(
        probe_under(&pol, "stat", &[&s.arg("outside")]).line(),
        "err 13"
    );
    // stat follows symlinks only inside the tree; lstat sees the link itself.
    assert_eq!(
        probe_under(&pol, "stat", &[&s.arg("allowed/link")]).line(),
        "err 13"
    );
    assert_eq!(
        probe_under(&pol, "lstat", &[&s.arg("allowed/link")]).line(),
        format!("ok {}", libc::S_IFLNK)
    );
    assert_eq!(
        probe_under(&pol, "readlink", &[&s.arg("allowed/link")]).line(),
        "ok ../secret.txt"
    );
    assert_eq!(
        probe_under(&pol, "access", &[&s.arg("allowed/file.txt"), "4"]).line(),
        "ok 0"
    );
    assert_eq!(
        probe_under(&pol, "access", &[&s.arg("allowed/file.txt"), "2"]).line(),
        "err 13"
    );
    assert_eq!(
        probe_under(&pol, "access", &[&s.arg("secret.txt"), "0"]).line(),
        "err 13"
    );
}

#[test]
fn write_trees_allow_mkdir_unlink_rename_and_nothing_else_does() {
    let s = Scratch::new("dirs");
    let pol = s.policy();
    assert_eq!(probe_under(&pol, "mkdir", &[&s.arg("rw/d")]).line(), "ok 0");
    assert!(s.path("rw/d").is_dir());
    std::fs::write(s.path("rw/a"), "a").unwrap();
    assert_eq!(
        probe_under(&pol, "rename", &[&s.arg("rw/a"), &s.arg("rw/d/b")]).line(),
        "ok 0"
    );
    assert_eq!(std::fs::read_to_string(s.path("rw/d/b")).unwrap(), "a");
    assert_eq!(
        probe_under(&pol, "unlink", &[&s.arg("rw/d/b")]).line(),
        "ok 0"
    );
    assert_eq!(probe_under(&pol, "rmdir", &[&s.arg("rw/d")]).line(), "ok 0");
    assert!(!s.path("rw/d").exists());
    // Outside the write tree all of them are refused.
    assert_eq!(
        probe_under(&pol, "mkdir", &[&s.arg("allowed/d")]).line(),
        "err 13"
    );
    assert_eq!(
        probe_under(&pol, "unlink", &[&s.arg("allowed/file.txt")]).line(),
        "err 13"
    );
    assert_eq!(
        probe_under(&pol, "rename", &[&s.arg("secret.txt"), &s.arg("rw/stolen")]).line(),
        "err 13"
    );
    assert_eq!(
        probe_under(&pol, "rename", &[&s.arg("rw/x"), &s.arg("allowed/x")]).line(),
        "err 13"
    );
    // The root of the write tree itself cannot be removed.
    assert!(probe_under(&pol, "rmdir", &[&s.arg("rw")])
        .line()
        .starts_with("err"));
    assert_eq!(
        std::fs::read_to_string(s.path("secret.txt")).unwrap(),
        s.token
    );
    assert!(s.path("allowed/file.txt").exists());
}

#[test]
fn created_files_honour_the_targets_umask() {
    let s = Scratch::new("umask");
    let r = probe_under(
        &s.policy(),
        "umask-create",
        &[&s.arg("rw/f"), &s.arg("rw/d")],
    );
    assert_eq!(r.line(), "ok 600 700", "{r:?}");
}
