//! Client keys: how an SSE or long-poll client says "this POST is mine", so
//! its own message comes back to it as an `ack`, not as a message
//! (notes/07-sse-or-polling.md#whose-message).
//!
//! A WebSocket sends on the connection it reads from, so the server knows
//! whose message it is. An SSE stream and a long-poll client read on one
//! request and send on another (`POST /send`), so the server hands each a
//! key in its welcome, and the POST names it (`?client=KEY`).
//!
//! A key is `ID.MAC`: the id the log records as the sender (a number from
//! the same never-reused sequence as connection tokens) and a keyed hash of
//! it. The hash key is random per process (`RandomState`, SipHash with keys
//! from the OS), so a key cannot be guessed from another, and checking one
//! needs no table: nothing is stored per client.

use std::hash::{BuildHasher, RandomState};

/// The process's secret, chosen at start-up.
#[derive(Debug, Clone, Default)]
pub struct ClientKeys {
    secret: RandomState,
}

impl ClientKeys {
    /// The key for sender `id`.
    pub fn issue(&self, id: usize) -> String {
        format!("{id}.{:016x}", self.secret.hash_one(id))
    }

    /// The sender id a key stands for, if this process issued it.
    pub fn check(&self, key: &str) -> Option<usize> {
        let (id, _) = key.split_once('.')?;
        let id: usize = id.parse().ok()?;
        (self.issue(id) == key).then_some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_names_its_id_and_only_this_process_accepts_it() {
        let keys = ClientKeys::default();
        let key = keys.issue(42);
        assert!(key.starts_with("42."));
        assert_eq!(keys.check(&key), Some(42));
        let forged = key.replacen("42.", "43.", 1);
        assert_eq!(keys.check(&forged), None);
        assert_eq!(keys.check("42"), None);
        assert_eq!(ClientKeys::default().check(&key), None);
    }
}
