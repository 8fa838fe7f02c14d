//! The command-line definition, shared by the `broker` binary and by the man page and shell
//! completions it generates (`broker man`, `broker completions SHELL`).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::limits;

use clap::{CommandFactory, Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  broker --allow-read /etc/hostname -- cat /etc/hostname
  broker --allow-fifo /run/jobs/in --allow-read '/srv/model/**' -- ./worker --threads 4
  broker --allow-write \"$PWD/out/**\" --deny-errno ENOENT -- ./grader
  broker --learn grader.toml -- ./grader        # trusted run: record what it needs
  broker --policy grader.toml -- ./grader       # then run it with exactly that
  broker check grader.toml                      # validate a policy, print its rules

Exit status: the target's own; 128+N if signal N killed it (a limit or --wall-time ends the
run with SIGKILL: 137); 125 if the broker failed or a limit cannot be enforced;
126 if the program cannot be executed; 127 if it was not found. `broker check`: 0 if the
policy is valid, 1 if not.";

/// Run a program that may open only the files you allow.
#[derive(Parser, Debug, Default)]
#[command(
    name = "broker",
    version,
    about = "Run a program that may open only the files you allow",
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub tool: Option<Tool>,
    /// Read rules and settings from a TOML policy file (see docs/policy.md); flags add to it.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Allow opening PATH read-only. DIR/** allows DIR and everything beneath it.
    #[arg(long = "allow-read", value_name = "PATH")]
    pub allow_read: Vec<String>,
    /// Allow reading, writing, creating and truncating PATH (same patterns).
    #[arg(long = "allow-write", value_name = "PATH")]
    pub allow_write: Vec<String>,
    /// Allow opening PATH in the mode asked for, only while PATH is a FIFO.
    #[arg(long = "allow-fifo", value_name = "PATH")]
    pub allow_fifo: Vec<String>,
    /// Allow executing PATH (same patterns). By default the target may execute only itself and
    /// its interpreters.
    #[arg(long = "allow-exec", value_name = "PATH")]
    pub allow_exec: Vec<String>,
    /// Refuse to run unless Landlock enforces everything (filesystem wall, exec policy, scopes).
    #[arg(long = "require-landlock")]
    pub require_landlock: bool,
    /// The errno refused requests get (a name such as EACCES, EPERM, ENOENT; default EACCES).
    #[arg(long = "deny-errno", value_name = "NAME")]
    pub deny_errno: Option<String>,
    /// Do not grant the dynamic loader's files (interpreter, ld.so.cache, libraries).
    #[arg(long = "no-default-runtime")]
    pub no_default_runtime: bool,
    /// Serve the rules only to programs that ask over the explicit protocol (BROKER_FD); the
    /// program's own opens are refused, except the loader's files (see --no-default-runtime).
    #[arg(long = "explicit-only", conflicts_with = "learn")]
    pub explicit_only: bool,
    /// Do not print a line for each refused request.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Do not keep the other CPUs busy during bursts of requests. By default, helper threads
    /// spin (yielding to any other work) for up to 1 ms after each request in a burst, so that
    /// the target and the broker stay on one CPU: several times faster per open on VMs, at
    /// the cost of otherwise idle CPU time.
    #[arg(long = "no-keep-awake")]
    pub no_keep_awake: bool,
    /// Append one JSON object per decision (allow or deny) to FILE.
    #[arg(long = "audit-log", value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// Trusted runs only: grant everything, record every request, and write a minimal policy
    /// for exactly this run to FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "policy")]
    pub learn: Option<PathBuf>,
    /// Limit memory to BYTES (suffix K, M, G): the run cgroup's memory.max where the broker can
    /// use one, otherwise the address space of each process (RLIMIT_AS).
    #[arg(long, value_name = "BYTES", value_parser = |s: &str| limits::parse_bytes("--memory", s).map_err(|e| e.to_string()))]
    pub memory: Option<u64>,
    /// Limit CPU time to SECS: of the whole tree where the run cgroup allows, of each process
    /// (RLIMIT_CPU) otherwise.
    #[arg(long = "cpu-time", value_name = "SECS", value_parser = |s: &str| limits::parse_seconds("--cpu-time", s).map_err(|e| e.to_string()))]
    pub cpu_time: Option<Duration>,
    /// End the whole tree SECS after the start.
    #[arg(long = "wall-time", value_name = "SECS", value_parser = |s: &str| limits::parse_seconds("--wall-time", s).map_err(|e| e.to_string()))]
    pub wall_time: Option<Duration>,
    /// Limit the processes and threads the target may have at once (pids.max; otherwise the
    /// per-user RLIMIT_NPROC, which does not bind root).
    #[arg(long = "max-procs", value_name = "N", value_parser = |s: &str| limits::parse_count("--max-procs", s).map_err(|e| e.to_string()))]
    pub max_procs: Option<u64>,
    /// Limit the size of any file the target writes (RLIMIT_FSIZE; past it, SIGXFSZ).
    #[arg(long = "max-file-size", value_name = "BYTES", value_parser = |s: &str| limits::parse_bytes("--max-file-size", s).map_err(|e| e.to_string()))]
    pub max_file_size: Option<u64>,
    /// Limit the descriptors the target may hold (RLIMIT_NOFILE; injected ones count too).
    #[arg(long = "max-open-files", value_name = "N", value_parser = |s: &str| limits::parse_count("--max-open-files", s).map_err(|e| e.to_string()))]
    pub max_open_files: Option<u64>,
    /// Run even if a limit cannot be enforced here (the log and the report say which).
    #[arg(long = "best-effort-limits")]
    pub best_effort_limits: bool,
    /// Write one JSON object describing how the run ended to FILE (- for stderr).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// The program to run and its arguments, after `--`.
    #[arg(
        required = true,
        last = true,
        allow_hyphen_values = true,
        value_name = "PROGRAM"
    )]
    pub command: Vec<OsString>,
}

