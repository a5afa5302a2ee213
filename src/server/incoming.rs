//! Bytes in: read a connection into its session, then act on what the
//! session makes of them: answer a request head, deliver a message (to the
//! other chat clients, or back on `/echo`).
//!
//! These are `Server` methods kept in a file of their own so `server.rs` stays
//! the loop; they share its fields. notes/04-broadcast.md follows a message
//! from `on_readable` to `broadcast_from`.

use std::time::Instant;

use log::{debug, info};
use mio::Token;

use super::{Server, WELCOME};
use crate::connection::{Connection, ReadOutcome};
use crate::frame::Opcode;
use crate::handshake::{Endpoint, Request};
use crate::http::{Answer, refusal_response, switching_protocols};
use crate::message::Message;
use crate::session::{ConnState, Ending, Event};

impl Server {
    /// A readiness event said the socket has bytes, or that the peer left.
    pub(super) fn on_readable(&mut self, token: Token, read_closed: bool, now: Instant) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        // A connection on the read backlog is read in step 4 of this turn;
        // reading it here too would give it two shares in one turn.
        if conn.session.state() == ConnState::Closed || conn.in_read_backlog {
            return;
        }
        self.read_and_act(token, !read_closed, now);
    }

    /// Step 4: connections that had more to read than one turn's share.
    pub(super) fn read_backlog(&mut self, now: Instant) {
        for token in std::mem::take(&mut self.books.read_backlog) {
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

    /// Reads one share, acts on what the session made of it, then on how
    /// the read ended. What was read comes first: a message followed by FIN
    /// must still be delivered.
    fn read_and_act(&mut self, token: Token, trust_short_reads: bool, now: Instant) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        let outcome = conn.read_available(&mut self.read_scratch, trust_short_reads);
        self.act_on_events(token, now);
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        match outcome {
            ReadOutcome::Drained => {}
            ReadOutcome::BudgetSpent => {
                if conn.session.state() != ConnState::Closed {
                    conn.in_read_backlog = true;
                    self.books.read_backlog.push(token);
                }
            }
            ReadOutcome::PeerClosed => conn.session.receive_fin(now),
            ReadOutcome::Failed(e) => {
                debug!("{token:?} read failed: {e}");
                conn.session.end(Ending::ConnectionLost, now);
            }
        }
        self.follow_up(token, now);
    }

    /// Takes every event the session has: request heads and messages.
    fn act_on_events(&mut self, token: Token, now: Instant) {
        loop {
            let Some(conn) = self.connections.get_mut(&token) else {
                return;
            };
            match conn.session.next_event(&self.config, now) {
                Some(Event::Request(head)) => self.answer_request(token, &head, now),
                Some(Event::Message(message)) => self.deliver(token, message, now),
                None => return,
            }
        }
    }

    /// A complete request head gets `101`, a page, `/status`, or a refusal.
    fn answer_request(&mut self, token: Token, head: &[u8], now: Instant) {
        let answer = match Request::parse(head) {
            Ok(request) => crate::http::answer(&request, &self.config, self.books.open_count),
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
                let response = switching_protocols(&upgrade.accept);
                conn.session.upgrade(&response, upgrade.endpoint, now);
                if upgrade.endpoint == Endpoint::Chat {
                    conn.session.send(Opcode::Text, WELCOME.as_bytes());
                }
                let peer = conn.peer;
                self.follow_up(token, now);
                info!(
                    "{peer} upgraded to {:?}; {} open",
                    upgrade.endpoint, self.books.open_count
                );
            }
        }
    }

    /// A complete message: to the other chat clients, or back to its sender on `/echo`.
    fn deliver(&mut self, sender: Token, message: Message, now: Instant) {
        let Some(conn) = self.connections.get_mut(&sender) else {
            return;
        };
        debug!("{sender:?} {} sent {message:?}", conn.peer);
        match conn.session.endpoint() {
            Some(Endpoint::Echo) => queue_message(conn, &message, &self.config, now),
            _ => self.broadcast_from(sender, &message, now),
        }
    }

    /// Queues the message's frame for every other open chat client. Nothing
    /// is written yet (except large frames, see `write_through`): each
    /// recipient is flushed once, at the end of the turn, however many
    /// messages it got (notes/04-broadcast.md#coalescing).
    pub(super) fn broadcast_from(&mut self, sender: Token, message: &Message, now: Instant) {
        let registry = self.poll.registry();
        for (&token, conn) in self.connections.iter_mut() {
            if token == sender
                || conn.session.state() != ConnState::Open
                || conn.session.endpoint() != Some(Endpoint::Chat)
            {
                continue;
            }
            queue_message(conn, message, &self.config, now);
            self.books.follow_up(conn, registry, &self.config, now);
        }
    }
}

/// Hands one message's frame to a connection: through the socket at once if
/// it is large and nothing waits before it, otherwise (or for the rest) into
/// its session's queue, which enforces `--max-buffered-bytes`.
fn queue_message(
    conn: &mut Connection,
    message: &Message,
    config: &crate::config::Config,
    now: Instant,
) {
    let rest = conn.write_through(&message.frame);
    conn.session.queue_data(rest, config, now);
}
