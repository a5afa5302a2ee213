//! One client as the loop sees it: a socket, the session that speaks the
//! protocol on it, and the loop's marks (its timer, its place on the lists,
//! its registered interest).
//!
//! This is the IO half. The protocol half, `session.rs`, never sees the
//! socket: [`Connection::read_available`] moves bytes from the socket into the
//! session, and [`Connection::flush`] moves the session's output to the
//! socket. Nothing else here reads or writes (notes/01-readiness.md#the-session).

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::Instant;

use log::trace;
use mio::Token;
use mio::net::TcpStream;

use crate::config::Config;
use crate::history::{History, Reader};
use crate::session::{ConnState, Session};
use crate::timer::TimerHandle;

/// Reads per connection per loop turn, so one flooding client cannot starve
/// the others (notes/04-broadcast.md#fairness). Edge-triggered readiness does
/// not repeat, so a connection that still has bytes goes on the server's
/// read backlog and gets another turn.
pub const READS_PER_TURN: usize = 4;

/// Frames at least this big skip the session's queue when nothing is queued
/// before them (see `Connection::write_through`).
pub const WRITE_THROUGH_BYTES: usize = 64 * 1024;

/// Frames gathered into one vectored write at most (Linux takes up to 1024).
const WRITE_SLICES: usize = 512;
/// The slices of an ordinary flush: a reader a few messages behind.
const FEW_SLICES: usize = 16;

/// Why the loop stopped decoding a connection's input with some still
/// unread or undecoded: it is not read again until the hold is lifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// It used its share of this turn (messages or bytes): next turn.
    Budget,
    /// The shared log is full: when readers have freed room.
    LogFull,
    /// Its own output is over `--max-buffered-bytes`: when that drains.
    OutputFull,
    /// The unwritten output of all connections is over `--max-output-bytes`,
    /// and what it would act on next makes more: when that drains.
    ServerOutputFull,
    /// A long poll is held with the next request already waiting behind
    /// it: when the poll is answered.
    Answering,
}

/// How a round of reading ended.
#[derive(Debug)]
pub enum ReadOutcome {
    /// `WouldBlock`, or a short read: the socket is drained; wait for the next event.
    Drained,
    /// A full read: the socket may hold more.
    More,
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
    /// Its place in the shared log, while it is an open chat connection.
    pub reader: Option<Reader>,
    /// `?name=`, or `None` for `guest-<token>`.
    pub name: Option<Box<str>>,
    /// Why its input is not being read now, if it is not.
    pub hold: Option<Hold>,
    /// The socket said FIN while input was held: acted on once that input is.
    pub fin_deferred: bool,
    /// On the list of caught-up readers, flushed when the log grows.
    pub waiting_for_log: bool,
    /// A held long poll: what it waits after (boxed: most connections never poll).
    pub poll: Option<Box<crate::long_poll::PollWait>>,
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
    /// The state it is counted under for `/status` (`Open`, `Streaming` or
    /// `Held`), until it leaves that state.
    pub counted_as: Option<ConnState>,
    /// Counted among the connections still handshaking (`--max-handshakes`).
    pub counted_handshaking: bool,
    /// On the server's queue of connections awaiting a request (oldest first).
    pub in_handshake_queue: bool,
    /// What it adds to the unfinished bytes all connections hold (`--max-input-bytes`).
    pub unfinished_counted: usize,
    /// What it adds to the unwritten output all connections hold (`--max-output-bytes`).
    pub output_counted: usize,
}

impl Connection {
    pub fn new(token: Token, socket: TcpStream, peer: SocketAddr, now: Instant) -> Connection {
        Connection {
            token,
            socket,
            peer,
            session: Session::new(token.0, now),
            reader: None,
            name: None,
            hold: None,
            fin_deferred: false,
            waiting_for_log: false,
            poll: None,
            timer: None,
            write_blocked: false,
            writable_registered: false,
            queued_for_flush: false,
            in_read_backlog: false,
            counted_as: None,
            counted_handshaking: false,
            in_handshake_queue: false,
            unfinished_counted: 0,
            output_counted: 0,
        }
    }

