//! `--redis`: a `miochat.v1` client resuming on a process whose log does
//! not reach back to its `since` (it joined the room later, or the log
//! evicted those entries) gets the missing entries from the stream
//! (`XRANGE`), then the local log, or one `reset` — never a partial replay,
//! never a duplicate (notes/10-redis.md#resuming-on-any-process).
//!
//! ```text
//!   since            first_id (pinned)            last_id
//!     |── XRANGE since+1 ..= first_id-1 ──|── local log ──|── live
//! ```
//!
//! While the `XRANGE` is under way the client has no place in the log yet
//! (so nothing is written to it out of order), but the log's first entry is
//! pinned with a reader count, so it cannot be evicted before the client
//! takes its place there.

use std::time::Instant;

use log::info;
use mio::Token;

use super::Server;
use crate::cluster::StreamEntry;
use crate::connection::Connection;
use crate::frame::Opcode;
use crate::handshake::ChatOptions;
use crate::history::{Format, Reader};
use crate::message::server_frame_payload;
use crate::session::ConnState;
use crate::v1;

/// A client waiting for its `XRANGE`.
#[derive(Debug, Clone, Copy)]
pub struct Replay {
    /// The last id it saw.
    pub since: u64,
    /// The log entry it continues from, pinned.
    pub at: u64,
}

impl Server {
    /// Upgrade of a chat client: true if it resumes through the stream (its
    /// welcome is sent and the `XRANGE` asked for); false for `join_chat`
    /// to handle as without `--redis` (local replay, or `reset`).
    pub(super) fn resume_from_stream(&mut self, token: Token, options: &ChatOptions) -> bool {
        let Some(since) = options.since.filter(|_| options.v1) else {
            return false;
        };
        let epoch = options.epoch.as_deref().unwrap_or(self.history.epoch());
        let at = self.history.first_id();
        let gap = at.saturating_sub(since + 1);
        let reachable = epoch == self.history.epoch() && since < self.history.last_id();
        let bounded = gap > 0 && gap <= self.config.history_messages as u64;
        let Some(cluster) = self.cluster.as_mut() else {
            return false;
        };
        if !reachable || !bounded || !cluster.backend.request_range(token.0, since + 1, at - 1) {
            return false;
        }
        cluster.replays.insert(token.0, Replay { since, at });
        self.history.join(at);
        let Some(conn) = self.connections.get_mut(&token) else {
            return true;
        };
        conn.name = options.name.clone().map(String::into_boxed_str);
        let name = super::incoming::display_name(conn);
        let welcome = v1::welcome(self.history.epoch(), self.history.last_id(), &name);
        conn.session.send(Opcode::Text, welcome.as_bytes());
        true
    }

    /// The `XRANGE` answered (or was lost with its connection): the whole
    /// missing range, then the client's place at the pinned entry; or, if
    /// Redis no longer holds all of it, one `reset` and a place at the end.
    pub(super) fn replay_range(
        &mut self,
        token: usize,
        entries: Result<Vec<StreamEntry>, String>,
        now: Instant,
    ) {
        let Some(Replay { since, mut at }) =
            self.cluster.as_mut().and_then(|c| c.replays.remove(&token))
        else {
            return;
        };
        let conn = self.connections.get_mut(&Token(token));
        let Some(conn) = conn.filter(|c| c.session.state() == ConnState::Open) else {
            return self.history.leave(at);
        };
        match whole_range(&entries, since, at) {
            Some(list) => send_entries(conn, since, list),
            None => {
                let why = entries
                    .err()
                    .unwrap_or_else(|| "Redis no longer holds it all".into());
                info!(
                    "{} resumes after {since}: history gone ({why}), reset",
                    conn.peer
                );
                self.history.leave(at);
                at = self.history.last_id() + 1;
                self.history.join(at);
                conn.session
                    .send(Opcode::Text, v1::reset(at - 1).as_bytes());
            }
        }
        let format = Format::V1;
        conn.reader = Some(Reader {
            next: at,
            offset: 0,
            format,
            token,
        });
        self.follow_up(Token(token), now);
    }
}

/// The entries if they are exactly `since+1 .. at`: all of the gap, in order.
fn whole_range(
    entries: &Result<Vec<StreamEntry>, String>,
    since: u64,
    at: u64,
) -> Option<&[StreamEntry]> {
    let list = entries.as_ref().ok()?;
    let whole = list.len() as u64 == at - since - 1
        && list.iter().zip(since + 1..).all(|(e, id)| e.id == id);
    whole.then_some(list)
}

/// The replayed entries as `miochat.v1` message objects, before anything
/// from the log (the client has no place in it yet).
fn send_entries(conn: &mut Connection, since: u64, list: &[StreamEntry]) {
    info!(
        "{} resumes after {since}: {} entries from Redis, then the log",
        conn.peer,
        list.len()
    );
    for entry in list {
        // The opcode is the low 4 bits of the first byte (§5.2); `is_server_frame` checked it.
        let opcode = match entry.frame[0] & 0x0F {
            0x1 => Opcode::Text,
            _ => Opcode::Binary,
        };
        let payload = server_frame_payload(&entry.frame);
        let json = v1::message(entry.id, &entry.from, opcode, payload);
        conn.session.send(Opcode::Text, json.as_bytes());
    }
}
