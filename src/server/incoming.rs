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

use super::{Server, WELCOME};
use crate::connection::{Connection, Hold, READS_PER_TURN, ReadOutcome};
use crate::frame::Opcode;
use crate::handshake::{ChatOptions, Endpoint, Request};
use crate::history::{Format, Reader};
use crate::http::{Answer, Status, refusal_response, switching_protocols};
use crate::message::Message;
use crate::session::{ConnState, Ending, Event};
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
            let outcome = conn.read_once(&mut self.read_scratch, trust_short_reads);
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

    /// Takes the session's events, request heads and messages, up to this
    /// turn's budget. Returns why it stopped early, if it did.
    fn act_on_events(&mut self, token: Token, budget: &mut usize, now: Instant) -> Option<Hold> {
        loop {
            let redis_accepts = self.redis_accepts();
            let conn = self.connections.get_mut(&token)?;
            if conn.session.output_full(&self.config) {
                return Some(Hold::OutputFull);
            }
            // With --redis, also while Redis is away or behind (server/redis.rs).
            if conn.reader.is_some() && (!self.history.accepts() || !redis_accepts) {
                return Some(Hold::LogFull);
            }
            if *budget == 0 {
                return Some(Hold::Budget);
            }
            match conn.session.next_event(&self.config, now) {
                Some(Event::Request(head)) => self.answer_request(token, &head, now),
                Some(Event::Message(message)) => self.deliver(token, message, now),
                None => return None,
            }
            *budget -= 1;
        }
    }

    /// A complete request head gets `101`, a page, `/status`, or a refusal.
    fn answer_request(&mut self, token: Token, head: &[u8], now: Instant) {
        let status = Status {
            connections: self.books.open_count,
            last_id: self.history.last_id(),
            history_messages: self.history.len(),
            history_bytes: self.history.bytes(),
            backend: self.redis_state(),
        };
        let answer = match Request::parse(head) {
            Ok(request) => crate::http::answer(&request, &self.config, &status),
            Err(refusal) => Answer::Http(refusal_response(refusal)),
        };
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        match answer {
            Answer::Http(response) => {
                debug!(
                    "{token:?} {} answered: {}",
                    conn.peer,
                    String::from_utf8_lossy(&response[..12])
                );
                conn.session.answer(&response, now);
            }
            Answer::Upgrade(upgrade) => {
                let subprotocol = upgrade.chat.v1.then_some(v1::SUBPROTOCOL);
                let response = switching_protocols(&upgrade.accept, subprotocol);
                conn.session.upgrade(&response, upgrade.endpoint, now);
                let peer = conn.peer;
                // With --redis, a resume the log cannot serve goes to the stream.
                if upgrade.endpoint == Endpoint::Chat
                    && !self.resume_from_stream(token, &upgrade.chat)
                {
                    self.join_chat(token, upgrade.chat);
                }
                self.follow_up(token, now);
                info!(
                    "{peer} upgraded to {:?}; {} open",
                    upgrade.endpoint, self.books.open_count
                );
            }
        }
    }

    /// A new chat connection: its welcome, and its place in the log — live,
    /// or (for a `miochat.v1` client resuming) just after the last id it
    /// saw, or live after a `reset` when that history is gone.
    fn join_chat(&mut self, token: Token, options: ChatOptions) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        conn.name = options.name.map(String::into_boxed_str);
        let last_id = self.history.last_id();
        let mut next = last_id + 1;
        let format = match options.v1 {
            true => Format::V1,
            false => Format::Plain,
        };
        if format == Format::Plain {
            conn.session.send(Opcode::Text, WELCOME.as_bytes());
        } else {
            let welcome = v1::welcome(self.history.epoch(), last_id, &display_name(conn));
            conn.session.send(Opcode::Text, welcome.as_bytes());
            if let Some(since) = options.since {
                let epoch = options.epoch.as_deref().unwrap_or(self.history.epoch());
                match self.history.resume_point(since, epoch) {
                    Some(at) => {
                        info!(
                            "{} resumes after {since}: replaying {} entries",
                            conn.peer,
                            next - at
                        );
                        next = at;
                    }
                    None => {
                        // The epoch is the client's: at most 40 characters of it in the log.
                        let shown: String = epoch.chars().take(40).collect();
                        info!(
                            "{} resumes after {since} (epoch {shown:?}): history gone, reset",
                            conn.peer
                        );
                        conn.session
                            .send(Opcode::Text, v1::reset(last_id).as_bytes());
                    }
                }
            }
        }
        self.history.join(next);
        conn.reader = Some(Reader {
            next,
            offset: 0,
            format,
            token: token.0,
        });
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

    /// Stores a chat message once, in each wire format. Nothing is copied to
    /// anyone: each reader writes it from the log when it is flushed, at the
    /// end of the turn (notes/04-broadcast.md#coalescing).
    pub(super) fn append_to_history(&mut self, sender: Token, message: Message, now: Instant) {
        if self.cluster.is_some() {
            // --redis: the message reaches the log from the room's stream.
            return self.append_to_redis(sender, message);
        }
        let Some(conn) = self.connections.get(&sender) else {
            return;
        };
        let id = self.history.last_id() + 1;
        let ack = match conn.reader.as_ref().map(|r| r.format) {
            Some(Format::V1) => Message::new(Opcode::Text, v1::ack(id).as_bytes()).frame,
            _ => Vec::new(),
        };
        let from = display_name(conn).into_boxed_str();
        let was_full = self.history.full_since().is_some();
        self.history
            .append(sender.0, from, [message.frame, ack], now);
        self.books.log_grew = true;
        if !was_full && self.history.full_since().is_some() {
            self.log_pause(now);
        }
    }
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