    /// One `read` into `scratch`, handed to the session. mio is
    /// edge-triggered: a socket left with unread bytes gets no second event,
    /// so the loop reads until this says the socket is drained (or the
    /// turn's share is spent: then it is read again next turn).
    ///
    /// The rule is "read until `WouldBlock`". The shortcut: a read that
    /// returns less than `scratch` holds has drained the socket as surely,
    /// since bytes that arrive later raise a new edge, and skipping that
    /// extra `read` saves a syscall per event (libuv does the same). It does
    /// not hold when a FIN may be waiting behind the data (the event said so,
    /// or no event was seen at all): a FIN raises no new edge, so then
    /// `trust_short_reads` is false and we read on until `Ok(0)` or
    /// `WouldBlock` (notes/01-readiness.md#draining).
    pub fn read_once(&mut self, scratch: &mut [u8], trust_short_reads: bool) -> ReadOutcome {
        loop {
            return match self.socket.read(scratch) {
                // Ok(0): the peer closed its side (FIN).
                Ok(0) => ReadOutcome::PeerClosed,
                Ok(n) => {
                    trace!("{:?} read {n} bytes", self.token);
                    self.session.receive(&scratch[..n]);
                    match n < scratch.len() && trust_short_reads {
                        true => ReadOutcome::Drained,
                        false => ReadOutcome::More,
                    }
                }
                // WouldBlock: nothing more for now; the next edge will tell us.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => ReadOutcome::Drained,
                // Interrupted: a signal arrived mid-call; just try again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => ReadOutcome::Failed(e),
            };
        }
    }

    /// Writes until everything is written or the socket would block: first
    /// the rest of a log frame begun earlier, then the session's own output,
    /// then (while open) the log entries after the reader's position, many
    /// frames per `writev`. Then, if the session wants it, sends FIN.
    pub fn flush(&mut self, history: &mut History, config: &Config, now: Instant) -> FlushOutcome {
        let start = self.reader.as_ref().map(|r| r.next);
        // Most flushes have a few frames to write; a slice array is cleared
        // before each use, so a small one serves them and a large one only
        // a reader far behind (a burst, a replay).
        let behind = self
            .reader
            .as_ref()
            .map_or(0, |r| history.last_id() + 1 - r.next);
        let outcome = match behind < FEW_SLICES as u64 - 2 {
            true => self.write_out::<FEW_SLICES>(history, config, now),
            false => self.write_out::<WRITE_SLICES>(history, config, now),
        };
        if let (Some(old), Some(reader)) = (start, &self.reader)
            && reader.next != old
        {
            history.leave(old);
            history.join(reader.next);
        }
        self.write_blocked = matches!(outcome, FlushOutcome::Blocked);
        if matches!(outcome, FlushOutcome::Done) && self.session.wants_half_close() {
            // Our last bytes are out: FIN, and keep reading until the peer's.
            let _ = self.socket.shutdown(Shutdown::Write);
            self.session.half_closed();
        }
        outcome
    }

    /// The write loop of `flush`, with room for `N` frames per `writev`.
    fn write_out<const N: usize>(
        &mut self,
        history: &mut History,
        config: &Config,
        now: Instant,
    ) -> FlushOutcome {
        loop {
            if let Some(reader) = &self.reader {
                history.prepare(reader, N, now);
            }
            let mut slices = [IoSlice::new(&[]); N];
            let count = gather(&self.session, self.reader.as_ref(), history, &mut slices);
            if count == 0 {
                // Nothing to write, but the reader may stand before its own
                // messages (plain: skipped): move it past them.
                self.consume(history, 0, config, now);
                return FlushOutcome::Done;
            }
            let total: usize = slices[..count].iter().map(|s| s.len()).sum();
            match self.socket.write_vectored(&slices[..count]) {
                // Ok(0) with bytes to write: the socket cannot take bytes any more.
                Ok(0) => return FlushOutcome::Failed(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    trace!("{:?} wrote {n} bytes", self.token);
                    self.consume(history, n, config, now);
                    // The rule is "write until `WouldBlock`". The shortcut: a
                    // short write means the send buffer is full, and the next
                    // write would only say so; wait for `WRITABLE` now.
                    if n < total {
                        return FlushOutcome::Blocked;
                    }
                }
                // WouldBlock: the kernel's send buffer is full; WRITABLE will tell us when it drains.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return FlushOutcome::Blocked,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return FlushOutcome::Failed(e),
            }
        }
    }

