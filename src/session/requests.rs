//! The HTTP/1.1 half of a session: reading a request (its head, then the
//! body its framing announces), answering it (and keeping the connection
//! for the next one, RFC 9112 §9.3), streaming, holding a long poll, and
//! how a connection that speaks HTTP ends. `Session` methods in a file of
//! their own; `session.rs` keeps the state, the frames and the time.

use std::time::Instant;

use super::{ConnState, Ending, MAX_HEAD_BYTES, Session};
use crate::config::Config;
use crate::handshake::{Endpoint, Refusal, Request, find_head_end_after};
use crate::http::refusal_response;

/// A complete HTTP request: its head, `\r\n\r\n` included, and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub head: Vec<u8>,
    pub body: Vec<u8>,
}

/// A refusal the session wrote itself, and the request it answered
/// (method and path), for the loop's log line.
#[derive(Debug)]
pub struct Refused {
    pub refusal: Refusal,
    pub request: String,
}

/// A request whose body is still arriving.
#[derive(Debug)]
pub(super) struct PendingBody {
    pub(super) head: Vec<u8>,
    pub(super) body_len: usize,
}

impl Session {
    /// Whether the loop should read this peer now: not while a long poll is
    /// held and a whole head of the next request already waits behind it
    /// (RFC 9112 §9.3: answers go in order, so it cannot be answered yet).
    pub fn wants_input(&self) -> bool {
        !(self.state == ConnState::Held && self.read_buf.len() >= MAX_HEAD_BYTES)
    }

    /// How many bytes the loop may read now. While a head is awaited, or
    /// behind a held poll, only what fills a head's worth (one byte more
    /// while reading a head: that byte is what says it is too large), so
    /// what waits there is bounded per connection by `MAX_HEAD_BYTES` and
    /// needs no share of `--max-input-bytes`. A body or frames: any.
    pub fn read_room(&self) -> usize {
        let held = self.read_buf.len();
        match self.state {
            ConnState::Handshaking => (MAX_HEAD_BYTES + 1).saturating_sub(held),
            ConnState::Held => MAX_HEAD_BYTES.saturating_sub(held),
            _ => usize::MAX,
        }
    }

