//! Why a WebSocket connection is failed, and the close code each reason earns.
//!
//! Each variant is named after the rule the peer broke, so a log line or a
//! failing test reads like the RFC sentence it comes from. `close_code()` maps
//! a variant to the status code sent in our Close frame (RFC 6455 §7.4.1).
//! notes/03-framing.md#close-codes lists when the server sends each one.

use std::fmt;

/// A rule of RFC 6455 that the peer broke; the connection is failed (§7.1.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// §5.2: RSV1-3 are set, but no extension was negotiated.
    ReservedBitsSet,
    /// §5.2: opcodes 0x3-0x7 and 0xB-0xF are reserved.
    ReservedOpcode(u8),
    /// §5.1: "a server MUST close the connection upon receiving a frame that is not masked".
    UnmaskedFrame,
    /// §5.2: a 64-bit length must have its most significant bit clear.
    InvalidLength,
    /// §5.5: control frames carry at most 125 bytes of payload.
    ControlFrameTooLong,
    /// §5.5: control frames must not be fragmented.
    FragmentedControlFrame,
    /// §5.4: a continuation frame arrived with no message in progress.
    UnexpectedContinuation,
    /// §5.4: a new text or binary frame arrived while a message was still in progress.
    ExpectedContinuation,
    /// §5.6, §8.1: a text message is not valid UTF-8.
    InvalidUtf8,
    /// §5.5.1: a close body of one byte cannot hold a status code.
    CloseBodyTooShort,
    /// §7.4: this status code may not appear in a close frame.
    InvalidCloseCode(u16),
    /// §5.5.1: the close reason is not UTF-8.
    InvalidCloseReason,
    /// §10.4: the message is larger than `--max-message-bytes`.
    MessageTooBig,
    /// §10.4 again, for the server as a whole: this connection's unfinished
    /// message would take the unfinished messages of all connections over `--max-input-bytes`.
    InputBudgetExceeded,
    /// Our policy: a message must be finished within `--message-timeout-ms`
    /// of its first byte (a fragment trickle cannot hold memory forever).
    MessageTimedOut,
}

impl ProtocolError {
    /// The status code for our Close frame (§7.4.1).
    pub fn close_code(self) -> u16 {
        match self {
            // 1007: "data within a message that was not consistent with the type of the message".
            ProtocolError::InvalidUtf8 | ProtocolError::InvalidCloseReason => 1007,
            // 1009: "a message that is too big for it to process".
            ProtocolError::MessageTooBig | ProtocolError::InputBudgetExceeded => 1009,
            // 1008: "a message that violates its policy".
            ProtocolError::MessageTimedOut => 1008,
            // 1002: everything else is a protocol error.
            _ => 1002,
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::ReservedBitsSet => write!(f, "reserved bits set"),
            ProtocolError::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            ProtocolError::UnmaskedFrame => write!(f, "client frame not masked"),
            ProtocolError::InvalidLength => write!(f, "invalid payload length"),
            ProtocolError::ControlFrameTooLong => write!(f, "control frame over 125 bytes"),
            ProtocolError::FragmentedControlFrame => write!(f, "fragmented control frame"),
            ProtocolError::UnexpectedContinuation => write!(f, "continuation without a message"),
            ProtocolError::ExpectedContinuation => write!(f, "new message inside a fragmented one"),
            ProtocolError::InvalidUtf8 => write!(f, "invalid UTF-8 in text message"),
            ProtocolError::CloseBodyTooShort => write!(f, "one-byte close body"),
            ProtocolError::InvalidCloseCode(code) => write!(f, "invalid close code {code}"),
            ProtocolError::InvalidCloseReason => write!(f, "close reason is not UTF-8"),
            ProtocolError::MessageTooBig => write!(f, "message too big"),
            ProtocolError::InputBudgetExceeded => write!(f, "server input budget exceeded"),
            ProtocolError::MessageTimedOut => write!(f, "message not finished in time"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Whether `code` may appear in a Close frame on the wire (§7.4.1, §7.4.2, IANA registry).
///
/// 1004-1006 and 1015 are reserved for local use: an endpoint must never send them.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_allowed_on_the_wire() {
        for code in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999,
        ] {
            assert!(is_valid_close_code(code), "{code} should be valid");
        }
        for code in [
            0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(!is_valid_close_code(code), "{code} should be invalid");
        }
    }

    #[test]
    fn each_error_maps_to_its_close_code() {
        assert_eq!(ProtocolError::UnmaskedFrame.close_code(), 1002);
        assert_eq!(ProtocolError::InvalidUtf8.close_code(), 1007);
        assert_eq!(ProtocolError::InvalidCloseReason.close_code(), 1007);
        assert_eq!(ProtocolError::MessageTooBig.close_code(), 1009);
        assert_eq!(ProtocolError::InputBudgetExceeded.close_code(), 1009);
        assert_eq!(ProtocolError::MessageTimedOut.close_code(), 1008);
        assert_eq!(ProtocolError::InvalidCloseCode(1005).close_code(), 1002);
    }
}
