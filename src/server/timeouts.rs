//! Time: what a connection's one timer means when it fires (handshake
//! timeout, heartbeat, close timeout). notes/05-timers.md draws the wheel.

use std::time::Instant;

use log::debug;
use mio::Token;

use super::Server;
use crate::connection::ConnState;
use crate::frame::{Opcode, encode_frame};
use crate::handshake::Refusal;
use crate::http::refusal_response;

impl Server {
    /// Fires every due timer. Each connection has one; its state says what it means.
    pub(super) fn fire_timers(&mut self, now: Instant) {
        let mut due = Vec::new();
        self.timers.expire(now, &mut due);
        for token in due {
            self.on_timer(token);
        }
    }

    /// One connection's timer fired: a handshake or close timeout, or a heartbeat.
    pub(super) fn on_timer(&mut self, token: Token) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        conn.timer = None;
        conn.timer_state = None;
        match conn.state() {
            ConnState::Handshaking => {
                debug!("{} handshake timed out", conn.peer);
                let refusal = Refusal {
                    status: 408,
                    reason: "request head not completed in time",
                };
                conn.write_best_effort(&refusal_response(refusal));
                conn.set_state(ConnState::Closed);
            }
            ConnState::Open if conn.awaiting_pong => {
                // Silent for a whole interval after our Ping: the peer is gone.
                // No Close frame: nobody is there to read it.
                conn.end(ConnState::Closed, 1006, "no pong", "reaped by heartbeat");
            }
            ConnState::Open => {
                // §5.5.2: a Ping; the Pong (or any frame) clears `awaiting_pong`.
                encode_frame(&mut conn.write_buf, true, Opcode::Ping, b"", None);
                conn.awaiting_pong = true;
            }
            ConnState::Closing | ConnState::Lingering => {
                debug!("{} did not close in time", conn.peer);
                conn.set_state(ConnState::Closed);
            }
            ConnState::Closed => {}
        }
        self.settle(token);
    }
}
