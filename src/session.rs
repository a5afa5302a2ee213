//! One connection's protocol, without a socket: the state machine of RFC 6455
//! (and of the HTTP/1.1 requests before it, or instead of it), fed bytes and
//! the time, handing back bytes to write and what happened
//! (notes/01-readiness.md#the-session).
//!
//! Interface, in the order the loop uses it:
//! - [`Session::receive`] takes bytes the loop read; [`Session::receive_fin`]
//!   says the peer closed its side;
//! - [`Session::next_event`] decodes them: a complete request (head, and
//!   body if it has one) for the loop to route, or a complete message;
//!   pings, pongs and Close frames are answered here;
//! - the loop answers a request with [`Session::respond`] (the connection
//!   may then carry the next request: keep-alive), [`Session::answer`] (a
//!   refusal: then it closes), [`Session::upgrade`] (WebSocket),
//!   [`Session::stream`] (Server-Sent Events) or [`Session::hold_request`]
//!   (a long poll, answered later with `respond`); it queues an `/echo`
//!   reply with [`Session::queue_data`] (chat messages are not queued here:
//!   they wait in the shared log, `history.rs`);
//! - [`Session::output`] is what to write; [`Session::wrote`] says how much was;
//! - [`Session::poll_at`] is when the session wants the time again, and
//!   [`Session::on_time`] gives it: handshake timeout, heartbeat, close timeout;
//! - [`Session::end`] is the one way a connection ends, whatever the cause.
//!
//! The HTTP/1.1 half (requests, their bodies and answers, streams and held
//! polls) is in `session/requests.rs`. Neither touches a socket, `mio` or
//! the clock: time is passed in, so every rule here is a unit test with
//! golden bytes (`session/tests.rs`). The state changes only in
//! `set_state`, which logs each move.

use std::time::Instant;

use log::debug;

use crate::config::Config;
use crate::error::ProtocolError;
use crate::frame::{FrameHeader, Opcode, encode_close, encode_frame};
use crate::handshake::Endpoint;
use crate::message::{Decoded, Message, MessageReader};

mod ending;
mod requests;
#[cfg(test)]
mod tests;

pub use ending::{CloseRecord, Ending};
use requests::PendingBody;
pub use requests::{HttpRequest, Refused};

/// §4.2.1 gives no limit; 8 KiB is what common servers accept for a request head.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;

/// Where a connection is in its life (RFC 6455 §4 and §7, RFC 9112 §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// Reading an HTTP request head (§4.2.1): the first since TCP was
    /// accepted, or the next one on a connection kept alive.
    Handshaking,
    /// The head said a body follows (`Content-Length`): reading it.
    ReadingBody,
    /// `101` sent: frames flow both ways.
    Open,
    /// `GET /events` answered with an event stream: the response never
    /// ends, and chat messages are written into it from the shared log.
    Streaming,
    /// A long poll with nothing to answer yet: the request waits for a
    /// message or `--poll-timeout-ms`; what the client sends meanwhile (its
    /// next request, pipelined) waits behind it.
    Held,
    /// We sent a Close and wait for the peer's (§7.1.2), at most `--close-timeout-ms`.
    Closing,
    /// Our last bytes are queued (an HTTP answer, or a Close that ends the
    /// conversation). Once they are written we half-close and discard input
    /// until the peer closes: closing with unread input would make the kernel
    /// send a reset, which can destroy the answer before the peer reads it.
    Lingering,
    /// Finished; the loop retires it at the end of the turn.
    Closed,
}

/// What the session has for the loop.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A complete HTTP request. The loop must answer it (or hold it, or hand
    /// it back with [`Session::defer`]) before asking for the next event.
    Request(HttpRequest),
    /// A complete Text or Binary message from an open connection.
    Message(Message),
}

