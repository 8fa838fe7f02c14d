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

#[test]
fn terminal_injection_is_refused_on_an_inherited_terminal() {
    // `script` gives the broker, and so the target, a pseudo-terminal as stdin.
    let s = Scratch::new("pty");
    let mut line = vec![broker_bin().display().to_string()];
    line.extend(s.hardened());
    line.extend([
        "--".into(),
        probe(false).display().to_string(),
        "tty-inject".into(),
    ]);
    let mut cmd = std::process::Command::new("script");
    // `script -c` runs its command through a shell: quote every argument (patterns have `**`).
    let quoted: Vec<String> = line
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    cmd.args(["-qec", &quoted.join(" "), "/dev/null"])
        .env_remove("LD_LIBRARY_PATH");
    let r = run_cmd(&mut cmd, std::time::Duration::from_secs(30));
    assert!(r.stdout.contains("ok tty=1 sti=-1/1 linux=-1/1"), "{r:?}");
}
