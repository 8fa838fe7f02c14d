//! The explicit request protocol: message types, their encoding and their limits.
//!
//! One message is one `SOCK_SEQPACKET` datagram, so boundaries survive without a length prefix.
//! Messages are bincode 2 (standard configuration, a decode limit of [`MAX_MESSAGE`]) through
//! serde. A client first sends [`Request::Hello`] with its [`VERSION`]; the broker answers
//! [`Response::Hello`] or an error naming both versions. `Hello` is variant 0 of both enums in
//! every version, so a mismatch is always reported clearly.
//!
//! Every limit is checked on decode ([`decode_request`], [`decode_response`]): a message longer
//! than [`MAX_MESSAGE`], a path longer than [`MAX_PATH`] or containing NUL, a reason longer than
//! [`MAX_REASON`], trailing bytes, or an unknown variant is an error, never an allocation beyond
//! the limit and never a panic.

use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks.
pub const VERSION: u32 = 1;

/// The largest message either side sends or accepts, in bytes.
pub const MAX_MESSAGE: usize = 8192;

/// The longest path a request may carry (Linux `PATH_MAX`, without the NUL).
pub const MAX_PATH: usize = 4095;

/// The longest human-readable reason an error reply may carry, in bytes.
pub const MAX_REASON: usize = 1024;

/// A request from the sandboxed program to the broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// The first message on a channel: the client's protocol version.
    Hello { version: u32 },
    /// Open `path` (absolute) with `open(2)` `flags` and, when creating, `mode`. The reply is
    /// [`Response::Opened`] with the descriptor attached.
    Open {
        path: Vec<u8>,
        flags: i32,
        mode: u32,
    },
    /// `stat(2)` `path` (absolute), following symlinks. Every path must be absolute: the
    /// broker cannot tell which process's working directory a relative one would mean.
    Stat { path: Vec<u8> },
}

/// The broker's answer to one [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The version the broker speaks (equal to the client's, or it would have refused).
    Hello { version: u32 },
    /// The descriptor is attached to this message with `SCM_RIGHTS`.
    Opened,
    /// The answer to [`Request::Stat`].
    Stat(FileStat),
    /// The request was refused or failed: `errno` for the program, `reason` for people.
    Error { errno: i32, reason: String },
}

/// What `stat(2)` says about a file, field by field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStat {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: i64,
    pub blksize: i64,
    pub blocks: i64,
    pub atime: (i64, i64),
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

/// Why a message could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("message longer than {MAX_MESSAGE} bytes")]
    TooLong,
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("{0} bytes after the end of the message")]
    Trailing(usize),
    #[error("path longer than {MAX_PATH} bytes")]
    PathTooLong,
    #[error("path contains a NUL byte")]
    PathNul,
    #[error("path is relative; the protocol takes absolute paths")]
    PathRelative,
    #[error("reason longer than {MAX_REASON} bytes")]
    ReasonTooLong,
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_MESSAGE>()
}

fn encode<T: Serialize>(msg: &T, buf: &mut [u8; MAX_MESSAGE]) -> Result<usize, WireError> {
    bincode::serde::encode_into_slice(msg, buf, config()).map_err(|e| match e {
        bincode::error::EncodeError::UnexpectedEnd => WireError::TooLong,
        e => WireError::Malformed(e.to_string()),
    })
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(WireError::TooLong);
    }
    let (msg, used) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    if used != bytes.len() {
        return Err(WireError::Trailing(bytes.len() - used));
    }
    Ok(msg)
}

fn check_path(path: &[u8]) -> Result<(), WireError> {
    if path.len() > MAX_PATH {
        return Err(WireError::PathTooLong);
    }
    if path.contains(&0) {
        return Err(WireError::PathNul);
    }
    if path.first() != Some(&b'/') {
        return Err(WireError::PathRelative);
    }
    Ok(())
}

impl Request {
    /// Check the field limits (also done by [`decode_request`]).
    pub fn check(&self) -> Result<(), WireError> {
        match self {
            Request::Hello { .. } => Ok(()),
            Request::Open { path, .. } | Request::Stat { path } => check_path(path),
        }
    }
}

impl Response {
    /// An error reply; a reason longer than [`MAX_REASON`] is cut at a character boundary.
    pub fn error(errno: i32, reason: impl Into<String>) -> Response {
        let mut reason = reason.into();
        if reason.len() > MAX_REASON {
            let mut end = MAX_REASON;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
        }
        Response::Error { errno, reason }
    }

    /// Check the field limits (also done by [`decode_response`]).
    pub fn check(&self) -> Result<(), WireError> {
        match self {
            Response::Error { reason, .. } if reason.len() > MAX_REASON => {
                Err(WireError::ReasonTooLong)
            }
            _ => Ok(()),
        }
    }
}

/// Encode a request into `buf`; returns the length used.
pub fn encode_request(req: &Request, buf: &mut [u8; MAX_MESSAGE]) -> Result<usize, WireError> {
    req.check()?;
    encode(req, buf)
}