/// One connection's protocol state. Small while idle: both buffers are empty
/// and unallocated (notes/04-broadcast.md#memory).
#[derive(Debug)]
pub struct Session {
    /// A number for log lines (the loop's token); the session never uses it otherwise.
    id: usize,
    /// Changed only by `set_state`.
    state: ConnState,
    /// Chat or echo, once upgraded; `None` for plain HTTP requests.
    endpoint: Option<Endpoint>,
    /// Bytes received but not yet parsed.
    read_buf: Vec<u8>,
    /// How far `read_buf` is done with: decoded (once open), or searched for
    /// the end of the head (while handshaking). Frames are drained once
    /// decoding stops, so a read full of small frames is shifted once.
    read_pos: usize,
    /// Fragments of a message in progress (§5.4).
    reader: MessageReader,
    /// Bytes encoded but not yet written.
    write_buf: Vec<u8>,
    /// A Ping was sent and no byte has been heard since (§5.5.2).
    awaiting_pong: bool,
    /// The loop is not reading this peer for now (its output or the shared
    /// log is full): silence then proves nothing, and the heartbeat waits.
    input_held: bool,
    /// The last write stopped inside the queued bytes, perhaps mid-frame:
    /// no Close frame may be slipped in front of the rest.
    write_partial: bool,
    /// Since when the queued output has been stuck: over
    /// `--max-buffered-bytes`, or (for a peer the loop says so of) unwritten
    /// behind a full socket, with no progress since.
    output_full_since: Option<Instant>,
    /// Since when a message has been unfinished: fragments in progress, or
    /// part of a frame waiting for the rest (`--message-timeout-ms`).
    unfinished_since: Option<Instant>,
    /// The peer sent FIN.
    peer_finished: bool,
    /// We sent FIN (Lingering, after the last bytes went out).
    half_closed: bool,
    /// When the current wait began: the state was entered, the last Ping
    /// (or SSE comment) went out, or the last request was answered.
    since: Instant,
    /// While `ReadingBody`: the head, and how long the body is.
    pending: Option<Box<PendingBody>>,
    /// A request the loop handed back (`defer`), to be returned again first.
    deferred: Option<Box<HttpRequest>>,
    /// The request being answered allows another after it (keep-alive).
    keep_alive: bool,
    /// At least one request was answered on this connection.
    served: bool,
    /// A refusal the session wrote itself, until the loop logs it.
    refused: Option<Box<Refused>>,
    /// Why the connection ended; the first ending wins.
    ending: Option<Box<CloseRecord>>,
}

impl Session {
    /// A new connection, waiting for its request head.
    pub fn new(id: usize, now: Instant) -> Session {
        Session {
            id,
            state: ConnState::Handshaking,
            endpoint: None,
            read_buf: Vec::new(),
            read_pos: 0,
            reader: MessageReader::default(),
            write_buf: Vec::new(),
            awaiting_pong: false,
            input_held: false,
            write_partial: false,
            output_full_since: None,
            unfinished_since: None,
            peer_finished: false,
            half_closed: false,
            since: now,
            pending: None,
            deferred: None,
            keep_alive: false,
            served: false,
            refused: None,
            ending: None,
        }
    }

    pub fn state(&self) -> ConnState {
        self.state
    }

    pub fn endpoint(&self) -> Option<Endpoint> {
        self.endpoint
    }

    /// Why the connection ended, once it has.
    pub fn ending(&self) -> Option<&CloseRecord> {
        self.ending.as_deref()
    }

    /// The one place a state changes, so a debugger watchpoint or the log shows every move.
    fn set_state(&mut self, next: ConnState, now: Instant) {
        if self.state != next {
            debug!("Token({}): {:?} => {:?}", self.id, self.state, next);
            self.state = next;
            self.since = now;
        }
    }

    // ---- bytes in ----

    /// Takes bytes the loop read from the socket. Once our last words are
    /// queued (Lingering) or the connection is over, input is only drained
    /// from the socket, never kept.
    pub fn receive(&mut self, bytes: &[u8]) {
        // Liveness counts bytes, not frames: a peer in the middle of sending
        // one large frame is alive, though no frame has completed (§5.5.2).
        self.awaiting_pong = false;
        // An event stream's client has nothing to say (§9.2: the request was
        // all of it): its bytes are drained, like those of a closing peer.
        let draining = matches!(
            self.state,
            ConnState::Streaming | ConnState::Lingering | ConnState::Closed
        );
        if draining {
            return;
        }
        self.read_buf.extend_from_slice(bytes);
    }

