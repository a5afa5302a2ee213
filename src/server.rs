//! The poll loop: one thread, one `mio::Poll`, every connection and timer.
//!
//! Interface: [`Server::bind`] opens the listener, [`Server::run`] turns the
//! loop until a signal has shut the server down, and [`Server::turn`] is one
//! turn, top to bottom (notes/01-readiness.md#one-turn):
//!
//! 1. compute the poll timeout from the timer wheel (zero if reads are backlogged);
//! 2. `poll`: sleep until a socket is ready, a signal arrives or a timer is due;
//! 3. dispatch each event: accept, read + decode + broadcast, or flush;
//! 4. give backlogged readers their next share;
//! 5. fire due timers: heartbeats, handshake and close timeouts;
//! 6. flush every connection that got output this turn, once (coalescing);
//! 7. reap the connections that closed.
//!
//! The handlers live beside this file: `server/incoming.rs` (read, upgrade,
//! decode, deliver), `server/outgoing.rs` (flush, and `settle` after every
//! event) and `server/timeouts.rs` (what a fired timer means).

use std::collections::HashMap;
use std::io;
use std::time::Instant;

use log::{debug, info, trace, warn};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;

mod incoming;
mod outgoing;
mod timeouts;

use crate::config::Config;
use crate::connection::{ConnState, Connection};
use crate::limits::SpareDescriptor;
use crate::timer::TimerWheel;

/// The listening socket's token.
pub const LISTENER: Token = Token(0);
/// The token of the signal pipe (SIGINT, SIGTERM).
pub const SIGNALS: Token = Token(1);
/// Client tokens start here and are never reused, so a late event for a
/// connection that is gone finds nothing.
const FIRST_CLIENT: usize = 2;

/// §4.2.1 gives no limit; 8 KiB is what common servers accept for a request head.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
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
    /// One timer per connection; its meaning follows the connection's state.
    timers: TimerWheel<Token>,
    /// Connections with output queued this turn, flushed once at its end.
    flush_list: Vec<Token>,
    /// Connections that spent their read budget and may hold unread bytes.
    read_backlog: Vec<Token>,
    /// Connections that reached `Closed`, removed by `reap_closed`.
    closed_list: Vec<Token>,
    /// Connections in `Open`: what `/status` reports.
    open_count: usize,
    /// Scratch space every `read` lands in before it is appended to a connection.
    read_scratch: Vec<u8>,
    /// The server frame of the message being delivered: encoded once, appended to each recipient.
    outgoing: Vec<u8>,
    /// A reserved descriptor for running out of descriptors (see limits.rs).
    spare: SpareDescriptor,
    /// When shutdown began, if it has.
    shutting_down: bool,
}

