//! `--redis`: the room's Redis as two more sockets in the same poll loop,
//! on which miochat is the client (notes/10-redis.md). The protocol is
//! `cluster.rs`'s; this file owns the sockets and does their syscalls.
//!
//! - `REDIS_COMMANDS` carries the greeting, the appends (`EVALSHA`) and the
//!   `XRANGE`s of resuming clients;
//! - `REDIS_STREAM` sits in `XREAD BLOCK` from the local log's last id, so
//!   every process appends the room's entries to its log in the stream's order.
//!
//! Connects are non-blocking (`connect` returns at once; `WRITABLE` says it
//! is done, and `take_error` how it went). Any failure, or garbage from
//! Redis, closes the socket with one log line and retries after a backoff;
//! meanwhile chat senders are held as when the log is full (their bytes
//! wait in TCP) and everything else goes on.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mio::net::TcpStream;
use mio::{Interest, Token};

use super::Server;
use crate::cluster::{Backend, BackendEvent, LinkState, READ_BLOCK, Role, StreamEntry};
use crate::config::Config;
use crate::frame::Opcode;
use crate::history::Format;
use crate::message::Message;
use crate::v1;

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

    /// Step 1: the next reconnect attempt or `XREAD` deadline.
    pub(super) fn redis_timeout(&self, now: Instant) -> Option<Duration> {
        let cluster = self.cluster.as_ref()?;
        let retries = [
            cluster.backend.commands.retry_at,
            cluster.backend.stream.retry_at,
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
        if let Some(cluster) = self.cluster.as_mut() {
            cluster.backend.submit(sender.0, from, message.frame);
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
        if cluster.read_due.is_some_and(|due| due <= now) {
            // Not a return: the appends this turn queued must still be written.
            self.redis_failed(Role::Stream, "XREAD BLOCK went unanswered", now);
        }
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

    /// The commands connection is greeted. The first time, the (empty)
    /// local log takes the room's epoch and next id, and the readers that
    /// joined before move with it. Later, a changed epoch means Redis lost
    /// the room (restarted empty): the hello script raised the counter to
    /// our last id, so ids go on from here; resumes naming the old epoch
    /// get `reset`.
    fn line_up_log(&mut self, epoch: String, counter: u64) {
        let Some(cluster) = self.cluster.as_mut() else {
            return;
        };
        let first = !std::mem::replace(&mut cluster.lined_up, true);
        if !first && epoch != self.history.epoch() {
            warn!(
                "redis: the room's epoch changed from {} to {epoch}: Redis lost its data; ids go on after {}",
                self.history.epoch(),
                self.history.last_id()
            );
        }
        if let Some(old) = self.history.adopt(epoch.clone(), counter + 1) {
            for reader in self
                .connections
                .values_mut()
                .filter_map(|c| c.reader.as_mut())
            {
                if reader.next == old {
                    reader.next = counter + 1;
                }
            }
        }
        info!(
            "redis: ready: room epoch {epoch}, room's last id {counter}, this process's {}",
            self.history.last_id()
        );
    }

    /// Entries read from the stream go into the local log in the stream's
    /// order, with the stream's ids; each local sender gets its ack then.
    fn store_entries(&mut self, entries: Vec<(StreamEntry, Option<usize>)>, now: Instant) {
        let was_full = self.history.full_since().is_some();
        for (entry, token) in entries {
            let expected = self.history.last_id() + 1;
            if entry.id < expected {
                debug!("redis: entry 0-{} is already in the log", entry.id);
                continue;
            }
            if entry.id > expected
                && let Err(why) = self.stream_gap(expected, entry.id, now)
            {
                return self.redis_failed(Role::Stream, &why, now);
            }
            let sender = token.unwrap_or(NO_SENDER);
            let v1_sender = self
                .connections
                .get(&Token(sender))
                .and_then(|c| c.reader.as_ref())
                .is_some_and(|r| r.format == Format::V1);
            let ack = match v1_sender {
                true => Message::new(Opcode::Text, v1::ack(entry.id).as_bytes()).frame,
                false => Vec::new(),
            };
            let from = entry.from.into_boxed_str();
            self.history.append(sender, from, [entry.frame, ack], now);
            self.books.log_grew = true;
        }
        if !was_full && self.history.full_since().is_some() {
            self.log_pause(now);
        }
    }

    /// The stream skips ids: Redis trimmed entries this process had not
    /// read yet (`MAXLEN ~`), or lost them. Each missing id gets a
    /// placeholder in the local log, so ids stay the room's; plain clients
    /// get nothing for them, `miochat.v1` clients one `reset` naming the
    /// last missing id: never a silent skip for a client that has ids.
    fn stream_gap(&mut self, expected: u64, next: u64, now: Instant) -> Result<(), String> {
        if next - expected > MAX_GAP {
            return Err(format!("the stream skips from {expected} to {next}"));
        }
        warn!(
            "redis: ids {expected} to {} are gone from the stream; placeholders stand for them",
            next - 1
        );
        for id in expected..next {
            let reset = match id + 1 == next {
                true => Message::new(Opcode::Text, v1::reset(id).as_bytes()).frame,
                false => Vec::new(),
            };
            self.history.append_placeholder(reset, now);
        }
        Ok(())
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

/// Starts a non-blocking connect; its outcome comes as an event.
fn start_connect(cluster: &mut Cluster, role: Role, poll: &mio::Poll, now: Instant) {
    let link = cluster.backend.link(role);
    link.connecting();
    let connected = TcpStream::connect(cluster.addr).and_then(|mut socket| {
        let interest = Interest::READABLE | Interest::WRITABLE;
        poll.registry()
            .register(&mut socket, token_of(role), interest)?;
        Ok(socket)
    });
    match connected {
        Ok(socket) => *cluster.socket(role) = Some(socket),
        Err(e) => {
            let wait = link.fail(now);
            warn!(
                "redis {}: connect failed: {e}; retrying in {} ms",
                link.name,
                wait.as_millis()
            );
        }
    }
}

/// `WRITABLE` on a connecting socket: connected, or failed (mio docs,
/// `TcpStream::connect`: check `take_error`, then `peer_addr`).
fn finish_connect(cluster: &mut Cluster, role: Role, last_id: u64) -> Result<(), String> {
    let Some(socket) = cluster.socket(role).as_ref() else {
        return Ok(());
    };
    if let Ok(Some(e)) | Err(e) = socket.take_error() {
        return Err(format!("connect failed: {e}"));
    }
    match socket.peer_addr() {
        Ok(_) => {}
        // Not yet: a spurious wake-up.
        Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
        Err(e) => return Err(format!("connect failed: {e}")),
    }
    let _ = socket.set_nodelay(true);
    info!(
        "redis {}: connected to {}",
        cluster.backend.link(role).name,
        cluster.addr
    );
    // A fresh epoch on every greeting: if the room is gone (Redis restarted
    // empty), the one that wins `SET NX` is new, so old ids are never taken
    // for new ones.
    let epoch = super::new_epoch();
    cluster.backend.greet(role, cluster.db, &epoch, last_id);
    Ok(())
}

/// Reads until `WouldBlock`, into the link's `read_buf`.
fn read_link(cluster: &mut Cluster, role: Role, scratch: &mut [u8]) -> Result<(), String> {
    let (Some(socket), link) = cluster.parts(role) else {
        return Ok(());
    };
    if link.state == LinkState::Connecting {
        return Ok(());
    }
    loop {
        match socket.read(scratch) {
            Ok(0) => return Err("Redis closed the connection".into()),
            Ok(n) => link.read_buf.extend_from_slice(&scratch[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read failed: {e}")),
        }
    }
}

/// Writes the link's `write_buf` until it is empty or the socket is full
/// (`WRITABLE` is registered from the start, so a full socket wakes us).
fn write_link(cluster: &mut Cluster, role: Role) -> Result<(), String> {
    let (Some(socket), link) = cluster.parts(role) else {
        return Ok(());
    };
    if matches!(link.state, LinkState::Down | LinkState::Connecting) {
        return Ok(());
    }
    while !link.write_buf.is_empty() {
        match socket.write(&link.write_buf) {
            Ok(0) => return Err("write returned 0".into()),
            Ok(n) => drop(link.write_buf.drain(..n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("write failed: {e}")),
        }
    }
    Ok(())
}
