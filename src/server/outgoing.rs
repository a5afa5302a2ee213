//! Bytes out: write each connection's queued output, once per turn or when
//! `WRITABLE` says the socket has room again.
//!
//! `Server` methods in a file of their own; notes/01-readiness.md#interest
//! explains when `WRITABLE` is registered.

use std::time::Instant;

use log::debug;
use mio::Token;

use super::Server;
use crate::config::Config;
use crate::connection::{Connection, FlushOutcome};
use crate::history::History;
use crate::session::{ConnState, Ending};

impl Server {
    /// WRITABLE: the kernel has room again.
    pub(super) fn on_writable(&mut self, token: Token, now: Instant) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        if conn.session.state() != ConnState::Closed {
            flush_one(conn, &mut self.history, &self.config, now);
            self.follow_up(token, now);
        }
    }

    /// Step 6: writes each connection on the flush list once; if the log
    /// grew, the readers that were waiting for it are on the list too.
    pub(super) fn flush_pending(&mut self, now: Instant) {
        self.release_held_polls(now);
        self.books.wake_waiting_readers(&mut self.connections);
        for token in std::mem::take(&mut self.books.flush_list) {
            let Some(conn) = self.connections.get_mut(&token) else {
                continue;
            };
            conn.queued_for_flush = false;
            if conn.session.state() != ConnState::Closed {
                flush_one(conn, &mut self.history, &self.config, now);
                self.follow_up(token, now);
            }
        }
    }
}

/// Flushes one connection: its own output and its part of the log.
fn flush_one(conn: &mut Connection, history: &mut History, config: &Config, now: Instant) {
    match conn.flush(history, config, now) {
        FlushOutcome::Done => {}
        // A chat reader's own output is small (pongs) and goes out between
        // log frames; the log has its own rule for readers that stop reading.
        FlushOutcome::Blocked if conn.reader.is_none() => conn.session.output_blocked(now),
        FlushOutcome::Blocked => {}
        FlushOutcome::Failed(e) => {
            debug!("{:?} write failed: {e}", conn.token);
            conn.session.end(Ending::ConnectionLost, now);
        }
    }
}
