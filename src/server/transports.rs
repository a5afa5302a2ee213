//! The chat without WebSocket, on the same loop and the same log
//! (notes/07-sse-or-polling.md):
//! - `GET /events`: a Server-Sent Events stream, a log reader like a
//!   WebSocket, written from the log by the same flush;
//! - `GET /poll`: long-polling, answered at once with what the client
//!   missed, or held until the log grows (step 6) or `--poll-timeout-ms`
//!   passes (step 5);
//! - `POST /send`: the other direction for both, a chat message like any.
//!
//! `Server` methods in a file of their own; `http_chat.rs` checks the
//! requests, `sse.rs` and `long_poll.rs` write the bytes.

use std::borrow::Cow;
use std::time::Instant;

use log::{debug, info};
use mio::Token;

use super::Server;
use super::incoming::display_name;
use crate::connection::Hold;
use crate::frame::Opcode;
use crate::handshake::Refusal;
use crate::history::Format;
use crate::http::{refusal_response, response};
use crate::http_chat::{HttpChat, Listen, Post};
use crate::long_poll::PollWait;
use crate::message::Message;
use crate::session::{ConnState, HttpRequest};
use crate::{long_poll, sse, v1};

impl Server {
    /// `/events`, `/poll` or `/send`, checked by `http_chat.rs`.
    pub(super) fn answer_chat(
        &mut self,
        token: Token,
        chat: HttpChat,
        request: HttpRequest,
        now: Instant,
    ) -> Option<Hold> {
        match chat {
            HttpChat::Events(listen) => self.open_event_stream(token, listen, now),
            HttpChat::Poll(listen) => self.answer_poll(token, listen, now),
            // A full log (or, with --redis, a Redis away or behind) takes no
            // message: the request waits in the session, and its bytes
            // behind it in TCP, as a WebSocket sender's do.
            HttpChat::Send(_) if !self.history.accepts() || !self.redis_accepts() => {
                let conn = self.connections.get_mut(&token)?;
                conn.session.defer(request, now);
                return Some(Hold::LogFull);
            }
            HttpChat::Send(post) => self.accept_post(token, post, now),
        }
        None
    }

