//! Embedding the broker: run `cp` so that it may read one file and write one directory.
//!
//! `cargo run -p broker --example sandbox -- SRC DIR` copies SRC into DIR under the broker and
//! prints the exit status the `broker` command would report.

use broker::sandbox::{Command, Sandbox};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [src, dir] = args.as_slice() else {
        return Err("usage: sandbox SRC DIR".into());
    };
    let status = Sandbox::new()
        .allow_read(src.as_str())
        .allow_write(format!("{dir}/**"))
        .spawn(Command::new("cp").arg(src).arg(dir))?
        .wait()?;
    println!("cp exited with {}", status.code());
    Ok(())
}
