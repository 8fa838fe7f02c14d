//! Starting the child and serving it until the whole tree is gone.
//!
//! [`Supervisor::spawn`] builds what the child needs before starting it (filter, argv, envp),
//! starts it, builds the rest of the run while the child-shim locks itself down, receives the
//! seccomp listener, and lets the child exec with the go-ahead (which carries the Landlock
//! ruleset).
//! [`Supervisor::run`] is the `NotifyLoop`: it serves notifications, forwards signals, reaps
//! (the broker is a child subreaper, so orphaned descendants come back to it), and ends when the
//! listener reports that no process holds the filter any more.

use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use child_shim::{ExecPlan, ShimFailure, ShimStage};

use crate::audit::AuditLog;
use crate::cgroup::RunCgroup;
use crate::channel::{Outcome, ProtocolChannel};
use crate::fifo::FifoWaiters;
use crate::filter;
use crate::keep_awake::KeepAwake;
use crate::learn::Learner;
use crate::lifecycle::{Ending, Tree, Usage, Watch};
use crate::limits::{LimitError, LimitPlan};
use crate::notify::{Listener, Notification};
use crate::policy::Policy;
use crate::report::Requests;
use crate::runtime::RuntimeGrant;
use crate::serve::{Reply, Server};
use crate::sys::{cvt, lift};

/// Signals the broker passes on to the target.
pub const FORWARDED: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// Why the supervisor could not start or serve the target.
#[derive(Debug, thiserror::Error)]
pub enum SuperviseError {
    #[error("{what}")]
    Setup {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("child could not {}: {}", .0.stage.describe(), io::Error::from_raw_os_error(.0.errno))]
    Child(ShimFailure),
    #[error(
        "the kernel lacks seccomp user notification with descriptor injection (Linux 5.14+): {0}"
    )]
    Unsupported(io::Error),
    #[error(transparent)]
    Limit(#[from] LimitError),
    #[error("cannot execute {program}")]
    Exec {
        program: String,
        #[source]
        source: io::Error,
    },
}

impl SuperviseError {
    /// The broker's exit status for this error (see README: 125, 126, 127).
    pub fn exit_code(&self) -> i32 {
        match self {
            SuperviseError::Exec { source, .. } if source.raw_os_error() == Some(libc::ENOENT) => {
                127
            }
            SuperviseError::Exec { .. } => 126,
            _ => 125,
        }
    }
}

fn setup(what: &'static str) -> impl FnOnce(io::Error) -> SuperviseError {
    move |source| SuperviseError::Setup { what, source }
}

/// How the target ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
}

impl ExitStatus {
    fn from_wait(status: libc::c_int) -> Self {
        if libc::WIFSIGNALED(status) {
            ExitStatus::Signaled(libc::WTERMSIG(status))
        } else {
            ExitStatus::Exited(libc::WEXITSTATUS(status))
        }
    }

    /// The shell convention: the exit code, or 128 + the signal number.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled(s) => 128 + s,
        }
    }
}

/// What to run: an absolute or relative program path (already looked up), argv and envp.
pub struct Target {
    pub program: PathBuf,
    pub argv: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
}

/// What the child is started with; the rest ([`Settings`]) is built while it sets itself up.
pub struct Start {
    /// Path calls the broker does not serve fail with this errno (part of the filter).
    pub deny_errno: i32,
    /// Learn mode: the filter sends exec calls to the broker too, and [`Settings::learner`]
    /// must be set.
    pub learn: bool,
    /// The resource limits and the run cgroup the child starts in.
    pub limits: LimitPlan,
    /// Keep the other CPUs busy during bursts of requests (see [`KeepAwake`]).
    pub keep_awake: bool,
}

