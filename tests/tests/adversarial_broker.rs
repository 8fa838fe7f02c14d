//! The broker itself: ptrace, process_vm_*, pidfd_getfd and signals aimed at it.
//! Part of the adversarial suite: one file per attack class, each case an unmodified program
//! attacking the real broker, judged from outside. Every case demands full Landlock enforcement.

use broker_tests::*;

#[test]
fn ptrace_and_process_vm_are_refused() {
    refused("ptrace", "err 1");
    refused("vm-read", "err 1");
}

#[test]
fn the_target_cannot_kill_the_broker() {
    let s = Scratch::new("kill");
    let r = probe_under(&s.hardened(), "kill-parent", &[]);
    assert_eq!(r.line(), "err 1", "{r:?}");
    assert_eq!(r.code, Some(0), "{r:?}");
}

#[test]
fn the_target_cannot_take_the_brokers_descriptors() {
    refused("pidfd-getfd-parent", "err 1");
}

#[test]
fn the_target_cannot_write_the_brokers_memory() {
    refused("vm-write", "err 1");
}
