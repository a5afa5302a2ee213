//! Flow control on the shared log: senders are slowed instead of readers
//! dropped (notes/09-shared-log.md#flow-control).
//!
//! The rule, in three steps:
//! 1. an entry an open reader has not written yet is never evicted, so a
//!    reader that keeps reading never loses a message;
//! 2. when the log is full of such entries, chat senders are not read (their
//!    bytes wait in TCP: backpressure) until readers have freed a quarter of
//!    it, so a flooding sender goes at the pace of the slowest reader;
//! 3. if the log stays full for `--stall-ms`, the readers that hold it are
//!    dropped as slow consumers (close 1008 attempted) and senders resume: a
//!    stuck or trickling reader costs the room `--stall-ms`, once.

use std::time::{Duration, Instant};

use log::{debug, info, warn};

use super::Server;
use crate::connection::Hold;
use crate::session::{ConnState, Ending};

impl Server {
    /// The log just became full: say who holds it (at info once a second at
    /// most: a flood pauses its senders many times a second).
    pub(super) fn log_pause(&mut self, now: Instant) {
        let quiet = self
            .books
            .pause_logged_at
            .is_some_and(|at| now < at + Duration::from_secs(1));
        if quiet && !log::log_enabled!(log::Level::Debug) {
            return;
        }
        if !quiet {
            self.books.pause_logged_at = Some(now);
        }
        let oldest = self.history.first_id();
        let holders: Vec<String> = self
            .connections
            .values()
            .filter(|c| c.reader.as_ref().is_some_and(|r| r.next == oldest))
            .map(|c| c.peer.to_string())
            .collect();
        let shown = holders.len().min(3);
        let more = match holders.len() - shown {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        let level = if quiet {
            log::Level::Debug
        } else {
            log::Level::Info
        };
        log::log!(
            level,
            "senders paused: the log is full ({} messages, {} bytes); id {oldest} is unread by {}{more}",
            self.history.len(),
            self.history.bytes(),
            holders[..shown].join(", ")
        );
    }

    /// How long `poll` may sleep before the log's stall deadline, if senders wait.
    pub(super) fn stall_timeout(&self, now: Instant) -> Option<Duration> {
        let since = self.books.paused_since?;
        Some((since + self.config.stall).saturating_duration_since(now))
    }

    /// Step 5, for the log: if senders have waited `--stall-ms`, the readers
    /// that hold the log full are dropped.
    pub(super) fn drop_stalled_readers(&mut self, now: Instant) {
        // Only while someone waits: a slow reader with no sender held up harms nobody.
        let Some(since) = self.books.paused_since else {
            return;
        };
        if now < since + self.config.stall {
            return;
        }
        if self.history.accepts() {
            // Senders wait for Redis (--redis), not for readers: no one to
            // drop; the next look is a stall later.
            self.books.paused_since = Some(now);
            return;
        }
        let cutoff = self.history.stall_cutoff();
        // Any reader below the cutoff: also one that is closing, but still
        // holds its place to finish a frame it had begun.
        let stalled: Vec<_> = self
            .connections
            .values()
            .filter(|c| c.session.state() != ConnState::Closed)
            .filter(|c| c.reader.as_ref().is_some_and(|r| r.next < cutoff))
            .map(|c| c.token)
            .collect();
        for token in stalled {
            let Some(conn) = self.connections.get_mut(&token) else {
                continue;
            };
            let next = conn.reader.as_ref().map_or(0, |r| r.next);
            warn!(
                "{} is a slow consumer: it held the full log for {} ms at id {next}; dropping it",
                conn.peer,
                self.config.stall.as_millis()
            );
            conn.session.end(Ending::SlowConsumer, now);
            self.follow_up(token, now);
        }
        // The next look is a whole stall later, whatever this one found:
        // a deadline left in the past would make every `poll` return at once.
        self.books.paused_since = Some(now);
    }

    /// After step 7: once the unwritten output of all connections is back
    /// to three quarters of `--max-output-bytes`, the connections that
    /// waited for it are read again (next turn, through the read backlog).
    /// A peer that does not read its answers is dropped after `--stall-ms`
    /// (`Session::output_blocked`), so the wait is bounded.
    pub(super) fn resume_output_waiters(&mut self, now: Instant) {
        let level = self.config.max_output_bytes / 4 * 3;
        if self.books.output_waiters.is_empty() || self.books.output_held > level {
            return;
        }
        for token in std::mem::take(&mut self.books.output_waiters) {
            if let Some(conn) = self.connections.get_mut(&token)
                && conn.hold == Some(Hold::ServerOutputFull)
            {
                self.books.set_hold(conn, Some(Hold::Budget), now);
            }
        }
    }

    /// After step 7: once readers have freed room, paused senders are read
    /// again (next turn, through the read backlog).
    pub(super) fn resume_paused_senders(&mut self, now: Instant) {
        let Some(since) = self.books.paused_since else {
            return;
        };
        if !self.history.accepts() || !self.redis_accepts() {
            return;
        }
        let began = self.books.pause_began.take().unwrap_or(since);
        let waited = now.saturating_duration_since(began).as_millis();
        self.books.paused_since = None;
        let paused = std::mem::take(&mut self.books.paused_senders);
        // A flood paces itself by many short pauses: only the long ones are news.
        match waited >= 1000 {
            true => info!("senders resumed: {} waited {waited} ms", paused.len()),
            false => debug!("senders resumed: {} waited {waited} ms", paused.len()),
        }
        for token in paused {
            if let Some(conn) = self.connections.get_mut(&token)
                && conn.hold == Some(Hold::LogFull)
            {
                // A budget hold puts it on the read backlog.
                self.books.set_hold(conn, Some(Hold::Budget), now);
            }
        }
    }
}
