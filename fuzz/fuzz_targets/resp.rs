//! Any bytes as a Redis server's replies: `resp::decode` at once and in
//! pieces, with small limits. The checks live in `fuzz/checks.rs` (`check_resp`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
#[allow(dead_code)]
mod checks;

fuzz_target!(|data: &[u8]| checks::check_resp(data));
