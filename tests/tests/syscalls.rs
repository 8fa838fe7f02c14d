//! The filter: calls that would get around the broker are refused or kill the target.

use broker_tests::*;

fn refused(action: &str, want: &str) {
    let s = Scratch::new(action);
    for static_ in [false, true] {
        let r = probe_under_as(&s.policy(), static_, action, &[]);
        assert_eq!(r.line(), want, "{action} static={static_}: {r:?}");
    }
}

#[test]
fn io_uring_is_refused() {
    refused("io_uring", "err 1");
}

#[test]
fn ptrace_and_process_vm_are_refused() {
    refused("ptrace", "err 1");
    refused("vm-read", "err 1");
}

#[test]
fn open_by_handle_at_is_refused() {
    refused("open_by_handle", "err 1");
}

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
fn sockets_are_refused_but_socketpair_works() {
    refused("socket", "err 13");
    refused("socket-unix", "err 13");
    refused("socketpair", "ok 0");
}

#[test]
fn terminal_injection_is_refused_even_with_high_bits_set() {
    refused("tiocsti", "err 1");
}

#[test]
fn other_ioctls_and_prctls_still_work() {
    refused("ioctl-prctl-ok", "ok 3 renamed");
}

#[test]
fn the_target_cannot_kill_the_broker() {
    let s = Scratch::new("kill");
    let r = probe_under(&s.policy(), "kill-parent", &[]);
    assert_eq!(r.line(), "err 1", "{r:?}");
    assert_eq!(r.code, Some(0), "{r:?}");
}

#[test]
fn foreign_architecture_and_x32_calls_kill_the_target() {
    let s = Scratch::new("arch");
    for action in ["int80", "x32"] {
        let r = probe_under(&s.policy(), action, &[]);
        assert!(!r.stdout.contains("survived"), "{action}: {r:?}");
        assert_eq!(r.code, Some(128 + libc::SIGSYS), "{action}: {r:?}");
    }
}

#[test]
fn the_target_has_no_capabilities_even_when_the_broker_is_root() {
    refused("caps", "ok 0 0 0");
}

#[test]
fn inode_flags_cannot_be_changed_through_a_read_only_descriptor() {
    let s = Scratch::new("chattr");
    let f = s.path("allowed/file.txt").display().to_string();
    let r = probe_under(&s.policy(), "chattr", &[&f]);
    assert_eq!(r.line(), "err 1", "{r:?}");
}
