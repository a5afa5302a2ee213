//! Time: a connection's timer fired. What it means (handshake timeout,
//! heartbeat, close timeout) is the session's to decide, from its state.
//! notes/05-timers.md draws the wheel.

use std::time::Instant;

use super::Server;

impl Server {
    /// Step 5: fires every due timer. Each connection has one, armed by
    /// `follow_up` for its session's `poll_at`; the log has its stall deadline.
    pub(super) fn fire_timers(&mut self, now: Instant) {
        self.drop_stalled_readers(now);
        let mut due = Vec::new();
        self.books.timers.expire(now, &mut due);
        for token in due {
            let Some(conn) = self.connections.get_mut(&token) else {
                continue;
            };
            // It fired: the handle is spent, and `follow_up` arms the next one.
            conn.timer = None;
            conn.session.on_time(&self.config, now);
            // A long poll that waited long enough: an empty batch (the
            // session cannot say it: the batch comes from the log).
            if conn.session.hold_expired(&self.config, now) {
                self.release_poll(token, now);
            }
            self.follow_up(token, now);
        }
    }
}
