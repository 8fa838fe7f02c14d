//! KeepAwake's promise: helper threads spin only while requests stream in. After a burst they
//! go back to sleep, so an idle target costs no CPU; `--no-keep-awake` starts none.

use std::process::Stdio;
use std::time::{Duration, Instant};

use broker_tests::*;

/// States (`R`, `S`, ...) of the broker's threads named `keep-awake`.
fn helper_states(pid: u32) -> Vec<char> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "keep-awake")
        })
        .filter_map(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            // The state follows the parenthesised command name.
            stat.rsplit_once(") ")?.1.chars().next()
        })
        .collect()
}

/// Run a burst of opens then a 3 s sleep; when the burst is done, call `check` with the
/// broker's pid.
fn after_a_burst(extra: &[&str], check: impl FnOnce(u32)) {
    let s = Scratch::new("keep-awake");
    std::fs::write(s.path("f"), "x").unwrap();
    let mut args: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
    args.extend([
        "--allow-read".into(),
        s.arg("f"),
        "--".into(),
        probe(false).to_str().unwrap().into(),
        "burst-then-sleep".into(),
        s.arg("f"),
        "2000".into(),
    ]);
    let mut child = broker_command(&args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(first_line(&mut child).trim(), "burst done 2000");
    check(child.id());
    assert!(child.wait().unwrap().success());
}

#[test]
fn helpers_go_to_sleep_when_requests_stop() {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
        return; // one CPU: no helpers at all
    }
    after_a_burst(&[], |pid| {
        assert!(
            !helper_states(pid).is_empty(),
            "a burst of 2000 opens starts the helpers"
        );
        // They stop 1 ms after the last request; allow far more on a loaded machine (the
        // target sleeps 3 s). This checks that they stop, not how fast.
        let deadline = Instant::now() + Duration::from_millis(2500);
        loop {
            let states = helper_states(pid);
            if states.iter().all(|&s| s == 'S') {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "helpers still running after the burst: {states:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    });
}

#[test]
fn no_keep_awake_starts_no_helpers() {
    after_a_burst(&["--no-keep-awake"], |pid| {
        assert!(helper_states(pid).is_empty());
    });
}
