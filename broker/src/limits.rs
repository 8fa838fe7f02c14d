//! Resource limits: what the user asks for ([`Limits`]) and how each one is enforced
//! ([`LimitPlan`]).
//!
//! A limit is enforced by the strongest mechanism the broker can use here: the run's cgroup
//! (`memory.max`, `pids.max`, tree-wide CPU time from `cpu.stat`) when the broker has a writable
//! cgroup v2 with those controllers delegated, an rlimit on the target otherwise, and the broker's
//! own clock for wall time. A limit no mechanism can enforce makes the plan fail (the broker
//! refuses to run, exit 125) unless [`Limits::best_effort`] is set; then it is reported as not
//! enforced. Nothing is dropped silently.

use std::io;
use std::time::Duration;

use crate::cgroup::RunCgroup;

/// The limits asked for. `None` means no limit of that kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of memory (cgroup `memory.max`) or of address space per process (`RLIMIT_AS`).
    pub memory: Option<u64>,
    /// CPU time: of the whole tree (cgroup) or of each process (`RLIMIT_CPU`).
    pub cpu_time: Option<Duration>,
    /// Time from start until the broker ends the whole tree.
    pub wall_time: Option<Duration>,
    /// Processes and threads at once (`pids.max`, or the per-user `RLIMIT_NPROC`).
    pub max_procs: Option<u64>,
    /// The largest file the target may write (`RLIMIT_FSIZE`; writing past it raises SIGXFSZ).
    pub max_file_size: Option<u64>,
    /// Descriptors the target may hold (`RLIMIT_NOFILE`; injected descriptors count too).
    pub max_open_files: Option<u64>,
    /// Run even if a limit cannot be enforced (it is reported as not enforced).
    pub best_effort: bool,
}

impl Limits {
    /// Is any limit asked for?
    pub fn any(&self) -> bool {
        self.memory.is_some()
            || self.cpu_time.is_some()
            || self.wall_time.is_some()
            || self.max_procs.is_some()
            || self.max_file_size.is_some()
            || self.max_open_files.is_some()
    }
}

/// A bad limit value, or a limit that cannot be enforced.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("{flag} {value:?}: {why}")]
    BadValue {
        flag: &'static str,
        value: String,
        why: &'static str,
    },
    #[error("{} cannot be enforced here: {why} (--best-effort-limits runs anyway)", .limit.flag())]
    Unenforceable { limit: Limit, why: String },
    #[error("{} {value}: {what}", .limit.flag())]
    Apply {
        limit: Limit,
        value: u64,
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

/// `flag`'s value `s` is refused for `why`.
fn bad_value(flag: &'static str, s: &str, why: &'static str) -> LimitError {
    LimitError::BadValue {
        flag,
        value: s.into(),
        why,
    }
}

/// Parse a size: a number of bytes, or with a suffix K, M, G or T (powers of 1024).
pub fn parse_bytes(flag: &'static str, s: &str) -> Result<u64, LimitError> {
    let bad = |why| bad_value(flag, s, why);
    let t = s.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(bad("use a number of bytes with an optional K, M, G or T")),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| bad("use a number of bytes with an optional K, M, G or T"))?;
    if n == 0 {
        return Err(bad("must be more than zero"));
    }
    n.checked_mul(1 << shift).ok_or_else(|| bad("too large"))
}

