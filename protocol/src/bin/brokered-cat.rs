//! `brokered-cat PATH...`: print each PATH, opened by the broker over the explicit protocol.
//!
//! The demo and black-box test of the protocol: run it as
//! `broker --allow-read F -- brokered-cat F`. It never opens a file itself, so it also works
//! under `--explicit-only`. Exit status: 0, or 1 if any PATH could not be printed (with the
//! broker's reason on stderr), or 2 without a broker channel.

use std::io::{self, Write};
use std::process::ExitCode;

use protocol::client::{Client, Refusal};

fn main() -> ExitCode {
    let paths: Vec<_> = std::env::args_os().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: brokered-cat PATH...");
        return ExitCode::from(2);
    }
    let client = match Client::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("brokered-cat: {e}");
            return ExitCode::from(2);
        }
    };
    let mut stdout = io::stdout().lock();
    let mut status = ExitCode::SUCCESS;
    for path in &paths {
        let copied = client
            .open(path, libc::O_RDONLY | libc::O_CLOEXEC)
            .and_then(|fd| io::copy(&mut std::fs::File::from(fd), &mut stdout));
        if let Err(e) = copied.and_then(|_| stdout.flush()) {
            let shown = std::path::Path::new(path).display();
            let line = match Refusal::of(&e) {
                Some(r) => format!("brokered-cat: {shown}: {}\n", r.reason),
                None => format!("brokered-cat: {shown}: {e}\n"),
            };
            // One write, so the line does not interleave with the broker's on a shared pipe.
            let _ = io::stderr().write_all(line.as_bytes());
            status = ExitCode::from(1);
        }
    }
    status
}
