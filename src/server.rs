//! The poll loop: one thread, one `mio::Poll`, every connection and timer.
//!
//! Interface: [`Server::bind`] opens the listener, [`Server::run`] turns the
//! loop until a signal has shut the server down, and [`Server::turn`] is one
//! turn, top to bottom (notes/01-readiness.md#one-turn):
//!
//! 1. compute the poll timeout from the timer wheel and the log's stall
//!    deadline (zero if reads are backlogged);
//! 2. `poll`: sleep until a socket is ready, a signal arrives or a timer is due;
//! 3. dispatch each event: accept, read + decode + deliver, or flush;
//! 4. give backlogged readers their next share;
//! 5. fire due timers: heartbeats, handshake and close timeouts, and the
//!    log's stall deadline (the readers that held it full are dropped);
//! 6. flush every connection that got output this turn, and every caught-up
//!    reader if the log grew, once (coalescing);
//! 7. retire the connections that closed; then, if that (or reading) freed
//!    room in the shared log, resume the senders that waited for it, and
//!    if the server's unwritten output drained, the connections that waited
//!    for that (`--max-output-bytes`).
//!
//! The loop owns every socket and does every syscall; what the bytes mean is
//! each connection's `Session` (session.rs), which never sees a socket. The
//! handlers live beside this file: `server/incoming.rs` (read, answer the
//! request, deliver messages), `server/joining.rs` (a reader's place in the
//! log), `server/transports.rs` (SSE, long polls, `POST /send`),
//! `server/outgoing.rs` (flush), `server/timeouts.rs` (a timer fired),
//! `server/flow.rs` (the full log and the output bound), `server/redis.rs`
//! (`--redis`) and `server/bookkeeping.rs` (the loop's records, brought in
//! step after every event, and retiring).

use std::collections::HashMap;
use std::io;
use std::time::{Duration, Instant};

use log::{debug, info, trace, warn};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

mod bookkeeping;
mod flow;
mod incoming;
mod joining;
mod listener;
mod outgoing;
mod redis;
mod replay;
mod timeouts;
mod transports;

use crate::client_key::ClientKeys;
use crate::config::Config;
use crate::connection::Connection;
use crate::history::History;
use crate::limits::SpareDescriptor;
use crate::session::Ending;
use bookkeeping::Books;

/// The listening socket's token.
pub const LISTENER: Token = Token(0);
/// The token of the signal pipe (SIGINT, SIGTERM).
pub const SIGNALS: Token = Token(1);
/// Client tokens start here and are never reused, so a late event for a
/// connection that is gone finds nothing.
const FIRST_CLIENT: usize = 2;

/// One `read` at most this big; shared by all connections, so idle ones hold no buffer.
const READ_CHUNK: usize = 64 * 1024;
/// Events taken from one `poll`.
const EVENTS_CAPACITY: usize = 1024;
/// What a new chat client hears first.
pub const WELCOME: &str = r#"{"type":"welcome","message":"connected to chat"}"#;

/// The whole server: a single owner of every socket, buffer and timer.
pub struct Server {
    config: Config,
    poll: Poll,
    events: Events,
    /// `None` once shutdown has begun: no more accepts.
    listener: Option<TcpListener>,
    signals: Signals,
    /// Every accepted connection, by token.
    connections: HashMap<Token, Connection>,
    next_token: usize,
    /// The loop's records: timers, the flush, backlog and closed lists, counts.
    books: Books,
    /// The shared message log every chat reader writes from.
    history: History,
    /// Issues and checks the keys SSE and long-poll clients send with `POST /send`.
    client_keys: ClientKeys,
    /// Scratch space every `read` lands in before the session takes it.
    read_scratch: Vec<u8>,
    /// A reserved descriptor for running out of descriptors (see limits.rs).
    spare: SpareDescriptor,
    /// Whether shutdown has begun (a signal came).
    shutting_down: bool,
    /// `--redis`: the room's backend and its two sockets (server/redis.rs).
    cluster: Option<redis::Cluster>,
}

