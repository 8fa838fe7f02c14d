//! Renames racing the broker's open from outside the sandbox.
//! Part of the adversarial suite: one file per attack class, each case an unmodified program
//! attacking the real broker, judged from outside. Every case demands full Landlock enforcement.

use broker_tests::*;

#[test]
fn renames_racing_the_brokers_open_never_lead_outside() {
    let s = Scratch::new("rename-race");
    std::fs::create_dir(s.path("allowed/d")).unwrap();
    std::fs::write(s.path("allowed/d/f"), "inside").unwrap();
    std::fs::write(s.path("outside/f"), &s.token).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (stop, d, real, out) = (
            stop.clone(),
            s.path("allowed/d"),
            s.path("allowed/d.real"),
            s.path("outside"),
        );
        std::thread::spawn(move || {
            let mut swaps = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // d is the real directory; then, briefly, a symlink to the secret's directory.
                std::fs::rename(&d, &real).unwrap();
                std::os::unix::fs::symlink(&out, &d).unwrap();
                std::fs::remove_file(&d).unwrap();
                std::os::unix::fs::symlink("../../outside", &d).unwrap();
                std::fs::remove_file(&d).unwrap();
                std::fs::rename(&real, &d).unwrap();
                swaps += 1;
            }
            swaps
        })
    };
    let r = probe_under(&s.hardened(), "loop-read", &[&s.arg("allowed/d/f"), "3000"]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(
        r.line().starts_with("ok ") && r.line().ends_with(" leaked 0"),
        "{r:?}"
    );
    assert!(!r.stdout.contains(&s.token));
    assert!(swaps > 10, "the race did not run ({swaps} swaps)");
}
