//! `broker [OPTIONS] -- PROGRAM [ARG...]`: the command-line front of the broker library.

use std::ffi::OsString;
use std::process::ExitCode;

use anyhow::{anyhow, Context};
use broker::policy::{Policy, Rule, RuleKind, RuleOrigin};
use broker::supervisor::{Settings, Supervisor, Target};
use clap::Parser;

/// Exit status when the broker itself fails (bad flags, set-up error).
const EXIT_BROKER: u8 = 125;

const EXAMPLES: &str = "\
Examples:
  broker --allow-read /etc/hostname -- cat /etc/hostname
  broker --allow-fifo /run/jobs/in --allow-read '/srv/model/**' -- ./worker --threads 4
  broker --allow-write \"$PWD/out/**\" --deny-errno ENOENT -- ./grader

Exit status: the target's own; 128+N if signal N killed it; 125 if the broker failed;
126 if the program cannot be executed; 127 if it was not found.";

#[derive(Parser, Debug)]
#[command(
    name = "broker",
    version,
    about = "Run a program that may open only the files you allow",
    after_help = EXAMPLES
)]
struct Cli {
    /// Allow opening PATH read-only. DIR/** allows DIR and everything beneath it.
    #[arg(long = "allow-read", value_name = "PATH")]
    allow_read: Vec<String>,
    /// Allow reading, writing, creating and truncating PATH (same patterns).
    #[arg(long = "allow-write", value_name = "PATH")]
    allow_write: Vec<String>,
    /// Allow opening PATH in the mode asked for, only while PATH is a FIFO.
    #[arg(long = "allow-fifo", value_name = "PATH")]
    allow_fifo: Vec<String>,
    /// The errno refused requests get (a name such as EACCES, EPERM, ENOENT).
    #[arg(long = "deny-errno", value_name = "NAME", default_value = "EACCES")]
    deny_errno: String,
    /// Do not grant the dynamic loader's files (interpreter, ld.so.cache, libraries).
    #[arg(long = "no-default-runtime")]
    no_default_runtime: bool,
    /// Do not print a line for each refused request.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// The program to run and its arguments.
    #[arg(
        required = true,
        last = true,
        allow_hyphen_values = true,
        value_name = "PROGRAM"
    )]
    command: Vec<OsString>,
}

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
    match run(cli) {
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

fn run(cli: Cli) -> anyhow::Result<u8> {
    let deny_errno = broker::errno::parse(&cli.deny_errno).ok_or_else(|| {
        anyhow!(
            "unknown errno {:?} for --deny-errno (use one of {})",
            cli.deny_errno,
            broker::errno::names().collect::<Vec<_>>().join(", ")
        )
    })?;
    let path_env = std::env::var_os("PATH");
    let program = broker::program::find(&cli.command[0], path_env.as_deref())?;

    let mut policy = Policy::new();
    let user_rules = [
        (RuleKind::Read, &cli.allow_read),
        (RuleKind::Write, &cli.allow_write),
        (RuleKind::Fifo, &cli.allow_fifo),
    ];
    for (kind, patterns) in user_rules {
        for pattern in patterns {
            let rule = Rule::new(kind, RuleOrigin::User, pattern)
                .with_context(|| format!("{} {pattern}", kind.flag()))?;
            if let Some(e) = rule.missing() {
                eprintln!(
                    "broker: warning: {} {pattern}: {e}; requests for it will fail",
                    kind.flag()
                );
            }
            policy.push(rule);
        }
    }
    if !cli.no_default_runtime {
        let ld_path = std::env::var_os("LD_LIBRARY_PATH");
        for path in broker::runtime::allowance(&program, ld_path.as_deref()) {
            if let Ok(rule) =
                Rule::new(RuleKind::Read, RuleOrigin::Runtime, &path.to_string_lossy())
            {
                policy.push(rule);
            }
        }
    }

    let target = Target {
        program,
        argv: cli.command.clone(),
        env: std::env::vars_os().collect(),
    };
    let settings = Settings {
        policy,
        deny_errno,
        quiet: cli.quiet,
    };
    let status = Supervisor::spawn(target, settings)?.run()?;
    Ok(status.code() as u8)
}
