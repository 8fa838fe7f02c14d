//! The broker: run an unmodified program under a seccomp filter and open every file it asks for
//! on its behalf, under a path policy. See ARCHITECTURE.md for the bird's-eye view.
//!
//! - [`policy`]: rules, anchors and [`policy::PolicyDecision`] — the one place a request is decided.
//! - [`filter`]: the child's seccomp allow-list, exported as BPF before fork.
//! - [`supervisor`]: spawning the child-shim and the notification loop.
//! - [`serve`]: turning each intercepted call into a reply under the policy.
//! - [`runtime`]: the default read-only allowance for the dynamic loader.
//! - [`limits`], [`cgroup`], [`lifecycle`], [`report`]: resource limits, the run's cgroup, ending
//!   the whole tree, and the run report.

pub mod audit;
pub mod cgroup;
pub mod channel;
pub mod cli;
pub mod elf;
pub mod errno;
pub mod fifo;
pub mod filter;
mod filter_patch;
// Used by build.rs, which compiles the filter with it; here for its unit tests.
#[cfg(test)]
mod filter_tree;
pub mod keep_awake;
pub mod landlock;
pub mod learn;
pub mod lifecycle;
pub mod limits;
pub mod memory;
pub mod notify;
pub mod path;
pub mod policy;
pub mod policy_file;
pub mod program;
pub mod report;
pub mod runtime;
pub mod sandbox;
pub mod serve;
pub mod supervisor;
pub mod sys;
