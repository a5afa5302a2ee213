//! One room across processes, through a Redis Stream: the protocol half,
//! without sockets (the loop half is src/server/redis.rs; the story with
//! bytes is notes/10-redis.md).
//!
//! ```text
//!   client ─▶ process A ──EVALSHA append──▶ Redis: INCR counter, XADD 0-N
//!                                              │
//!   every process ◀──XREAD BLOCK (its own connection)──┘ ─▶ local log ─▶ clients
//! ```
//!
//! A chat message goes to Redis, not into the local log; it reaches the
//! local log (and the sender's own peers, and its ack) when the stream
//! gives it back, so every process has the same order and the same ids.
//!
//! Interface: [`Backend`] holds the two connections' protocol state
//! ([`Link`]s: one for commands, one blocked in `XREAD`), the outbox of
//! messages sent to Redis and not yet seen in the stream, and the room's
//! epoch. The loop hands it the bytes read and asks it for the bytes to
//! write; [`Backend::on_reply`] turns each reply into a [`BackendEvent`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub mod commands;
pub mod link;
mod url;

pub use commands::StreamEntry;
pub use link::{Expect, Link, LinkState};
pub use url::RedisUrl;

use crate::resp::{Limits, Reply};

/// Messages sent to Redis and not yet seen back: past either cap, chat
/// senders are not read (TCP backpressure) until the stream catches up.
pub const MAX_OUTBOX: usize = 1024;
pub const MAX_OUTBOX_BYTES: usize = 8 << 20;
/// Entries one `XREAD` returns at most; the next is sent once they are in the log.
pub const READ_COUNT: usize = 512;
/// How long one `XREAD` waits in Redis for something new.
pub const READ_BLOCK: Duration = Duration::from_secs(5);

/// Which of the two connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Commands,
    Stream,
}

/// A message on its way through Redis.
#[derive(Debug)]
struct Pending {
    seq: u64,
    token: usize,
    from: Box<str>,
    frame: Vec<u8>,
}

/// What a reply meant, for the loop to act on.
#[derive(Debug, PartialEq, Eq)]
pub enum BackendEvent {
    /// The commands connection is greeted: the room's epoch and last id.
    Greeted { epoch: String, counter: u64 },
    /// Entries from the stream, in order, each with the local sender's token
    /// if this process appended it.
    Entries(Vec<(StreamEntry, Option<usize>)>),
    /// An `XRANGE` for a resuming client was answered.
    Range {
        token: usize,
        entries: Result<Vec<StreamEntry>, String>,
    },
}

/// Both connections' protocol state and the outbox.
#[derive(Debug)]
pub struct Backend {
    pub commands: Link,
    pub stream: Link,
    /// This process in the stream's `p` field: random per run, so a
    /// restarted process is a new appender with its own sequence.
    pub process: String,
    /// The append script's SHA1, from `SCRIPT LOAD`.
    sha: Option<String>,
    /// The room's epoch, once a hello has been answered.
    pub epoch: Option<String>,
    /// Sent (or to be sent) to Redis, not yet seen in the stream, in order.
    outbox: VecDeque<Pending>,
    outbox_bytes: usize,
    /// How many at the front of the outbox were written on this connection.
    sent: usize,
    next_seq: u64,
    /// `MAXLEN ~` for the stream: `--history-messages`.
    max_len: usize,
    limits: Limits,
}

impl Backend {
    pub fn new(process: String, max_len: usize, now: Instant) -> Backend {
        Backend {
            commands: Link::new("commands", now),
            stream: Link::new("stream", now),
            process,
            sha: None,
            epoch: None,
            outbox: VecDeque::new(),
            outbox_bytes: 0,
            sent: 0,
            next_seq: 1,
            max_len,
            limits: Limits::default(),
        }
    }

