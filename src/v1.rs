//! The `miochat.v1` subprotocol: the JSON objects a client that asked for it
//! hears (notes/09-shared-log.md#miochat-v1). Pure formatting, no IO.
//!
//! A client offers `Sec-WebSocket-Protocol: miochat.v1`; the server echoes it
//! in the `101` (RFC 6455 §4.2.2 item 5.4) and from then on every frame it
//! sends is one of these objects, as a text frame:
//!
//! ```text
//! {"type":"welcome","message":"connected to chat","epoch":E,"last_id":N,"name":"guest-12"}
//! {"type":"message","id":N,"from":"guest-7","text":"…"}     (or "binary":"<base64>")
//! {"type":"ack","id":N}                                     (its own message, stored as N)
//! {"type":"reset","reason":"history gone","last_id":N}      (a resume that cannot be served)
//! ```
//!
//! Clients that offer no subprotocol get the plain welcome and the raw frames.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::frame::Opcode;

/// The subprotocol's name, as offered and echoed.
pub const SUBPROTOCOL: &str = "miochat.v1";

/// A name as `?name=` gives it: 1 to 32 characters, none of them a control
/// character or an invisible one that changes how text around it shows
/// (bidirectional overrides, zero-width characters), and not a guest's
/// name (`guest-12`), which would let one client pass for another.
/// Returns the reason for a `400` otherwise.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    let count = name.chars().count();
    if count == 0 || count > 32 {
        return Err("name must be 1 to 32 characters");
    }
    if name.chars().any(|c| c.is_control() || is_invisible(c)) {
        return Err("name must not contain control characters");
    }
    let guest_number = name.strip_prefix("guest-");
    if guest_number.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) {
        return Err("names like guest-12 are given to guests");
    }
    Ok(())
}

/// Unicode format characters that reorder or hide text: U+200B..U+200F
/// (zero-width, direction marks), U+202A..U+202E (embeddings, overrides),
/// U+2060..U+2069 (word joiner, isolates), U+FEFF (zero-width no-break space).
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// The welcome: where the log stands, so a later resume can name it.
pub fn welcome(epoch: &str, last_id: u64, name: &str) -> String {
    format!(
        r#"{{"type":"welcome","message":"connected to chat","epoch":{},"last_id":{last_id},"name":{}}}"#,
        json_string(epoch),
        json_string(name)
    )
}

/// The welcome of an SSE or long-poll client, with the key its `POST /send`
/// names so its own messages come back to it as acks (`client_key.rs`).
pub fn welcome_with_key(epoch: &str, last_id: u64, name: &str, key: &str) -> String {
    let mut welcome = self::welcome(epoch, last_id, name);
    welcome.pop();
    format!(r#"{welcome},"client":{}}}"#, json_string(key))
}

/// One chat message from another client (or, on replay, from oneself).
pub fn message(id: u64, from: &str, opcode: Opcode, payload: &[u8]) -> String {
    let body = match opcode {
        Opcode::Text => format!(
            r#""text":{}"#,
            json_string(&String::from_utf8_lossy(payload))
        ),
        _ => format!(r#""binary":"{}""#, BASE64.encode(payload)),
    };
    format!(
        r#"{{"type":"message","id":{id},"from":{},{body}}}"#,
        json_string(from)
    )
}

/// The sender's own message was stored with this id.
pub fn ack(id: u64) -> String {
    format!(r#"{{"type":"ack","id":{id}}}"#)
}

/// A resume asked for history the log no longer holds (or another epoch's).
pub fn reset(last_id: u64) -> String {
    format!(r#"{{"type":"reset","reason":"history gone","last_id":{last_id}}}"#)
}

/// `s` as a JSON string (RFC 8259 §7): quotes, backslashes and control
/// characters escaped, everything else as it is.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_object_has_the_documented_fields() {
        assert_eq!(
            welcome("e1", 0, "guest-2"),
            r#"{"type":"welcome","message":"connected to chat","epoch":"e1","last_id":0,"name":"guest-2"}"#
        );
        assert_eq!(
            message(7, "ann", Opcode::Text, b"hi"),
            r#"{"type":"message","id":7,"from":"ann","text":"hi"}"#
        );
        assert_eq!(
            message(8, "bob", Opcode::Binary, &[0, 255]),
            r#"{"type":"message","id":8,"from":"bob","binary":"AP8="}"#
        );
        assert_eq!(ack(9), r#"{"type":"ack","id":9}"#);
        assert_eq!(
            welcome_with_key("e1", 3, "ann", "7.ab"),
            r#"{"type":"welcome","message":"connected to chat","epoch":"e1","last_id":3,"name":"ann","client":"7.ab"}"#
        );
        assert_eq!(
            reset(12),
            r#"{"type":"reset","reason":"history gone","last_id":12}"#
        );
    }

    #[test]
    fn strings_are_escaped_as_json_requires() {
        assert_eq!(json_string("a\"b\\c\nd\u{1}é"), r#""a\"b\\c\nd\u0001é""#);
    }

    #[test]
    fn names_are_one_to_32_printable_characters() {
        assert!(check_name("ann").is_ok());
        assert!(check_name(&"é".repeat(32)).is_ok());
        assert!(check_name("").is_err());
        assert!(check_name(&"x".repeat(33)).is_err());
        assert!(check_name("a\u{7}b").is_err());
        assert!(check_name("evil\u{202E}txt").is_err());
        assert!(check_name("guest-2").is_err());
        assert!(check_name("guest-star").is_ok());
    }
}
