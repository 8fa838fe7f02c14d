//! The channel between the broker and its sandboxed child.
//!
//! The broker and the child share one `AF_UNIX`/`SOCK_SEQPACKET` socketpair. During start-up the
//! child-shim sends the seccomp listener over it ([`HANDSHAKE_LISTENER`] with the descriptor
//! attached) and waits for [`HANDSHAKE_GO`] before it execs the target. Afterwards the target keeps
//! its end at descriptor [`CHANNEL_FD`], announced in the environment variable [`CHANNEL_ENV`],
//! and may speak the explicit request protocol over it ([`wire`], [`client`]).
//!
//! [`fdpass`] holds the two dangerous primitives: sending a descriptor (allocation-free, so the
//! child may call it between fork and exec) and receiving one (close-on-exec, owned at once,
//! truncation and stray descriptors refused).

pub mod client;
pub mod fdpass;
pub mod wire;

/// The descriptor number at which the target finds its end of the channel.
pub const CHANNEL_FD: i32 = 3;

/// The environment variable that tells the target where the channel is.
pub const CHANNEL_ENV: &str = "BROKER_FD";

/// First message of the handshake: child to broker, carries the seccomp listener.
pub const HANDSHAKE_LISTENER: &[u8] = b"broker-listener-v1";

/// Second message of the handshake: broker to child, "you may exec now".
pub const HANDSHAKE_GO: &[u8] = b"go";