impl Server {
    /// Binds the listener and the signal pipe; nothing is accepted until `run`.
    pub fn bind(config: Config) -> io::Result<Server> {
        let poll = Poll::new()?;
        let mut listener = listener::bind_listener(config.addr, config.reuse_port)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        // signal-hook-mio installs a handler that writes a byte to a pipe (the
        // self-pipe trick): the only async-signal-safe way to wake `poll`. The
        // pipe's read end is registered like any socket.
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        let history = History::new(new_epoch(), config.history_bytes, config.history_messages);
        let cluster = redis::Cluster::new(&config, new_epoch(), Instant::now())?;
        poll.registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        Ok(Server {
            config,
            poll,
            events: Events::with_capacity(EVENTS_CAPACITY),
            listener: Some(listener),
            signals,
            connections: HashMap::new(),
            next_token: FIRST_CLIENT,
            books: Books::new(Instant::now()),
            history,
            client_keys: ClientKeys::default(),
            read_scratch: vec![0; READ_CHUNK],
            spare: SpareDescriptor::reserve(),
            shutting_down: false,
            cluster,
        })
    }

    /// The address actually bound (port 0 becomes a real port).
    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        match &self.listener {
            Some(listener) => listener.local_addr(),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Turns the loop until shutdown has finished.
    pub fn run(&mut self) -> io::Result<()> {
        while !(self.shutting_down && self.connections.is_empty()) {
            self.turn()?;
        }
        info!("shutdown complete");
        Ok(())
    }

    /// One turn of the loop (see the file comment for the steps).
    pub fn turn(&mut self) -> io::Result<()> {
        // 1. Sleep no longer than the next timer; not at all if reads are backlogged.
        let timeout = self.poll_timeout(Instant::now());
        // 2. Wait for readiness.
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        // One clock reading for the whole turn: every session is handed this `now`.
        let now = Instant::now();
        trace!(
            "poll woke: {} events, timeout {:?}",
            self.events.iter().count(),
            timeout
        );
        // 3. Dispatch. Connections on the read backlog are set aside first:
        //    those put there during this turn wait for the next one, so no
        //    connection is read twice in a turn.
        let backlog = std::mem::take(&mut self.books.read_backlog);
        self.dispatch_events(now);
        // 4. Connections that had more to read than last turn's share.
        self.read_backlog(backlog, now);
        // 5. Timers.
        self.fire_timers(now);
        // 6. One flush per connection that has output.
        self.flush_pending(now);
        // 7. Remove what closed; senders (and requests) wait no more if that made room.
        self.retire_closed(now);
        self.resume_paused_senders(now);
        self.resume_output_waiters(now);
        // With --redis: reconnect, read the stream, write what was queued.
        self.tend_redis(now);
        Ok(())
    }

    /// Step 1: until the first timer (a connection's, or the log's stall
    /// deadline); zero while reads are backlogged.
    fn poll_timeout(&mut self, now: Instant) -> Option<Duration> {
        if !self.books.read_backlog.is_empty() {
            return Some(Duration::ZERO);
        }
        let timer = self.books.timers.next_timeout(now);
        [timer, self.stall_timeout(now), self.redis_timeout(now)]
            .into_iter()
            .flatten()
            .min()
    }

    /// Step 3: each event goes to its handler. `events` is moved out so
    /// handlers may borrow `self` mutably.
    fn dispatch_events(&mut self, now: Instant) {
        let events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        for event in events.iter() {
            trace!(
                "event {:?}: readable={} writable={}",
                event.token(),
                event.is_readable(),
                event.is_writable()
            );
            match event.token() {
                LISTENER => self.accept_new_clients(now),
                SIGNALS => self.on_signal(now),
                redis::REDIS_COMMANDS | redis::REDIS_STREAM => {
                    self.on_redis_event(event.token(), now)
                }
                token => {
                    // Errors and hang-ups surface as a failed read or write.
                    let read_closed = event.is_read_closed() || event.is_error();
                    if event.is_readable() || read_closed {
                        self.on_readable(token, read_closed, now);
                    }
                    if event.is_writable() {
                        self.on_writable(token, now);
                    }
                }
            }
        }
        self.events = events;
    }

    // ---- accepting ----

    /// Accepts until `WouldBlock`: one readiness edge may stand for many connections.
    fn accept_new_clients(&mut self, now: Instant) {
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            let (socket, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if crate::limits::is_out_of_descriptors(&e) => {
                    if self.spare.refuse_one(listener, &e) {
                        continue;
                    }
                    // No reserve left: wait for a connection to close (see retire_closed).
                    return;
                }
                Err(e) => {
                    warn!("accept failed: {e}");
                    return;
                }
            };
            self.spare.recovered();
            self.admit(socket, peer, now);
        }
    }

