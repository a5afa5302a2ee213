//! The loop's records about its connections, and the one place they are kept
//! in step with each session: [`Books::follow_up`] runs after anything
//! happened to a connection (bytes read, a flush, a timer, a signal), and
//! [`Server::retire_closed`] removes the ones that ended.
//!
//! A session decides *what* happens (session.rs); these records are how the
//! loop acts on it: a timer armed for the session's next deadline, a place on
//! the flush list, `WRITABLE` interest while a write is blocked, a count for
//! `/status`, a place on the closed list (notes/01-readiness.md#follow-up).

use std::collections::VecDeque;
use std::time::Instant;

use log::{debug, info};
use mio::{Interest, Registry, Token};

use super::Server;
use crate::config::Config;
use crate::connection::{Connection, Hold};
use crate::handshake::{Endpoint, Refusal};
use crate::history::History;
use crate::session::{ConnState, Ending};
use crate::timer::TimerWheel;

/// What the loop keeps besides the connections themselves.
#[derive(Debug)]
pub(super) struct Books {
    /// One timer per connection, armed for its session's `poll_at`.
    pub timers: TimerWheel<Token>,
    /// Connections with output queued this turn, flushed once at its end.
    pub flush_list: Vec<Token>,
    /// Connections that spent their read budget and may hold unread bytes.
    pub read_backlog: Vec<Token>,
    /// Connections that reached `Closed`, removed by `retire_closed`.
    pub closed_list: Vec<Token>,
    /// Readers that have written the whole log and are not blocked: when
    /// the log grows, each is flushed once at the end of the turn. This is
    /// how appending stays O(1) whatever the number of readers.
    pub waiting_readers: Vec<Token>,
    /// The log grew this turn: the waiting readers have something to write.
    pub log_grew: bool,
    /// Chat senders not read while the log is full (`Hold::LogFull`), and
    /// since when the first of them has waited: `--stall-ms` counts from there.
    pub paused_senders: Vec<Token>,
    pub paused_since: Option<Instant>,
    /// When this pause began, for the log line that ends it (`paused_since`
    /// moves on at each stall deadline; this does not).
    pub pause_began: Option<Instant>,
    /// When a pause was last logged at info.
    pub pause_logged_at: Option<Instant>,
    /// Bytes of unfinished messages held by all connections (`--max-input-bytes`).
    pub unfinished_held: usize,
    /// Bytes of their own output all connections hold unwritten
    /// (`--max-output-bytes`), and the connections not read until it drains.
    pub output_held: usize,
    pub output_waiters: Vec<Token>,
    /// Connections still handshaking, oldest first (some may have moved on:
    /// skipped when met), and how many really are.
    pub handshakes: VecDeque<Token>,
    pub handshaking: usize,
    /// Connections in `Open`, `Streaming` and `Held`: what `/status` reports.
    pub open_count: usize,
    pub stream_count: usize,
    pub held_count: usize,
    /// Long polls held, waiting for the log to grow (some may have been
    /// answered or closed since: skipped when met), and whether some that
    /// have something to say wait for the server's output to drain.
    pub held_polls: Vec<Token>,
    pub polls_to_release: bool,
}

impl Books {
    pub fn new(now: Instant) -> Books {
        Books {
            timers: TimerWheel::new(now),
            flush_list: Vec::new(),
            read_backlog: Vec::new(),
            closed_list: Vec::new(),
            waiting_readers: Vec::new(),
            log_grew: false,
            paused_senders: Vec::new(),
            paused_since: None,
            pause_began: None,
            pause_logged_at: None,
            unfinished_held: 0,
            output_held: 0,
            output_waiters: Vec::new(),
            handshakes: VecDeque::new(),
            handshaking: 0,
            open_count: 0,
            stream_count: 0,
            held_count: 0,
            held_polls: Vec::new(),
            polls_to_release: false,
        }
    }

    /// Brings the records in step with `conn`'s session after anything
    /// happened to it. Cheap when nothing changed: a few comparisons.
    pub fn follow_up(
        &mut self,
        conn: &mut Connection,
        registry: &Registry,
        config: &Config,
        history: &mut History,
        now: Instant,
    ) {
        log_session_refusal(conn);
        update_interest(conn, registry, now);
        self.count_open(conn);
        self.count_handshaking(conn);
        self.count_unfinished(conn);
        self.count_output(conn);
        self.arm_timer(conn, config);
        if conn.session.state() == ConnState::Closed {
            self.closed_list.push(conn.token);
            return;
        }
        leave_log_after_open(conn, history);
        self.lift_output_hold(conn, config, now);
        self.schedule_flush(conn, history);
    }

    /// `--max-handshakes` counts connections waiting for a client's
    /// request: its head, or its body (a slow body is a slow loris too).
    /// A connection kept alive is counted again while it awaits its next
    /// request, and queued again unless it still is.
    fn count_handshaking(&mut self, conn: &mut Connection) {
        let waiting = conn.session.reads_requests();
        if waiting == conn.counted_handshaking {
            return;
        }
        conn.counted_handshaking = waiting;
        match waiting {
            true => self.handshaking += 1,
            false => self.handshaking -= 1,
        }
        if waiting && !conn.in_handshake_queue {
            conn.in_handshake_queue = true;
            self.handshakes.push_back(conn.token);
        }
    }

