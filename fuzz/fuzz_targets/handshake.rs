//! Any bytes as a request head: `find_head_end`, `Request::parse`,
//! `check_upgrade` and `http::answer` with a token and an allowed origin.
//! The checks live in `fuzz/checks.rs`, shared with `tests/properties.rs`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
#[allow(dead_code)]
mod checks;

fuzz_target!(|data: &[u8]| checks::check_handshake(data));