impl Cli {
    /// The command line (`args`, the program name first), parsed: [`Cli::fast`] for the common run forms, clap for everything
    /// else (and for every error and help message).
    pub fn from_args(args: Vec<OsString>) -> Result<Cli, clap::Error> {
        match Cli::fast(&args) {
            Some(cli) => Ok(cli),
            None => Cli::try_parse_from(args),
        }
    }

    /// A fast path for `broker [FLAGS] -- PROGRAM [ARG...]` with only the rule flags and the
    /// plain switches: building clap's parser costs about 70 µs of a cold start, a twentieth
    /// of the broker's budget. Anything it is not sure of (another flag, a value that looks
    /// like a flag, a repeated switch, no `--`) is `None`, and clap decides. A test checks
    /// that whatever it accepts, clap reads the same.
    pub fn fast(args: &[OsString]) -> Option<Cli> {
        // Every flag off and every list empty, as clap leaves what is not given.
        let mut cli = Cli::default();
        let mut it = args.iter().skip(1);
        while let Some(arg) = it.next() {
            let arg = arg.to_str()?;
            let rules = match arg {
                "--" => {
                    cli.command = it.cloned().collect();
                    return (!cli.command.is_empty()).then_some(cli);
                }
                "--allow-read" => &mut cli.allow_read,
                "--allow-write" => &mut cli.allow_write,
                "--allow-fifo" => &mut cli.allow_fifo,
                "--allow-exec" => &mut cli.allow_exec,
                _ => {
                    let switch = match arg {
                        "-q" | "--quiet" => &mut cli.quiet,
                        "--no-keep-awake" => &mut cli.no_keep_awake,
                        "--no-default-runtime" => &mut cli.no_default_runtime,
                        "--explicit-only" => &mut cli.explicit_only,
                        "--require-landlock" => &mut cli.require_landlock,
                        "--best-effort-limits" => &mut cli.best_effort_limits,
                        _ => return None,
                    };
                    if std::mem::replace(switch, true) {
                        return None; // clap says a switch may not repeat
                    }
                    continue;
                }
            };
            let value = it.next()?.to_str()?;
            if value.is_empty() || value.starts_with('-') {
                return None;
            }
            rules.push(value.to_string());
        }
        None
    }
}

