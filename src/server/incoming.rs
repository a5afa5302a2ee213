//! Bytes in: read a connection into its session, then act on what the
//! session makes of them: answer a request head, deliver a message (into the
//! shared log for chat, back to the sender on `/echo`).
//!
//! These are `Server` methods kept in a file of their own so `server.rs` stays
//! the loop; they share its fields. notes/04-broadcast.md follows a message
//! from `on_readable` to `append_to_history`.

use std::time::Instant;

use log::{debug, info};
use mio::Token;

use super::Server;
use crate::connection::{Connection, Hold, READS_PER_TURN, ReadOutcome};
use crate::handshake::{Endpoint, Refusal, Request, Upgrade};
use crate::http::{Answer, Status, switching_protocols};
use crate::message::Message;
use crate::session::{ConnState, Ending, Event, HttpRequest};
use crate::v1;

/// Messages one connection may deliver per turn, besides the byte budget
/// (`READS_PER_TURN` reads): a 6-byte frame costs as much to fan out as a
/// large one, so a flood of tiny frames is bounded in messages too
/// (notes/04-broadcast.md#fairness).
pub const MESSAGES_PER_TURN: usize = 256;

impl Server {
    /// A readiness event said the socket has bytes, or that the peer left.
    pub(super) fn on_readable(&mut self, token: Token, read_closed: bool, now: Instant) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        // A connection on the read backlog is read in step 4 (of this turn,
        // or of the next if it was put there during this one); reading it
        // here too would give it two shares in one turn. One whose input is
        // held is read again when the hold is lifted.
        if conn.session.state() == ConnState::Closed || conn.in_read_backlog || conn.hold.is_some()
        {
            return;
        }
        self.read_and_act(token, !read_closed, now);
    }

    /// Step 4: connections that had more to read than one turn's share.
    pub(super) fn read_backlog(&mut self, backlog: Vec<Token>, now: Instant) {
        for token in backlog {
            let Some(conn) = self.connections.get_mut(&token) else {
                continue;
            };
            conn.in_read_backlog = false;
            if conn.session.state() != ConnState::Closed {
                // No event says whether a FIN came: read until the socket says.
                self.read_and_act(token, false, now);
            }
        }
    }

    /// Reads one share (unless input is held: then what was read is decoded
    /// first), acts on what the session made of it, then on how the read
    /// ended. What was read comes first: a message followed by FIN must
    /// still be delivered.
    fn read_and_act(&mut self, token: Token, trust_short_reads: bool, now: Instant) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        let held_before = conn.hold.is_some();
        let (outcome, hold) = match held_before {
            true => {
                let mut messages = MESSAGES_PER_TURN;
                (None, self.act_on_events(token, &mut messages, now))
            }
            false => self.read_share(token, trust_short_reads, now),
        };
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        self.books.set_hold(conn, hold, now);
        self.limit_unfinished(token, now);
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        match outcome {
            Some(ReadOutcome::More) => self.books.backlog(conn),
            // Bytes may have come while the input was held, with no new edge.
            None if hold.is_none() => self.books.backlog(conn),
            Some(ReadOutcome::PeerClosed) => conn.fin_deferred = true,
            Some(ReadOutcome::Failed(e)) => {
                debug!("{token:?} read failed: {e}");
                conn.session.end(Ending::ConnectionLost, now);
            }
            Some(ReadOutcome::Drained) | None => {}
        }
        if conn.fin_deferred && conn.hold.is_none() {
            conn.fin_deferred = false;
            conn.session.receive_fin(now);
        }
        self.follow_up(token, now);
    }

    /// Up to `READS_PER_TURN` reads, each decoded before the next, so a
    /// connection stops reading as soon as it has used its messages for the
    /// turn (or is held): what it holds undecoded is then one read at most.
    fn read_share(
        &mut self,
        token: Token,
        trust_short_reads: bool,
        now: Instant,
    ) -> (Option<ReadOutcome>, Option<Hold>) {
        let mut messages = MESSAGES_PER_TURN;
        for _ in 0..READS_PER_TURN {
            let Some(conn) = self.connections.get_mut(&token) else {
                return (None, None);
            };
            // Behind a held poll, no more than a head's worth (`read_room`).
            let room = conn.session.read_room().min(self.read_scratch.len());
            let outcome = match room {
                0 => ReadOutcome::More,
                n => conn.read_once(&mut self.read_scratch[..n], trust_short_reads),
            };
            let hold = self.act_on_events(token, &mut messages, now);
            if !matches!(outcome, ReadOutcome::More) || hold.is_some() {
                return (Some(outcome), hold);
            }
        }
        (Some(ReadOutcome::More), None)
    }

    /// A connection left inside a message that takes the unfinished bytes of
    /// all connections over `--max-input-bytes` is failed with 1009:
    /// unfinished messages are bounded for the server as a whole, not only
    /// one by one. Bytes are counted as received, so a header announcing a
    /// large frame costs nothing until its payload comes.
    fn limit_unfinished(&mut self, token: Token, now: Instant) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        let over = self.books.unfinished_with(conn) > self.config.max_input_bytes;
        if conn.session.mid_message() && over {
            info!(
                "{} refused: its unfinished message would take unfinished messages over {} bytes",
                conn.peer, self.config.max_input_bytes
            );
            let error = crate::error::ProtocolError::InputBudgetExceeded;
            conn.session.end(Ending::Failed(error), now);
        }
    }

    /// Takes the session's events, requests and messages, up to this
    /// turn's budget. Returns why it stopped early, if it did.
    fn act_on_events(&mut self, token: Token, budget: &mut usize, now: Instant) -> Option<Hold> {
        loop {
            let redis_accepts = self.redis_accepts();
            let conn = self.connections.get_mut(&token)?;
            if conn.session.output_full(&self.config) {
                return Some(Hold::OutputFull);
            }
            if !conn.session.wants_input() {
                return Some(Hold::Answering);
            }
            if output_must_wait(conn, self.books.output_held, &self.config) {
                return Some(Hold::ServerOutputFull);
            }
            // With --redis, also while Redis is away or behind (server/redis.rs).
            let chat_sender = conn.reader.is_some() && conn.session.state() == ConnState::Open;
            if chat_sender && (!self.history.accepts() || !redis_accepts) {
                return Some(Hold::LogFull);
            }
            if *budget == 0 {
                return Some(Hold::Budget);
            }
            match conn.session.next_event(&self.config, now) {
                Some(Event::Request(request)) => {
                    if let Some(hold) = self.answer_request(token, request, now) {
                        return Some(hold);
                    }
                }
                Some(Event::Message(message)) => self.deliver(token, message, now),
                None => return None,
            }
            *budget -= 1;
        }
    }

    /// What `/status` reports, now.
    fn status(&self) -> Status {
        Status {
            connections: self.books.open_count,
            sse: self.books.stream_count,
            long_poll: self.books.held_count,
            last_id: self.history.last_id(),
            history_messages: self.history.len(),
            history_bytes: self.history.bytes(),
            backend: self.redis_state(),
        }
    }

    /// A complete request gets `101`, a page, `/status`, the chat over
    /// plain HTTP, or a refusal. A request that cannot be acted on yet is
    /// handed back to the session, and the reason returned.
    fn answer_request(&mut self, token: Token, request: HttpRequest, now: Instant) -> Option<Hold> {
        let parsed = Request::parse(&request.head);
        let answer = match &parsed {
            Ok(head) => crate::http::answer(head, &request.body, &self.config, &self.status()),
            Err(refusal) => crate::http::refuse(*refusal),
        };
        let conn = self.connections.get_mut(&token)?;
        match answer {
            Answer::Respond(response) => {
                debug!(
                    "{token:?} {} answered: {}",
                    conn.peer,
                    String::from_utf8_lossy(&response[..12])
                );
                conn.session.respond(&response, now);
            }
            Answer::Refuse(response, refusal) => {
                log_refusal(conn, parsed.as_ref().ok(), refusal);
                conn.session.answer(&response, now);
            }
            Answer::Upgrade(upgrade) => {
                let subprotocol = upgrade.chat.v1.then_some(v1::SUBPROTOCOL);
                let response = switching_protocols(&upgrade.accept, subprotocol);
                conn.session.upgrade(&response, upgrade.endpoint, now);
                self.after_upgrade(token, upgrade, now);
            }
            Answer::Chat(chat) => return self.answer_chat(token, chat, request, now),
        }
        None
    }

    /// The `101` is queued: a chat client's place in the log, and the log line.
    fn after_upgrade(&mut self, token: Token, upgrade: Upgrade, now: Instant) {
        let Some(peer) = self.connections.get(&token).map(|c| c.peer) else {
            return;
        };
        // With --redis, a resume the log cannot serve goes to the stream.
        if upgrade.endpoint == Endpoint::Chat && !self.resume_from_stream(token, &upgrade.chat) {
            self.join_chat(token, upgrade.chat);
        }
        self.follow_up(token, now);
        info!(
            "{peer} upgraded to {:?}; {} open",
            upgrade.endpoint, self.books.open_count
        );
    }

    /// A complete message: into the shared log, or back to its sender on `/echo`.
    fn deliver(&mut self, sender: Token, message: Message, now: Instant) {
        let Some(conn) = self.connections.get_mut(&sender) else {
            return;
        };
        debug!("{sender:?} {} sent {message:?}", conn.peer);
        match conn.session.endpoint() {
            Some(Endpoint::Echo) => queue_message(conn, &message, &self.config, now),
            _ => self.append_to_history(sender, message, now),
        }
    }

    /// A chat message from a WebSocket client: into the shared log, with
    /// the ack its sender gets if it speaks `miochat.v1`.
    pub(super) fn append_to_history(&mut self, sender: Token, message: Message, now: Instant) {
        if self.cluster.is_some() {
            // --redis: the message reaches the log from the room's stream.
            return self.append_to_redis(sender, message);
        }
        let Some(conn) = self.connections.get(&sender) else {
            return;
        };
        let from = display_name(conn).into_boxed_str();
        let id = self.history.last_id() + 1;
        let ack = self.ack_for(sender.0, id);
        self.store(sender.0, from, [message.frame, ack], now);
    }

    /// Stores a chat message once, in each wire format. Nothing is copied to
    /// anyone: each reader writes it from the log when it is flushed, at the
    /// end of the turn (notes/04-broadcast.md#coalescing).
    pub(super) fn store(
        &mut self,
        sender: usize,
        from: Box<str>,
        frames: [Vec<u8>; 2],
        now: Instant,
    ) -> u64 {
        let was_full = self.history.full_since().is_some();
        let id = self.history.append(sender, from, frames, now);
        self.books.log_grew = true;
        if !was_full && self.history.full_since().is_some() {
            self.log_pause(now);
        }
        id
    }
}