/// How to serve it.
pub struct Settings {
    /// What protocol requests may reach, and the target's own calls unless `own_calls` is set.
    pub policy: Policy,
    /// `--explicit-only`: what the target's own (intercepted) calls may reach instead, the
    /// runtime allowance at most; everything else only through the protocol.
    pub own_calls: Option<Policy>,
    /// A runtime allowance still to grant in `policy` (and `own_calls`): done while the target
    /// execs, since nothing needs it before the target's first call.
    pub runtime: Option<RuntimeGrant>,
    pub quiet: bool,
    /// Log every decision here.
    pub audit: Option<AuditLog>,
    /// Learn mode: record what the run asks for (the policy should grant everything).
    pub learner: Option<Learner>,
    /// The Landlock ruleset the child restricts itself with (sent with the go-ahead).
    pub landlock: crate::landlock::Ruleset,
}

/// How a supervised run ended.
pub struct RunResult {
    pub status: ExitStatus,
    /// In learn mode, what the run asked for.
    pub learned: Option<Learner>,
    /// Set if the broker ended the run itself (a time limit, or told to stop).
    pub ending: Option<Ending>,
    /// From the start of the target until the whole tree was gone.
    pub wall: Duration,
    /// CPU time and peak memory of the tree (CPU time from the run cgroup when there is one).
    pub usage: Usage,
    /// How often the kernel's OOM killer struck in the run cgroup.
    pub oom_kills: u64,
    /// What was decided.
    pub requests: Requests,
    /// How each limit was enforced.
    pub limits: LimitPlan,
}

/// A started target and the broker's side of it.
pub struct Supervisor {
    child: libc::pid_t,
    listener: Arc<Listener>,
    signals: OwnedFd,
    /// The broker's end of the channel, while the target may use the explicit protocol.
    channel: Option<ProtocolChannel>,
    /// Decides intercepted calls.
    server: Server,
    /// Decides protocol requests (the same policy unless `--explicit-only`).
    protocol_server: Server,
    quiet: bool,
    audit: Option<AuditLog>,
    learner: Option<Learner>,
    tree: Tree,
    watch: Watch,
    limits: LimitPlan,
    /// The target's first call, if it arrived while the broker waited for the exec.
    first_call: Option<Notification>,
    ending: Option<Ending>,
    /// Forwarded signals received: the second one ends the tree.
    stop_signals: u32,
    usage: Usage,
    requests: Requests,
    keep_awake: Option<KeepAwake>,
}

fn cstr(b: &[u8]) -> Result<CString, SuperviseError> {
    CString::new(b).map_err(|_| SuperviseError::Setup {
        what: "argument or environment",
        source: io::Error::new(io::ErrorKind::InvalidInput, "contains a NUL byte"),
    })
}

fn block_signals() -> io::Result<OwnedFd> {
    // SAFETY: sigset manipulation on a local set; signalfd returns a fresh descriptor.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in FORWARDED.iter().chain(&[libc::SIGCHLD]) {
            libc::sigaddset(&mut set, *s);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
        let fd =
            cvt(libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) as libc::c_long)?;
        Ok(OwnedFd::from_raw_fd(fd as RawFd))
    }
}