    /// Accounts for `n` bytes written, in the order `gather` laid them out.
    fn consume(&mut self, history: &History, mut n: usize, config: &Config, now: Instant) {
        if let Some(reader) = &mut self.reader
            && reader.offset > 0
            && let Some(frame) = history.get(reader.next).and_then(|e| reader.frame(e))
        {
            let left = frame.len() - reader.offset;
            if n < left {
                reader.offset += n;
                return;
            }
            n -= left;
            reader.next += 1;
            reader.offset = 0;
        }
        let own = n.min(self.session.output().len());
        if own > 0 {
            self.session.wrote(own, config, now);
            n -= own;
        }
        if !self.session.output().is_empty() || !self.session.takes_log() {
            return;
        }
        let Some(reader) = &mut self.reader else {
            return;
        };
        // Whole frames, then part of one; own messages skipped (plain) cost nothing.
        while let Some(entry) = history.get(reader.next)
            && let Some(frame) = reader.frame(entry)
        {
            let len = frame.len();
            if n < len {
                reader.offset = n;
                return;
            }
            n -= len;
            reader.next += 1;
        }
    }

    /// One write of what a closed session still holds (a Close 1008 for a
    /// slow consumer), unless a log frame was cut mid-write: then a Close
    /// would be read as part of its payload. Never waited on.
    ///
    /// A peer that was abandoned (it did not read) is then reset rather
    /// than closed: a graceful close would leave the kernel
    /// holding the unsent bytes of an orphaned socket until the peer reads
    /// them or gives up, which for N such peers is N send buffers of kernel
    /// memory (notes/09-shared-log.md#kernel-memory).
    pub fn say_last_words(&mut self) {
        let mid_frame = self.reader.as_ref().is_some_and(|r| r.offset > 0);
        if !mid_frame && !self.session.output().is_empty() {
            let _ = self.socket.write(self.session.output());
        }
        if self.session.ending().is_some_and(|e| e.abandoned) {
            // SO_LINGER of zero: close() sends a reset and frees the buffers at once.
            let _ =
                socket2::SockRef::from(&self.socket).set_linger(Some(std::time::Duration::ZERO));
        }
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

/// Fills `slices` in the order the bytes must go out; returns how many.
fn gather<'a>(
    session: &'a Session,
    reader: Option<&'a Reader>,
    history: &'a History,
    slices: &mut [IoSlice<'a>],
) -> usize {
    let mut count = 0;
    let mut next = reader.map(|r| r.next);
    // A log frame cut by an earlier short write is finished first.
    if let Some(reader) = reader
        && reader.offset > 0
        && let Some(entry) = history.get(reader.next)
        && let Some(frame) = reader.frame(entry)
    {
        slices[count] = IoSlice::new(&frame[reader.offset..]);
        count += 1;
        next = Some(reader.next + 1);
    }
    if !session.output().is_empty() {
        slices[count] = IoSlice::new(session.output());
        count += 1;
    }
    // After a Close, no more data frames (§5.5.1).
    let (Some(reader), Some(mut id)) = (reader, next) else {
        return count;
    };
    if !session.takes_log() {
        return count;
    }
    while count < slices.len()
        && let Some(entry) = history.get(id)
        && let Some(frame) = reader.frame(entry)
    {
        if !frame.is_empty() {
            slices[count] = IoSlice::new(frame);
            count += 1;
        }
        id += 1;
    }
    count
}

#[cfg(test)]
mod tests;
