//! `--redis`: the room's Redis as two more sockets in the same poll loop,
//! on which miochat is the client (notes/10-redis.md). The protocol is
//! `cluster.rs`'s; this file owns the sockets and does their syscalls.
//!
//! - `REDIS_COMMANDS` carries the greeting, the appends (`EVALSHA`) and the
//!   `XRANGE`s of resuming clients;
//! - `REDIS_STREAM` sits in `XREAD BLOCK` from the local log's last id, so
//!   every process appends the room's entries to its log in the stream's order.
//!
//! Beside this file: `redis/sockets.rs` (connect, read, write) and
//! `redis/into_log.rs` (the stream's entries into the local log).
//!
//! Connects are non-blocking (`connect` returns at once; `WRITABLE` says it
//! is done, and `take_error` how it went). Any failure, or garbage from
//! Redis, closes the socket with one log line and retries after a backoff;
//! meanwhile chat senders are held as when the log is full (their bytes
//! wait in TCP) and everything else goes on.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use log::warn;
use mio::Token;
use mio::net::TcpStream;

mod into_log;
mod sockets;

use super::Server;
use crate::cluster::{Backend, BackendEvent, LinkState, READ_BLOCK, Role};
use crate::config::Config;
use crate::message::Message;
use sockets::{finish_connect, read_link, start_connect, write_link};

/// The two Redis sockets' tokens: at the top of the range, where client
/// tokens (counted up from 2) never get.
pub const REDIS_COMMANDS: Token = Token(usize::MAX - 1);
pub const REDIS_STREAM: Token = Token(usize::MAX - 2);
/// The sender of an entry another process appended: no local connection.
pub const NO_SENDER: usize = usize::MAX;
/// The most ids a gap in the stream is filled with placeholders for; a
/// larger jump is taken as garbage.
const MAX_GAP: u64 = 100_000;
/// An `XREAD BLOCK` unanswered this long after its own timeout means Redis
/// stopped answering (not only that the room is quiet): reconnect.
const READ_GRACE: Duration = Duration::from_secs(5);

/// The backend and its sockets.
#[derive(Debug)]
pub struct Cluster {
    pub backend: Backend,
    addr: SocketAddr,
    db: u32,
    commands: Option<TcpStream>,
    stream: Option<TcpStream>,
    /// The local log was lined up with the room's ids (first greeting).
    lined_up: bool,
    /// When the `XREAD` under way is overdue.
    read_due: Option<Instant>,
    /// Resuming clients waiting for their `XRANGE`, by token (server/replay.rs).
    pub replays: std::collections::HashMap<usize, super::replay::Replay>,
}

impl Cluster {
    /// Resolves the Redis host once, before the loop runs (resolving blocks).
    pub fn new(config: &Config, process: String, now: Instant) -> io::Result<Option<Cluster>> {
        let Some(url) = &config.redis else {
            return Ok(None);
        };
        let addr = (url.host.as_str(), url.port).to_socket_addrs()?.next();
        let addr = addr.ok_or_else(|| io::Error::other("the Redis host has no address"))?;
        Ok(Some(Cluster {
            backend: Backend::new(process, config.history_messages, now),
            addr,
            db: url.db,
            commands: None,
            stream: None,
            lined_up: false,
            read_due: None,
            replays: std::collections::HashMap::new(),
        }))
    }

    fn socket(&mut self, role: Role) -> &mut Option<TcpStream> {
        match role {
            Role::Commands => &mut self.commands,
            Role::Stream => &mut self.stream,
        }
    }

    /// A connection's socket and its protocol state, borrowed together.
    fn parts(&mut self, role: Role) -> (Option<&mut TcpStream>, &mut crate::cluster::Link) {
        match role {
            Role::Commands => (self.commands.as_mut(), &mut self.backend.commands),
            Role::Stream => (self.stream.as_mut(), &mut self.backend.stream),
        }
    }
}

fn role_of(token: Token) -> Role {
    match token {
        REDIS_COMMANDS => Role::Commands,
        _ => Role::Stream,
    }
}

fn token_of(role: Role) -> Token {
    match role {
        Role::Commands => REDIS_COMMANDS,
        Role::Stream => REDIS_STREAM,
    }
}

impl Server {
    /// Whether chat senders may be read: always without `--redis`.
    pub(super) fn redis_accepts(&self) -> bool {
        self.cluster.as_ref().is_none_or(|c| c.backend.accepts())
    }