    /// The loop stops (or starts again) reading this peer.
    pub fn hold_input(&mut self, held: bool) {
        self.input_held = held;
    }

    /// The peer closed its side (a read returned 0).
    pub fn receive_fin(&mut self, now: Instant) {
        self.peer_finished = true;
        match self.state {
            // An answer is still being written: the peer may read after its FIN.
            ConnState::Lingering if !self.write_buf.is_empty() => {}
            // Answers to its earlier requests are still queued: they go out
            // first; a request it left unfinished never will be answered.
            ConnState::Handshaking | ConnState::ReadingBody if !self.write_buf.is_empty() => {
                let next = self.stop_reading();
                self.set_state(next, now);
            }
            // §7.1.5: no Close frame before the TCP connection went away: 1006.
            ConnState::Open | ConnState::Closing => self.end(Ending::ConnectionLost, now),
            _ => self.set_state(ConnState::Closed, now),
        }
    }

    /// The next thing to act on in what was received, or `None` when more
    /// bytes are needed. Control frames are answered here and never returned.
    pub fn next_event(&mut self, config: &Config, now: Instant) -> Option<Event> {
        match self.state {
            ConnState::Handshaking => self.take_request(config, now).map(Event::Request),
            ConnState::ReadingBody => self.take_body(now).map(Event::Request),
            ConnState::Open | ConnState::Closing => {
                self.next_message(config, now).map(Event::Message)
            }
            ConnState::Streaming | ConnState::Held => None,
            ConnState::Lingering | ConnState::Closed => None,
        }
    }

    /// Decodes frames until a data message is complete or more bytes are
    /// needed (`None`). Control frames are answered here (§5.5); a broken
    /// rule fails the connection.
    fn next_message(&mut self, config: &Config, now: Instant) -> Option<Message> {
        while matches!(self.state, ConnState::Open | ConnState::Closing) {
            let decoded = self.reader.decode(
                &mut self.read_buf[self.read_pos..],
                config.max_message_bytes,
            );
            let incoming = match decoded {
                Ok(Some((incoming, used))) => {
                    self.read_pos += used;
                    incoming
                }
                Ok(None) => break,
                Err(error) => {
                    self.end(Ending::Failed(error), now);
                    break;
                }
            };
            if let Some(message) = self.on_frame(incoming, config, now) {
                return Some(message);
            }
        }
        self.compact_read_buf();
        self.track_unfinished(now);
        None
    }

    /// Notes when a message began arriving and has not ended (called when
    /// the decoder needs more bytes: what is left is part of a message).
    fn track_unfinished(&mut self, now: Instant) {
        let unfinished = self.state == ConnState::Open
            && (self.reader.in_progress() || !self.read_buf.is_empty());
        match (unfinished, self.unfinished_since) {
            (true, None) => self.unfinished_since = Some(now),
            (false, Some(_)) => self.unfinished_since = None,
            _ => {}
        }
    }

    /// Bytes of a message still arriving: the fragments so far, and (when
    /// the decoder stopped inside a frame) the part of the frame received.
    /// Counted as received, not as reserved: a frame header alone announces
    /// a size, but holds nothing until its payload comes.
    ///
    /// Before (or instead of) an upgrade, a request body arriving counts
    /// (it may be up to `--max-message-bytes`), with its head. A head alone,
    /// or requests pipelined behind a held long poll, do not: they are
    /// bounded per connection by `read_room`, and counting them would let
    /// idle or held connections pin the budget every other client shares.
    pub fn unfinished_bytes(&self) -> usize {
        if self.reads_http() {
            let head = self.pending.as_ref().map_or(0, |p| p.head.len());
            return self.read_buf.len() + head;
        }
        let partial = match self.unfinished_since {
            Some(_) => self.read_buf.len(),
            None => 0,
        };
        self.reader.fragment_bytes() + partial
    }

