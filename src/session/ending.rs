//! Every way a connection ends, and the record of why it did, for the log
//! line that retires it. `Session::end` (session.rs) decides what each
//! ending sends and which state follows; this file only names them.

use crate::error::ProtocolError;
use crate::message::CloseBody;

/// Every way a connection ends. [`Session::end`] decides, in one match, what
/// each one sends and which state follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The peer sent a Close frame (§5.5.1).
    PeerClosed(Option<CloseBody>),
    /// The peer broke a rule: "Fail the WebSocket Connection" (§7.1.7).
    Failed(ProtocolError),
    /// The server is shutting down (SIGINT or SIGTERM).
    ShuttingDown,
    /// The request head did not arrive within `--handshake-timeout-ms`.
    HandshakeTimedOut,
    /// Silent for a whole heartbeat interval after our Ping (§5.5.2).
    NoPong,
    /// An event stream's last keep-alive comment was still unwritten a
    /// whole heartbeat interval later: the client takes nothing.
    HeartbeatUnread,
    /// Our Close, or our last answer, was not followed by the peer's close in time.
    CloseTimedOut,
    /// The peer does not read: its own output stayed over
    /// `--max-buffered-bytes`, or it held the full shared log, for `--stall-ms`.
    SlowConsumer,
    /// TCP ended without a Close frame: a FIN, a reset, a failed write (§7.1.5).
    ConnectionLost,
}

/// Why a connection ended, kept for the log line that retires it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseRecord {
    /// The close code (§7.4): the peer's, ours, or 1006 when no Close frame was exchanged.
    pub code: u16,
    pub reason: String,
    /// Who ended it and how, in words.
    pub cause: &'static str,
    /// The peer stopped reading (a slow consumer): what the kernel still
    /// holds for it would never be delivered, so the loop resets the
    /// connection instead of closing it gracefully.
    pub abandoned: bool,
}

impl Ending {
    /// The code, reason and cause the log line will show.
    pub(super) fn record(&self) -> CloseRecord {
        let (code, reason, cause) = match self {
            Ending::PeerClosed(body) => match body {
                Some(body) => (body.code, body.reason.clone(), "closed by peer"),
                // §7.1.5: a Close with no code "is considered to be 1005".
                None => (1005, String::new(), "closed by peer"),
            },
            Ending::Failed(error) => (error.close_code(), error.to_string(), "failed by server"),
            Ending::ShuttingDown => (1001, "server shutting down".into(), "closed by server"),
            Ending::HandshakeTimedOut => (1006, String::new(), "handshake timed out"),
            Ending::NoPong => (1006, "no pong".into(), "reaped by heartbeat"),
            Ending::HeartbeatUnread => (1006, "heartbeat unread".into(), "reaped by heartbeat"),
            Ending::CloseTimedOut => (1006, String::new(), "did not close in time"),
            Ending::SlowConsumer => (1008, "slow consumer".into(), "dropped by server"),
            Ending::ConnectionLost => (1006, String::new(), "connection lost"),
        };
        CloseRecord {
            code,
            reason,
            cause,
            abandoned: matches!(self, Ending::SlowConsumer | Ending::HeartbeatUnread),
        }
    }
}
