//! One client as the loop sees it: a socket, the session that speaks the
//! protocol on it, and the loop's marks (its timer, its place on the lists,
//! its registered interest).
//!
//! This is the IO half. The protocol half, `session.rs`, never sees the
//! socket: [`Connection::read_available`] moves bytes from the socket into the
//! session, and [`Connection::flush`] moves the session's output to the
//! socket. Nothing else here reads or writes (notes/01-readiness.md#the-session).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::Instant;

use log::trace;
use mio::Token;
use mio::net::TcpStream;

use crate::session::Session;
use crate::timer::TimerHandle;

/// Reads per connection per loop turn, so one flooding client cannot starve
/// the others (notes/04-broadcast.md#fairness). Edge-triggered readiness does
/// not repeat, so a connection that still has bytes goes on the server's
/// read backlog and gets another turn.
pub const READS_PER_TURN: usize = 4;

/// Frames at least this big skip the session's queue when nothing is queued
/// before them (see `Connection::write_through`).
pub const WRITE_THROUGH_BYTES: usize = 64 * 1024;

/// How a round of reading ended.
#[derive(Debug)]
pub enum ReadOutcome {
    /// `WouldBlock`, or a short read: the socket is drained; wait for the next event.
    Drained,
    /// The per-turn budget ran out with bytes possibly left in the socket.
    BudgetSpent,
    /// `Ok(0)`: the peer sent FIN.
    PeerClosed,
    /// The socket failed (reset, for instance).
    Failed(io::Error),
}

/// How a flush ended.
#[derive(Debug)]
pub enum FlushOutcome {
    /// Everything queued was written.
    Done,
    /// The socket's send buffer is full; `WRITABLE` will say when it drains.
    Blocked,
    /// The socket failed.
    Failed(io::Error),
}

/// One accepted TCP connection.
#[derive(Debug)]
pub struct Connection {
    pub token: Token,
    pub socket: TcpStream,
    pub peer: SocketAddr,
    /// The protocol: state, buffers, close handshake, heartbeat.
    pub session: Session,
    /// The one timer this connection has, and the deadline it was armed for;
    /// when `session.poll_at` moves, the timer is re-armed.
    pub timer: Option<(TimerHandle, Instant)>,
    /// The last write hit `WouldBlock` with output left: wait for `WRITABLE`.
    pub write_blocked: bool,
    /// `WRITABLE` is part of the registered interest (exactly while `write_blocked`).
    pub writable_registered: bool,
    /// On the server's list of connections to flush at the end of this turn.
    pub queued_for_flush: bool,
    /// On the server's read backlog (it spent its read budget).
    pub in_read_backlog: bool,
    /// Counted in the server's `open_count` (from the upgrade until it leaves `Open`).
    pub counted_open: bool,
}

impl Connection {
    pub fn new(token: Token, socket: TcpStream, peer: SocketAddr, now: Instant) -> Connection {
        Connection {
            token,
            socket,
            peer,
            session: Session::new(token.0, now),
            timer: None,
            write_blocked: false,
            writable_registered: false,
            queued_for_flush: false,
            in_read_backlog: false,
            counted_open: false,
        }
    }

    /// Reads until the socket is drained or the budget is spent, handing
    /// every byte to the session. mio is edge-triggered: a socket left with
    /// unread bytes gets no second event, so draining is required.
    ///
    /// The rule is "read until `WouldBlock`". The shortcut: a read that
    /// returns less than `scratch` holds has drained the socket as surely,
    /// since bytes that arrive later raise a new edge, and skipping that
    /// extra `read` saves a syscall per event (libuv does the same). It does
    /// not hold when a FIN may be waiting behind the data (the event said so,
    /// or no event was seen at all): a FIN raises no new edge, so then
    /// `trust_short_reads` is false and we read on until `Ok(0)` or
    /// `WouldBlock` (notes/01-readiness.md#draining).
    pub fn read_available(&mut self, scratch: &mut [u8], trust_short_reads: bool) -> ReadOutcome {
        for _ in 0..READS_PER_TURN {
            match self.socket.read(scratch) {
                // Ok(0): the peer closed its side (FIN).
                Ok(0) => return ReadOutcome::PeerClosed,
                Ok(n) => {
                    trace!("{:?} read {n} bytes", self.token);
                    self.session.receive(&scratch[..n]);
                    if n < scratch.len() && trust_short_reads {
                        return ReadOutcome::Drained;
                    }
                }
                // WouldBlock: nothing more for now; the next edge will tell us.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadOutcome::Drained,
                // Interrupted: a signal arrived mid-call; just try again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return ReadOutcome::Failed(e),
            }
        }
        ReadOutcome::BudgetSpent
    }

