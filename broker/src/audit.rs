//! `--audit-log FILE`: one JSON object per decision, as JSON Lines.
//!
//! `{"time":"2026-11-23T05:43:15.123Z","pid":4242,"syscall":"openat","path":"../x",
//!   "resolved":"/srv/x","access":"read","decision":"deny","rule":null,"reason":"no rule grants it"}`
//!
//! `resolved` appears only when it differs from `path`. The request path only appends the raw
//! fields to a shared buffer (a lock, a few copies, one clock read); a writer thread turns them
//! into JSON and writes them once the oldest is [`FLUSH_AFTER`] old, and everything at exit.
//! When the buffer holds [`MAX_BUFFERED`] bytes the request path waits for the writer rather
//! than grow: bounded memory, nothing dropped.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::serve::Decision;

/// How long a record may wait before it is written.
pub const FLUSH_AFTER: Duration = Duration::from_millis(50);
/// How many raw bytes may wait before the request path waits for the writer.
pub const MAX_BUFFERED: usize = 16 << 20;

#[derive(Default)]
struct Pending {
    raw: Vec<u8>,
    closing: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    /// Signalled when there is work (or the log closes), and when the writer drained a batch.
    changed: Condvar,
}

/// An open audit log.
pub struct AuditLog {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

impl AuditLog {
    /// Open `path` for appending (created 0600 if missing) and start its writer.
    pub fn open(path: &Path) -> std::io::Result<AuditLog> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)?;
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            changed: Condvar::new(),
        });
        let for_writer = shared.clone();
        let writer = std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || write_loop(&for_writer, BufWriter::with_capacity(64 << 10, file)))?;
        Ok(AuditLog {
            shared,
            writer: Some(writer),
        })
    }

    /// Queue one decision.
    pub fn record(&mut self, d: &Decision) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut p = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        while p.raw.len() >= MAX_BUFFERED && !p.closing {
            self.shared.changed.notify_all();
            p = self
                .shared
                .changed
                .wait(p)
                .unwrap_or_else(|e| e.into_inner());
        }
        let was_empty = p.raw.is_empty();
        encode(&mut p.raw, now, d);
        drop(p);
        if was_empty {
            self.shared.changed.notify_all();
        }
    }
}

