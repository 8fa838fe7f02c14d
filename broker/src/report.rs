//! `--report FILE`: one JSON object that says how and why a run ended, what it used, and what
//! it was refused.
//!
//! ```json
//! {"status":"memory","exit_code":null,"signal":"SIGKILL","wall_ms":412,"cpu_user_ms":180,
//!  "cpu_sys_ms":220,"max_rss_kib":65432,"requests_allowed":12,"requests_denied":1,
//!  "denials":[{"pid":4242,"syscall":"openat","path":"/etc/shadow","reason":"no rule grants it"}],
//!  "limits":{"memory":{"value":67108864,"mechanism":"cgroup memory.max (the whole tree)"}},
//!  "error":null}
//! ```

use std::collections::BTreeMap;

use serde::Serialize;

use crate::lifecycle::Ending;
use crate::limits::{Limit, LimitPlan, Mechanism};
use crate::serve::Decision;
use crate::supervisor::{ExitStatus, RunResult};

/// How many denials a report lists; the count covers all of them.
pub const MAX_DENIALS: usize = 20;

/// Why the run ended, most specific first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// The target exited on its own.
    Exited,
    /// A signal killed the target (not one of the causes below).
    Signaled,
    /// `--wall-time` ran out and the broker ended the tree.
    Timeout,
    /// The memory limit ended the run.
    Memory,
    /// The CPU-time limit ended the run.
    Cpu,
    /// The kernel killed the target for a forbidden system call (SIGSYS).
    Violation,
    /// The broker failed; the target may not have run.
    BrokerError,
}

/// A refused request, as the report lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Denial {
    pub pid: u32,
    pub syscall: &'static str,
    pub path: String,
    pub reason: String,
}

/// The decisions of a run: counts, and the first [`MAX_DENIALS`] denials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requests {
    pub allowed: u64,
    pub denied: u64,
    pub denials: Vec<Denial>,
}

impl Requests {
    /// Count a request by its final decision.
    pub fn record(&mut self, d: &Decision) {
        if d.allowed {
            self.allowed += 1;
            return;
        }
        self.denied += 1;
        if self.denials.len() < MAX_DENIALS {
            self.denials.push(Denial {
                pid: d.pid,
                syscall: d.syscall,
                path: String::from_utf8_lossy(&d.given).into_owned(),
                reason: d.reason.to_string(),
            });
        }
    }
}

/// One limit as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitEntry {
    /// Bytes, a count, or milliseconds (`cpu-time`, `wall-time`).
    pub value: u64,
    pub mechanism: String,
    pub enforced: bool,
}

/// The report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunReport {
    pub status: Status,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    pub wall_ms: u64,
    pub cpu_user_ms: u64,
    pub cpu_sys_ms: u64,
    pub max_rss_kib: u64,
    pub requests_allowed: u64,
    pub requests_denied: u64,
    pub denials: Vec<Denial>,
    /// Each limit asked for, by flag name without dashes.
    pub limits: BTreeMap<&'static str, LimitEntry>,
    /// The broker's error, for `broker-error`.
    pub error: Option<String>,
}

impl RunReport {
    /// The report of a run that was supervised to its end.
    pub fn of(run: &RunResult) -> RunReport {
        let (exit_code, signal) = match run.status {
            ExitStatus::Exited(c) => (Some(c), None),
            ExitStatus::Signaled(s) => (None, Some(signal_name(s))),
        };
        RunReport {
            status: status_of(run),
            exit_code,
            signal,
            wall_ms: run.wall.as_millis() as u64,
            cpu_user_ms: run.usage.user.as_millis() as u64,
            cpu_sys_ms: run.usage.system.as_millis() as u64,
            max_rss_kib: run.usage.max_rss_kib,
            requests_allowed: run.requests.allowed,
            requests_denied: run.requests.denied,
            denials: run.requests.denials.clone(),
            limits: limit_entries(&run.limits),
            error: None,
        }
    }

    /// The report of a run the broker could not set up or serve.
    pub fn broker_error(error: String) -> RunReport {
        RunReport {
            status: Status::BrokerError,
            exit_code: None,
            signal: None,
            wall_ms: 0,
            cpu_user_ms: 0,
            cpu_sys_ms: 0,
            max_rss_kib: 0,
            requests_allowed: 0,
            requests_denied: 0,
            denials: Vec::new(),
            limits: BTreeMap::new(),
            error: Some(error),
        }
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report always serializes")
    }
}

fn limit_entries(plan: &LimitPlan) -> BTreeMap<&'static str, LimitEntry> {
    plan.enforced
        .iter()
        .map(|e| {
            (
                e.limit.key(),
                LimitEntry {
                    value: e.value,
                    mechanism: e.mechanism.describe(),
                    enforced: !matches!(e.mechanism, Mechanism::NotEnforced(_)),
                },
            )
        })
        .collect()
}

/// Decide the status. The broker's own ending comes first (it killed the tree); then what the
/// kernel says: an OOM kill in the run cgroup, the CPU-time signals, a seccomp kill.
fn status_of(run: &RunResult) -> Status {
    match run.ending {
        Some(Ending::WallTime) => return Status::Timeout,
        Some(Ending::CpuTime) => return Status::Cpu,
        Some(Ending::Stopped) | None => {}
    }
    let signal = match run.status {
        ExitStatus::Signaled(s) => Some(s),
        ExitStatus::Exited(_) => None,
    };
    if run.oom_kills > 0 || memory_refused(run) {
        return Status::Memory;
    }
    let cpu_limit = run.limits.rlimit_of(Limit::CpuTime);
    match signal {
        Some(libc::SIGXCPU) if cpu_limit.is_some() => Status::Cpu,
        // The hard RLIMIT_CPU (one second past the soft one) kills with SIGKILL.
        Some(libc::SIGKILL)
            if cpu_limit.is_some_and(|secs| {
                run.usage.user + run.usage.system >= std::time::Duration::from_secs(secs)
            }) =>
        {
            Status::Cpu
        }
        Some(libc::SIGSYS) => Status::Violation,
        Some(_) => Status::Signaled,
        None => Status::Exited,
    }
}

/// Under `RLIMIT_AS` the kernel refuses an allocation without telling anyone but the program,
/// which then fails in its own way (an error exit, an abort, a crash). The broker infers that
/// the limit ended the run when the run failed after its largest process had at least half the
/// limit resident. A single allocation far larger than the room left fails while the resident
/// set is small: that run is reported as the failure it caused.
fn memory_refused(run: &RunResult) -> bool {
    let Some(limit) = run.limits.rlimit_of(Limit::Memory) else {
        return false;
    };
    let failed = !matches!(run.status, ExitStatus::Exited(0));
    failed && run.usage.max_rss_kib.saturating_mul(1024) >= limit / 2
}

/// `SIGKILL` for 9; `SIG<n>` for a number without a name.
pub fn signal_name(sig: i32) -> String {
    const NAMES: [&str; 32] = [
        "SIG0",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    usize::try_from(sig)
        .ok()
        .and_then(|i| NAMES.get(i))
        .map_or_else(|| format!("SIG{sig}"), |n| (*n).to_string())
}