/// Encode a response into `buf`; returns the length used.
pub fn encode_response(resp: &Response, buf: &mut [u8; MAX_MESSAGE]) -> Result<usize, WireError> {
    resp.check()?;
    encode(resp, buf)
}

/// Decode one whole request and check its limits.
pub fn decode_request(bytes: &[u8]) -> Result<Request, WireError> {
    let req: Request = decode(bytes)?;
    req.check()?;
    Ok(req)
}

/// Decode one whole response and check its limits.
pub fn decode_response(bytes: &[u8]) -> Result<Response, WireError> {
    let resp: Response = decode(bytes)?;
    resp.check()?;
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An absolute path of any length the wire admits, without NUL.
    fn path() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(1u8..=255, 0..MAX_PATH).prop_map(|mut p| {
            p.insert(0, b'/');
            p
        })
    }

    fn request() -> impl Strategy<Value = Request> {
        prop_oneof![
            any::<u32>().prop_map(|version| Request::Hello { version }),
            (path(), any::<i32>(), any::<u32>()).prop_map(|(path, flags, mode)| Request::Open {
                path,
                flags,
                mode
            }),
            path().prop_map(|path| Request::Stat { path }),
        ]
    }

    fn response() -> impl Strategy<Value = Response> {
        prop_oneof![
            any::<u32>().prop_map(|version| Response::Hello { version }),
            Just(Response::Opened),
            any::<(u64, u64, u32, i64, (i64, i64))>().prop_map(|(dev, ino, mode, size, mtime)| {
                Response::Stat(FileStat {
                    dev,
                    ino,
                    mode,
                    size,
                    mtime,
                    ..FileStat::default()
                })
            }),
            (any::<i32>(), ".{0,300}").prop_map(|(errno, r)| Response::error(errno, r)),
        ]
    }

    proptest! {
        #[test]
        fn requests_round_trip(req in request()) {
            let mut buf = [0u8; MAX_MESSAGE];
            let n = encode_request(&req, &mut buf).unwrap();
            prop_assert_eq!(decode_request(&buf[..n]).unwrap(), req);
        }

        #[test]
        fn responses_round_trip(resp in response()) {
            let mut buf = [0u8; MAX_MESSAGE];
            let n = encode_response(&resp, &mut buf).unwrap();
            prop_assert_eq!(decode_response(&buf[..n]).unwrap(), resp);
        }

        /// Arbitrary bytes never panic, and whatever decodes respects every limit.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..MAX_MESSAGE + 64)) {
            if let Ok(req) = decode_request(&bytes) {
                prop_assert!(req.check().is_ok());
                prop_assert!(bytes.len() <= MAX_MESSAGE);
            }
            let _ = decode_response(&bytes);
        }

        /// Cutting a valid message anywhere is an error, not a different message.
        #[test]
        fn truncation_is_refused(req in request(), cut in any::<prop::sample::Index>()) {
            let mut buf = [0u8; MAX_MESSAGE];
            let n = encode_request(&req, &mut buf).unwrap();
            let cut = cut.index(n);
            prop_assert!(decode_request(&buf[..cut]).is_err());
        }
    }

    #[test]
    fn huge_length_prefix_is_refused_without_allocating() {
        // Variant 1 (Open), then a varint length of 2^64-1 for the path.
        let mut msg = vec![1u8, 0xfd];
        msg.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(decode_request(&msg), Err(WireError::Malformed(_))));
    }

    #[test]
    fn limits_are_enforced() {
        let mut buf = [0u8; MAX_MESSAGE];
        let long = Request::Open {
            path: vec![b'a'; MAX_PATH + 1],
            flags: 0,
            mode: 0,
        };
        assert_eq!(encode_request(&long, &mut buf), Err(WireError::PathTooLong));
        let nul = Request::Stat {
            path: b"/a\0b".to_vec(),
        };
        assert_eq!(encode_request(&nul, &mut buf), Err(WireError::PathNul));
        let relative = Request::Stat {
            path: b"etc/passwd".to_vec(),
        };
        assert_eq!(
            encode_request(&relative, &mut buf),
            Err(WireError::PathRelative)
        );
        // A long path encoded by hand still fails the decoder's check.
        let n = encode(&long, &mut buf).unwrap();
        assert_eq!(decode_request(&buf[..n]), Err(WireError::PathTooLong));
        assert!(matches!(
            decode_request(&[0u8; MAX_MESSAGE + 1]),
            Err(WireError::TooLong)
        ));
        let r = Response::error(1, "é".repeat(MAX_REASON));
        assert!(r.check().is_ok());
    }

    #[test]
    fn hello_is_variant_zero() {
        let mut buf = [0u8; MAX_MESSAGE];
        let n = encode_request(&Request::Hello { version: 7 }, &mut buf).unwrap();
        assert_eq!(&buf[..n], &[0, 7]);
        let n = encode_response(&Response::Hello { version: 7 }, &mut buf).unwrap();
        assert_eq!(&buf[..n], &[0, 7]);
    }

    #[test]
    fn trailing_bytes_are_refused() {
        assert_eq!(decode_request(&[0, 1, 0]), Err(WireError::Trailing(1)));
    }
}