impl Supervisor {
    /// Start the child-shim, build the rest of the run with `settings` while it sets itself up
    /// (its error, if any, ends the child and is returned), receive the listener, and let the
    /// child exec the target.
    pub fn spawn<E: From<SuperviseError>>(
        target: Target,
        start: Start,
        settings: impl FnOnce() -> Result<Settings, E>,
    ) -> Result<Supervisor, E> {
        let bpf = filter::program(start.deny_errno, start.learn);

        let program = cstr(target.program.as_os_str().as_bytes())?;
        let argv = target
            .argv
            .iter()
            .map(|a| cstr(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut envp = Vec::with_capacity(target.env.len() + 1);
        for (k, v) in &target.env {
            if k.as_bytes() == protocol::CHANNEL_ENV.as_bytes() {
                continue;
            }
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            envp.push(cstr(&kv)?);
        }
        envp.push(cstr(
            format!("{}={}", protocol::CHANNEL_ENV, protocol::CHANNEL_FD).as_bytes(),
        )?);

        crate::fifo::install_poke_handler().map_err(setup("signal handler"))?;
        // No core dumps, no /proc/<broker>/mem or fd access by same-user processes: the broker
        // holds descriptors of everything the policy grants. (exec makes the target dumpable.)
        // SAFETY: prctl with constant arguments.
        cvt(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } as libc::c_long)
            .map_err(setup("make the broker undumpable"))?;
        // SAFETY: prctl with constant arguments.
        cvt(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } as libc::c_long)
            .map_err(setup("become child subreaper"))?;
        let signals = block_signals().map_err(setup("signalfd"))?;

        let (channel, child_channel) =
            protocol::fdpass::seqpacket_pair().map_err(setup("socketpair"))?;
        let (err_read, err_write) = crate::sys::pipe().map_err(setup("pipe"))?;
        // Above the child's fixed slots, so the shim can dup2 without clobbering.
        let child_channel = lift(child_channel).map_err(setup("dup"))?;
        let err_write = lift(err_write).map_err(setup("dup"))?;

        // The run cgroup (and its death guard) exists before the child, which starts in it, so
        // nothing the target starts can be outside it; dropping the tree on a failure below
        // removes it again.
        let mut limits = start.limits;
        let tree = Tree::new(limits.cgroup.take());

        let plan = ExecPlan::new(
            program,
            argv,
            envp,
            bpf,
            child_channel.as_raw_fd(),
            err_write.as_raw_fd(),
        );
        // Start the child in the run cgroup if the kernel can; otherwise it is moved there
        // before the go-ahead.
        let child = plan
            .spawn(tree.cgroup().map(RunCgroup::dir_fd))
            .map_err(setup("start the child"))?;
        let (pid, placed) = (child.pid(), child.placed());
        drop(child_channel);
        drop(err_write);

        // From here, an early return drops `child`, which kills and reaps it.
        // While the child sets itself up, the broker would only wait: make the helpers and
        // the rest of the run now.
        let keep_awake = start.keep_awake.then(KeepAwake::new);
        let mut settings = settings()?;
        assert_eq!(
            settings.learner.is_some(),
            start.learn,
            "the filter and the settings disagree on learn mode"
        );
        let mut buf = [0u8; 64];
        let listener = match protocol::fdpass::recv_with_fd(channel.as_fd(), &mut buf) {
            Ok((n, Some(fd))) if &buf[..n] == protocol::HANDSHAKE_LISTENER => fd,
            Ok(_) => return Err(setup("handshake")(io::Error::other("unexpected message")).into()),
            Err(e) => {
                // The child failed before sending: its report says why.
                return Err(match read_failure(&err_read) {
                    Some(f) if f.stage == ShimStage::Seccomp => {
                        SuperviseError::Unsupported(io::Error::from_raw_os_error(f.errno))
                    }
                    Some(f) => SuperviseError::Child(f),
                    None => setup("handshake")(io::Error::other(e.to_string())),
                }
                .into());
            }
        };
        let listener = Listener::new(listener).map_err(SuperviseError::Unsupported)?;
        // Before Linux 6.6 there is no synchronous wake-up: the same service, slower.
        let _ = listener.set_sync_wakeup();
        // The child waits for the go-ahead: it gets its limits before it runs anything.
        limits
            .apply(pid, tree.cgroup().filter(|_| !placed))
            .map_err(SuperviseError::from)?;
        let watch = Watch::new(
            limits.limits.wall_time,
            limits.limits.cpu_time.filter(|_| tree.cgroup().is_some()),
        );
        // The go-ahead carries the Landlock ruleset, which the child restricts itself with.
        let ruleset = settings.landlock.fd.take();
        protocol::fdpass::send(
            channel.as_fd(),
            protocol::HANDSHAKE_GO,
            ruleset.as_ref().map(|r| r.as_fd()),
            0,
        )
        .map_err(setup("handshake"))?;
        drop(ruleset);
        if let Some(k) = &keep_awake {
            k.wake();
        }
        // While the target execs, the policy gets its runtime allowance: no call is served
        // before it is complete, and the first one waits in the listener meanwhile.
        if let Some(grant) = settings.runtime.take() {
            grant.grant(&mut settings.policy, settings.own_calls.as_mut());
        }
        let (failure, first_call) = await_exec(&err_read, &listener);
        if let Some(f) = failure {
            let e = io::Error::from_raw_os_error(f.errno);
            return Err((if f.stage == ShimStage::Exec {
                SuperviseError::Exec {
                    program: target.program.display().to_string(),
                    source: e,
                }
            } else {
                SuperviseError::Child(f)
            })
            .into());
        }
        // The child has exec'd: it no longer runs on its stack nor reads the plan.
        child.release();
        let learn = settings.learner.is_some();
        let policy = Arc::new(settings.policy);
        let own_calls = settings.own_calls.map_or_else(|| policy.clone(), Arc::new);
        Ok(Supervisor {
            child: pid,
            listener: Arc::new(listener),
            signals,
            channel: Some(ProtocolChannel::new(channel, pid as u32)),
            server: Server::new(own_calls, start.deny_errno).learning(learn),
            protocol_server: Server::new(policy, start.deny_errno).learning(learn),
            quiet: settings.quiet,
            audit: settings.audit,
            learner: settings.learner,
            tree,
            watch,
            limits,
            first_call,
            keep_awake,
            ending: None,
            stop_signals: 0,
            usage: Usage::default(),
            requests: Requests::default(),
        })
    }

