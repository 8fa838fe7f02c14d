//! The embedding API: describe a sandbox, spawn a program in it, wait for it.
//!
//! ```no_run
//! use broker::sandbox::{Command, Sandbox};
//!
//! # fn main() -> Result<(), broker::sandbox::SandboxError> {
//! let status = Sandbox::new()
//!     .allow_read("/etc/hostname")
//!     .allow_fifo("/run/jobs/in")
//!     .spawn(Command::new("cat").arg("/etc/hostname"))?
//!     .wait()?;
//! assert_eq!(status.code(), 0);
//! # Ok(())
//! # }
//! ```
//!
//! [`Sandbox::spawn`] checks the rules, opens their anchors, builds the filter and the Landlock
//! ruleset, and starts the program under them; [`Running::wait`] serves it (intercepted calls
//! and protocol requests) until the whole tree is gone, and returns the status the `broker`
//! command reports. Warnings (a rule's path is missing, Landlock is degraded) are printed on
//! stderr as `broker: warning: ...`, like refusals unless [`Sandbox::quiet`].

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::learn::Learner;
use crate::limits::{LimitError, LimitPlan, Limits};
use crate::policy::{self, Need, Policy, PolicyDecision, PolicyError, Rule, RuleKind};
use crate::policy_file::PolicyFile;
use crate::program::ProgramError;
use crate::report::RunReport;
use crate::runtime::RuntimeGrant;
use crate::supervisor::{ExitStatus, Settings, Start, SuperviseError, Supervisor, Target};