    /// Keeps `unfinished_held` equal to the sum of every connection's unfinished bytes.
    fn count_unfinished(&mut self, conn: &mut Connection) {
        let held = match conn.session.state() {
            ConnState::Closed => 0,
            _ => conn.session.unfinished_bytes(),
        };
        self.unfinished_held = self.unfinished_held - conn.unfinished_counted + held;
        conn.unfinished_counted = held;
    }

    /// Keeps `output_held` equal to the sum of every connection's unwritten own output.
    fn count_output(&mut self, conn: &mut Connection) {
        let held = match conn.session.state() {
            ConnState::Closed => 0,
            _ => conn.session.output().len(),
        };
        self.output_held = self.output_held - conn.output_counted + held;
        conn.output_counted = held;
    }

    /// The unfinished bytes all connections would hold if this one held what its session holds now.
    pub fn unfinished_with(&self, conn: &Connection) -> usize {
        self.unfinished_held - conn.unfinished_counted + conn.session.unfinished_bytes()
    }

    /// Why the input is held now (or `None`): the session is told, since a
    /// peer that is not read cannot be judged by its silence.
    pub fn set_hold(&mut self, conn: &mut Connection, hold: Option<Hold>, now: Instant) {
        if conn.hold != hold && hold == Some(Hold::LogFull) {
            self.paused_senders.push(conn.token);
            self.paused_since.get_or_insert(now);
            self.pause_began.get_or_insert(now);
        }
        if conn.hold != hold && hold == Some(Hold::ServerOutputFull) {
            self.output_waiters.push(conn.token);
        }
        if hold == Some(Hold::Budget) {
            self.backlog(conn);
        }
        conn.hold = hold;
        conn.session.hold_input(hold.is_some());
    }

    /// Puts a connection on the read backlog: read (or decoded) again next turn.
    pub fn backlog(&mut self, conn: &mut Connection) {
        if !conn.in_read_backlog && conn.session.state() != ConnState::Closed {
            conn.in_read_backlog = true;
            self.read_backlog.push(conn.token);
        }
    }

    /// A connection whose own output held its input: read it again once the
    /// output is back under the limit.
    fn lift_output_hold(&mut self, conn: &mut Connection, config: &Config, now: Instant) {
        if conn.hold == Some(Hold::OutputFull) && !conn.session.output_full(config) {
            self.set_hold(conn, Some(Hold::Budget), now);
        }
    }

    /// `/status` counts WebSocket clients (`Open`), event streams
    /// (`Streaming`) and held long polls (`Held`); this is the only place
    /// the counts change.
    fn count_open(&mut self, conn: &mut Connection) {
        let state = conn.session.state();
        let counted = matches!(
            state,
            ConnState::Open | ConnState::Streaming | ConnState::Held
        );
        let now_as = counted.then_some(state);
        if now_as == conn.counted_as {
            return;
        }
        if let Some(old) = conn.counted_as {
            *self.count_of(old) -= 1;
        }
        if let Some(new) = now_as {
            *self.count_of(new) += 1;
        }
        conn.counted_as = now_as;
    }

    fn count_of(&mut self, state: ConnState) -> &mut usize {
        match state {
            ConnState::Streaming => &mut self.stream_count,
            ConnState::Held => &mut self.held_count,
            _ => &mut self.open_count,
        }
    }

    /// The connection's one timer follows its session's next deadline; a
    /// closed session has none, and its timer is cancelled.
    fn arm_timer(&mut self, conn: &mut Connection, config: &Config) {
        let due = conn.session.poll_at(config);
        if conn.timer.map(|(_, at)| at) == due {
            return;
        }
        if let Some((handle, _)) = conn.timer.take() {
            self.timers.cancel(handle);
        }
        if let Some(at) = due {
            conn.timer = Some((self.timers.insert(at, conn.token), at));
        }
    }

    /// Output waits for the flush at the end of the turn, once per connection
    /// however many frames it got. A connection whose socket is full is
    /// flushed by its `WRITABLE` event instead; a reader with nothing left to
    /// write waits for the log to grow.
    fn schedule_flush(&mut self, conn: &mut Connection, history: &History) {
        if conn.queued_for_flush || conn.write_blocked {
            return;
        }
        let log_pending = conn
            .reader
            .as_ref()
            .is_some_and(|r| r.offset > 0 || r.next <= history.last_id());
        // A connection lingering with nothing left to write still needs its
        // FIN sent (an idle kept-alive connection closed, a stream ended).
        let fin_due = conn.session.wants_half_close();
        if !conn.session.output().is_empty() || log_pending || fin_due {
            conn.queued_for_flush = true;
            self.flush_list.push(conn.token);
        } else if conn.reader.is_some() && !conn.waiting_for_log {
            conn.waiting_for_log = true;
            self.waiting_readers.push(conn.token);
        }
    }