    /// Whether the decoder stopped inside a message (not with whole frames
    /// left), or inside an HTTP request.
    pub fn mid_message(&self) -> bool {
        match self.reads_http() {
            true => self.unfinished_bytes() > 0,
            false => self.unfinished_since.is_some(),
        }
    }

    /// Whether the next input is a request to answer (a head or a body).
    pub fn reads_requests(&self) -> bool {
        matches!(self.state, ConnState::Handshaking | ConnState::ReadingBody)
    }

    /// The state in which HTTP input counts in `--max-input-bytes`: a body.
    fn reads_http(&self) -> bool {
        self.state == ConnState::ReadingBody
    }

    /// Whether chat messages from the shared log are written to this peer:
    /// as frames once open, as events once streaming.
    pub fn takes_log(&self) -> bool {
        matches!(self.state, ConnState::Open | ConnState::Streaming)
    }

    /// Acts on one decoded frame; a completed message is handed back.
    fn on_frame(
        &mut self,
        incoming: Option<Decoded>,
        config: &Config,
        now: Instant,
    ) -> Option<Message> {
        let open = self.state == ConnState::Open;
        match incoming {
            // A fragment that did not finish its message.
            None => None,
            Some(Decoded::Data(message)) if open => {
                // A message ended: the next one's clock starts with its own first bytes.
                self.unfinished_since = None;
                Some(message)
            }
            // §7.1.2: after our Close we may discard data the peer still sends.
            Some(Decoded::Data(_)) => None,
            Some(Decoded::Ping(payload)) if open => {
                // §5.5.2: "MUST send a Pong frame in response ... the same Application data".
                encode_frame(
                    &mut self.write_buf,
                    true,
                    Opcode::Pong,
                    payload.as_bytes(),
                    None,
                );
                self.track_output(config, now);
                None
            }
            Some(Decoded::Ping(_) | Decoded::Pong) => None,
            Some(Decoded::Close(body)) => {
                self.end(Ending::PeerClosed(body), now);
                None
            }
        }
    }

    /// Drops the bytes decoded so far; frees the buffer once it is empty, so an
    /// idle connection holds no read memory (notes/04-broadcast.md#memory).
    ///
    /// The plain rule would let the buffer grow as bytes come. The shortcut:
    /// when a large frame is arriving in pieces, room for all of it is made
    /// once, instead of the buffer doubling (and copying itself) read by read.
    /// Its size was already checked against `--max-message-bytes` by the decoder.
    fn compact_read_buf(&mut self) {
        self.read_buf.drain(..self.read_pos);
        self.read_pos = 0;
        if self.read_buf.is_empty() {
            self.read_buf = Vec::new();
        } else if self.state == ConnState::Open
            && let Ok(Some(header)) = FrameHeader::parse(&self.read_buf)
        {
            let frame_len = header.header_len + header.payload_len as usize;
            self.read_buf
                .reserve_exact(frame_len.saturating_sub(self.read_buf.len()));
        }
    }

    // (reading, answering and ending HTTP requests: session/requests.rs)

    // ---- bytes out ----

    /// Queues one frame of our own (the welcome, for instance).
    pub fn send(&mut self, opcode: Opcode, payload: &[u8]) {
        encode_frame(&mut self.write_buf, true, opcode, payload, None);
    }

    /// Queues a data frame (an `/echo` reply). The loop stops decoding
    /// while `output_full`, so the queue exceeds the limit by one message at most.
    pub fn queue_data(&mut self, frame: &[u8], config: &Config, now: Instant) {
        self.write_buf.extend_from_slice(frame);
        self.track_output(config, now);
    }

    /// Whether the queued output is over `--max-buffered-bytes`: then the
    /// loop stops reading this peer, whose own requests (pings, echoes) fill it.
    pub fn output_full(&self, config: &Config) -> bool {
        self.write_buf.len() > config.max_buffered_bytes
    }

    /// Notes when the output went over the limit.
    fn track_output(&mut self, config: &Config, now: Instant) {
        if self.output_full(config) && self.output_full_since.is_none() {
            self.output_full_since = Some(now);
        }
    }

