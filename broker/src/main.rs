//! `broker [OPTIONS] -- PROGRAM [ARG...]`: the command-line front of the broker library.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use broker::cli::{Cli, Tool};
use broker::policy::{Policy, Rule, RuleKind};
use broker::policy_file::PolicyFile;
use broker::supervisor::{Settings, Supervisor, Target};
use clap::Parser;

/// Exit status when the broker itself fails (bad flags, set-up error).
const EXIT_BROKER: u8 = 125;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad arguments");
            eprintln!(
                "broker: {} (see broker --help)",
                first.trim_start_matches("error: ")
            );
            return ExitCode::from(EXIT_BROKER);
        }
    };
    let result = match &cli.tool {
        Some(tool) => tool_main(tool),
        None => run(&cli),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let code = e
                .downcast_ref::<broker::program::ProgramError>()
                .map(|p| p.exit_code())
                .or_else(|| {
                    e.downcast_ref::<broker::supervisor::SuperviseError>()
                        .map(|s| s.exit_code())
                })
                .unwrap_or(EXIT_BROKER as i32);
            eprintln!("broker: {e:#}");
            ExitCode::from(code as u8)
        }
    }
}

fn tool_main(tool: &Tool) -> anyhow::Result<u8> {
    let mut stdout = std::io::stdout().lock();
    match tool {
        Tool::Check { file } => match PolicyFile::load(file) {
            Ok(policy) => {
                for w in &policy.warnings {
                    eprintln!("broker: {w}");
                }
                for line in policy.effective_lines() {
                    writeln!(stdout, "{line}")?;
                }
                Ok(0)
            }
            Err(e) => {
                eprintln!("broker: {e}");
                Ok(1)
            }
        },
        Tool::Man => {
            stdout.write_all(&broker::cli::man_page()?)?;
            Ok(0)
        }
        Tool::Completions { shell } => {
            stdout.write_all(&broker::cli::completions(*shell))?;
            Ok(0)
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<u8> {
    // Warnings about a policy file (missing paths) are `broker check`'s business: a reviewed
    // policy runs without repeating them.
    let file = cli.policy.as_deref().map(PolicyFile::load).transpose()?;
    let deny_errno = match (&cli.deny_errno, file.as_ref().and_then(|f| f.deny_errno)) {
        (Some(name), _) => broker::errno::parse(name).ok_or_else(|| {
            anyhow!(
                "unknown errno {:?} for --deny-errno (use one of {})",
                name,
                broker::errno::names().collect::<Vec<_>>().join(", ")
            )
        })?,
        (None, Some(errno)) => errno,
        (None, None) => libc::EACCES,
    };
    let default_runtime = !cli.no_default_runtime
        && file
            .as_ref()
            .and_then(|f| f.default_runtime)
            .unwrap_or(true);
    let path_env = std::env::var_os("PATH");
    let program = broker::program::find(&cli.command[0], path_env.as_deref())?;

    let mut policy = Policy::new();
    for spec in file.iter().flat_map(|f| &f.rules) {
        let rule = Rule::new(spec.kind, &spec.pattern).with_context(|| spec.at.to_string())?;
        policy.push(rule);
    }
    let flag_rules = [
        (RuleKind::Read, &cli.allow_read),
        (RuleKind::Write, &cli.allow_write),
        (RuleKind::Fifo, &cli.allow_fifo),
    ];
    for (kind, patterns) in flag_rules {
        for pattern in patterns {
            let rule =
                Rule::new(kind, pattern).with_context(|| format!("{} {pattern}", kind.flag()))?;
            if let Some(e) = rule.missing() {
                eprintln!(
                    "broker: warning: {} {pattern}: {e}; requests for it will fail",
                    kind.flag()
                );
            } else if kind == RuleKind::Fifo
                && broker::policy::parse_pattern(pattern)
                    .is_ok_and(|(base, _)| !broker::policy::fits_fifo_rule(base))
            {
                eprintln!("broker: warning: --allow-fifo {pattern}: not a FIFO; opening it will be refused");
            }
            policy.push(rule);
        }
    }
    let ld_path = std::env::var_os("LD_LIBRARY_PATH");
    let runtime = broker::runtime::allowance(&program, ld_path.as_deref());
    if default_runtime {
        for path in &runtime {
            if let Ok(rule) = Rule::new(RuleKind::Read, &path.to_string_lossy()) {
                policy.push(rule);
            }
        }
    } else {
        warn_if_loader_denied(&policy, &program, &runtime);
    }
    let default_exec = broker::runtime::exec_allowance(&program);
    let learner = cli.learn.as_ref().map(|_| {
        eprintln!("broker: warning: learn mode grants the program everything it asks for; use it only on a trusted run");
        policy.push(Rule::new(RuleKind::Write, "/**").expect("a valid pattern"));
        broker::learn::Learner::new(runtime, default_exec.iter().cloned().collect())
    });
    let file_exec = file.iter().flat_map(|f| &f.exec).map(|e| &e.pattern);
    let mut exec: Vec<String> = default_exec
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .chain(file_exec.cloned())
        .collect();
    for pattern in &cli.allow_exec {
        broker::policy::parse_pattern(pattern)
            .with_context(|| format!("--allow-exec {pattern}"))?;
        exec.push(pattern.clone());
    }
    if learner.is_some() {
        exec.push("/**".into());
    }
    let require_landlock = cli.require_landlock
        || file
            .as_ref()
            .and_then(|f| f.require_landlock)
            .unwrap_or(false);
    let landlock = broker::landlock::ruleset(&exec).context("landlock ruleset")?;
    match landlock.enforcement {
        broker::landlock::Enforcement::Full(_) => {}
        e if require_landlock => return Err(anyhow!("--require-landlock: {e}")),
        e => eprintln!("broker: warning: {e}"),
    }
    let audit = cli
        .audit_log
        .as_deref()
        .map(|p| {
            broker::audit::AuditLog::open(p).with_context(|| format!("audit log {}", p.display()))
        })
        .transpose()?;

    let target = Target {
        program,
        argv: cli.command.clone(),
        env: std::env::vars_os().collect(),
    };
    let settings = Settings {
        policy,
        deny_errno,
        quiet: cli.quiet,
        audit,
        learner,
        landlock,
    };
    let result = Supervisor::spawn(target, settings)?.run()?;
    if let (Some(out), Some(learned)) = (&cli.learn, &result.learned) {
        let command: Vec<String> = cli
            .command
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        std::fs::write(out, learned.policy(&command.join(" ")))
            .with_context(|| format!("writing the learned policy to {}", out.display()))?;
        eprintln!("broker: learned policy written to {}", out.display());
    }
    Ok(result.status.code() as u8)
}

/// Without the runtime allowance, a dynamic program whose loader files the policy does not
/// grant cannot start: say so before it fails with an obscure loader error.
fn warn_if_loader_denied(
    policy: &Policy,
    program: &std::path::Path,
    runtime: &std::collections::BTreeSet<std::path::PathBuf>,
) {
    use broker::policy::{Need, PolicyDecision};
    use std::os::unix::ffi::OsStrExt;
    let denied: Vec<String> = runtime
        .iter()
        .filter(|p| p.exists())
        .filter(|p| {
            let norm = broker::path::NormPath::new(None, p.as_os_str().as_bytes());
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
