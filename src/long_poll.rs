//! Long-polling: the answer to `GET /poll`, a batch of `miochat.v1`
//! objects as one JSON document. Pure formatting, no IO
//! (notes/07-sse-or-polling.md#long-polling).
//!
//! ```text
//! {"epoch":"…","messages":[{"type":"message","id":42,…},…],"last_id":43}
//! ```
//!
//! `last_id` is where the next poll starts (`?since=43`): the id of the last
//! object in this batch, or where the log stood when the batch is empty. A
//! batch is capped (`BATCH_BYTES`), so a client far behind catches up in
//! several polls and no answer holds more than that much memory.

/// A long poll waiting for the log to grow (the loop keeps one per held request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollWait {
    /// The last id the client saw: it is answered with what comes after.
    pub since: u64,
    /// Its sender id, if it named its key: its own messages come back as acks.
    pub client: Option<usize>,
}

/// A batch stops growing once it holds this many bytes of objects (it
/// always holds at least one, whatever its size).
pub const BATCH_BYTES: usize = 64 * 1024;

/// The batch document. `objects` are JSON objects, already encoded.
pub fn batch<'a>(epoch: &str, objects: impl IntoIterator<Item = &'a str>, last_id: u64) -> String {
    let epoch = crate::v1::json_string(epoch);
    let mut out = format!(r#"{{"epoch":{epoch},"messages":["#);
    for (i, object) in objects.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(object);
    }
    out.push_str(&format!(r#"],"last_id":{last_id}}}"#));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_lists_its_objects_between_the_epoch_and_the_last_id() {
        assert_eq!(
            batch("e1", [r#"{"type":"ack","id":3}"#, "{}"], 4),
            r#"{"epoch":"e1","messages":[{"type":"ack","id":3},{}],"last_id":4}"#
        );
        assert_eq!(
            batch("e1", [], 9),
            r#"{"epoch":"e1","messages":[],"last_id":9}"#
        );
    }
}