/// Why a sandbox could not be set up or run.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("{what}")]
    Rule {
        /// The rule as given, e.g. `--allow-read rel/path` or `policy.toml:3:9`.
        what: String,
        source: PolicyError,
    },
    #[error(transparent)]
    Program(#[from] ProgramError),
    #[error("{0}")]
    Landlock(String),
    #[error("audit log {}", path.display())]
    AuditLog {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Supervise(#[from] SuperviseError),
    #[error("{0}")]
    Conflict(&'static str),
    #[error(transparent)]
    Limit(#[from] LimitError),
}

impl SandboxError {
    /// The `broker` command's exit status for this error: 127 (not found), 126 (cannot be
    /// executed), or 125 (the broker failed).
    pub fn exit_code(&self) -> i32 {
        match self {
            SandboxError::Program(p) => p.exit_code(),
            SandboxError::Supervise(s) => s.exit_code(),
            _ => 125,
        }
    }
}

/// A program and its arguments and environment, like `std::process::Command`. The environment
/// is the broker's own unless changed; `BROKER_FD` is always set by the broker.
#[derive(Debug, Clone)]
pub struct Command {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    env_clear: bool,
}

impl Command {
    /// Run `program`, looked up in `PATH` like `execvp` when it has no `/`.
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            env: Vec::new(),
            env_clear: false,
        }
    }

    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Command {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Start from an empty environment instead of the broker's.
    pub fn env_clear(&mut self) -> &mut Command {
        self.env.clear();
        self.env_clear = true;
        self
    }

    fn environment(&self) -> Vec<(OsString, OsString)> {
        let mut env: Vec<(OsString, OsString)> = if self.env_clear {
            Vec::new()
        } else {
            std::env::vars_os().collect()
        };
        for (k, v) in &self.env {
            env.retain(|(key, _)| key != k);
            if let Some(v) = v {
                env.push((k.clone(), v.clone()));
            }
        }
        env
    }

    fn value(&self, key: &str) -> Option<OsString> {
        match self.env.iter().rev().find(|(k, _)| k == key) {
            Some((_, v)) => v.clone(),
            None if self.env_clear => None,
            None => std::env::var_os(key),
        }
    }
}

struct RuleSpec {
    kind: RuleKind,
    pattern: String,
    /// Where it came from, for messages (`--allow-read X`, `policy.toml:3:9`).
    what: String,
    /// Warn when its path is missing or unfit (rules from flags; a reviewed policy file is
    /// checked by `broker check` instead).
    warn: bool,
}

/// What a program may open, and how it is run. See the module documentation.
pub struct Sandbox {
    rules: Vec<RuleSpec>,
    exec: Vec<String>,
    deny_errno: i32,
    default_runtime: bool,
    require_landlock: bool,
    explicit_only: bool,
    quiet: bool,
    audit_log: Option<PathBuf>,
    learn: bool,
    limits: Limits,
    keep_awake: bool,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    /// Nothing granted but the loader's files; refusals get `EACCES`.
    pub fn new() -> Sandbox {
        Sandbox {
            rules: Vec::new(),
            exec: Vec::new(),
            deny_errno: libc::EACCES,
            default_runtime: true,
            require_landlock: false,
            explicit_only: false,
            quiet: false,
            audit_log: None,
            learn: false,
            limits: Limits::default(),
            keep_awake: true,
        }
    }

    /// Add a rule: `PATH`, or `DIR/**` for DIR and everything beneath it (absolute).
    pub fn allow(mut self, kind: RuleKind, pattern: impl Into<String>) -> Sandbox {
        let pattern = pattern.into();
        let what = format!("{} {pattern}", kind.flag());
        self.rules.push(RuleSpec {
            kind,
            pattern,
            what,
            warn: true,
        });
        self
    }

    /// Allow opening `pattern` read-only.
    pub fn allow_read(self, pattern: impl Into<String>) -> Sandbox {
        self.allow(RuleKind::Read, pattern)
    }

    /// Allow reading, writing, creating and truncating `pattern`.
    pub fn allow_write(self, pattern: impl Into<String>) -> Sandbox {
        self.allow(RuleKind::Write, pattern)
    }

    /// Allow opening `pattern` in the mode asked for, only while it is a FIFO.
    pub fn allow_fifo(self, pattern: impl Into<String>) -> Sandbox {
        self.allow(RuleKind::Fifo, pattern)
    }

    /// Allow executing `pattern` (besides the program itself and its interpreters).
    pub fn allow_exec(mut self, pattern: impl Into<String>) -> Sandbox {
        self.exec.push(pattern.into());
        self
    }

    /// Take rules and settings from a loaded policy file; later calls override its settings.
    pub fn policy_file(mut self, file: &PolicyFile) -> Sandbox {
        for spec in &file.rules {
            self.rules.push(RuleSpec {
                kind: spec.kind,
                pattern: spec.pattern.clone(),
                what: spec.at.to_string(),
                warn: false,
            });
        }
        self.exec
            .extend(file.exec.iter().map(|e| e.pattern.clone()));
        if let Some(e) = file.deny_errno {
            self.deny_errno = e;
        }
        if let Some(r) = file.default_runtime {
            self.default_runtime = r;
        }
        if let Some(l) = file.require_landlock {
            self.require_landlock = l;
        }
        self
    }

    /// The errno refused requests get.
    pub fn deny_errno(mut self, errno: i32) -> Sandbox {
        self.deny_errno = errno;
        self
    }

    /// Grant the dynamic loader's files read-only (default: yes).
    pub fn default_runtime(mut self, yes: bool) -> Sandbox {
        self.default_runtime = yes;
        self
    }

    /// Refuse to run unless Landlock enforces everything.
    pub fn require_landlock(mut self, yes: bool) -> Sandbox {
        self.require_landlock = yes;
        self
    }

    /// Serve the rules only over the explicit protocol: the program's own opens reach the
    /// runtime allowance at most and are otherwise refused.
    pub fn explicit_only(mut self, yes: bool) -> Sandbox {
        self.explicit_only = yes;
        self
    }

    /// Do not print a line for each refusal.
    pub fn quiet(mut self, yes: bool) -> Sandbox {
        self.quiet = yes;
        self
    }

    /// Append one JSON object per decision to `path`.
    pub fn audit_log(mut self, path: impl Into<PathBuf>) -> Sandbox {
        self.audit_log = Some(path.into());
        self
    }

    /// Keep the other CPUs busy (at the lowest claim on them) while requests arrive in bursts,
    /// so each request is served on the target's CPU; on by default. See
    /// [`crate::keep_awake`].
    pub fn keep_awake(mut self, yes: bool) -> Sandbox {
        self.keep_awake = yes;
        self
    }

    /// Trusted runs only: grant everything and record what the run asks for (see
    /// [`Running::wait_learning`]).
    pub fn learn(mut self, yes: bool) -> Sandbox {
        self.learn = yes;
        self
    }

    /// Run under these resource limits (see [`Limits`]). The whole tree is ended with the run
    /// in any case.
    pub fn limits(mut self, limits: Limits) -> Sandbox {
        self.limits = limits;
        self
    }

    /// Start `cmd` in the sandbox.
    pub fn spawn(&self, cmd: &Command) -> Result<Running, SandboxError> {
        if self.learn && self.explicit_only {
            return Err(SandboxError::Conflict(
                "learn mode records the program's own opens; it cannot be explicit-only",
            ));
        }
        let path_env = cmd.value("PATH");
        let program = crate::program::find(&cmd.program, path_env.as_deref())?;
        for pattern in &self.exec {
            policy::parse_pattern(pattern).map_err(|source| SandboxError::Rule {
                what: format!("--allow-exec {pattern}"),
                source,
            })?;
        }
        let start = Start {
            deny_errno: self.deny_errno,
            learn: self.learn,
            limits: LimitPlan::new(&self.limits)?,
            keep_awake: self.keep_awake,
        };
        let mut argv = vec![cmd.program.clone()];
        argv.extend(cmd.args.iter().cloned());
        let target = Target {
            program: program.clone(),
            argv,
            env: cmd.environment(),
        };
        // The policy, the Landlock ruleset and the audit log are built while the child sets
        // itself up: it needs none of them before the go-ahead.
        let supervisor = Supervisor::spawn(target, start, || self.settings(&program, cmd))?;
        if self.limits.any() && !self.quiet {
            let mut text = String::new();
            for line in supervisor.limits().lines() {
                text.push_str(&format!("broker: {line}\n"));
            }
            let _ = std::io::Write::write_all(&mut std::io::stderr(), text.as_bytes());
        }
        Ok(Running { supervisor })
    }

    /// Everything but the child's start: the policy (rules and their anchors, the runtime
    /// allowance), the Landlock ruleset, the audit log.
    fn settings(&self, program: &Path, cmd: &Command) -> Result<Settings, SandboxError> {
        let mut policy = Policy::new();
        for spec in &self.rules {
            policy.push(self.rule(spec)?);
        }
        let ld_path = cmd.value("LD_LIBRARY_PATH");
        let mut own_calls = self.explicit_only.then(Policy::new);
        let grant = RuntimeGrant::new(program, ld_path.as_deref());
        // The default allowance is needed only by the target's first call: the supervisor
        // grants it while the target execs. Learn mode and --no-default-runtime need the list
        // now.
        let (deferred, runtime) = if self.default_runtime && !self.learn {
            (Some(grant), BTreeSet::new())
        } else {
            let runtime = grant.paths();
            if self.default_runtime {
                crate::runtime::grant(&runtime, &mut policy, own_calls.as_mut());
            } else {
                warn_if_loader_denied(own_calls.as_ref().unwrap_or(&policy), program, &runtime);
            }
            (None, runtime)
        };
        let default_exec = crate::runtime::exec_allowance(program);
        let learner = self.learn.then(|| {
            eprintln!("broker: warning: learn mode grants the program everything it asks for; use it only on a trusted run");
            policy.push(Rule::new(RuleKind::Write, "/**").expect("a valid pattern"));
            Learner::new(runtime, default_exec.iter().cloned().collect())
        });
        let mut exec: Vec<String> = default_exec
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        exec.extend(self.exec.iter().cloned());
        if learner.is_some() {
            exec.push("/**".into());
        }
        let landlock = crate::landlock::ruleset(&exec)
            .map_err(|e| SandboxError::Landlock(format!("landlock ruleset: {e}")))?;
        match landlock.enforcement {
            crate::landlock::Enforcement::Full(_) => {}
            e if self.require_landlock => {
                return Err(SandboxError::Landlock(format!("--require-landlock: {e}")))
            }
            e => eprintln!("broker: warning: {e}"),
        }
        let audit = self
            .audit_log
            .as_deref()
            .map(|p| {
                crate::audit::AuditLog::open(p).map_err(|source| SandboxError::AuditLog {
                    path: p.to_path_buf(),
                    source,
                })
            })
            .transpose()?;
        Ok(Settings {
            policy,
            own_calls,
            runtime: deferred,
            quiet: self.quiet,
            audit,
            learner,
            landlock,
        })
    }

    fn rule(&self, spec: &RuleSpec) -> Result<Rule, SandboxError> {
        let rule = Rule::new(spec.kind, &spec.pattern).map_err(|source| SandboxError::Rule {
            what: spec.what.clone(),
            source,
        })?;
        if !spec.warn {
            return Ok(rule);
        }
        if let Some(e) = rule.missing() {
            eprintln!(
                "broker: warning: {}: {e}; requests for it will fail",
                spec.what
            );
        } else if spec.kind == RuleKind::Fifo
            && policy::parse_pattern(&spec.pattern)
                .is_ok_and(|(base, _)| !policy::fits_fifo_rule(base))
        {
            eprintln!(
                "broker: warning: {}: not a FIFO; opening it will be refused",
                spec.what
            );
        }
        Ok(rule)
    }
}

/// A program running in a sandbox. Nothing is served until [`Running::wait`] is called.
pub struct Running {
    supervisor: Supervisor,
}

impl Running {
    /// The program's process id.
    pub fn id(&self) -> u32 {
        self.supervisor.pid() as u32
    }

    /// Serve the program until it and everything it started are gone; its status.
    pub fn wait(self) -> Result<ExitStatus, SandboxError> {
        Ok(self.supervisor.run()?.status)
    }

    /// Like [`Running::wait`], with the run's [`RunReport`]: why it ended, what it used, what
    /// it was refused.
    pub fn wait_report(self) -> Result<(ExitStatus, RunReport), SandboxError> {
        let result = self.supervisor.run()?;
        Ok((result.status, RunReport::of(&result)))
    }

    /// Like [`Running::wait`]; in learn mode also the policy the run needed, as a TOML policy
    /// file commented with `command`.
    pub fn wait_learning(
        self,
        command: &str,
    ) -> Result<(ExitStatus, Option<String>), SandboxError> {
        let (status, learned, _) = self.wait_all(command)?;
        Ok((status, learned))
    }

    /// Everything a run yields: its status, in learn mode the policy it needed (commented with
    /// `command`), and its report.
    pub fn wait_all(
        self,
        command: &str,
    ) -> Result<(ExitStatus, Option<String>, RunReport), SandboxError> {
        let result = self.supervisor.run()?;
        let report = RunReport::of(&result);
        let learned = result.learned.as_ref().map(|l| l.policy(command));
        Ok((result.status, learned, report))
    }
}

/// Without the runtime allowance, a dynamic program whose loader files the policy does not
/// grant cannot start: say so before it fails with an obscure loader error.
fn warn_if_loader_denied(policy: &Policy, program: &Path, runtime: &BTreeSet<PathBuf>) {
    let denied: Vec<String> = runtime
        .iter()
        .filter(|p| p.exists())
        .filter(|p| {
            let norm = crate::path::NormPath::new(None, p.as_os_str().as_bytes());
            !matches!(
                norm.map(|n| policy.decide(&n, Need::Read)),
                Some(PolicyDecision::Allow(_))
            )
        })
        .map(|p| p.display().to_string())
        .collect();
    if !denied.is_empty() {
        eprintln!(
            "broker: warning: {} is dynamically linked and the policy does not grant what its loader needs ({}); drop --no-default-runtime or grant them",
            program.display(),
            denied.join(", ")
        );
    }
}