/// Parse a duration in seconds: `10`, `0.5`, `2s`.
pub fn parse_seconds(flag: &'static str, s: &str) -> Result<Duration, LimitError> {
    let bad = |why| bad_value(flag, s, why);
    let t = s.trim();
    let secs: f64 = t
        .strip_suffix('s')
        .unwrap_or(t)
        .parse()
        .map_err(|_| bad("use a number of seconds, e.g. 10 or 0.5"))?;
    if !secs.is_finite() || secs <= 0.0 {
        return Err(bad("must be more than zero seconds"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| bad("too large"))
}

/// Parse a count (processes, descriptors).
pub fn parse_count(flag: &'static str, s: &str) -> Result<u64, LimitError> {
    match s.trim().parse::<u64>() {
        Ok(0) => Err(bad_value(flag, s, "must be more than zero")),
        Ok(n) => Ok(n),
        Err(_) => Err(bad_value(flag, s, "use a whole number")),
    }
}

/// One kind of limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Memory,
    CpuTime,
    WallTime,
    MaxProcs,
    MaxFileSize,
    MaxOpenFiles,
}

impl Limit {
    /// The command-line flag that sets it.
    pub fn flag(self) -> &'static str {
        match self {
            Limit::Memory => "--memory",
            Limit::CpuTime => "--cpu-time",
            Limit::WallTime => "--wall-time",
            Limit::MaxProcs => "--max-procs",
            Limit::MaxFileSize => "--max-file-size",
            Limit::MaxOpenFiles => "--max-open-files",
        }
    }

    /// The report's name for it.
    pub fn key(self) -> &'static str {
        &self.flag()[2..]
    }
}