    /// Step 6 begins here: if the log grew this turn, every waiting reader
    /// has something to write.
    pub fn wake_waiting_readers(
        &mut self,
        connections: &mut std::collections::HashMap<Token, Connection>,
    ) {
        if !std::mem::take(&mut self.log_grew) {
            return;
        }
        for token in std::mem::take(&mut self.waiting_readers) {
            if let Some(conn) = connections.get_mut(&token) {
                conn.waiting_for_log = false;
                if !conn.queued_for_flush && !conn.write_blocked {
                    conn.queued_for_flush = true;
                    self.flush_list.push(token);
                }
            }
        }
    }
}

/// A reader that left `Open` (its Close is queued) writes no more of the
/// log, once any frame it had begun is finished (§5.5.1: nothing after a Close).
fn leave_log_after_open(conn: &mut Connection, history: &mut History) {
    if !conn.session.takes_log()
        && let Some(reader) = conn.reader.take_if(|r| r.offset == 0)
    {
        history.leave(reader.next);
    }
}

/// One line at info for a refusal the session wrote itself (the loop logs
/// its own where it makes them: `incoming.rs`).
fn log_session_refusal(conn: &mut Connection) {
    if let Some(refused) = conn.session.take_refused() {
        log_refused(conn.peer, &refused.request, refused.refusal);
    }
}

/// The one line at info every refused request leaves, whoever refused it:
/// the peer, the request (method and path, never the query, which may hold
/// a token), the status and the one-line reason its answer carries.
pub(super) fn log_refused(peer: std::net::SocketAddr, request: &str, refusal: Refusal) {
    let Refusal { status, reason } = refusal;
    info!("{peer} refused: {request}: {status} {reason}");
}

/// Asks for `WRITABLE` exactly while a write is blocked.
///
/// The plain rule would be "WRITABLE while output is queued". The shortcut:
/// edge-triggered `WRITABLE` would fire on every drained send buffer, so it is
/// registered only once a write has hit `WouldBlock`; output queued this turn
/// is written by the end-of-turn flush first, and most of the time that is
/// enough (notes/01-readiness.md#interest).
fn update_interest(conn: &mut Connection, registry: &Registry, now: Instant) {
    let wanted = conn.write_blocked;
    // A closed connection's socket is about to be dropped, which deregisters it.
    if wanted == conn.writable_registered || conn.session.state() == ConnState::Closed {
        return;
    }
    let interest = match wanted {
        true => Interest::READABLE | Interest::WRITABLE,
        false => Interest::READABLE,
    };
    match registry.reregister(&mut conn.socket, conn.token, interest) {
        Ok(()) => conn.writable_registered = wanted,
        Err(e) => {
            debug!("{:?} reregister failed: {e}", conn.token);
            conn.session.end(Ending::ConnectionLost, now);
        }
    }
}

impl Server {
    /// `Books::follow_up` for the connection with this token, if it is still here.
    pub(super) fn follow_up(&mut self, token: Token, now: Instant) {
        if let Some(conn) = self.connections.get_mut(&token) {
            let registry = self.poll.registry();
            self.books
                .follow_up(conn, registry, &self.config, &mut self.history, now);
        }
    }

    /// Step 7: removes every connection that reached `Closed` this turn, with
    /// the log line that says why it ended. Removal waits until here so no
    /// handler ever finds a connection vanished mid-turn. Its timer and its
    /// count were already settled by `follow_up`.
    pub(super) fn retire_closed(&mut self, now: Instant) {
        let closed = std::mem::take(&mut self.books.closed_list);
        for &token in &closed {
            // Dropping the socket closes it, which also removes it from epoll.
            if let Some(mut conn) = self.connections.remove(&token) {
                conn.say_last_words();
                if let Some(reader) = conn.reader.take() {
                    self.history.leave(reader.next);
                }
                self.log_departure(&conn);
            }
        }
        // A descriptor came back: connections may be waiting in the backlog with
        // no new readiness edge to announce them.
        if self.spare.exhausted() && !closed.is_empty() {
            self.accept_new_clients(now);
        }
    }

    /// One line per WebSocket client that leaves: who, how, and the close code.
    fn log_departure(&self, conn: &Connection) {
        let record = conn.session.ending();
        let (code, reason, cause) = record.map_or((1006, "", "connection lost"), |r| {
            (r.code, r.reason.as_str(), r.cause)
        });
        match (conn.session.endpoint(), record) {
            (Some(Endpoint::Events), _) => info!(
                "{} left Events: {cause}; {} streams",
                conn.peer, self.books.stream_count
            ),
            (Some(endpoint), _) => info!(
                "{} left {endpoint:?}: {cause}, code {code} {reason:?}; {} open",
                conn.peer, self.books.open_count
            ),
            // Plain HTTP that stopped reading its answers: news, like a slow reader.
            (None, Some(record)) if record.abandoned => {
                info!("{} {cause}: it did not read its answers", conn.peer)
            }
            // A plain HTTP request, answered (or timed out, or cut short).
            (None, Some(_)) => debug!("{:?} {} closed: {cause}", conn.token, conn.peer),
            (None, None) => debug!("{:?} {} closed", conn.token, conn.peer),
        }
    }
}
