//! Foreign-architecture (i386 `int 0x80`) and x32 system calls: the filter kills the caller.
//! Part of the adversarial suite: one file per attack class, each case an unmodified program
//! attacking the real broker, judged from outside. Every case demands full Landlock enforcement.

use broker_tests::*;

#[test]
fn foreign_architecture_and_x32_calls_kill_the_target() {
    let s = Scratch::new("arch");
    for action in ["int80", "x32"] {
        let r = probe_under(&s.hardened(), action, &[]);
        assert!(!r.stdout.contains("survived"), "{action}: {r:?}");
        assert_eq!(r.code, Some(128 + libc::SIGSYS), "{action}: {r:?}");
    }
}
