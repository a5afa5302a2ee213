//! Server-Sent Events (WHATWG HTML §9.2): the bytes of an event stream.
//! Pure formatting, no IO (notes/07-sse-or-polling.md).
//!
//! An event stream is one HTTP response that never ends: a head with
//! `Content-Type: text/event-stream`, then blocks of `field: value` lines,
//! each block ended by a blank line. `EventSource` in the browser fires one
//! `message` event per block and remembers the last `id:` it saw; when the
//! connection drops it reconnects on its own, after `retry:` milliseconds,
//! and sends that id back as `Last-Event-ID`.
//!
//! ```text
//! retry: 1000                                   <- how long to wait before reconnecting
//!
//! data: {"type":"welcome",...}                  <- no id: a welcome is not a position
//!
//! id: 42
//! data: {"type":"message","id":42,...}          <- the same JSON as miochat.v1
//!
//! : keep-alive                                  <- a comment: ignored, keeps proxies open
//! ```

/// How long `EventSource` waits before reconnecting (§9.2.6 `retry`).
pub const RETRY_MS: u32 = 1000;

/// The response head that opens a stream. No `Content-Length`: the body
/// ends only when the connection does (RFC 9112 §6.3 item 8).
pub fn stream_head() -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nX-Accel-Buffering: no\r\n\r\nretry: {RETRY_MS}\n\n"
    )
    .into_bytes()
}

/// One event. `data` must hold no line break: the JSON we send never does
/// (`v1::json_string` escapes them), and a line break would end the field.
pub fn event(id: Option<u64>, data: &str) -> Vec<u8> {
    debug_assert!(!data.contains(['\n', '\r']));
    let id_line = id.map(|id| format!("id: {id}\n")).unwrap_or_default();
    format!("{id_line}data: {data}\n\n").into_bytes()
}

/// A comment line: `EventSource` ignores it, but it is traffic, so proxies
/// do not time the stream out, and a peer that stopped reading is noticed
/// (see `Session::on_time`).
pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// `Last-Event-ID` as a resume point: §9.2.6 says the browser sends back
/// the last `id:` verbatim, so anything but a whole number is ignored.
pub fn parse_id(value: &str) -> Option<u64> {
    let value = value.trim();
    (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
        .then(|| value.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_its_fields_then_a_blank_line() {
        assert_eq!(event(Some(7), "{}"), b"id: 7\ndata: {}\n\n");
        assert_eq!(event(None, "{\"a\":1}"), b"data: {\"a\":1}\n\n");
    }

    #[test]
    fn the_stream_head_asks_for_no_caching_and_sets_retry() {
        let head = String::from_utf8(stream_head()).unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"));
        assert!(head.contains("Cache-Control: no-store\r\n"));
        assert!(head.ends_with("\r\n\r\nretry: 1000\n\n"));
        assert!(!head.contains("Content-Length"));
    }

    #[test]
    fn last_event_id_is_a_whole_number_or_nothing() {
        assert_eq!(parse_id(" 42 "), Some(42));
        assert_eq!(parse_id("4x"), None);
        assert_eq!(parse_id(""), None);
        assert_eq!(parse_id("99999999999999999999999"), None);
    }
}