    /// `GET /events`: the stream's head, a welcome with the client's key,
    /// a `reset` if its history is gone; then it reads the log like a
    /// WebSocket client, from where it left off.
    fn open_event_stream(&mut self, token: Token, listen: Listen, now: Instant) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        conn.name = listen.name.map(String::into_boxed_str);
        let last_id = self.history.last_id();
        let key = self.client_keys.issue(token.0);
        let welcome =
            v1::welcome_with_key(self.history.epoch(), last_id, &display_name(conn), &key);
        let mut head = sse::stream_head();
        head.extend(sse::event(None, &welcome));
        let peer = conn.peer;
        let epoch = listen.epoch.as_deref();
        let start = self.start_point(peer, listen.since, epoch, log::Level::Info);
        if let Some(reset) = &start.reset {
            // With the id, `EventSource` resumes after it on its own reconnect.
            head.extend(sse::event(Some(last_id), reset));
        }
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        conn.session.stream(&head, now);
        self.join_log(token, start.next, Format::Sse);
        self.follow_up(token, now);
        info!("{peer} streams events; {} streams", self.books.stream_count);
    }

    /// `GET /poll`: a welcome (no `since`), a batch of what came after
    /// `since` (or a `reset`), or, with nothing to say, the request held.
    fn answer_poll(&mut self, token: Token, listen: Listen, now: Instant) {
        let client = match listen.client.as_deref().map(|k| self.client_keys.check(k)) {
            Some(None) => return self.refuse(token, "GET /poll", "unknown client key", now),
            Some(Some(id)) => Some(id),
            None => None,
        };
        let Some(since) = listen.since else {
            return self.welcome_poller(token, listen.name, now);
        };
        let Some(peer) = self.connections.get(&token).map(|c| c.peer) else {
            return;
        };
        let epoch = listen.epoch.as_deref();
        let start = self.start_point(peer, Some(since), epoch, log::Level::Debug);
        let wait = PollWait { since, client };
        if start.reset.is_some() || start.next <= self.history.last_id() {
            return self.answer_held_poll(token, wait, start.reset, now);
        }
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        conn.poll = Some(Box::new(wait));
        conn.session.hold_request(now);
        self.forget_answered_polls();
        self.books.held_polls.push(token);
        self.follow_up(token, now);
    }

    /// A first poll: the welcome, with a key for a new sender id.
    fn welcome_poller(&mut self, token: Token, name: Option<String>, now: Instant) {
        let id = self.next_token;
        self.next_token += 1;
        let name = name.unwrap_or_else(|| format!("guest-{id}"));
        let last_id = self.history.last_id();
        let key = self.client_keys.issue(id);
        let welcome = v1::welcome_with_key(self.history.epoch(), last_id, &name, &key);
        let body = long_poll::batch(self.history.epoch(), [welcome.as_str()], last_id);
        self.respond_json(token, &body, now);
    }

    /// Answers a poll with the entries after `wait.since` (at most a
    /// batch), or with a `reset`.
    fn answer_held_poll(
        &mut self,
        token: Token,
        wait: PollWait,
        reset: Option<String>,
        now: Instant,
    ) {
        let body = match reset {
            Some(reset) => long_poll::batch(
                self.history.epoch(),
                [reset.as_str()],
                self.history.last_id(),
            ),
            None => self.poll_batch(wait, now),
        };
        if let Some(conn) = self.connections.get_mut(&token) {
            conn.poll = None;
        }
        self.respond_json(token, &body, now);
    }

    /// The entries after `since`, up to `long_poll::BATCH_BYTES` (at least
    /// one). Each object is the entry's v1 form, made once for every poll
    /// and v1 reader (`History::v1_object`) and copied once, into the
    /// answer; the poller's own messages are acks.
    fn poll_batch(&mut self, wait: PollWait, now: Instant) -> String {
        // First make the forms the batch needs and find where it ends...
        let (mut bytes, mut last) = (0, wait.since);
        while bytes < long_poll::BATCH_BYTES
            && let Some(sender) = self.history.get(last + 1).map(|e| e.sender)
        {
            last += 1;
            bytes += match Some(sender) == wait.client {
                true => v1::ack(last).len(),
                false => self.history.v1_object(last, now).map_or(0, <[u8]>::len),
            };
        }
        // ...then write it from the log.
        let history = &self.history;
        let objects: Vec<Cow<str>> = (wait.since + 1..=last)
            .filter_map(|id| {
                let entry = history.get(id)?;
                if Some(entry.sender) == wait.client {
                    return Some(Cow::Owned(v1::ack(id)));
                }
                // A placeholder with nothing to say (`--redis`) adds nothing.
                let object = std::str::from_utf8(history.v1_object_made(id)?).ok()?;
                (!object.is_empty()).then_some(Cow::Borrowed(object))
            })
            .collect();
        long_poll::batch(history.epoch(), objects.iter().map(|o| o.as_ref()), last)
    }

    /// Step 6, when the log grew, and step 5, when a poll waited long
    /// enough: held polls get what came (or an empty batch), with a
    /// `reset` if what they waited after was evicted meanwhile.
    pub(super) fn release_held_polls(&mut self, now: Instant) {
        if !self.books.log_grew && !self.books.polls_to_release {
            return;
        }
        self.books.polls_to_release = false;
        let last_id = self.history.last_id();
        for token in std::mem::take(&mut self.books.held_polls) {
            // One held this turn, after what the log grew by, waits on; so
            // does every one once the answers not yet written are over
            // `--max-output-bytes`: a message released to N polls is N
            // copies, and they go out as earlier ones are written.
            let waiting = self.connections.get(&token).and_then(|c| c.poll.as_deref());
            let over = self.books.output_held > self.config.max_output_bytes;
            match waiting {
                Some(wait) if wait.since >= last_id => self.books.held_polls.push(token),
                Some(_) if over => {
                    self.books.polls_to_release = true;
                    self.books.held_polls.push(token);
                }
                _ => self.release_poll(token, now),
            }
        }
    }

    /// Drops from `held_polls` the polls answered or gone since they were
    /// held (by their timeout, or their client leaving), once they are the
    /// majority: a client that polls and hangs up, again and again, while
    /// nobody speaks, must not grow the list. Amortised O(1) per poll.
    fn forget_answered_polls(&mut self) {
        if self.books.held_polls.len() <= 2 * self.books.held_count + 16 {
            return;
        }
        let connections = &self.connections;
        self.books.held_polls.retain(|token| {
            connections
                .get(token)
                .is_some_and(|c| c.session.state() == ConnState::Held)
        });
    }

    /// Answers one held poll, if it is still held.
    pub(super) fn release_poll(&mut self, token: Token, now: Instant) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        let (Some(&wait), ConnState::Held) = (conn.poll.as_deref(), conn.session.state()) else {
            return;
        };
        let peer = conn.peer;
        let start = self.start_point(peer, Some(wait.since), None, log::Level::Debug);
        self.answer_held_poll(token, wait, start.reset, now);
        // What it pipelined behind the poll is read from the next turn on:
        // no new readiness edge will say it is there.
        if let Some(conn) = self.connections.get_mut(&token) {
            self.books.set_hold(conn, Some(Hold::Budget), now);
        }
    }

    /// `POST /send`: the body into the log, from the stream or poller its
    /// key names (its name, and an ack in place of its own message), or
    /// from this connection. The answer is the `ack`, with the id.
    fn accept_post(&mut self, token: Token, post: Post, now: Instant) {
        let sender = match post.client.as_deref().map(|k| self.client_keys.check(k)) {
            Some(None) => return self.refuse(token, "POST /send", "unknown client key", now),
            Some(Some(id)) => id,
            None => token.0,
        };
        let stream = self
            .connections
            .get(&Token(sender))
            .filter(|c| c.session.state() == ConnState::Streaming);
        let from = match (stream, post.name) {
            (Some(stream), _) => display_name(stream),
            (None, Some(name)) => name,
            (None, None) => format!("guest-{sender}"),
        };
        let frame = Message::new(Opcode::Text, post.text.as_bytes()).frame;
        debug!("{token:?} posted {} bytes as {from}", post.text.len());
        if self.cluster.is_some() {
            // --redis: the id is the room's, known when the stream gives the
            // message back; the stream (or the next poll) acks it then.
            self.submit_to_redis(sender, from.into_boxed_str(), frame);
            return self.respond_status(token, 202, r#"{"type":"accepted"}"#, now);
        }
        let id = self.history.last_id() + 1;
        let ack = self.ack_for(sender, id);
        self.store(sender, from.into_boxed_str(), [frame, ack], now);
        self.respond_json(token, &v1::ack(id), now);
    }

    /// What the sender of entry `id` gets in its place, in its own format:
    /// the `ack` as a frame (a `miochat.v1` WebSocket), as an event (an SSE
    /// stream), or nothing (a plain client, a poller: its poll makes the ack).
    pub(super) fn ack_for(&self, sender: usize, id: u64) -> Vec<u8> {
        let format = self
            .connections
            .get(&Token(sender))
            .and_then(|c| c.reader.as_ref())
            .map(|r| r.format);
        match format {
            Some(Format::V1) => Message::new(Opcode::Text, v1::ack(id).as_bytes()).frame,
            Some(Format::Sse) => sse::event(Some(id), &v1::ack(id)),
            _ => Vec::new(),
        }
    }

    /// A `200` with a JSON body; the connection stays if the request allows.
    fn respond_json(&mut self, token: Token, body: &str, now: Instant) {
        self.respond_status(token, 200, body, now);
    }

    fn respond_status(&mut self, token: Token, status: u16, body: &str, now: Instant) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        let keep_alive = conn.session.keeps_alive();
        debug!(
            "{token:?} {} answered: {} bytes of JSON",
            conn.peer,
            body.len()
        );
        let bytes = response(status, "application/json", body.as_bytes(), keep_alive);
        conn.session.respond(&bytes, now);
        self.follow_up(token, now);
    }

    /// A 400 found by the loop (it needed the loop's state to know).
    fn refuse(&mut self, token: Token, request: &str, reason: &'static str, now: Instant) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        let refusal = Refusal {
            status: 400,
            reason,
        };
        super::bookkeeping::log_refused(conn.peer, request, refusal);
        conn.session.answer(&refusal_response(refusal), now);
    }
}