    /// The target's process id.
    pub fn pid(&self) -> libc::pid_t {
        self.child
    }

    /// How each limit is enforced.
    pub fn limits(&self) -> &LimitPlan {
        &self.limits
    }

    /// Serve the target until no process holds the filter; return the target's status.
    pub fn run(mut self) -> Result<RunResult, SuperviseError> {
        let mut waiters = FifoWaiters::new(self.listener.clone());
        let mut buf = self.listener.recv_buffer();
        let mut status: Option<ExitStatus> = None;
        if let Some(n) = self.first_call.take() {
            self.handle(&n, &mut waiters);
        }
        loop {
            let ending = status.is_some() || self.ending.is_some();
            let busy = !waiters.is_empty() || ending;
            let mut timeout = busy.then_some(Duration::from_millis(100));
            if !ending {
                if let Some(t) = self.watch.timeout(Instant::now()) {
                    timeout = Some(timeout.map_or(t, |b| b.min(t)));
                }
            }
            let mut fds = [
                libc::pollfd {
                    fd: self.listener.as_fd().as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.signals.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    // poll skips a negative descriptor: no channel, nothing to watch.
                    fd: self.channel.as_ref().map_or(-1, |c| c.as_raw_fd()),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // Round up, so that a deadline 0.3 ms away does not spin.
            let ms = timeout.map_or(-1, |t| {
                t.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
            });
            // SAFETY: fds is a valid array of three pollfd.
            let r = unsafe { libc::poll(fds.as_mut_ptr(), 3, ms) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(setup("poll")(e));
            }
            if fds[1].revents & libc::POLLIN != 0 {
                self.drain_signals(&mut status);
            }
            if fds[2].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                self.serve_channel(&mut waiters);
            }
            if fds[0].revents & libc::POLLIN != 0 {
                match self.listener.recv(&mut buf) {
                    Ok(n) => self.handle(&n, &mut waiters),
                    Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EINTR)) => {}
                    Err(e) => return Err(setup("receive notification")(e)),
                }
            } else if fds[0].revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                break;
            }
            if self.ending.is_none() {
                if let Some(e) = self.watch.check(Instant::now(), self.tree.cgroup()) {
                    self.end(e);
                }
            }
            if status.is_some() || self.ending.is_some() {
                // What the target left behind (re-parented to us as subreaper, even after
                // setsid) goes with it.
                self.tree.kill();
                self.reap(&mut status);
            }
            if !waiters.is_empty() {
                waiters.tick();
            }
        }
        waiters.shutdown();
        self.keep_awake = None;
        if status.is_none() {
            self.wait_child(self.child, 0, &mut status);
        }
        let wall = self.watch.started.elapsed();
        // The listener hung up: every process of the tree held the filter and has been reaped,
        // so there is nothing left to kill (the loop killed the rest when the target ended, and
        // `Tree::finish` kills whatever would still be there before removing the cgroup).
        self.tree.stand_down_guard();
        self.reap(&mut status);
        let cgroup = self.tree.cgroup();
        if let Some(cpu) = cgroup.and_then(|cg| cg.cpu_usage()) {
            self.usage.user = cpu.user;
            self.usage.system = cpu.system;
        }
        let oom_kills = cgroup.map_or(0, |cg| cg.oom_kills());
        self.tree.finish();
        // Dropping the log writes out everything queued.
        drop(self.audit.take());
        let status =
            status.ok_or_else(|| setup("wait")(io::Error::from_raw_os_error(libc::ECHILD)))?;
        Ok(RunResult {
            status,
            learned: self.learner.take(),
            ending: self.ending,
            wall,
            usage: self.usage,
            oom_kills,
            requests: std::mem::take(&mut self.requests),
            limits: self.limits,
        })
    }

    /// End the run for `why`: every process of the tree is killed.
    fn end(&mut self, why: Ending) {
        self.ending = Some(why);
        self.tree.kill();
    }

    /// Reap every exited child.
    fn reap(&mut self, status: &mut Option<ExitStatus>) {
        while self.wait_child(-1, libc::WNOHANG, status) > 0 {}
    }

    /// `wait4(pid, flags)`: add up what the reaped child used (unless it is the death guard)
    /// and remember the target's status. Returns what wait4 returned.
    fn wait_child(
        &mut self,
        pid: libc::pid_t,
        flags: libc::c_int,
        status: &mut Option<ExitStatus>,
    ) -> libc::pid_t {
        let mut st = 0;
        // SAFETY: zeroed rusage for wait4 to fill.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait for a child of ours.
        let reaped = unsafe { libc::wait4(pid, &mut st, flags, &mut ru) };
        if reaped > 0 {
            if Some(reaped) != self.tree.guard_pid() {
                self.usage.add(&ru);
            }
            if reaped == self.child {
                *status = Some(ExitStatus::from_wait(st));
            }
        }
        reaped
    }

    fn handle(&mut self, n: &Notification, waiters: &mut FifoWaiters) {
        if let Some(k) = &self.keep_awake {
            k.request();
        }
        let listener = Arc::clone(&self.listener);
        let l = &*listener;
        // A bug in a handler must not take the broker (and with it the target's only way to
        // open anything) down: that request fails with EIO and serving goes on.
        let server = &mut self.server;
        let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server.serve(l, n)))
            .unwrap_or(Reply::Errno(libc::EIO));
        self.note(false);
        let answered = match reply {
            Reply::Fd { fd, cloexec } => match l.inject_and_send(n.id, fd.as_fd(), cloexec) {
                Ok(_) => Ok(()),
                // Still pending (e.g. EMFILE in the target): fail the call with that errno.
                Err(e) => l.respond(n.id, 0, -crate::sys::errno_of(&e), 0),
            },
            Reply::Value(v) => l.respond(n.id, v, 0, 0),
            Reply::Errno(e) => l.respond(n.id, 0, -e, 0),
            Reply::Continue => l.respond(n.id, 0, 0, libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32),
            Reply::Deferred => match self.server.fifo.take().map(|f| waiters.start(f)) {
                Some(Ok(())) => Ok(()),
                Some(Err(e)) => l.respond(n.id, 0, -e, 0),
                None => l.respond(n.id, 0, -libc::EIO, 0),
            },
            Reply::Gone => Ok(()),
        };
        // ENOENT: the caller went away meanwhile; nothing to undo (ADDFD_FLAG_SEND is atomic).
        let _ = answered;
    }

    /// Serve one message on the protocol channel, or let the channel go.
    fn serve_channel(&mut self, waiters: &mut FifoWaiters) {
        let Some(channel) = &mut self.channel else {
            return;
        };
        let server = &mut self.protocol_server;
        // A message that is not a request (a close, garbage) makes no decision of its own.
        server.clear_decision();
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| channel.serve_one(server)))
                .unwrap_or(Outcome::Closed("a handler failed"));
        self.note(true);
        match outcome {
            Outcome::Served => {}
            Outcome::Deferred(open) => {
                if let (Err(e), Some(c)) = (waiters.start(open), &self.channel) {
                    c.send_error(e, "too many FIFO opens are waiting");
                }
            }
            Outcome::Closed(why) => {
                if why != "the target closed it" && !self.quiet {
                    eprintln!("broker: dropped the protocol channel: {why}");
                }
                self.channel = None;
            }
        }
    }

    /// Print, log and learn from the last decision of the notification or protocol server.
    fn note(&mut self, protocol: bool) {
        let server = if protocol {
            &self.protocol_server
        } else {
            &self.server
        };
        if let Some(d) = server.decision() {
            self.requests.record(d);
            if !d.allowed && !self.quiet {
                // One write per line, so that lines from the target and the broker sharing a
                // stderr pipe never interleave mid-line.
                let line = format!("broker: {d}\n");
                let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
            }
            if let Some(audit) = &mut self.audit {
                audit.record(d);
            }
            if let Some(learner) = &mut self.learner {
                learner.record(d);
            }
        }
    }

    fn drain_signals(&mut self, status: &mut Option<ExitStatus>) {
        loop {
            // SAFETY: zeroed siginfo buffer of the exact size signalfd writes.
            let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
            let n = unsafe {
                libc::read(
                    self.signals.as_raw_fd(),
                    (&mut info as *mut libc::signalfd_siginfo).cast(),
                    std::mem::size_of::<libc::signalfd_siginfo>(),
                )
            };
            if n != std::mem::size_of::<libc::signalfd_siginfo>() as isize {
                break;
            }
            let sig = info.ssi_signo as libc::c_int;
            if sig == libc::SIGCHLD {
                self.reap(status);
            } else if status.is_none() {
                // The first stop request is the target's to handle; a second ends the tree.
                self.stop_signals += 1;
                if self.stop_signals >= 2 && self.ending.is_none() {
                    self.end(Ending::Stopped);
                } else {
                    // SAFETY: signal our own child.
                    unsafe { libc::kill(self.child, sig) };
                }
            }
        }
        self.reap(status);
    }
}

