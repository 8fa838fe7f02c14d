//! A target that attacks the broker's protocol decoder from inside the sandbox, then checks
//! that the broker still serves it. `hostile-client SCENARIO FILE`: after the scenario it
//! prints `ok SCENARIO <FILE's content>` if FILE can still be read, through the protocol or
//! (when the broker dropped the channel) through an ordinary brokered open.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

use protocol::fdpass;
use protocol::wire::{self, Request, Response, MAX_MESSAGE, VERSION};

fn channel() -> BorrowedFd<'static> {
    // SAFETY: the broker gives every target the channel at CHANNEL_FD; it stays open.
    unsafe { BorrowedFd::borrow_raw(protocol::CHANNEL_FD) }
}

fn send_raw(bytes: &[u8]) -> std::io::Result<()> {
    fdpass::send(channel(), bytes, None, 0)
}

fn send(req: &Request) {
    let mut buf = [0u8; MAX_MESSAGE];
    let n = wire::encode_request(req, &mut buf).unwrap();
    send_raw(&buf[..n]).expect("send");
}

/// The next response, which must carry no descriptor unless it is `Opened`.
fn reply() -> (Response, Option<OwnedFd>) {
    let mut buf = [0u8; MAX_MESSAGE];
    let (n, fd) = fdpass::recv_with_fd(channel(), &mut buf).expect("reply");
    (
        wire::decode_response(&buf[..n]).expect("decodable reply"),
        fd,
    )
}

fn expect_error(what: &str, errno: i32) {
    match reply() {
        (Response::Error { errno: e, .. }, None) if e == errno => {}
        other => panic!("{what}: expected errno {errno}, got {other:?}"),
    }
}

/// Send `bytes` as one message with `fds` attached.
fn send_with_fds(bytes: &[u8], fds: &[BorrowedFd<'_>]) -> std::io::Result<()> {
    let raw: Vec<i32> = fds.iter().map(std::os::fd::AsRawFd::as_raw_fd).collect();
    let space = unsafe { libc::CMSG_SPACE((raw.len() * 4) as u32) } as usize;
    let mut cmsg = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    // SAFETY: a msghdr pointing at live buffers of the stated sizes.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cmsg.as_mut_ptr().cast();
        msg.msg_controllen = space;
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN((raw.len() * 4) as u32) as usize;
        std::ptr::copy_nonoverlapping(raw.as_ptr(), libc::CMSG_DATA(c).cast(), raw.len());
        if libc::sendmsg(protocol::CHANNEL_FD, &msg, libc::MSG_NOSIGNAL) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut p = [0; 2];
    // SAFETY: p has room for two descriptors.
    assert_eq!(unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh descriptors.
    unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) }
}

fn hello() {
    send(&Request::Hello { version: VERSION });
    assert_eq!(reply().0, Response::Hello { version: VERSION });
}

