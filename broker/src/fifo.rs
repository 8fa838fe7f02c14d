//! FIFO opens that wait for their peer, each on its own thread.
//!
//! A blocking FIFO open can take forever, so it must not run on the notification loop. A waiter
//! thread reopens the checked FIFO and answers itself: it injects the descriptor into the
//! notified call (the listener's ioctls are thread-safe) or sends it on the protocol channel. The supervisor pokes waiters with `SIGUSR1` (installed without `SA_RESTART`)
//! on every tick; a poked waiter whose caller is gone, or whose broker is shutting down, gives up.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::notify::Listener;
use protocol::wire::Response;

use crate::channel::send_response;
use crate::serve::{reopen, AnswerTo, FifoOpen};

/// At most this many FIFO opens wait at once; further ones fail with `EAGAIN`.
pub const MAX_WAITERS: usize = 64;

/// The signal used to interrupt a waiter's blocking open.
pub const POKE: libc::c_int = libc::SIGUSR1;

extern "C" fn on_poke(_: libc::c_int) {}

/// Install the no-op `SIGUSR1` handler, deliberately without `SA_RESTART`.
pub fn install_poke_handler() -> std::io::Result<()> {
    // SAFETY: zeroed sigaction with a valid handler; sa_flags = 0 (no SA_RESTART).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_poke as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(POKE, &sa, std::ptr::null_mut()) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

struct Waiter {
    thread: JoinHandle<()>,
    done: Arc<AtomicBool>,
}

/// The set of waiting FIFO opens.
pub struct FifoWaiters {
    listener: Arc<Listener>,
    shutdown: Arc<AtomicBool>,
    waiters: Vec<Waiter>,
}

impl FifoWaiters {
    pub fn new(listener: Arc<Listener>) -> Self {
        Self {
            listener,
            shutdown: Arc::new(AtomicBool::new(false)),
            waiters: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    /// Start waiting for `open`; fails with `EAGAIN` when too many already wait.
    pub fn start(&mut self, open: FifoOpen) -> Result<(), i32> {
        self.reap();
        if self.waiters.len() >= MAX_WAITERS {
            return Err(libc::EAGAIN);
        }
        let listener = self.listener.clone();
        let shutdown = self.shutdown.clone();
        let done = Arc::new(AtomicBool::new(false));
        let finished = done.clone();
        let thread = std::thread::Builder::new()
            .name("fifo-waiter".into())
            .spawn(move || {
                wait_and_inject(&listener, &shutdown, open);
                finished.store(true, Ordering::Release);
            })
            .map_err(|_| libc::EAGAIN)?;
        self.waiters.push(Waiter { thread, done });
        Ok(())
    }

    /// Join finished waiters and interrupt the others so they re-check their caller.
    pub fn tick(&mut self) {
        self.reap();
        for w in &self.waiters {
            // SAFETY: the thread is alive (not joined); a stale poke is harmless.
            unsafe {
                libc::pthread_kill(
                    std::os::unix::thread::JoinHandleExt::as_pthread_t(&w.thread) as _,
                    POKE,
                )
            };
        }
    }

    fn reap(&mut self) {
        let (done, live): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|w| w.done.load(Ordering::Acquire));
        self.waiters = live;
        for w in done {
            let _ = w.thread.join();
        }
    }

    /// Stop every waiter and join them all.
    pub fn shutdown(&mut self) {
        self.shutdown.store(true, Ordering::Release);
        while !self.waiters.is_empty() {
            self.tick();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

fn wait_and_inject(listener: &Listener, shutdown: &AtomicBool, open: FifoOpen) {
    let gone = || {
        shutdown.load(Ordering::Acquire)
            || match &open.to {
                AnswerTo::Notification(id) => !listener.id_valid(*id),
                AnswerTo::Channel(sock) => peer_gone(sock.as_fd()),
            }
    };
    let result = loop {
        if gone() {
            return;
        }
        match reopen(open.fifo.as_fd(), open.flags) {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            r => break r,
        }
    };
    match (&open.to, result) {
        (AnswerTo::Notification(id), Ok(fd)) => {
            if let Err(e) = listener.inject_and_send(*id, fd.as_fd(), open.cloexec) {
                let _ = listener.respond(*id, 0, -crate::sys::errno_of(&e), 0);
            }
        }
        (AnswerTo::Notification(id), Err(e)) => {
            let _ = listener.respond(*id, 0, -crate::sys::errno_of(&e), 0);
        }
        (AnswerTo::Channel(sock), Ok(fd)) => {
            let _ = send_response(sock.as_fd(), &Response::Opened, Some(fd.as_fd()));
        }
        (AnswerTo::Channel(sock), Err(e)) => {
            let resp = Response::error(crate::sys::errno_of(&e), e.to_string());
            let _ = send_response(sock.as_fd(), &resp, None);
        }
    }
}

/// Has the target closed its end of the channel?
fn peer_gone(sock: BorrowedFd<'_>) -> bool {
    let mut p = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait.
    let ready = unsafe { libc::poll(&mut p, 1, 0) };
    ready > 0 && p.revents & (libc::POLLHUP | libc::POLLERR) != 0
}