/// One line at info per refused request: who, what, and why (the status and
/// the one-line reason the body carries). The path is logged without its
/// query, which may hold a token.
fn log_refusal(conn: &Connection, request: Option<&Request>, refusal: Refusal) {
    let (method, path) = request.map_or(("?", "(malformed request)"), |r| (r.method, r.path));
    super::bookkeeping::log_refused(conn.peer, &format!("{method} {path}"), refusal);
}

/// A server limit, not only a connection's: N clients pipelining requests
/// for the page (a few bytes in, 30 KB out each) must not make the server
/// hold N × `--max-buffered-bytes` of answers. Over `--max-output-bytes`
/// (`held` is what all connections hold unwritten), a connection that holds
/// unwritten output of its own waits before it makes more; one that holds
/// none goes on (it takes one answer before it holds some), so a client
/// that reads its answers is not kept waiting by those that do not. Over
/// twice the limit, all wait: the total stays under that and one answer.
fn output_must_wait(conn: &Connection, held: usize, config: &crate::config::Config) -> bool {
    let makes_output =
        conn.session.reads_requests() || conn.session.endpoint() == Some(Endpoint::Echo);
    let limit = config.max_output_bytes;
    let holds_some = !conn.session.output().is_empty();
    // `held` is as of this connection's last follow-up: count what it has
    // queued since (this turn's answers so far) too.
    let held = held - conn.output_counted + conn.session.output().len();
    makes_output && (held > 2 * limit || held > limit && holds_some)
}

/// How the others see a chat client: its `?name=`, or `guest-<token>`.
pub(super) fn display_name(conn: &Connection) -> String {
    match &conn.name {
        Some(name) => name.to_string(),
        None => format!("guest-{}", conn.token.0),
    }
}

/// Hands an `/echo` reply to its connection: through the socket at once if
/// it is large and nothing waits before it, otherwise (or for the rest) into
/// its session's queue.
fn queue_message(
    conn: &mut Connection,
    message: &Message,
    config: &crate::config::Config,
    now: Instant,
) {
    let rest = conn.write_through(&message.frame);
    conn.session.queue_data(rest, config, now);
}