/// What enforces one limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    /// A value written to a file of the run's cgroup (`memory.max`, `pids.max`).
    Cgroup(&'static str),
    /// The whole tree's CPU time from the run cgroup's `cpu.stat`, checked by the broker, with
    /// `RLIMIT_CPU` on each process as a backstop.
    CgroupCpuStat,
    /// An rlimit set on the target before it runs (inherited by everything it starts).
    Rlimit(&'static str),
    /// The broker's own clock.
    BrokerClock,
    /// Nothing: only with `best_effort`.
    NotEnforced(String),
}

impl Mechanism {
    /// The log's and the report's description.
    pub fn describe(&self) -> String {
        match self {
            Mechanism::Cgroup(file) => format!("cgroup {file} (the whole tree)"),
            Mechanism::CgroupCpuStat => {
                "cgroup cpu.stat (the whole tree), RLIMIT_CPU per process as a backstop".into()
            }
            Mechanism::Rlimit("RLIMIT_AS") => "RLIMIT_AS (address space of each process)".into(),
            Mechanism::Rlimit("RLIMIT_CPU") => "RLIMIT_CPU (each process on its own)".into(),
            Mechanism::Rlimit("RLIMIT_NPROC") => {
                "RLIMIT_NPROC (per user: every process of the user counts, the broker's too)".into()
            }
            Mechanism::Rlimit(name) => (*name).into(),
            Mechanism::BrokerClock => "the broker's clock (the whole tree)".into(),
            Mechanism::NotEnforced(why) => format!("NOT ENFORCED: {why}"),
        }
    }
}

/// One limit as it will be enforced.
#[derive(Debug, Clone)]
pub struct Enforcement {
    pub limit: Limit,
    /// Bytes, a count, or milliseconds for the time limits.
    pub value: u64,
    pub mechanism: Mechanism,
    /// The broker's own hard limit was lower than asked: that one applies.
    pub lowered: bool,
}

impl Enforcement {
    /// The log line: `--memory 67108864: RLIMIT_AS (address space of each process)`.
    pub fn line(&self) -> String {
        let value = match self.limit {
            Limit::CpuTime | Limit::WallTime => format!("{} ms", self.value),
            _ => self.value.to_string(),
        };
        let lowered = if self.lowered {
            " (lowered to the broker's own hard limit)"
        } else {
            ""
        };
        format!(
            "{} {value}{lowered}: {}",
            self.limit.flag(),
            self.mechanism.describe()
        )
    }
}

/// `setrlimit`'s resource type, which the C libraries spell differently.
#[cfg(target_env = "gnu")]
type RlimitResource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type RlimitResource = libc::c_int;

/// An rlimit to set on the target before it runs.
#[derive(Debug, Clone, Copy)]
struct RlimitSetting {
    resource: RlimitResource,
    limit: Limit,
    soft: u64,
    hard: u64,
}

/// How the limits of one run are enforced: built before the target starts, applied to it while
/// it waits for the go-ahead (so it never runs unlimited), and consulted at the end.
pub struct LimitPlan {
    pub limits: Limits,
    pub enforced: Vec<Enforcement>,
    rlimits: Vec<RlimitSetting>,
    /// The run's cgroup, when the broker could make one (also without limits: it is how the
    /// whole tree is ended).
    pub cgroup: Option<RunCgroup>,
    /// Why there is no cgroup, for the log.
    pub no_cgroup: Option<String>,
}

impl LimitPlan {
    /// Decide how each limit is enforced; create the run's cgroup if possible and write its
    /// limits. Fails if a limit cannot be enforced and `best_effort` is not set.
    pub fn new(limits: &Limits) -> Result<LimitPlan, LimitError> {
        let wanted = crate::cgroup::Controllers {
            memory: limits.memory.is_some(),
            pids: limits.max_procs.is_some(),
        };
        let (cgroup, no_cgroup) = match RunCgroup::create(wanted) {
            Ok(cg) => (Some(cg), None),
            Err(why) => (None, Some(why)),
        };
        let mut plan = LimitPlan {
            limits: limits.clone(),
            enforced: Vec::new(),
            rlimits: Vec::new(),
            cgroup,
            no_cgroup,
        };
        if let Some(bytes) = limits.memory {
            match &plan.cgroup {
                Some(cg) if cg.controllers().memory => {
                    plan.cgroup_file(Limit::Memory, bytes, "memory.max")?;
                    // Swap would let the tree exceed the limit; the group dies together.
                    let cg = plan.cgroup.as_ref().expect("checked");
                    let _ = cg.write("memory.swap.max", "0");
                    let _ = cg.write("memory.oom.group", "1");
                }
                _ => plan.rlimit(Limit::Memory, libc::RLIMIT_AS, "RLIMIT_AS", bytes),
            }
        }
        if let Some(t) = limits.cpu_time {
            // RLIMIT_CPU counts whole seconds: SIGXCPU at the soft limit, SIGKILL one second on.
            let secs = t.as_secs_f64().ceil() as u64;
            plan.set_rlimit(Limit::CpuTime, libc::RLIMIT_CPU, secs, secs + 1);
            let mechanism = if plan.cgroup.is_some() {
                Mechanism::CgroupCpuStat
            } else {
                Mechanism::Rlimit("RLIMIT_CPU")
            };
            plan.enforce(Limit::CpuTime, t.as_millis() as u64, mechanism);
        }
        if let Some(t) = limits.wall_time {
            plan.enforce(
                Limit::WallTime,
                t.as_millis() as u64,
                Mechanism::BrokerClock,
            );
        }
        if let Some(n) = limits.max_procs {
            match &plan.cgroup {
                Some(cg) if cg.controllers().pids => plan.cgroup_file(Limit::MaxProcs, n, "pids.max")?,
                // SAFETY: geteuid has no preconditions.
                _ if unsafe { libc::geteuid() } != 0 => {
                    plan.rlimit(Limit::MaxProcs, libc::RLIMIT_NPROC, "RLIMIT_NPROC", n)
                }
                _ => plan.unenforced(
                    Limit::MaxProcs,
                    n,
                    "no pids controller is delegated to the broker's cgroup, and RLIMIT_NPROC does not bind root",
                )?,
            }
        }
        if let Some(bytes) = limits.max_file_size {
            plan.rlimit(
                Limit::MaxFileSize,
                libc::RLIMIT_FSIZE,
                "RLIMIT_FSIZE",
                bytes,
            );
        }
        if let Some(n) = limits.max_open_files {
            plan.rlimit(Limit::MaxOpenFiles, libc::RLIMIT_NOFILE, "RLIMIT_NOFILE", n);
        }
        Ok(plan)
    }

    fn cgroup_file(
        &mut self,
        limit: Limit,
        value: u64,
        file: &'static str,
    ) -> Result<(), LimitError> {
        let cg = self.cgroup.as_ref().expect("caller checked");
        cg.write(file, &value.to_string())
            .map_err(|source| LimitError::Apply {
                limit,
                value,
                what: file,
                source,
            })?;
        self.enforce(limit, value, Mechanism::Cgroup(file));
        Ok(())
    }

    /// Record how `limit` is enforced.
    fn enforce(&mut self, limit: Limit, value: u64, mechanism: Mechanism) {
        self.enforced.push(Enforcement {
            limit,
            value,
            mechanism,
            lowered: false,
        });
    }

    /// Queue an rlimit for [`LimitPlan::apply`].
    fn set_rlimit(&mut self, limit: Limit, resource: RlimitResource, soft: u64, hard: u64) {
        self.rlimits.push(RlimitSetting {
            resource,
            limit,
            soft,
            hard,
        });
    }

    /// `limit` enforced by the rlimit `name` alone, soft and hard at `value`.
    fn rlimit(&mut self, limit: Limit, resource: RlimitResource, name: &'static str, value: u64) {
        self.set_rlimit(limit, resource, value, value);
        self.enforce(limit, value, Mechanism::Rlimit(name));
    }

    fn unenforced(&mut self, limit: Limit, value: u64, why: &str) -> Result<(), LimitError> {
        if !self.limits.best_effort {
            return Err(LimitError::Unenforceable {
                limit,
                why: why.into(),
            });
        }
        self.enforce(limit, value, Mechanism::NotEnforced(why.into()));
        Ok(())
    }

    /// The log lines (without the `broker: ` prefix): one per limit, and how the tree is ended
    /// when there is no run cgroup.
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .enforced
            .iter()
            .map(|e| format!("limit {}", e.line()))
            .collect();
        if let Some(why) = &self.no_cgroup {
            lines.push(format!(
                "no run cgroup ({why}); the tree is ended through the broker as subreaper, and a descendant can outlive a broker that is killed"
            ));
        }
        lines
    }

    /// The rlimit on `limit`, as set.
    pub fn rlimit_of(&self, limit: Limit) -> Option<u64> {
        self.rlimits
            .iter()
            .find(|r| r.limit == limit)
            .map(|r| r.soft)
    }

    /// Put the (not yet running) target under the plan: into the run cgroup, and its rlimits
    /// set. A requested rlimit above the broker's own hard limit is lowered to it (the stricter
    /// limit applies) and the log says so.
    pub fn apply(
        &mut self,
        pid: libc::pid_t,
        cgroup: Option<&RunCgroup>,
    ) -> Result<(), LimitError> {
        if let Some(cg) = cgroup {
            cg.add(pid).map_err(|source| LimitError::Apply {
                limit: Limit::WallTime,
                value: 0,
                what: "moving the target into the run cgroup",
                source,
            })?;
        }
        for r in &self.rlimits {
            let mut old = libc::rlimit64 {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: read our own limit into a local.
            unsafe { libc::getrlimit64(r.resource, &mut old) };
            let new = libc::rlimit64 {
                rlim_cur: r.soft.min(old.rlim_max),
                rlim_max: r.hard.min(old.rlim_max),
            };
            // SAFETY: prlimit on our own child, which has not run anything yet.
            let rc = unsafe { libc::prlimit64(pid, r.resource, &new, std::ptr::null_mut()) };
            if rc < 0 {
                return Err(LimitError::Apply {
                    limit: r.limit,
                    value: r.soft,
                    what: "setting the rlimit",
                    source: io::Error::last_os_error(),
                });
            }
            if new.rlim_cur < r.soft {
                if let Some(e) = self.enforced.iter_mut().find(|e| e.limit == r.limit) {
                    e.value = match r.limit {
                        Limit::CpuTime => new.rlim_cur.saturating_mul(1000),
                        _ => new.rlim_cur,
                    };
                    e.lowered = true;
                }
            }
        }
        Ok(())
    }
}
