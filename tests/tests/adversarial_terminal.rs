//! The inherited terminal: TIOCSTI and TIOCLINUX, with and without high bits set.
//! Part of the adversarial suite: one file per attack class, each case an unmodified program
//! attacking the real broker, judged from outside. Every case demands full Landlock enforcement.

use broker_tests::*;

#[test]
fn terminal_injection_is_refused_even_with_high_bits_set() {
    refused("tiocsti", "err 1");
}

#[test]
fn other_ioctls_and_prctls_still_work() {
    refused("ioctl-prctl-ok", "ok 3 renamed");
}

#[test]
fn tioclinux_is_refused() {
    // On /dev/null an allowed TIOCLINUX would fail with ENOTTY; EPERM is the filter.
    refused("tioclinux", "err 1");
}
