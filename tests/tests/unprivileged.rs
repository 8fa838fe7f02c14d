//! The broker needs no privilege. As root, these cases run the broker itself as `nobody`
//! (uid/gid 65534, no groups) through setpriv; as an ordinary user they run as that user.
//! The secret is world-readable on purpose: only the broker's policy keeps the target out.

use std::ffi::OsStr;
use std::process::Command;
use std::time::Duration;

use broker_tests::*;

fn unprivileged(args: &[&OsStr]) -> Run {
    let mut cmd = if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(broker_bin());
        c
    } else {
        Command::new(broker_bin())
    };
    cmd.args(args).env_remove("LD_LIBRARY_PATH");
    run_cmd(&mut cmd, Duration::from_secs(30))
}

fn probe_unprivileged(s: &Scratch, action: &str, args: &[&str]) -> Run {
    let policy = s.policy();
    let probe = probe(false);
    let mut all: Vec<&OsStr> = policy.iter().map(OsStr::new).collect();
    all.extend([OsStr::new("--"), probe.as_os_str(), OsStr::new(action)]);
    all.extend(args.iter().map(OsStr::new));
    unprivileged(&all)
}

#[test]
fn the_broker_works_without_privilege() {
    let s = Scratch::new("unpriv");
    let p = |rel: &str| s.path(rel).display().to_string();
    let r = probe_unprivileged(&s, "read", &[&p("allowed/file.txt")]);
    assert_eq!(r.line(), "ok allowed-content", "{r:?}");
    let r = probe_unprivileged(&s, "read", &[&p("secret.txt")]);
    assert_eq!(r.line(), "err 13", "{r:?}");
    assert!(!r.stdout.contains(&s.token));
    let r = probe_unprivileged(&s, "read", &[&p("allowed/link")]);
    assert_eq!(r.line(), "err 13", "{r:?}");
    let r = probe_unprivileged(&s, "write", &[&p("rw/out"), "data"]);
    assert_eq!(r.line(), "ok 4", "{r:?}");
    let r = probe_unprivileged(&s, "threads", &[&p("allowed/file.txt"), "8", "10"]);
    assert_eq!(r.line(), "ok 80", "{r:?}");
    let r = probe_unprivileged(&s, "fifo-stall", &[&p("in"), &p("allowed/file.txt")]);
    assert_eq!(r.line(), "ok allowed-content", "{r:?}");
    std::fs::write(s.path("rw/log"), "").unwrap();
    std::fs::set_permissions(
        s.path("rw/log"),
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    let r = probe_unprivileged(&s, "reopen", &[&p("allowed/file.txt"), &p("rw/log")]);
    assert_eq!(r.line(), "ok -1/13 -1/13 allowed-content 1", "{r:?}");
}

#[test]
fn unprivileged_targets_cannot_reach_the_broker() {
    let s = Scratch::new("unpriv-attack");
    for (action, want) in [
        ("kill-parent", "err 1"),
        ("ptrace", "err 1"),
        ("io_uring", "err 1"),
        ("unshare", "err 1"),
    ] {
        let r = probe_unprivileged(&s, action, &[]);
        assert_eq!(r.line(), want, "{action}: {r:?}");
    }
    let r = unprivileged(&[
        OsStr::new("--"),
        OsStr::new("cat"),
        s.path("secret.txt").as_os_str(),
    ]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(!r.stdout.contains(&s.token));
}