impl Server {
    /// Binds the listener and the signal pipe; nothing is accepted until `run`.
    pub fn bind(config: Config) -> io::Result<Server> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(config.addr)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        // signal-hook-mio installs a handler that writes a byte to a pipe (the
        // self-pipe trick): the only async-signal-safe way to wake `poll`. The
        // pipe's read end is registered like any socket.
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
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
            timers: TimerWheel::new(Instant::now()),
            flush_list: Vec::new(),
            read_backlog: Vec::new(),
            closed_list: Vec::new(),
            open_count: 0,
            read_scratch: vec![0; READ_CHUNK],
            outgoing: Vec::new(),
            spare: SpareDescriptor::reserve(),
            shutting_down: false,
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
        let timeout = match self.read_backlog.is_empty() {
            true => self.timers.next_timeout(Instant::now()),
            false => Some(std::time::Duration::ZERO),
        };
        // 2. Wait for readiness.
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        trace!(
            "poll woke: {} events, timeout {:?}",
            self.events.iter().count(),
            timeout
        );
        // 3. Dispatch. `events` is moved out so handlers may borrow `self` mutably.
        let events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        for event in events.iter() {
            trace!(
                "event {:?}: readable={} writable={}",
                event.token(),
                event.is_readable(),
                event.is_writable()
            );
            match event.token() {
                LISTENER => self.accept_new_clients(),
                SIGNALS => self.on_signal(),
                token => {
                    // Errors and hang-ups surface as a failed read or write.
                    if event.is_readable() || event.is_read_closed() || event.is_error() {
                        self.on_readable(token, event.is_read_closed() || event.is_error());
                    }
                    if event.is_writable() {
                        self.on_writable(token);
                    }
                }
            }
        }
        self.events = events;
        // 4. Connections that had more to read than one turn's share.
        for token in std::mem::take(&mut self.read_backlog) {
            if let Some(conn) = self.connections.get_mut(&token) {
                conn.in_read_backlog = false;
                // No event says whether a FIN came: read until the socket says.
                self.on_readable(token, true);
            }
        }
        // 5. Timers.
        self.fire_timers(Instant::now());
        // 6. One flush per connection that has output.
        self.flush_pending();
        // 7. Remove what closed.
        self.reap_closed();
        Ok(())
    }

    // ---- accepting ----

    /// Accepts until `WouldBlock`: one readiness edge may stand for many connections.
    fn accept_new_clients(&mut self) {
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            let (mut socket, peer) = match listener.accept() {
                Ok(accepted) => accepted,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if crate::limits::is_out_of_descriptors(&e) => {
                    if self.spare.refuse_one(listener, &e) {
                        continue;
                    }
                    // No reserve left: wait for a connection to close (see reap_closed).
                    return;
                }
                Err(e) => {
                    warn!("accept failed: {e}");
                    return;
                }
            };
            self.spare.recovered();
            if self.connections.len() >= self.config.max_connections {
                warn!(
                    "{peer} refused: {} connections is the limit",
                    self.config.max_connections
                );
                crate::limits::refuse_busy(socket);
                continue;
            }
            // Small frames are sent as soon as they are written (latency over batching).
            let _ = socket.set_nodelay(true);
            let token = Token(self.next_token);
            self.next_token += 1;
            if let Err(e) = self
                .poll
                .registry()
                .register(&mut socket, token, Interest::READABLE)
            {
                warn!("{peer}: register failed: {e}");
                continue;
            }
            debug!("{token:?} accepted {peer}");
            self.connections
                .insert(token, Connection::new(token, socket, peer));
            self.settle(token);
        }
    }

    // ---- endings ----

    /// Removes every connection that reached `Closed` this turn. Removal
    /// waits until here so no handler ever finds a connection vanished mid-turn.
    fn reap_closed(&mut self) {
        let reaped = std::mem::take(&mut self.closed_list);
        for &token in &reaped {
            let Some(conn) = self.connections.remove(&token) else {
                continue;
            };
            if let Some(handle) = conn.timer {
                self.timers.cancel(handle);
            }
            if conn.counted_open {
                self.open_count -= 1;
            }
            if let Some(endpoint) = conn.endpoint {
                let record = conn.close.as_deref();
                let (code, reason, cause) = record.map_or((1006, "", "connection lost"), |r| {
                    (r.code, r.reason.as_str(), r.cause)
                });
                info!(
                    "{} left {endpoint:?}: {cause}, code {code} {reason:?}; {} open",
                    conn.peer, self.open_count
                );
            } else {
                debug!("{token:?} {} closed", conn.peer);
            }
            // Dropping the socket closes it, which also removes it from epoll.
        }
        // A descriptor came back: connections may be waiting in the backlog with
        // no new readiness edge to announce them.
        if self.spare.exhausted() && !reaped.is_empty() {
            self.accept_new_clients();
        }
    }

    /// SIGINT or SIGTERM: stop accepting, send 1001 to every client, and let
    /// `run` return once they have all closed (or their close timeouts fired).
    fn on_signal(&mut self) {
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
            let Some(conn) = self.connections.get_mut(&token) else {
                continue;
            };
            match conn.state() {
                ConnState::Open => conn.start_closing(1001, "server shutting down"),
                ConnState::Handshaking => conn.set_state(ConnState::Closed),
                _ => {}
            }
            self.settle(token);
        }
    }
}
