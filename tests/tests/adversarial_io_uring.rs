//! io_uring: its operations never pass seccomp, so the rings cannot be set up at all.
//! Part of the adversarial suite: one file per attack class, each case an unmodified program
//! attacking the real broker, judged from outside. Every case demands full Landlock enforcement.

use broker_tests::*;

#[test]
fn io_uring_is_refused() {
    refused("io_uring", "err 1");
}
