//! Any bytes as a client's stream, split into any reads: `MessageReader::decode`
//! with fragmentation, UTF-8 across fragments, size limits and close bodies.
//! The input layout and the checks live in `fuzz/checks.rs` (`check_decoder`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
#[allow(dead_code)]
mod checks;

fuzz_target!(|data: &[u8]| checks::check_decoder(data));
