//! `brokered-cat PATH...`: print each PATH, opened by the broker over the explicit protocol.
//!
//! The demo and black-box test of the protocol: run it as
//! `broker --allow-read F -- brokered-cat F`. It never opens a file itself, so it also works
//! under `--explicit-only`. Exit status: 0, or 1 if any PATH could not be printed (with the
//! broker's reason on stderr), or 2 without a broker channel.
//!
//! It starts at the C entry point: Rust's own start-up reads `/proc/self/maps` (for the main
//! thread's stack guard), which would be the one file it opens itself.
#![no_main]

use std::ffi::{CStr, OsStr};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;

use protocol::client::{Client, Refusal};

#[no_mangle]
extern "C" fn main(argc: libc::c_int, argv: *const *const libc::c_char) -> libc::c_int {
    // As Rust's runtime does: a closed stdout is an EPIPE error, not death.
    // SAFETY: setting a signal's disposition to ignored.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // From argv itself: std::env::args is empty without Rust's start-up on C libraries other
    // than glibc.
    // SAFETY: the C runtime passes argc valid NUL-terminated strings.
    let paths = (1..argc.max(0) as usize)
        .map(|i| unsafe { OsStr::from_bytes(CStr::from_ptr(*argv.add(i)).to_bytes()) })
        .collect::<Vec<_>>();
    libc::c_int::from(cat(&paths))
}

fn cat(paths: &[&OsStr]) -> u8 {
    if paths.is_empty() {
        eprintln!("usage: brokered-cat PATH...");
        return 2;
    }
    let client = match Client::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("brokered-cat: {e}");
            return 2;
        }
    };
    let mut stdout = io::stdout().lock();
    let mut status = 0;
    for path in paths {
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
            status = 1;
        }
    }
    status
}