/// Tools other than running a program.
#[derive(Subcommand, Debug)]
pub enum Tool {
    /// Check a policy file and print its effective rules, one per line, in a stable order.
    Check {
        /// The policy file.
        file: PathBuf,
    },
    /// Print the man page (roff) on stdout: `broker man > broker.1`.
    Man,
    /// Print shell completions on stdout: `broker completions bash > /etc/bash_completion.d/broker`.
    Completions {
        /// bash, zsh or fish (also elvish, powershell).
        shell: clap_complete::Shell,
    },
}

/// The man page, generated from the definition above.
pub fn man_page() -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    Ok(out)
}

/// Shell completions for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "broker", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn args(words: &[&str]) -> Vec<OsString> {
        std::iter::once("broker")
            .chain(words.iter().copied())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn the_common_forms_take_the_fast_path() {
        for words in [
            &["--", "true"][..],
            &[
                "--allow-read",
                "/etc/hostname",
                "--",
                "cat",
                "/etc/hostname",
            ],
            &[
                "-q",
                "--allow-fifo",
                "/run/in",
                "--allow-read",
                "/m/**",
                "--",
                "w",
                "--x",
            ],
            &["--no-keep-awake", "--explicit-only", "--", "./grader"],
        ] {
            let fast = Cli::fast(&args(words)).expect("fast path");
            let clap = Cli::try_parse_from(args(words)).unwrap();
            assert_eq!(format!("{fast:?}"), format!("{clap:?}"), "{words:?}");
        }
    }

    #[test]
    fn anything_else_is_left_to_clap() {
        for words in [
            &[][..],
            &["--help"],
            &["--version"],
            &["check", "p.toml"],
            &["--allow-read", "--", "true"],
            &["--allow-read=/x", "--", "true"],
            &["-q", "-q", "--", "true"],
            &["-qq", "--", "true"],
            &["--memory", "1G", "--", "true"],
            &["--allow-read", "/x"],
            &["--"],
        ] {
            assert!(Cli::fast(&args(words)).is_none(), "{words:?}");
        }
    }

    const WORDS: &[&str] = &[
        "--",
        "-q",
        "--quiet",
        "--no-keep-awake",
        "--no-default-runtime",
        "--explicit-only",
        "--require-landlock",
        "--best-effort-limits",
        "--allow-read",
        "--allow-write",
        "--allow-fifo",
        "--allow-exec",
        "--memory",
        "-x",
        "-",
        "",
        "/a",
        "b/**",
        "=",
        "true",
        "check",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Whatever the fast path accepts, clap accepts and reads the same way. (Flags, then
        /// often a `--`, then the command: most cases are ones the fast path takes.)
        #[test]
        fn the_fast_path_agrees_with_clap(
            flags in proptest::collection::vec(0..WORDS.len(), 0..8),
            dashes in any::<bool>(),
            command in proptest::collection::vec(0..WORDS.len(), 0..3),
        ) {
            let mut words: Vec<&str> = flags.iter().map(|&i| WORDS[i]).collect();
            if dashes {
                words.push("--");
            }
            words.extend(command.iter().map(|&i| WORDS[i]));
            if let Some(fast) = Cli::fast(&args(&words)) {
                let clap = Cli::try_parse_from(args(&words));
                prop_assert!(clap.is_ok(), "{words:?}: clap refuses what the fast path took");
                prop_assert_eq!(format!("{fast:?}"), format!("{:?}", clap.unwrap()));
            }
        }
    }
}
