//! The public black-box conformance cases (../shared/conformance) against the built broker:
//! every case must be HELD. They ship beside the repository, not in it; CI has them.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use broker_tests::*;

#[test]
fn public_conformance_cases_are_all_held() {
    let runner = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/run.sh");
    assert!(
        runner.exists(),
        "{} is missing: the conformance cases ship in shared/ beside the repository",
        runner.display()
    );
    let mut cmd = Command::new("bash");
    cmd.arg(&runner)
        .arg(broker_bin())
        .env_remove("LD_LIBRARY_PATH");
    let r = run_cmd(&mut cmd, Duration::from_secs(600));
    let summary = r.stdout.lines().last().unwrap_or("");
    assert!(
        summary.contains(" 0 escaped, 0 open surface, 0 broken"),
        "{r:?}"
    );
    assert_eq!(r.code, Some(0), "{r:?}");
}
