//! Bytes out and bookkeeping: flush what each connection has queued, and
//! `settle` a connection after anything happened to it (its timer, its
//! `WRITABLE` interest, its place on the flush and reap lists).
//!
//! `Server` methods in a file of their own; notes/01-readiness.md#interest
//! explains when `WRITABLE` is registered.

use std::time::Instant;

use log::debug;
use mio::{Interest, Token};

use super::Server;
use crate::connection::{ConnState, Connection};

impl Server {
    /// WRITABLE: the kernel has room again.
    pub(super) fn on_writable(&mut self, token: Token) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        if conn.state() != ConnState::Closed {
            Self::flush_one(conn, self.config.max_buffered_bytes);
        }
        self.settle(token);
    }

    /// Writes each connection on the flush list once.
    pub(super) fn flush_pending(&mut self) {
        for token in std::mem::take(&mut self.flush_list) {
            let Some(conn) = self.connections.get_mut(&token) else {
                continue;
            };
            conn.queued_for_flush = false;
            if conn.state() != ConnState::Closed {
                Self::flush_one(conn, self.config.max_buffered_bytes);
            }
            self.settle(token);
        }
    }

    /// Flushes one connection. What is still unsent afterwards counts against
    /// `limit` too (see also `settle`).
    pub(super) fn flush_one(conn: &mut Connection, limit: usize) {
        match conn.flush_write_buf() {
            // A Lingering connection whose peer already left has nothing more to wait for.
            Ok(true) if conn.state() == ConnState::Lingering && conn.peer_closed => {
                conn.set_state(ConnState::Closed)
            }
            Ok(false) if conn.state() == ConnState::Open && conn.write_buf.len() > limit => {
                conn.drop_slow_consumer()
            }
            Ok(_) => {}
            Err(e) => {
                debug!("{:?} write failed: {e}", conn.token);
                conn.end(ConnState::Closed, 1006, "", "connection lost");
            }
        }
    }

    // ---- after every event: timers, interest, lists ----

    /// Brings the server's view of one connection up to date after anything
    /// happened to it: its timer follows its state, pending output is
    /// scheduled, `WRITABLE` interest follows a blocked write, a closed
    /// connection is listed for reaping.
    pub(super) fn settle(&mut self, token: Token) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        // Output that piles up while the socket is full (pongs for a ping
        // flood, say) counts against the same bound as broadcasts.
        if conn.write_blocked
            && conn.state() == ConnState::Open
            && conn.write_buf.len() > self.config.max_buffered_bytes
        {
            conn.drop_slow_consumer();
        }
        let state = conn.state();
        if conn.counted_open && state != ConnState::Open {
            conn.counted_open = false;
            self.open_count -= 1;
        }
        if state == ConnState::Closed {
            if let Some(handle) = conn.timer.take() {
                self.timers.cancel(handle);
            }
            self.closed_list.push(token);
            return;
        }
        if conn.timer_state != Some(state) {
            let delay = match state {
                ConnState::Handshaking => self.config.handshake_timeout,
                ConnState::Open => self.config.heartbeat,
                _ => self.config.close_timeout,
            };
            if let Some(handle) = conn.timer.take() {
                self.timers.cancel(handle);
            }
            conn.timer = Some(self.timers.insert(Instant::now() + delay, token));
            conn.timer_state = Some(state);
        }
        if !conn.write_buf.is_empty() && !conn.queued_for_flush && !conn.write_blocked {
            conn.queued_for_flush = true;
            self.flush_list.push(token);
        }
        // Edge-triggered WRITABLE would fire on every drained send buffer; ask
        // for it only while a write has hit WouldBlock with output left over
        // (notes/01-readiness.md#interest). Output queued this turn is written
        // by `flush_pending` first, and most of the time that is enough.
        let wants_writable = conn.write_blocked;
        if wants_writable != conn.writable_registered {
            let interest = if wants_writable {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            match self
                .poll
                .registry()
                .reregister(&mut conn.socket, token, interest)
            {
                Ok(()) => conn.writable_registered = wants_writable,
                Err(e) => {
                    conn.end(ConnState::Closed, 1006, "", "connection lost");
                    debug!("{token:?} reregister failed: {e}");
                    self.closed_list.push(token);
                }
            }
        }
    }
}
