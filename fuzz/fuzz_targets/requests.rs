//! Any bytes as one connection's HTTP/1.1 requests, split into any reads:
//! `Session` framing bodies by Content-Length, keeping the connection alive
//! and answering pipelined requests in order. The checks live in
//! `fuzz/checks.rs` (`check_requests`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
#[allow(dead_code)]
mod checks;

fuzz_target!(|data: &[u8]| checks::check_requests(data));
