//! Bytes in: read a connection, finish its handshake, decode its frames,
//! and deliver each message (to the other chat clients, or back on `/echo`).
//!
//! These are `Server` methods kept in a file of their own so `server.rs` stays
//! the loop; they share its fields. notes/04-broadcast.md follows a message
//! from `on_readable` to `broadcast_from`.

use log::{debug, info};
use mio::Token;

use super::{MAX_HEAD_BYTES, Server, WELCOME};
use crate::connection::{ConnState, ReadOutcome};
use crate::frame::{Opcode, encode_frame};
use crate::handshake::{Endpoint, Refusal, Request, find_head_end_after};
use crate::http::{Answer, refusal_response, switching_protocols};

impl Server {
    /// Reads what the socket has, then acts on it according to the state.
    pub(super) fn on_readable(&mut self, token: Token, fin_announced: bool) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        if conn.state() == ConnState::Closed {
            return;
        }
        let searched = conn.read_buf.len();
        let outcome = conn.read_available(&mut self.read_scratch, fin_announced);
        // Act on what was read before acting on how the read ended: a message
        // followed by FIN must still be delivered.
        match conn.state() {
            ConnState::Handshaking => self.try_finish_handshake(token, searched),
            ConnState::Open | ConnState::Closing => self.decode_frames(token),
            ConnState::Lingering | ConnState::Closed => {}
        }
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        match outcome {
            ReadOutcome::Drained => {}
            ReadOutcome::BudgetSpent => {
                if !conn.in_read_backlog && conn.state() != ConnState::Closed {
                    conn.in_read_backlog = true;
                    self.read_backlog.push(token);
                }
            }
            ReadOutcome::PeerClosed => match conn.state() {
                // §7.1.5: no Close frame before the TCP connection went away: 1006.
                ConnState::Open => conn.end(ConnState::Closed, 1006, "", "connection lost"),
                // An answer is still being written: the peer may read after its FIN.
                ConnState::Lingering if !conn.write_buf.is_empty() => {}
                _ => conn.set_state(ConnState::Closed),
            },
            ReadOutcome::Failed(e) => {
                debug!("{token:?} read failed: {e}");
                conn.end(ConnState::Closed, 1006, "", "connection lost");
            }
        }
        self.settle(token);
    }

    /// Waits for `\r\n\r\n`, then answers the request head: `101`, a page, or a refusal.
    /// The first `searched` bytes of `read_buf` are known not to end the head.
    pub(super) fn try_finish_handshake(&mut self, token: Token, searched: usize) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        const TOO_LARGE: Refusal = Refusal {
            status: 431,
            reason: "request head over 8 KiB",
        };
        let too_large = || Answer::Http(refusal_response(TOO_LARGE));
        let (answer, head_end) = match find_head_end_after(&conn.read_buf, searched) {
            Some(end) if end <= MAX_HEAD_BYTES => {
                let answer = match Request::parse(&conn.read_buf[..end]) {
                    Ok(request) => crate::http::answer(&request, &self.config, self.open_count),
                    Err(refusal) => Answer::Http(refusal_response(refusal)),
                };
                (answer, end)
            }
            // Over the limit, complete or not: refused without being parsed.
            Some(_) => (too_large(), 0),
            None if conn.read_buf.len() > MAX_HEAD_BYTES => (too_large(), 0),
            None => return, // not complete yet
        };
        match answer {
            Answer::Http(response) => {
                debug!(
                    "{token:?} {} answered: {}",
                    conn.peer,
                    String::from_utf8_lossy(&response[..12])
                );
                conn.read_buf = Vec::new();
                conn.write_buf.extend_from_slice(&response);
                conn.set_state(ConnState::Lingering);
            }
            Answer::Upgrade(upgrade) => {
                conn.write_buf
                    .extend_from_slice(&switching_protocols(&upgrade.accept));
                // Bytes after the head are the client's first frames: keep them.
                conn.read_buf.drain(..head_end);
                conn.endpoint = Some(upgrade.endpoint);
                conn.set_state(ConnState::Open);
                conn.counted_open = true;
                self.open_count += 1;
                info!(
                    "{} upgraded to {:?}; {} open",
                    conn.peer, upgrade.endpoint, self.open_count
                );
                if upgrade.endpoint == Endpoint::Chat {
                    encode_frame(
                        &mut conn.write_buf,
                        true,
                        Opcode::Text,
                        WELCOME.as_bytes(),
                        None,
                    );
                }
                self.decode_frames(token);
            }
        }
    }

    /// Decodes every complete message and delivers it: to the other chat
    /// clients, or back to the sender on `/echo`.
    pub(super) fn decode_frames(&mut self, token: Token) {
        loop {
            let Some(conn) = self.connections.get_mut(&token) else {
                return;
            };
            self.outgoing.clear();
            if conn
                .next_message(self.config.max_message_bytes, &mut self.outgoing)
                .is_none()
            {
                return;
            }
            match conn.endpoint {
                Some(Endpoint::Echo) => {
                    conn.queue_data(&self.outgoing, self.config.max_buffered_bytes);
                }
                _ => self.broadcast_from(token),
            }
        }
    }

    /// Appends the encoded frame in `outgoing` to every other open chat client.
    /// Nothing is written yet: each recipient is flushed once, at the end of the
    /// turn, however many messages it got (notes/04-broadcast.md#coalescing).
    pub(super) fn broadcast_from(&mut self, sender: Token) {
        let limit = self.config.max_buffered_bytes;
        for (&token, conn) in self.connections.iter_mut() {
            if token == sender
                || conn.state() != ConnState::Open
                || conn.endpoint != Some(Endpoint::Chat)
            {
                continue;
            }
            if !conn.queue_data(&self.outgoing, limit) {
                self.closed_list.push(token);
                continue;
            }
            // A connection whose socket is full is flushed by its WRITABLE event instead.
            if !conn.queued_for_flush && !conn.write_blocked {
                conn.queued_for_flush = true;
                self.flush_list.push(token);
            }
        }
    }
}
