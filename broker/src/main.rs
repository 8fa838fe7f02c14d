//! `broker [OPTIONS] -- PROGRAM [ARG...]`: the command-line front of the broker library.
#![no_main]

use std::io::Write;

use anyhow::{anyhow, Context};
use broker::cli::{Cli, Tool};
use broker::limits::Limits;
use broker::policy::RuleKind;
use broker::policy_file::PolicyFile;
use broker::report::RunReport;
use broker::sandbox::{Command, Sandbox};

/// musl's own allocator maps and unmaps memory far more often: `broker -- /bin/true` made 37
/// `mmap` and 27 `munmap` calls instead of 15 and 4, and took 0.3 ms longer.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOC: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// Exit status when the broker itself fails (bad flags, set-up error).
const EXIT_BROKER: u8 = 125;

/// The C entry point. Rust's own start-up (a stack-overflow handler, which reads
/// /proc/self/maps, and an alternate signal stack) costs about 0.05 ms of every run, a twentieth
/// of the broker's start-up budget; what of it the broker needs is done here.
#[no_mangle]
extern "C" fn main(argc: libc::c_int, argv: *const *const libc::c_char) -> libc::c_int {
    // As Rust's runtime does: a closed stdout or stderr is an EPIPE error, not death.
    // SAFETY: setting a signal's disposition to ignored.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // A panic cannot unwind out of a C function: it ends the broker as a failure of its own.
    // SAFETY: the C runtime passes argc valid NUL-terminated strings.
    let args = unsafe { args_from_c(argc, argv) };
    let code = std::panic::catch_unwind(|| broker_main(args)).unwrap_or(EXIT_BROKER);
    // Rust's runtime would flush stdout at exit; the C library's exit does not know it.
    let _ = std::io::stdout().flush();
    libc::c_int::from(code)
}

/// The command line as the C runtime passed it (std::env::args is empty without Rust's start-up
/// on C libraries other than glibc).
///
/// # Safety
/// `argv` holds `argc` valid NUL-terminated strings.
unsafe fn args_from_c(
    argc: libc::c_int,
    argv: *const *const libc::c_char,
) -> Vec<std::ffi::OsString> {
    use std::os::unix::ffi::OsStrExt;
    (0..argc.max(0) as usize)
        .map(|i| {
            std::ffi::OsStr::from_bytes(std::ffi::CStr::from_ptr(*argv.add(i)).to_bytes())
                .to_owned()
        })
        .collect()
}

fn broker_main(args: Vec<std::ffi::OsString>) -> u8 {
    let cli = match Cli::from_args(args) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return 0;
        }
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad arguments");
            eprintln!(
                "broker: {} (see broker --help)",
                first.trim_start_matches("error: ")
            );
            return EXIT_BROKER;
        }
    };
    let result = match &cli.tool {
        Some(tool) => tool_main(tool),
        None => run(&cli),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let code = e
                .downcast_ref::<broker::sandbox::SandboxError>()
                .map(|s| s.exit_code())
                .unwrap_or(EXIT_BROKER as i32);
            eprintln!("broker: {e:#}");
            code as u8
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

/// Where `--report` goes: opened before the run, so that an unwritable report fails early.
enum ReportSink {
    Stderr,
    File(std::fs::File, std::path::PathBuf),
}

impl ReportSink {
    fn open(path: &std::path::Path) -> anyhow::Result<ReportSink> {
        if path.as_os_str() == "-" {
            return Ok(ReportSink::Stderr);
        }
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
        Ok(ReportSink::File(file, path.to_path_buf()))
    }

    fn write(self, report: &RunReport) -> anyhow::Result<()> {
        let line = format!("{}\n", report.to_json());
        match self {
            ReportSink::Stderr => std::io::stderr().write_all(line.as_bytes())?,
            ReportSink::File(mut f, path) => f
                .write_all(line.as_bytes())
                .with_context(|| format!("cannot write the report to {}", path.display()))?,
        }
        Ok(())
    }
}

fn run(cli: &Cli) -> anyhow::Result<u8> {
    let sink = cli.report.as_deref().map(ReportSink::open).transpose()?;
    match run_to_end(cli) {
        Ok((code, report)) => {
            if let Some(sink) = sink {
                sink.write(&report)?;
            }
            Ok(code)
        }
        Err(e) => {
            if let Some(sink) = sink {
                let _ = sink.write(&RunReport::broker_error(format!("{e:#}")));
            }
            Err(e)
        }
    }
}

fn run_to_end(cli: &Cli) -> anyhow::Result<(u8, RunReport)> {
    // Warnings about a policy file (missing paths) are `broker check`'s business: a reviewed
    // policy runs without repeating them.
    let file = cli.policy.as_deref().map(PolicyFile::load).transpose()?;
    let mut sandbox = Sandbox::new();
    if let Some(file) = &file {
        sandbox = sandbox.policy_file(file);
    }
    if let Some(name) = &cli.deny_errno {
        let errno = broker::errno::parse(name).ok_or_else(|| {
            anyhow!(
                "unknown errno {:?} for --deny-errno (use one of {})",
                name,
                broker::errno::names().collect::<Vec<_>>().join(", ")
            )
        })?;
        sandbox = sandbox.deny_errno(errno);
    }
    let flag_rules = [
        (RuleKind::Read, &cli.allow_read),
        (RuleKind::Write, &cli.allow_write),
        (RuleKind::Fifo, &cli.allow_fifo),
    ];
    for (kind, patterns) in flag_rules {
        for pattern in patterns {
            sandbox = sandbox.allow(kind, pattern);
        }
    }
    for pattern in &cli.allow_exec {
        sandbox = sandbox.allow_exec(pattern);
    }
    if cli.no_default_runtime {
        sandbox = sandbox.default_runtime(false);
    }
    if cli.require_landlock {
        sandbox = sandbox.require_landlock(true);
    }
    if let Some(log) = &cli.audit_log {
        sandbox = sandbox.audit_log(log);
    }
    let limits = Limits {
        memory: cli.memory,
        cpu_time: cli.cpu_time,
        wall_time: cli.wall_time,
        max_procs: cli.max_procs,
        max_file_size: cli.max_file_size,
        max_open_files: cli.max_open_files,
        best_effort: cli.best_effort_limits,
    };
    let sandbox = sandbox
        .limits(limits)
        .explicit_only(cli.explicit_only)
        .quiet(cli.quiet)
        .keep_awake(!cli.no_keep_awake)
        .learn(cli.learn.is_some());
    let mut command = Command::new(&cli.command[0]);
    command.args(&cli.command[1..]);
    let running = sandbox.spawn(&command)?;
    let shown: Vec<String> = cli
        .command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let (status, learned, report) = running.wait_all(&shown.join(" "))?;
    if let (Some(out), Some(learned)) = (&cli.learn, learned) {
        std::fs::write(out, learned)
            .with_context(|| format!("writing the learned policy to {}", out.display()))?;
        eprintln!("broker: learned policy written to {}", out.display());
    }
    Ok((status.code() as u8, report))
}