    /// Writes the session's output until it is all written or the socket
    /// would block; then, if the session wants it, sends FIN.
    pub fn flush(&mut self, now: Instant) -> FlushOutcome {
        while !self.session.output().is_empty() {
            match self.socket.write(self.session.output()) {
                // Ok(0) on a non-empty buffer: the socket cannot take bytes any more.
                Ok(0) => return FlushOutcome::Failed(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    let partial = n < self.session.output().len();
                    self.session.wrote(n, now);
                    // The rule is "write until `WouldBlock`". The shortcut: a
                    // partial write means the send buffer is full, and the next
                    // write would only say so; wait for `WRITABLE` now.
                    if partial {
                        self.write_blocked = true;
                        return FlushOutcome::Blocked;
                    }
                }
                // WouldBlock: the kernel's send buffer is full; WRITABLE will tell us when it drains.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.write_blocked = true;
                    return FlushOutcome::Blocked;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return FlushOutcome::Failed(e),
            }
        }
        self.write_blocked = false;
        if self.session.wants_half_close() {
            // Our last bytes are out: FIN, and keep reading until the peer's.
            let _ = self.socket.shutdown(Shutdown::Write);
            self.session.half_closed();
        }
        FlushOutcome::Done
    }

    /// Writes a large frame straight to the socket if nothing is queued
    /// before it, and returns what the socket did not take.
    ///
    /// The rule is "queue, then flush once at the end of the turn", so many
    /// frames coalesce into one write. The shortcut: a frame of at least
    /// `WRITE_THROUGH_BYTES` gains nothing from coalescing, and writing it
    /// now saves copying it into the queue. Errors are left for the next
    /// flush to find (notes/04-broadcast.md#coalescing).
    pub fn write_through<'f>(&mut self, frame: &'f [u8]) -> &'f [u8] {
        if frame.len() < WRITE_THROUGH_BYTES
            || !self.session.output().is_empty()
            || self.write_blocked
        {
            return frame;
        }
        match self.socket.write(frame) {
            Ok(n) => {
                trace!("{:?} wrote {n} bytes", self.token);
                &frame[n..]
            }
            Err(_) => frame,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::ConnState;
    use std::time::Duration;

    /// A connection on the accepting side of a loopback pair, and the client's end.
    fn pair() -> (Connection, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, peer) = listener.accept().unwrap();
        accepted.set_nonblocking(true).unwrap();
        let conn = Connection::new(
            Token(7),
            TcpStream::from_std(accepted),
            peer,
            Instant::now(),
        );
        (conn, client)
    }

    /// Waits until `n` bytes can be read from the connection's socket.
    fn wait_readable(conn: &Connection, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut peek = vec![0; n];
        while conn.socket.peek(&mut peek).unwrap_or(0) < n {
            assert!(Instant::now() < deadline, "bytes never arrived");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn one_call_reads_at_most_its_budget_and_says_so() {
        let (mut conn, mut client) = pair();
        client.write_all(&[b'a'; 1000]).unwrap();
        wait_readable(&conn, 1000);
        let mut scratch = [0; 16];
        assert!(matches!(
            conn.read_available(&mut scratch, true),
            ReadOutcome::BudgetSpent
        ));
        // Still handshaking: the session holds every byte read, unparsed.
        assert_eq!(conn.session.state(), ConnState::Handshaking);
        let mut rest = [0; 1000];
        let left = conn.socket.peek(&mut rest).unwrap();
        assert_eq!(left, 1000 - READS_PER_TURN * scratch.len());
    }

    #[test]
    fn a_short_read_ends_the_round_unless_a_fin_may_follow() {
        let (mut conn, mut client) = pair();
        client.write_all(b"hello").unwrap();
        wait_readable(&conn, 5);
        let mut scratch = [0; 64];
        assert!(matches!(
            conn.read_available(&mut scratch, true),
            ReadOutcome::Drained
        ));
        client.write_all(b" world").unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        wait_readable(&conn, 6);
        // The event said the peer closed: read on until Ok(0).
        assert!(matches!(
            conn.read_available(&mut scratch, false),
            ReadOutcome::PeerClosed
        ));
    }

    #[test]
    fn a_flush_writes_the_session_output_and_half_closes_when_it_lingers() {
        let (mut conn, mut client) = pair();
        let now = Instant::now();
        conn.session.answer(b"HTTP/1.1 404 Not Found\r\n\r\n", now);
        assert!(matches!(conn.flush(now), FlushOutcome::Done));
        let mut answer = Vec::new();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // read_to_end ends only at the FIN the flush sent after the answer.
        client.read_to_end(&mut answer).unwrap();
        assert_eq!(answer, b"HTTP/1.1 404 Not Found\r\n\r\n");
    }
}