/// Wait for the child's exec: the error pipe closes when it succeeds, or carries the failure.
/// Meanwhile the child's own `execve` may arrive as a notification (learn mode notifies exec):
/// it is the exec the broker prepared, so the kernel may run it. Any other notification is the
/// target's first call after its exec: it is returned, unanswered, for the main loop.
fn await_exec(pipe: &OwnedFd, listener: &Listener) -> (Option<ShimFailure>, Option<Notification>) {
    let mut buf = listener.recv_buffer();
    loop {
        let mut fds = [
            libc::pollfd {
                fd: pipe.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: listener.as_fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: fds is a valid array of two pollfd.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
            continue; // EINTR
        }
        // The pipe first: the exec closes it before the new program can make any call, so a
        // notification that arrives with it is the target's own and stays for the main loop.
        if fds[0].revents & (libc::POLLIN | libc::POLLHUP) != 0 {
            return (read_failure(pipe), None);
        }
        if fds[1].revents & libc::POLLIN != 0 {
            if let Ok(n) = listener.recv(&mut buf) {
                if n.nr as i64 == libc::SYS_execve || n.nr as i64 == libc::SYS_execveat {
                    let flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32;
                    let _ = listener.respond(n.id, 0, 0, flags);
                } else {
                    // The exec has happened (the pipe is at its end; this read returns at once).
                    return (read_failure(pipe), Some(n));
                }
            }
        }
    }
}

fn read_failure(pipe: &OwnedFd) -> Option<ShimFailure> {
    let mut b = [0u8; ShimFailure::SIZE];
    let mut got = 0;
    while got < b.len() {
        // SAFETY: read into the unfilled tail of b.
        let n = unsafe {
            libc::read(
                pipe.as_raw_fd(),
                b[got..].as_mut_ptr().cast(),
                b.len() - got,
            )
        };
        if n == 0 {
            return None;
        }
        if n < 0 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return None;
        }
        got += n as usize;
    }
    ShimFailure::decode(&b)
}
