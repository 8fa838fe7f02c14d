//! /proc: /proc/self/root and other magic links, /proc/self/fd/N re-opened with more rights, /proc/<broker>/...
//! Part of the adversarial suite: one file per attack class, each case an unmodified program
//! attacking the real broker, judged from outside. Every case demands full Landlock enforcement.

use broker_tests::*;

#[test]
fn proc_self_is_the_target_and_the_brokers_proc_is_never_served() {
    let s = Scratch::new("proc");
    let mut pol = s.hardened();
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
fn own_descriptors_reopen_with_the_access_they_have_and_no_more() {
    let s = Scratch::new("reopen");
    std::fs::write(s.path("rw/log"), "").unwrap();
    let r = probe_under(
        &s.hardened(),
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
fn a_symlink_into_proc_self_never_reaches_the_brokers_entries() {
    // Under `/**` the walk resolves absolute symlinks from the broker's root, where /proc/self
    // is the broker: the broker must notice where the walk ended.
    let s = Scratch::new("proc-link");
    for entry in ["environ", "status"] {
        std::os::unix::fs::symlink(format!("/proc/self/{entry}"), s.path(entry)).unwrap();
        let mut pol = s.hardened();
        pol.extend(["--allow-read".into(), "/**".into()]);
        let r = probe_under(&pol, "read", &[&s.arg(entry)]);
        assert_eq!(r.line(), "err 13", "{entry}: {r:?}");
        assert!(r.stderr.contains("broker's own /proc"), "{r:?}");
    }
}