    /// What `/status` says of the backend (`None` without `--redis`).
    pub(super) fn redis_state(&self) -> Option<&'static str> {
        self.cluster.as_ref().map(|c| c.backend.state_name())
    }

    /// Step 1: the next reconnect attempt, greeting or `XREAD` deadline.
    pub(super) fn redis_timeout(&self, now: Instant) -> Option<Duration> {
        let cluster = self.cluster.as_ref()?;
        let (commands, stream) = (&cluster.backend.commands, &cluster.backend.stream);
        let retries = [
            commands.retry_at,
            stream.retry_at,
            commands.greeting_due,
            stream.greeting_due,
        ];
        let next = retries
            .into_iter()
            .chain([cluster.read_due])
            .flatten()
            .min()?;
        Some(next.saturating_duration_since(now))
    }

    /// A local chat message goes to Redis; it reaches the local log when the
    /// stream gives it back (see `store_entries`).
    pub(super) fn append_to_redis(&mut self, sender: Token, message: Message) {
        let Some(conn) = self.connections.get(&sender) else {
            return;
        };
        let from = super::incoming::display_name(conn).into_boxed_str();
        self.submit_to_redis(sender.0, from, message.frame);
    }

    /// Queues a message for the room's stream (a WebSocket's, or a `POST
    /// /send`'s with the sender its key names).
    pub(super) fn submit_to_redis(&mut self, sender: usize, from: Box<str>, frame: Vec<u8>) {
        if let Some(cluster) = self.cluster.as_mut() {
            cluster.backend.submit(sender, from, frame);
        }
    }

    /// Step 3: a Redis socket is ready (or its connect finished).
    pub(super) fn on_redis_event(&mut self, token: Token, now: Instant) {
        let role = role_of(token);
        let last_id = self.history.last_id();
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        let outcome = match cluster.backend.link(role).state {
            LinkState::Connecting => finish_connect(cluster, role, last_id),
            LinkState::Down => return,
            _ => Ok(()),
        };
        let outcome = outcome.and_then(|()| read_link(cluster, role, &mut self.read_scratch));
        // What was read comes first: replies before a FIN are still acted on.
        self.act_on_replies(role, now);
        let still_up = self
            .cluster
            .as_mut()
            .is_some_and(|c| c.backend.link(role).state != LinkState::Down);
        if let Err(why) = outcome
            && still_up
        {
            self.redis_failed(role, &why, now);
        }
    }

    /// Step 7, at the end of the turn: connect what is down and due, keep
    /// one `XREAD` under way while the log has room, and write what the turn
    /// queued for Redis (every append of the turn in one write).
    pub(super) fn tend_redis(&mut self, now: Instant) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        for role in [Role::Commands, Role::Stream] {
            let link = cluster.backend.link(role);
            if link.state == LinkState::Down && link.retry_at.is_some_and(|at| at <= now) {
                start_connect(cluster, role, &self.poll, now);
            }
        }
        self.give_up_overdue(now);
        self.read_stream(now);
        for role in [Role::Commands, Role::Stream] {
            let Some(cluster) = self.cluster.as_mut() else {
                return;
            };
            if let Err(why) = write_link(cluster, role) {
                self.redis_failed(role, &why, now);
            }
        }
    }

    /// A Redis that accepts but does not answer closes nothing: a greeting
    /// unanswered for `GREETING_TIMEOUT`, or an `XREAD BLOCK` unanswered
    /// past its own timeout, fails its connection.
    fn give_up_overdue(&mut self, now: Instant) {
        for role in [Role::Commands, Role::Stream] {
            let Some(cluster) = self.cluster.as_mut() else {
                return;
            };
            if cluster.backend.link(role).greeting_overdue(now) {
                self.redis_failed(role, "no answer to the greeting in time", now);
            }
        }
        let read_overdue = self
            .cluster
            .as_ref()
            .is_some_and(|c| c.read_due.is_some_and(|due| due <= now));
        if read_overdue {
            self.redis_failed(Role::Stream, "XREAD BLOCK went unanswered", now);
        }
    }

    /// Asks for the entries after the local log's last one, unless one
    /// `XREAD` is under way or the log is full: then the stream waits, the
    /// log's readers are timed as when senders wait (`--stall-ms`), and the
    /// log overshoots its cap by one `XREAD` (`READ_COUNT` entries) at most.
    fn read_stream(&mut self, now: Instant) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        if !cluster.lined_up || cluster.backend.stream.state != LinkState::Ready {
            return;
        }
        if !self.history.accepts() {
            self.books.paused_since.get_or_insert(now);
            return;
        }
        if cluster.backend.read_after(self.history.last_id()) {
            cluster.read_due = Some(now + READ_BLOCK + READ_GRACE);
        }
    }

    /// Every whole reply on `role`'s connection, acted on in order.
    fn act_on_replies(&mut self, role: Role, now: Instant) {
        loop {
            let Some(cluster) = self.cluster.as_mut() else {
                return;
            };
            let limits = *cluster.backend.limits();
            let reply = cluster.backend.link(role).next_reply(&limits);
            let event = match reply {
                Ok(None) => return,
                Ok(Some((expect, reply))) => cluster.backend.on_reply(role, expect, reply),
                Err(garbage) => Err(format!("garbage from Redis ({garbage})")),
            };
            match event {
                Ok(Some(event)) => self.act_on_backend(event, now),
                Ok(None) => {}
                Err(why) => return self.redis_failed(role, &why, now),
            }
        }
    }

    fn act_on_backend(&mut self, event: BackendEvent, now: Instant) {
        match event {
            BackendEvent::Greeted { epoch, counter } => self.line_up_log(epoch, counter),
            BackendEvent::Entries(entries) => {
                if let Some(cluster) = self.cluster.as_mut() {
                    cluster.read_due = None;
                }
                self.store_entries(entries, now);
            }
            BackendEvent::Range { token, entries } => self.replay_range(token, entries, now),
        }
    }

    /// A connection failed: one log line, the socket closed, a retry later.
    fn redis_failed(&mut self, role: Role, why: &str, now: Instant) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        if let Some(mut socket) = cluster.socket(role).take() {
            let _ = self.poll.registry().deregister(&mut socket);
        }
        if role == Role::Stream {
            cluster.read_due = None;
        }
        let (wait, lost_ranges) = cluster.backend.failed(role, now);
        let link = cluster.backend.link(role).name;
        warn!(
            "redis {link}: {why}; reconnecting to {} in {} ms",
            cluster.addr,
            wait.as_millis()
        );
        for token in lost_ranges {
            self.replay_range(token, Err("Redis went away".into()), now);
        }
    }
}