    /// The next request: one handed back by the loop, or a head from the
    /// read buffer, with its body if one follows (`frame_request`). A head
    /// that does not parse is handed on as it is, for the loop to refuse.
    pub(super) fn take_request(&mut self, config: &Config, now: Instant) -> Option<HttpRequest> {
        if let Some(request) = self.deferred.take() {
            return Some(*request);
        }
        let head = self.take_request_head(now)?;
        let framing = match frame_request(&head, config) {
            Ok(framing) => framing,
            Err(refusal) => return self.refuse_request(refusal, &head, now),
        };
        self.keep_alive = framing.is_some_and(|f| f.keep_alive);
        let (body_len, expect_continue) =
            framing.map_or((0, false), |f| (f.body_len, f.expect_continue));
        if body_len == 0 {
            return Some(HttpRequest {
                head,
                body: Vec::new(),
            });
        }
        self.pending = Some(Box::new(PendingBody { head, body_len }));
        self.set_state(ConnState::ReadingBody, now);
        // RFC 9110 §10.1.1: a client that asked waits for this before its
        // body; one whose body is already here did not wait.
        if expect_continue && self.read_buf.len() < body_len {
            self.write_buf
                .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        self.take_body(now)
    }

    /// The body, once all of it has arrived; what follows it is the next
    /// request, and stays. Counting bytes is linear however they arrive.
    pub(super) fn take_body(&mut self, now: Instant) -> Option<HttpRequest> {
        let body_len = self.pending.as_ref()?.body_len;
        if self.read_buf.len() < body_len {
            return None;
        }
        let rest = self.read_buf.split_off(body_len);
        let body = std::mem::replace(&mut self.read_buf, rest);
        let head = self.pending.take()?.head;
        self.set_state(ConnState::Handshaking, now);
        Some(HttpRequest { head, body })
    }

    fn refuse_request(
        &mut self,
        refusal: Refusal,
        head: &[u8],
        now: Instant,
    ) -> Option<HttpRequest> {
        self.note_refusal(refusal, head);
        self.answer(&refusal_response(refusal), now);
        None
    }

    /// Keeps a refusal the session wrote itself, for the loop to log.
    fn note_refusal(&mut self, refusal: Refusal, head: &[u8]) {
        let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
        let line = String::from_utf8_lossy(line);
        let mut words = line.split(' ');
        let method = words.next().filter(|m| !m.is_empty()).unwrap_or("?");
        let target = words.next().unwrap_or("(no request line)");
        // The path only: a query may hold a token.
        let path = target.split('?').next().unwrap_or_default();
        self.refused = Some(Box::new(Refused {
            refusal,
            request: format!("{method:.16} {path:.80}"),
        }));
    }

    /// A refusal the session wrote itself since the last call (a head too
    /// large, a body it cannot frame or take, a timeout): the loop logs it.
    pub fn take_refused(&mut self) -> Option<Box<Refused>> {
        self.refused.take()
    }

    /// The loop cannot act on this request yet (the shared log is full): it
    /// is kept, and returned first by the next `next_event`.
    pub fn defer(&mut self, request: HttpRequest, now: Instant) {
        self.deferred = Some(Box::new(request));
        // The wait is the server's: the client's head timeout starts again.
        self.since = now;
    }

    /// Waits for `\r\n\r\n`. A head over `MAX_HEAD_BYTES`, complete or not,
    /// is refused with 431 without being parsed. Bytes after the head are the
    /// client's first frames and stay in `read_buf`.
    fn take_request_head(&mut self, now: Instant) -> Option<Vec<u8>> {
        let found = find_head_end_after(&self.read_buf, self.read_pos);
        self.read_pos = self.read_buf.len();
        match found {
            Some(end) if end <= MAX_HEAD_BYTES => {
                let rest = self.read_buf.split_off(end);
                self.read_pos = 0;
                Some(std::mem::replace(&mut self.read_buf, rest))
            }
            Some(_) => self.refuse_too_large(now),
            None if self.read_buf.len() > MAX_HEAD_BYTES => self.refuse_too_large(now),
            None => None,
        }
    }

    fn refuse_too_large(&mut self, now: Instant) -> Option<Vec<u8>> {
        let refusal = Refusal {
            status: 431,
            reason: "request head over 8 KiB",
        };
        let head = std::mem::take(&mut self.read_buf);
        self.refuse_request(refusal, &head, now);
        None
    }

    /// A refusal (or any answer after which the connection ends): queue
    /// it, drop whatever else the client sent, then linger until it is read.
    pub fn answer(&mut self, response: &[u8], now: Instant) {
        self.write_buf.extend_from_slice(response);
        let next = self.stop_reading();
        self.set_state(next, now);
    }

    /// An answer to the request just taken: queued; then the connection
    /// reads the next request if this one allowed it (RFC 9112 §9.3), or
    /// lingers and closes. A pipelined request may already be waiting.
    pub fn respond(&mut self, response: &[u8], now: Instant) {
        if !self.keep_alive {
            return self.answer(response, now);
        }
        self.write_buf.extend_from_slice(response);
        self.served = true;
        self.set_state(ConnState::Handshaking, now);
        // The idle timeout counts from this answer, even if the state did not change.
        self.since = now;
    }

    /// `GET /events`: the head of a response that does not end; events
    /// follow as the log grows. Anything the client sends is drained.
    pub fn stream(&mut self, head: &[u8], now: Instant) {
        self.write_buf.extend_from_slice(head);
        self.read_buf = Vec::new();
        self.read_pos = 0;
        self.endpoint = Some(Endpoint::Events);
        self.set_state(ConnState::Streaming, now);
    }

    /// Whether the request being answered allows another after it.
    pub fn keeps_alive(&self) -> bool {
        self.keep_alive
    }

    /// A long poll with nothing to answer yet: it waits, until `respond`.
    pub fn hold_request(&mut self, now: Instant) {
        self.set_state(ConnState::Held, now);
    }

    /// Whether a held long poll has waited `--poll-timeout-ms`: the loop
    /// then answers it with an empty batch.
    pub fn hold_expired(&self, config: &Config, now: Instant) -> bool {
        self.state == ConnState::Held && now >= self.since + config.poll_timeout
    }

    /// `101 Switching Protocols` (§4.2.2): from now on, frames. Bytes that
    /// came after the head are decoded by the next `next_event`.
    pub fn upgrade(&mut self, response: &[u8], endpoint: Endpoint, now: Instant) {
        self.write_buf.extend_from_slice(response);
        self.endpoint = Some(endpoint);
        self.set_state(ConnState::Open, now);
    }

    /// The endings that differ while the connection speaks HTTP (before an
    /// upgrade, or instead of one): a status instead of a Close frame.
    pub(super) fn http_last_words(&mut self, ending: &Ending, now: Instant) -> Option<ConnState> {
        let next = match (ending, self.state) {
            // RFC 9112 §9.5: a connection idle between requests is closed
            // without an answer: there is no request to answer.
            (Ending::ShuttingDown | Ending::HandshakeTimedOut, ConnState::Handshaking)
                if self.idle_between_requests() =>
            {
                self.stop_reading()
            }
            (
                Ending::ShuttingDown | Ending::HandshakeTimedOut,
                ConnState::Handshaking | ConnState::ReadingBody,
            ) => {
                let (status, reason) = match (ending, self.state) {
                    (Ending::ShuttingDown, _) => (503, "server shutting down"),
                    (_, ConnState::ReadingBody) => (408, "request body not completed in time"),
                    _ => (408, "request head not completed in time"),
                };
                self.refuse(status, reason, now)
            }
            // A held long poll is told to come back; a stream just ends
            // (`EventSource` reconnects after `retry`).
            (Ending::ShuttingDown, ConnState::Held) => {
                self.refuse(503, "server shutting down", now)
            }
            (Ending::ShuttingDown, ConnState::Streaming) => self.stop_reading(),
            // Over `--max-input-bytes` with a request unfinished.
            (
                Ending::Failed(_),
                ConnState::Handshaking | ConnState::ReadingBody | ConnState::Held,
            ) => self.refuse(503, "server busy: too much unfinished input", now),
            _ => return None,
        };
        Some(next)
    }

    /// Kept alive after an answer, with nothing of a next request yet.
    fn idle_between_requests(&self) -> bool {
        self.served && self.read_buf.is_empty() && self.deferred.is_none()
    }

    /// An HTTP refusal as the last thing said before the connection lingers.
    fn refuse(&mut self, status: u16, reason: &'static str, now: Instant) -> ConnState {
        let head = match self.pending.take() {
            Some(pending) => pending.head,
            None => std::mem::take(&mut self.read_buf),
        };
        self.refuse_request(Refusal { status, reason }, &head, now);
        ConnState::Lingering
    }
}

/// How the request with this head is framed (`framing.rs`), checked
/// before a byte of its body is kept: not over `--max-message-bytes`
/// (RFC 9110 §15.5.14: 413), and sent by a client the route would accept
/// (`http::check_before_body`: a client without the token must not make
/// the server hold its body). `None`: the head does not parse, and the
/// loop will refuse it.
///
/// The head is parsed here for its framing only, and again by the loop to
/// route it: parsing a head costs microseconds, and keeping the session
/// ignorant of routes keeps it about bytes.
fn frame_request(head: &[u8], config: &Config) -> Result<Option<crate::framing::Framing>, Refusal> {
    let Ok(request) = Request::parse(head) else {
        return Ok(None);
    };
    let framing = crate::framing::of(&request)?;
    if framing.body_len > config.max_message_bytes {
        let reason = "request body over --max-message-bytes";
        return Err(Refusal {
            status: 413,
            reason,
        });
    }
    if framing.body_len > 0 {
        crate::http::check_before_body(&request, config)?;
    }
    Ok(Some(framing))
}