/// Read `file` through the protocol.
fn read_via_protocol(file: &str) -> String {
    send(&Request::Open {
        path: file.as_bytes().to_vec(),
        flags: libc::O_RDONLY,
        mode: 0,
    });
    let (resp, fd) = reply();
    assert_eq!(resp, Response::Opened);
    let mut s = String::new();
    std::fs::File::from(fd.expect("descriptor"))
        .read_to_string(&mut s)
        .unwrap();
    s
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (scenario, file) = (args[1].as_str(), args[2].as_str());
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    match scenario {
        "garbage" => {
            hello();
            for i in 0..2000 {
                let len = 1 + (next() % 600) as usize;
                let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                // Variants 1 and 2 with garbage after them reach deeper into the decoder.
                bytes[0] = (i % 4) as u8;
                send_raw(&bytes).unwrap();
                match reply() {
                    (Response::Error { .. }, None) | (Response::Hello { .. }, None) => {}
                    (Response::Opened, Some(_)) => {}
                    other => panic!("garbage {i}: {other:?}"),
                }
            }
        }
        "huge-length" => {
            hello();
            for variant in [1u8, 2] {
                let mut msg = vec![variant, 0xff];
                msg.extend_from_slice(&u64::MAX.to_le_bytes());
                send_raw(&msg).unwrap();
                expect_error("huge length", libc::EINVAL);
            }
        }
        "truncated" => {
            hello();
            let mut buf = [0u8; MAX_MESSAGE];
            let req = Request::Open {
                path: file.as_bytes().to_vec(),
                flags: 0,
                mode: 0,
            };
            let n = wire::encode_request(&req, &mut buf).unwrap();
            for cut in 1..n {
                send_raw(&buf[..cut]).unwrap();
                expect_error("truncated", libc::EINVAL);
            }
        }
        "oversize" => {
            hello();
            send_raw(&vec![1u8; 65536]).unwrap();
            expect_error("oversize", libc::EMSGSIZE);
            let long = Request::Open {
                path: vec![b'a'; wire::MAX_PATH + 1],
                flags: 0,
                mode: 0,
            };
            // Hand-encoded past the client's own check.
            let mut bytes = vec![1u8, 0xfb];
            bytes.extend_from_slice(&((wire::MAX_PATH + 1) as u16).to_le_bytes());
            if let Request::Open { path, .. } = &long {
                bytes.extend_from_slice(path);
            }
            bytes.extend_from_slice(&[0, 0]);
            send_raw(&bytes).unwrap();
            expect_error("path too long", libc::EINVAL);
        }
        "with-fds" => {
            hello();
            let (r, w) = pipe();
            let mut msg = [0u8; MAX_MESSAGE];
            let n = wire::encode_request(&Request::Hello { version: VERSION }, &mut msg).unwrap();
            for i in 0..12000 {
                let fds: Vec<BorrowedFd<'_>> = match i % 3 {
                    0 => vec![r.as_fd()],
                    1 => vec![r.as_fd(), w.as_fd()],
                    _ => vec![w.as_fd(); 200],
                };
                send_with_fds(&msg[..n], &fds).unwrap();
                expect_error("descriptor attached", libc::EINVAL);
            }
            // Every descriptor we sent was closed by the broker: the pipe's write end is held
            // only by us, so closing it makes the read end see EOF.
            drop(w);
            let mut b = [0u8; 1];
            // SAFETY: read into a local buffer.
            let n = unsafe {
                libc::read(
                    std::os::fd::AsRawFd::as_raw_fd(&r),
                    b.as_mut_ptr().cast(),
                    1,
                )
            };
            assert_eq!(n, 0, "the broker kept a copy of the write end");
        }
        "before-hello" => {
            send(&Request::Stat {
                path: file.as_bytes().to_vec(),
            });
            expect_error("before hello", libc::EPROTO);
            hello();
        }
        "bad-version" => {
            send(&Request::Hello { version: 999 });
            match reply() {
                (Response::Error { errno, reason }, None)
                    if errno == libc::EPROTONOSUPPORT && reason.contains("999") => {}
                other => panic!("bad version: {other:?}"),
            }
            hello();
        }
        "no-read" => {
            // Requests without reading a single reply: the broker must not block on us.
            let mut buf = [0u8; MAX_MESSAGE];
            let n = wire::encode_request(&Request::Hello { version: VERSION }, &mut buf).unwrap();
            let mut sent = 0;
            loop {
                match fdpass::send(channel(), &buf[..n], None, libc::MSG_DONTWAIT) {
                    Ok(()) => sent += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(std::time::Duration::from_millis(1))
                    }
                    Err(_) => break, // the broker dropped the channel
                }
                assert!(sent < 1_000_000, "the broker never dropped the channel");
            }
            let text = std::fs::read_to_string(file).expect("brokered open still works");
            print!("ok {scenario} {text}");
            return;
        }
        "threads" => {
            let client = protocol::client::Client::from_env().expect("client");
            let total: usize = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            (0..200)
                                .filter(|_| client.open(file, libc::O_RDONLY).is_ok())
                                .count()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).sum()
            });
            let text = std::fs::read_to_string(file).expect("brokered open");
            print!("ok {scenario} {total} {text}");
            return;
        }
        other => panic!("unknown scenario {other}"),
    }
    print!("ok {scenario} {}", read_via_protocol(file));
}