impl Drop for AuditLog {
    /// Write everything still queued, then stop the writer.
    fn drop(&mut self) {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .closing = true;
        self.shared.changed.notify_all();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

fn write_loop(shared: &Shared, mut out: BufWriter<File>) {
    let mut batch = Vec::new();
    loop {
        let closing = {
            let mut p = shared.pending.lock().unwrap_or_else(|e| e.into_inner());
            while p.raw.is_empty() && !p.closing {
                p = shared.changed.wait(p).unwrap_or_else(|e| e.into_inner());
            }
            if !p.closing && p.raw.len() < MAX_BUFFERED {
                // Let a batch gather: the first record of it is at most FLUSH_AFTER old.
                p = shared
                    .changed
                    .wait_timeout(p, FLUSH_AFTER)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            std::mem::swap(&mut batch, &mut p.raw);
            p.closing
        };
        shared.changed.notify_all();
        if let Err(e) = write_batch(&mut out, &batch) {
            eprintln!("broker: audit log: {e}");
        }
        batch.clear();
        if closing {
            let p = shared.pending.lock().unwrap_or_else(|e| e.into_inner());
            if p.raw.is_empty() {
                return;
            }
        }
    }
}

// The raw encoding of one record, read back only by `write_batch`.
fn put(raw: &mut Vec<u8>, bytes: &[u8]) {
    raw.extend_from_slice(&(bytes.len() as u32).to_ne_bytes());
    raw.extend_from_slice(bytes);
}

fn encode(raw: &mut Vec<u8>, now: Duration, d: &Decision) {
    raw.extend_from_slice(&now.as_secs().to_ne_bytes());
    raw.extend_from_slice(&now.subsec_millis().to_ne_bytes());
    raw.extend_from_slice(&d.pid.to_ne_bytes());
    raw.push(d.allowed as u8);
    put(raw, d.syscall.as_bytes());
    put(raw, d.need.as_str().as_bytes());
    put(raw, &d.given);
    put(
        raw,
        if d.resolved == d.given {
            b""
        } else {
            &d.resolved
        },
    );
    match &d.rule {
        Some(r) => {
            raw.push(1);
            put(raw, r.as_bytes());
        }
        None => raw.push(0),
    }
    put(raw, d.reason.as_bytes());
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
    fn u32(&mut self) -> u32 {
        u32::from_ne_bytes(self.take(4).try_into().expect("4 bytes"))
    }
    fn u64(&mut self) -> u64 {
        u64::from_ne_bytes(self.take(8).try_into().expect("8 bytes"))
    }
    fn bytes(&mut self) -> &'a [u8] {
        let n = self.u32() as usize;
        self.take(n)
    }
}

/// Append `bytes` as a JSON string: quoted, escaped, invalid UTF-8 replaced.
fn json_str(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    let text = String::from_utf8_lossy(bytes);
    let b = text.as_bytes();
    if !b.iter().any(|&c| c == b'"' || c == b'\\' || c < 0x20) {
        out.extend_from_slice(b);
    } else {
        for &c in b {
            match c {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\t' => out.extend_from_slice(b"\\t"),
                c if c < 0x20 => {
                    let _ = write!(out, "\\u{c:04x}");
                }
                c => out.push(c),
            }
        }
    }
    out.push(b'"');
}

fn write_batch(out: &mut BufWriter<File>, batch: &[u8]) -> std::io::Result<()> {
    let mut r = Reader(batch);
    let mut line = Vec::with_capacity(512);
    // The date and time to the second, computed once per second rather than per record.
    let mut second = (u64::MAX, String::new());
    while !r.0.is_empty() {
        let (secs, millis) = (r.u64(), r.u32());
        if second.0 != secs {
            rfc3339_seconds(&mut second.1, secs);
            second.0 = secs;
        }
        let pid = r.u32();
        let allowed = r.take(1)[0] == 1;
        let (syscall, access, path, resolved) = (r.bytes(), r.bytes(), r.bytes(), r.bytes());
        let rule = (r.take(1)[0] == 1).then(|| r.bytes());
        let reason = r.bytes();
        line.clear();
        let _ = write!(
            line,
            "{{\"time\":\"{}.{millis:03}Z\",\"pid\":{pid},\"syscall\":",
            second.1
        );
        json_str(&mut line, syscall);
        line.extend_from_slice(b",\"path\":");
        json_str(&mut line, path);
        if !resolved.is_empty() {
            line.extend_from_slice(b",\"resolved\":");
            json_str(&mut line, resolved);
        }
        line.extend_from_slice(b",\"access\":");
        json_str(&mut line, access);
        line.extend_from_slice(if allowed {
            b",\"decision\":\"allow\",\"rule\":"
        } else {
            b",\"decision\":\"deny\",\"rule\":"
        });
        match rule {
            Some(rule) => json_str(&mut line, rule),
            None => line.extend_from_slice(b"null"),
        }
        line.extend_from_slice(b",\"reason\":");
        json_str(&mut line, reason);
        line.extend_from_slice(b"}\n");
        out.write_all(&line)?;
    }
    out.flush()
}

/// `secs` since the epoch (UTC) as RFC 3339 to the second, into `out`.
fn rfc3339_seconds(out: &mut String, secs: u64) {
    let secs = secs as i64;
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
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn time_is_rfc3339() {
        let mut t = String::new();
        super::rfc3339_seconds(&mut t, 1_795_411_673);
        assert_eq!(t, "2026-11-23T05:27:53"); // date -u -d @1795411673
        super::rfc3339_seconds(&mut t, 951_782_400); // a leap day
        assert_eq!(t, "2000-02-29T00:00:00");
    }

    #[test]
    fn strings_are_escaped_as_json() {
        let mut out = Vec::new();
        super::json_str(&mut out, b"a\"b\\c\nd\x01\xff");
        let back: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, "a\"b\\c\nd\u{1}\u{fffd}");
    }
}
