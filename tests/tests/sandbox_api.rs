//! The embedding API (`broker::sandbox`): the same sandbox as the CLI, driven from Rust. One
//! test function, because the library blocks signals in its calling thread and becomes a
//! child subreaper: the runs happen in sequence on one thread.

use broker::sandbox::{Command, Sandbox, SandboxError};
use broker::supervisor::ExitStatus;
use broker_tests::*;

#[test]
fn the_rust_api_runs_programs_under_the_policy_and_reports_their_status() {
    let s = Scratch::new("api");
    let src = s.arg("allowed/file.txt");
    let out = s.path("rw/copy.txt");

    // An allowed copy.
    let status = Sandbox::new()
        .allow_read(src.as_str())
        .allow_write(s.tree("rw"))
        .quiet(true)
        .spawn(
            Command::new("cp")
                .arg(&src)
                .arg(&out)
                .env_remove("LD_LIBRARY_PATH"),
        )
        .expect("spawn")
        .wait()
        .expect("wait");
    assert_eq!(status, ExitStatus::Exited(0));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "allowed-content\n");

    // A refused read: cp fails, nothing is written.
    let stolen = s.path("rw/stolen.txt");
    let status = Sandbox::new()
        .allow_read(src.as_str())
        .allow_write(s.tree("rw"))
        .quiet(true)
        .spawn(Command::new("cp").arg(s.arg("secret.txt")).arg(&stolen))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(status, ExitStatus::Exited(1));
    assert!(!stolen.exists());

    // The same status the CLI reports for a signal.
    let status = Sandbox::new()
        .allow_exec("/bin/**")
        .allow_exec("/usr/bin/**")
        .spawn(Command::new("/bin/sh").args(["-c", "kill -9 $$"]))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(status, ExitStatus::Signaled(libc::SIGKILL));
    assert_eq!(status.code(), 137);

    // The protocol works from the API too, and explicit-only applies.
    let status = Sandbox::new()
        .allow_read(src.as_str())
        .explicit_only(true)
        .spawn(Command::new(workspace_bin("brokered-cat")).arg(&src))
        .unwrap()
        .wait()
        .unwrap();
    assert_eq!(status, ExitStatus::Exited(0));

    // Typed errors with the CLI's exit codes.
    let missing = Sandbox::new().spawn(&Command::new("/nonexistent/program"));
    assert!(matches!(&missing, Err(e @ SandboxError::Program(_)) if e.exit_code() == 127));
    let relative = Sandbox::new()
        .allow_read("relative/path")
        .spawn(&Command::new("true"));
    assert!(
        matches!(&relative, Err(e @ SandboxError::Rule { .. }) if e.exit_code() == 125
            && e.to_string().contains("--allow-read relative/path")),
        "{:?}",
        relative.err()
    );
    let both = Sandbox::new()
        .learn(true)
        .explicit_only(true)
        .spawn(&Command::new("true"));
    assert!(matches!(both, Err(SandboxError::Conflict(_))));
}
