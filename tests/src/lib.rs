//! Helpers for the end-to-end tests: the real `broker` binary, real targets built from C, and
//! scratch directories laid out like the conformance runner's.
//!
//! The broker binary is taken from the same profile directory as the running test
//! (`target/<profile>/broker`); build it first (`cargo build --workspace` with the same profile).

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// `target/<profile>`, found from the test executable's own path.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test-binary>
    exe.parent()
        .and_then(Path::parent)
        .expect("profile dir")
        .to_path_buf()
}

/// The `broker` binary under test.
pub fn broker_bin() -> PathBuf {
    let p = profile_dir().join("broker");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace` with the same profile as the tests",
        p.display()
    );
    p
}

/// A workspace binary other than the broker (e.g. brokered-cat).
pub fn workspace_bin(name: &str) -> PathBuf {
    let p = profile_dir().join(name);
    assert!(
        p.exists(),
        "{} is missing: build the workspace first",
        p.display()
    );
    p
}

struct Probes {
    dir: PathBuf,
}

static PROBES: OnceLock<Probes> = OnceLock::new();

/// Remove the probes when the test binary exits (registered with `atexit`).
extern "C" fn remove_probes() {
    if let Some(p) = PROBES.get() {
        let _ = fs::remove_dir_all(&p.dir);
    }
}

/// The probe target (tests/targets/probe.c), built once per test binary and removed when it
/// exits; `static_` picks the statically linked build.
pub fn probe(static_: bool) -> PathBuf {
    let p = PROBES.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("broker-probes-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        // SAFETY: registers a function that only removes this directory.
        unsafe { libc::atexit(remove_probes) };
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("targets/probe.c");
        for (name, extra) in [("probe", &[][..]), ("probe-static", &["-static"][..])] {
            let out = Command::new("gcc")
                .args(["-O1", "-o"])
                .arg(dir.join(name))
                .arg(&src)
                .args(extra)
                .arg("-lpthread")
                .output()
                .expect("gcc must be installed to build test targets");
            assert!(
                out.status.success(),
                "gcc failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Probes { dir }
    });
    p.dir.join(if static_ { "probe-static" } else { "probe" })
}

/// A scratch directory for one test, removed on drop:
/// `secret.txt` (a token no policy grants), `allowed/file.txt`, `allowed/link -> ../secret.txt`,
/// `allowed/dirlink -> ..`, `allowed/sub/inner.txt`, `rw/`, and a FIFO `in`.
pub struct Scratch {
    pub dir: PathBuf,
    pub token: String,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("broker-test-{}-{}-{n}", std::process::id(), name));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("allowed/sub")).unwrap();
        fs::create_dir_all(dir.join("rw")).unwrap();
        fs::create_dir_all(dir.join("outside")).unwrap();
        let token = format!(
            "TOKEN-{}-{n}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        );
        fs::write(dir.join("secret.txt"), &token).unwrap();
        fs::write(dir.join("allowed/file.txt"), "allowed-content\n").unwrap();
        fs::write(dir.join("allowed/sub/inner.txt"), "inner-content\n").unwrap();
        std::os::unix::fs::symlink("../secret.txt", dir.join("allowed/link")).unwrap();
        std::os::unix::fs::symlink("..", dir.join("allowed/dirlink")).unwrap();
        mkfifo(&dir.join("in"));
        // World-accessible so unprivileged runs can use it too; secret.txt stays 0644 on
        // purpose: only the broker's policy keeps the target out.
        for p in ["", "allowed", "allowed/sub", "rw", "outside"] {
            fs::set_permissions(dir.join(p), fs::Permissions::from_mode(0o777)).unwrap();
        }
        Scratch { dir, token }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// [`Scratch::path`] as a command-line argument.
    pub fn arg(&self, rel: &str) -> String {
        self.dir.join(rel).display().to_string()
    }

    /// `DIR/**` pattern for a subdirectory.
    pub fn tree(&self, rel: &str) -> String {
        format!("{}/**", self.dir.join(rel).display())
    }

    /// The standard policy: read `allowed/**`, write `rw/**`, FIFO `in`.
    pub fn policy(&self) -> Vec<String> {
        vec![
            "--allow-read".into(),
            self.tree("allowed"),
            "--allow-write".into(),
            self.tree("rw"),
            "--allow-fifo".into(),
            self.path("in").display().to_string(),
        ]
    }
}

impl Scratch {
    /// [`Scratch::policy`] with `--require-landlock`: the adversarial suite demands full
    /// enforcement of every wall.
    pub fn hardened(&self) -> Vec<String> {
        let mut p = self.policy();
        p.push("--require-landlock".into());
        p
    }
}

/// Run `action` (no arguments) in the static and the dynamic probe under the hardened standard
/// policy, and expect `want` as its result line from both.
pub fn refused(action: &str, want: &str) {
    let s = Scratch::new(action);
    for static_ in [false, true] {
        let r = probe_under_as(&s.hardened(), static_, action, &[]);
        assert_eq!(r.line(), want, "{action} static={static_}: {r:?}");
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

pub fn mkfifo(p: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o666) },
        0,
        "mkfifo {}",
        p.display()
    );
}

/// The result of one run.
pub struct Run {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The first stdout line, where the probe prints its result.
    pub fn line(&self) -> &str {
        self.stdout
            .lines()
            .find(|l| !l.starts_with("fd "))
            .unwrap_or("")
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?} signal {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.signal, self.stdout, self.stderr
        )
    }
}

/// Wait for `cmd` with a deadline, draining its output meanwhile; a run that hangs is killed
/// and fails the test.
pub fn run_cmd(cmd: &mut Command, timeout: Duration) -> Run {
    use std::os::unix::process::ExitStatusExt;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let (out, hung): (Output, bool) = match rx.recv_timeout(timeout) {
        Ok(out) => (out.expect("wait"), false),
        Err(_) => {
            // SAFETY: kill the child we spawned (not yet reaped: the waiter still waits).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            (rx.recv().unwrap().expect("wait"), true)
        }
    };
    let run = Run {
        code: out.status.code(),
        signal: out.status.signal(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!hung, "hung for {timeout:?}: {run:?}");
    run
}

/// Run the broker with `args` (options, `--`, program and its arguments).
pub fn broker<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_cmd(&mut broker_command(args), Duration::from_secs(30))
}

/// A `Command` for the broker, with cargo's `LD_LIBRARY_PATH` removed so that targets see the
/// environment a user's shell would give them.
pub fn broker_command<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(broker_bin());
    cmd.args(args).env_remove("LD_LIBRARY_PATH");
    cmd
}

/// The first line a spawned child writes to its piped stdout (the rest is left unread).
pub fn first_line(child: &mut std::process::Child) -> String {
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("piped stdout")),
        &mut line,
    )
    .unwrap();
    line
}

/// Run the dynamic probe with `action` and `args` under `policy`.
pub fn probe_under(policy: &[String], action: &str, args: &[&str]) -> Run {
    probe_under_as(policy, false, action, args)
}

/// Run the probe (static or dynamic) with `action` and `args` under `policy`.
pub fn probe_under_as(policy: &[String], static_: bool, action: &str, args: &[&str]) -> Run {
    let probe = probe(static_);
    let mut all: Vec<&OsStr> = policy.iter().map(OsStr::new).collect();
    all.push(OsStr::new("--"));
    all.push(probe.as_os_str());
    all.push(OsStr::new(action));
    all.extend(args.iter().map(OsStr::new));
    broker(all)
}

/// Are we root (so unprivileged runs can be tested with setpriv)?
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The number of descriptors this process has open.
pub fn open_fd_count(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Has the broker `pid` started its target (a child that is no longer the broker's image)?
/// Before that, start-up holds a few descriptors of its own (pipes, socketpair, cgroup).
fn target_started(pid: u32) -> bool {
    let children =
        fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    children.split_whitespace().any(|c| {
        fs::read_to_string(format!("/proc/{c}/comm")).is_ok_and(|comm| comm.trim() != "broker")
    })
}

/// Run the broker with `args` (stdout captured), sampling its descriptor count every `every`
/// from the start of its target until it exits; returns the samples (0 where the process was
/// not readable) and its output.
pub fn broker_fd_samples(args: &[String], every: Duration) -> (Vec<usize>, Output) {
    let mut child = broker_command(args).stdout(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    while !target_started(pid) && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut samples = Vec::new();
    while child.try_wait().unwrap().is_none() {
        samples.push(open_fd_count(pid));
        std::thread::sleep(every);
    }
    (samples, child.wait_with_output().unwrap())
}

/// Assert that the non-zero samples stay within `slack` of their median: growth with the
/// number of requests would show as a maximum far above the typical count.
pub fn assert_fd_count_flat(samples: &[usize], slack: usize) {
    let mut sorted: Vec<usize> = samples.iter().copied().filter(|&n| n > 0).collect();
    assert!(sorted.len() >= 3, "too few samples: {samples:?}");
    sorted.sort();
    let (typical, max) = (sorted[sorted.len() / 2], sorted[sorted.len() - 1]);
    assert!(
        max - typical <= slack,
        "descriptor count moved: {samples:?}"
    );
}