    pub fn link(&mut self, role: Role) -> &mut Link {
        match role {
            Role::Commands => &mut self.commands,
            Role::Stream => &mut self.stream,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A socket connected: its greeting goes out. The commands connection
    /// selects the database, loads the append script and says hello; the
    /// stream connection only selects.
    pub fn greet(&mut self, role: Role, db: u32, new_epoch: &str, last_id: u64) {
        let link = self.link(role);
        link.greeting();
        commands::select(&mut link.write_buf, db);
        link.sent(Expect::Select);
        if role == Role::Commands {
            commands::load_append_script(&mut link.write_buf);
            link.sent(Expect::ScriptLoad);
            commands::hello(&mut link.write_buf, new_epoch, last_id);
            link.sent(Expect::Hello);
        }
    }

    /// Whether a chat sender may be read: Redis is there, and the outbox
    /// has room.
    pub fn accepts(&self) -> bool {
        self.commands.state == LinkState::Ready
            && self.outbox.len() < MAX_OUTBOX
            && self.outbox_bytes < MAX_OUTBOX_BYTES
    }

    /// What `/status` says of the backend.
    pub fn state_name(&self) -> &'static str {
        match (self.commands.state, self.stream.state) {
            (LinkState::Ready, LinkState::Ready) if self.accepts() => "ready",
            (LinkState::Ready, LinkState::Ready) => "busy",
            _ => "down",
        }
    }

    /// A local chat message, for Redis to append; sent now if the commands
    /// connection is ready, else when it is.
    pub fn submit(&mut self, token: usize, from: Box<str>, frame: Vec<u8>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.outbox_bytes += frame.len() + from.len();
        self.outbox.push_back(Pending {
            seq,
            token,
            from,
            frame,
        });
        self.send_outbox();
    }

    /// Writes the outbox's unsent messages, if the connection is ready.
    fn send_outbox(&mut self) {
        let (Some(sha), LinkState::Ready) = (&self.sha, self.commands.state) else {
            return;
        };
        for pending in self.outbox.iter().skip(self.sent) {
            let append = commands::Append {
                process: &self.process,
                seq: pending.seq,
                max_len: self.max_len,
                from: &pending.from,
                frame: &pending.frame,
            };
            commands::append(&mut self.commands.write_buf, sha, &append);
            self.commands.sent(Expect::Append(pending.seq));
        }
        self.sent = self.outbox.len();
    }

    /// `XREAD` after `last_id`, unless one is under way or the stream
    /// connection is not ready. Returns whether one was sent.
    pub fn read_after(&mut self, last_id: u64) -> bool {
        let idle = !self.stream.awaits(Expect::Read);
        if self.stream.state != LinkState::Ready || self.epoch.is_none() || !idle {
            return false;
        }
        let block = READ_BLOCK.as_millis() as u64;
        commands::read_after(&mut self.stream.write_buf, last_id, READ_COUNT, block);
        self.stream.sent(Expect::Read);
        true
    }

    /// `XRANGE from..=to` for a resuming client; false if Redis is not there.
    pub fn request_range(&mut self, token: usize, from: u64, to: u64) -> bool {
        if self.commands.state != LinkState::Ready {
            return false;
        }
        commands::range(&mut self.commands.write_buf, from, to);
        self.commands.sent(Expect::Range(token));
        true
    }

    /// A connection failed: what was in flight on it is forgotten, and the
    /// outbox will be sent again, whole, on the next connection (the append
    /// script drops what already got through). Returns the backoff, and the
    /// tokens of resuming clients whose `XRANGE` was lost.
    pub fn failed(&mut self, role: Role, now: Instant) -> (Duration, Vec<usize>) {
        let link = self.link(role);
        let ranges = link.ranges_awaited();
        let wait = link.fail(now);
        if role == Role::Commands {
            self.sent = 0;
        }
        (wait, ranges)
    }

    /// Acts on one reply. `Err`: the connection cannot go on (an error
    /// where none may be, a script Redis lost, an answer of the wrong shape).
    pub fn on_reply(
        &mut self,
        role: Role,
        expect: Expect,
        reply: Reply,
    ) -> Result<Option<BackendEvent>, String> {
        if let (Reply::Error(e), false) = (&reply, matches!(expect, Expect::Range(_))) {
            // NOSCRIPT: Redis lost its script cache (a restart, SCRIPT FLUSH).
            // The reconnect loads it again and re-sends the outbox (Redis docs, EVALSHA).
            return Err(format!("Redis answered {expect:?} with an error: {e}"));
        }
        match expect {
            Expect::Select => self.on_selected(role, reply),
            Expect::ScriptLoad => {
                let sha = reply.bytes().ok_or("SCRIPT LOAD: no SHA1")?;
                self.sha = Some(String::from_utf8_lossy(sha).into_owned());
                Ok(None)
            }
            Expect::Hello => self.on_hello(&reply).map(Some),
            // The id, or 0 for a retry that had got through: either way the
            // message is in the stream, and is acked when it is read back.
            Expect::Append(_) => match reply {
                Reply::Integer(_) => Ok(None),
                other => Err(format!("the append script answered {other:?}")),
            },
            Expect::Read => {
                let entries = commands::read_reply(&reply)?;
                Ok(Some(BackendEvent::Entries(self.match_own(entries))))
            }
            Expect::Range(token) => {
                let entries = match &reply {
                    Reply::Error(e) => Err(e.clone()),
                    reply => commands::range_reply(reply),
                };
                Ok(Some(BackendEvent::Range { token, entries }))
            }
        }
    }

    fn on_selected(&mut self, role: Role, reply: Reply) -> Result<Option<BackendEvent>, String> {
        if reply != Reply::Simple("OK".into()) {
            return Err(format!("SELECT answered {reply:?}"));
        }
        if role == Role::Stream {
            self.stream.ready();
        }
        Ok(None)
    }

    /// The hello's answer `[epoch, counter]`: the commands connection is
    /// ready, and the outbox goes out again.
    fn on_hello(&mut self, reply: &Reply) -> Result<BackendEvent, String> {
        let Some([epoch, Reply::Integer(counter)]) = reply.items() else {
            return Err(format!("the hello script answered {reply:?}"));
        };
        let epoch = epoch.bytes().ok_or("the hello script gave no epoch")?;
        let epoch = String::from_utf8_lossy(epoch).into_owned();
        self.epoch = Some(epoch.clone());
        self.commands.ready();
        self.send_outbox();
        Ok(BackendEvent::Greeted {
            epoch,
            counter: (*counter).max(0) as u64,
        })
    }

    /// Pairs each entry this process appended with its sender's token, and
    /// takes it out of the outbox: it is delivered.
    fn match_own(&mut self, entries: Vec<StreamEntry>) -> Vec<(StreamEntry, Option<usize>)> {
        let mut matched = Vec::with_capacity(entries.len());
        for entry in entries {
            let mut token = None;
            if entry.process == self.process.as_bytes() {
                while let Some(front) = self.outbox.front().filter(|p| p.seq <= entry.seq) {
                    if front.seq == entry.seq {
                        token = Some(front.token);
                    }
                    self.outbox_bytes -= front.frame.len() + front.from.len();
                    self.outbox.pop_front();
                    self.sent = self.sent.saturating_sub(1);
                }
            }
            matched.push((entry, token));
        }
        matched
    }
}

#[cfg(test)]
mod tests;
