//! The broker's decoder on arbitrary bytes: it must never panic, never accept a message that
//! breaks a limit, and whatever it accepts must survive a round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::wire::{self, MAX_MESSAGE};

fuzz_target!(|bytes: &[u8]| {
    if let Ok(req) = wire::decode_request(bytes) {
        assert!(bytes.len() <= MAX_MESSAGE);
        assert!(req.check().is_ok());
        let mut buf = [0u8; MAX_MESSAGE];
        let n = wire::encode_request(&req, &mut buf).expect("a decoded request re-encodes");
        assert_eq!(wire::decode_request(&buf[..n]).unwrap(), req);
    }
    if let Ok(resp) = wire::decode_response(bytes) {
        assert!(resp.check().is_ok());
        let mut buf = [0u8; MAX_MESSAGE];
        let n = wire::encode_response(&resp, &mut buf).expect("a decoded response re-encodes");
        assert_eq!(wire::decode_response(&buf[..n]).unwrap(), resp);
    }
});
