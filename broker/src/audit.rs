//! `--audit-log FILE`: one JSON object per decision, as JSON Lines.
//!
//! `{"time":"2026-11-23T05:43:15.123Z","pid":4242,"syscall":"openat","path":"../x",
//!   "resolved":"/srv/x","access":"read","decision":"deny","rule":null,"reason":"no rule grants it"}`
//!
//! `resolved` appears only when it differs from `path`. Records are buffered and written once
//! the oldest of them is [`FLUSH_AFTER`] old, and at exit: the log costs no system call per
//! request, loses nothing on a normal exit, and at most that much if the broker is killed.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde::Serialize;

use crate::serve::Decision;

#[derive(Serialize)]
struct Record<'a> {
    time: &'a str,
    pid: u32,
    syscall: &'a str,
    path: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resolved: Option<Cow<'a, str>>,
    access: &'a str,
    decision: &'a str,
    rule: Option<&'a str>,
    reason: &'a str,
}

/// How long a record may wait in the buffer.
pub const FLUSH_AFTER: std::time::Duration = std::time::Duration::from_millis(50);

/// An open audit log.
pub struct AuditLog {
    out: BufWriter<File>,
    /// Reused for each record's timestamp.
    time: String,
    /// When the oldest unwritten record was buffered.
    oldest: Option<std::time::Instant>,
}

impl AuditLog {
    /// Open `path` for appending (created 0600 if missing).
    pub fn open(path: &Path) -> std::io::Result<AuditLog> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)?;
        Ok(AuditLog {
            out: BufWriter::with_capacity(64 << 10, file),
            time: String::with_capacity(32),
            oldest: None,
        })
    }

    /// Append one decision. A failing log is reported once per failure, never fatal.
    pub fn record(&mut self, d: &Decision) {
        let path = String::from_utf8_lossy(&d.given);
        let resolved = (d.resolved != d.given).then(|| String::from_utf8_lossy(&d.resolved));
        rfc3339_now(&mut self.time);
        let record = Record {
            time: &self.time,
            pid: d.pid,
            syscall: d.syscall,
            path,
            resolved,
            access: d.need.as_str(),
            decision: if d.allowed { "allow" } else { "deny" },
            rule: d.rule.as_deref(),
            reason: &d.reason,
        };
        let written = serde_json::to_writer(&mut self.out, &record)
            .map_err(std::io::Error::from)
            .and_then(|_| self.out.write_all(b"\n"));
        if let Err(e) = written {
            eprintln!("broker: audit log: {e}");
        }
        self.oldest.get_or_insert_with(std::time::Instant::now);
    }

    /// How long until buffered records are due to be written, if any are buffered.
    pub fn due_in(&self) -> Option<std::time::Duration> {
        self.oldest.map(|t| FLUSH_AFTER.saturating_sub(t.elapsed()))
    }

    /// Write out what is buffered.
    pub fn flush(&mut self) {
        self.oldest = None;
        if let Err(e) = self.out.flush() {
            eprintln!("broker: audit log: {e}");
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.flush();
    }
}

/// The current UTC time as RFC 3339 with milliseconds, into `out`.
fn rfc3339_now(out: &mut String) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    out.clear();
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_millis()
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn time_is_rfc3339() {
        let mut t = String::new();
        super::rfc3339_now(&mut t);
        assert_eq!(t.len(), 24, "{t}");
        assert!(
            t.starts_with("20") && t.ends_with('Z') && &t[10..11] == "T",
            "{t}"
        );
    }
}