    /// The loop's flush found the socket full with this session's own output
    /// still queued. For a peer with nothing else to receive (an `/echo`
    /// client, a plain HTTP answer), that output must move within
    /// `--stall-ms`, whatever its size: otherwise N such peers could each
    /// hold up to `--max-buffered-bytes` for as long as they like.
    pub fn output_blocked(&mut self, now: Instant) {
        if !self.write_buf.is_empty() && self.output_full_since.is_none() {
            self.output_full_since = Some(now);
        }
    }

    /// Everything queued and not yet written.
    pub fn output(&self) -> &[u8] {
        &self.write_buf
    }

    /// The loop wrote the first `n` bytes of `output()`.
    pub fn wrote(&mut self, n: usize, config: &Config, now: Instant) {
        self.write_buf.drain(..n);
        self.write_partial = !self.write_buf.is_empty();
        // Progress, and back under the limit: the output is not stuck.
        if n > 0 && !self.output_full(config) {
            self.output_full_since = None;
        }
        self.track_output(config, now);
        if !self.write_buf.is_empty() {
            return;
        }
        self.write_buf = Vec::new();
        // A Lingering peer that has already left has nothing more to wait for.
        if self.state == ConnState::Lingering && self.peer_finished {
            self.set_state(ConnState::Closed, now);
        }
    }

    /// Our last bytes are out: time to send FIN and wait for the peer's.
    pub fn wants_half_close(&self) -> bool {
        self.state == ConnState::Lingering && self.write_buf.is_empty() && !self.half_closed
    }

    /// The loop sent FIN (`shutdown(Write)`).
    pub fn half_closed(&mut self) {
        self.half_closed = true;
    }

    // ---- time ----

    /// When this session next needs `on_time`: the handshake, heartbeat or
    /// close timeout, or the end of the grace its unread output gets.
    pub fn poll_at(&self, config: &Config) -> Option<Instant> {
        let state_due = self.since + self.state_timeout(config)?;
        let output_due = self.output_full_since.map(|since| since + config.stall);
        let message_due = self
            .unfinished_since
            .map(|since| since + config.message_timeout);
        let earliest = [output_due, message_due].into_iter().flatten().min();
        Some(earliest.map_or(state_due, |due| due.min(state_due)))
    }

    /// How long the current state may last before `on_time` acts.
    fn state_timeout(&self, config: &Config) -> Option<std::time::Duration> {
        match self.state {
            // The slow-loris rule: a head, or a body, must come in this time;
            // an idle kept-alive connection gets as long to send its next one.
            ConnState::Handshaking | ConnState::ReadingBody => Some(config.handshake_timeout),
            ConnState::Open | ConnState::Streaming => Some(config.heartbeat),
            ConnState::Held => Some(config.poll_timeout),
            ConnState::Closing | ConnState::Lingering => Some(config.close_timeout),
            ConnState::Closed => None,
        }
    }

    /// The time has come (or not yet: then nothing happens).
    pub fn on_time(&mut self, config: &Config, now: Instant) {
        let Some(timeout) = self.state_timeout(config) else {
            return;
        };
        if self
            .output_full_since
            .is_some_and(|since| now >= since + config.stall)
        {
            // Its output has stayed over the limit for `--stall-ms`: it does not read.
            return self.end(Ending::SlowConsumer, now);
        }
        let message_due = self.unfinished_since.map(|s| s + config.message_timeout);
        // Not while the loop holds its input: then the delay is ours.
        let overdue = message_due.is_some_and(|due| now >= due) && !self.input_held;
        if self.state == ConnState::Open && overdue {
            return self.end(Ending::Failed(ProtocolError::MessageTimedOut), now);
        }
        if now < self.since + timeout {
            return;
        }
        match self.state {
            ConnState::Handshaking | ConnState::ReadingBody => {
                self.end(Ending::HandshakeTimedOut, now)
            }
            // Silent for a whole interval after our Ping: the peer is gone.
            // Unless the loop stopped reading it: then we cannot know.
            ConnState::Open if self.awaiting_pong && !self.input_held => {
                self.end(Ending::NoPong, now)
            }
            ConnState::Open => {
                // §5.5.2: a Ping; the Pong (or any byte) clears `awaiting_pong`.
                self.send(Opcode::Ping, b"");
                self.awaiting_pong = true;
                self.since = now;
            }
            // The last comment is still queued a whole interval later: not one
            // byte was taken (own output goes out at the first frame boundary).
            ConnState::Streaming if !self.write_buf.is_empty() => {
                self.end(Ending::HeartbeatUnread, now)
            }
            ConnState::Streaming => {
                self.write_buf.extend_from_slice(crate::sse::KEEP_ALIVE);
                self.since = now;
            }
            // The loop answers it (`hold_expired`): it has the log.
            ConnState::Held => {}
            ConnState::Closing | ConnState::Lingering => self.end(Ending::CloseTimedOut, now),
            ConnState::Closed => {}
        }
    }

