//! Kernel attack surface: namespaces, mount, bpf, perf_event_open, userfaultfd, keyctl, a nested seccomp listener, capabilities, Landlock, sockets.
//! Part of the adversarial suite: one file per attack class, each case an unmodified program
//! attacking the real broker, judged from outside. Every case demands full Landlock enforcement.

use broker_tests::*;

#[test]
fn namespaces_and_nested_listeners_are_refused() {
    refused("unshare", "err 1");
    refused("clone-ns", "err 1");
    refused("seccomp", "err 1");
    refused("prctl-seccomp", "err 1");
    // clone3 hides its flags from the filter: ENOSYS, so that libc falls back to clone.
    refused("clone3", "err 38");
}

#[test]
fn the_target_has_no_landlock_ruleset_to_apply() {
    // landlock_restrict_self is allowed: the shim applies the broker's ruleset after the
    // filter. Without landlock_create_ruleset the target has no ruleset to pass it.
    refused("landlock-ruleset", "err 38");
    refused("landlock-restrict", "err 77");
}

#[test]
fn sockets_are_refused_but_socketpair_works() {
    refused("socket", "err 13");
    refused("socket-unix", "err 13");
    refused("socketpair", "ok 0");
}

#[test]
fn the_target_has_no_capabilities_even_when_the_broker_is_root() {
    refused("caps", "ok 0 0 0");
}

#[test]
fn mount_bpf_perf_userfaultfd_and_keys_are_refused() {
    for action in ["mount", "bpf", "perf", "userfaultfd", "keyctl"] {
        let s = Scratch::new(action);
        let r = probe_under(&s.hardened(), action, &[&s.arg("rw")]);
        assert_eq!(r.line(), "err 1", "{action}: {r:?}");
    }
}
