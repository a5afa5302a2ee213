//! Joining the shared log: where a new reader starts (live, just after
//! the last id it saw, or live after a `reset` when that history is gone),
//! its welcome, and its place. Used by WebSocket chat clients, event
//! streams and long polls alike (notes/09-shared-log.md#replay-and-reset).
//!
//! `Server` methods in a file of their own; they share its fields.

use std::net::SocketAddr;

use log::log;
use mio::Token;

use super::incoming::display_name;
use super::{Server, WELCOME};
use crate::frame::Opcode;
use crate::handshake::ChatOptions;
use crate::history::{Format, Reader};
use crate::v1;

impl Server {
    /// A new chat connection: its welcome, and its place in the log — live,
    /// or (for a `miochat.v1` client resuming) just after the last id it
    /// saw, or live after a `reset` when that history is gone.
    pub(super) fn join_chat(&mut self, token: Token, options: ChatOptions) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        conn.name = options.name.map(String::into_boxed_str);
        let format = match options.v1 {
            true => Format::V1,
            false => Format::Plain,
        };
        let last_id = self.history.last_id();
        if format == Format::Plain {
            conn.session.send(Opcode::Text, WELCOME.as_bytes());
            return self.join_log(token, last_id + 1, format);
        }
        let welcome = v1::welcome(self.history.epoch(), last_id, &display_name(conn));
        conn.session.send(Opcode::Text, welcome.as_bytes());
        let peer = conn.peer;
        let epoch = options.epoch.as_deref();
        let start = self.start_point(peer, options.since, epoch, log::Level::Info);
        if let (Some(reset), Some(conn)) = (&start.reset, self.connections.get_mut(&token)) {
            conn.session.send(Opcode::Text, reset.as_bytes());
        }
        self.join_log(token, start.next, format);
    }

    /// Where a client that last saw `since` (of `epoch`: the current one
    /// if it names none) starts in the log: just after it, or, when that
    /// history is gone, live after a `reset` object. Never a partial replay.
    /// A resume is logged at `level` (a long poll resumes on every request:
    /// debug; a stream or a WebSocket once: info).
    pub(super) fn start_point(
        &self,
        peer: SocketAddr,
        since: Option<u64>,
        epoch: Option<&str>,
        level: log::Level,
    ) -> StartPoint {
        let last_id = self.history.last_id();
        let live = StartPoint {
            next: last_id + 1,
            reset: None,
        };
        let Some(since) = since else {
            return live;
        };
        let epoch = epoch.unwrap_or(self.history.epoch());
        match self.history.resume_point(since, epoch) {
            Some(at) => {
                log!(
                    level,
                    "{peer} resumes after {since}: replaying {} entries",
                    last_id + 1 - at
                );
                StartPoint {
                    next: at,
                    reset: None,
                }
            }
            None => {
                // The epoch is the client's: at most 40 characters of it in the log.
                let shown: String = epoch.chars().take(40).collect();
                log!(
                    level,
                    "{peer} resumes after {since} (epoch {shown:?}): history gone, reset"
                );
                StartPoint {
                    reset: Some(v1::reset(last_id)),
                    ..live
                }
            }
        }
    }

    /// A reader's place in the log, from `next` on.
    pub(super) fn join_log(&mut self, token: Token, next: u64, format: Format) {
        let Some(conn) = self.connections.get_mut(&token) else {
            return;
        };
        self.history.join(next);
        conn.reader = Some(Reader {
            next,
            offset: 0,
            format,
            token: token.0,
        });
    }
}

/// Where a reader starts, and the `reset` it is told first if its history is gone.
pub(super) struct StartPoint {
    pub next: u64,
    pub reset: Option<String>,
}