    // ---- the end ----

    /// Ends the connection: records why (the first ending wins), queues what
    /// the ending calls for, and moves to the state that follows. Every
    /// ending, whatever its cause, passes through here.
    pub fn end(&mut self, ending: Ending, now: Instant) {
        // Over already, or (shutdown) already saying its last words.
        let closing = matches!(self.state, ConnState::Closing | ConnState::Lingering);
        if self.state == ConnState::Closed || (closing && ending == Ending::ShuttingDown) {
            return;
        }
        if self.ending.is_none() {
            self.ending = Some(Box::new(ending.record()));
        }
        let next = self.last_words(&ending, now);
        self.set_state(next, now);
    }

    /// What an ending sends before the connection goes, and the state that follows.
    fn last_words(&mut self, ending: &Ending, now: Instant) -> ConnState {
        if let Some(next) = self.http_last_words(ending, now) {
            return next;
        }
        match (ending, self.state) {
            // §7.1.1: both Close frames have passed (or the peer broke a rule
            // after ours): the server closes TCP first.
            (Ending::PeerClosed(_) | Ending::Failed(_), ConnState::Closing) => ConnState::Closed,
            // §5.5.1: "MUST send a Close frame in response ... typically echoing the status code".
            (Ending::PeerClosed(body), _) => {
                match body {
                    Some(body) => encode_close(&mut self.write_buf, body.code, ""),
                    None => self.send(Opcode::Close, b""),
                }
                self.stop_reading()
            }
            // §7.1.7: send a Close with the code, stop processing input.
            (Ending::Failed(error), _) => {
                encode_close(&mut self.write_buf, error.close_code(), &error.to_string());
                self.stop_reading()
            }
            // §7.1.2: we close first and wait for the peer's Close.
            (Ending::ShuttingDown, ConnState::Open) => {
                encode_close(&mut self.write_buf, 1001, "server shutting down");
                ConnState::Closing
            }
            // Only a connection still handshaking can time out its handshake.
            (Ending::ShuttingDown | Ending::HandshakeTimedOut, state) => state,
            (Ending::SlowConsumer, state) => {
                // What it did not read is dropped; on a WebSocket a Close 1008
                // takes its place, for the loop to try once, unless a frame
                // was cut mid-write (a Close slipped in there would be read
                // as its payload).
                self.write_buf = Vec::new();
                let websocket = matches!(state, ConnState::Open | ConnState::Closing);
                if websocket && !self.write_partial {
                    encode_close(&mut self.write_buf, 1008, "slow consumer");
                }
                ConnState::Closed
            }
            (Ending::HeartbeatUnread, _) => {
                self.write_buf = Vec::new();
                ConnState::Closed
            }
            (Ending::NoPong | Ending::CloseTimedOut | Ending::ConnectionLost, _) => {
                ConnState::Closed
            }
        }
    }

    /// §1.4: the peer "MUST NOT send any more data" after a Close; whatever
    /// follows ours is dropped. Our Close is the last thing we send.
    fn stop_reading(&mut self) -> ConnState {
        self.read_buf = Vec::new();
        self.read_pos = 0;
        self.pending = None;
        self.deferred = None;
        ConnState::Lingering
    }
}