    /// A new TCP connection: refused with 503 at `--max-connections`,
    /// otherwise given a token, registered and handed a session.
    fn admit(&mut self, mut socket: mio::net::TcpStream, peer: std::net::SocketAddr, now: Instant) {
        if self.connections.len() >= self.config.max_connections {
            warn!(
                "{peer} refused: {} connections is the limit",
                self.config.max_connections
            );
            crate::limits::refuse_busy(socket);
            return;
        }
        // Small frames are sent as soon as they are written (latency over batching).
        let _ = socket.set_nodelay(true);
        // A fixed send buffer: what a reader that does not read can make
        // the kernel hold is then bounded per connection (notes/09-shared-log.md#kernel-memory).
        let _ = socket2::SockRef::from(&socket).set_send_buffer_size(self.config.send_buffer_bytes);
        self.forget_finished_handshakes();
        if self.books.handshaking >= self.config.max_handshakes {
            self.cut_oldest_handshake(now);
        }
        let token = Token(self.next_token);
        self.next_token += 1;
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut socket, token, Interest::READABLE)
        {
            warn!("{peer}: register failed: {e}");
            return;
        }
        debug!("{token:?} accepted {peer}");
        let conn = Connection::new(token, socket, peer, now);
        self.connections.insert(token, conn);
        self.follow_up(token, now);
    }

    /// Drops from the front of `handshakes` the connections that have moved
    /// on, so the queue holds at most those accepted since the oldest
    /// still handshaking (bounded by the accept rate × the handshake timeout).
    fn forget_finished_handshakes(&mut self) {
        while let Some(&token) = self.books.handshakes.front() {
            match self.connections.get_mut(&token) {
                Some(conn) if conn.session.reads_requests() => return,
                Some(conn) => conn.in_handshake_queue = false,
                None => {}
            }
            self.books.handshakes.pop_front();
        }
    }

    /// `--max-handshakes` connections are still sending their request head:
    /// the oldest is answered 408 (and lingers, as any answer does), so a
    /// client that sends its head promptly always gets in, however many
    /// half-open connections others keep.
    fn cut_oldest_handshake(&mut self, now: Instant) {
        while let Some(token) = self.books.handshakes.pop_front() {
            let Some(conn) = self.connections.get_mut(&token) else {
                continue;
            };
            conn.in_handshake_queue = false;
            if conn.session.reads_requests() {
                info!(
                    "{} cut: {} connections still handshaking, the oldest makes room",
                    conn.peer, self.config.max_handshakes
                );
                conn.session.end(Ending::HandshakeTimedOut, now);
                return self.follow_up(token, now);
            }
        }
    }

    // ---- shutting down ----

    /// SIGINT or SIGTERM: stop accepting, end every connection (1001 to open
    /// ones, 503 to those still handshaking), and let `run` return once they
    /// have all closed (or their close timeouts fired).
    fn on_signal(&mut self, now: Instant) {
        let signals: Vec<i32> = self.signals.pending().collect();
        if signals.is_empty() {
            return;
        }
        if self.shutting_down {
            warn!("second signal: exiting without waiting");
            std::process::exit(0);
        }
        info!(
            "signal {signals:?}: shutting down, closing {} connections",
            self.connections.len()
        );
        self.shutting_down = true;
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let tokens: Vec<Token> = self.connections.keys().copied().collect();
        for token in tokens {
            if let Some(conn) = self.connections.get_mut(&token)
                && conn.session.state() != crate::session::ConnState::Closed
            {
                conn.session.end(Ending::ShuttingDown, now);
                self.follow_up(token, now);
            }
        }
    }
}

/// A random epoch for the log: ids from another run of the server (or
/// another server) then never match. `RandomState` is seeded from the OS.
fn new_epoch() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    let since_1970 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    hasher.write_u128(since_1970.as_nanos());
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}
