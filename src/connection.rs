//! One client: its socket, its state, its two buffers, and what it does with
//! the frames it receives.
//!
//! Interface: the server calls [`Connection::read_available`] on readiness,
//! then [`Connection::next_message`] until it returns `None`, and
//! [`Connection::flush_write_buf`] once per turn while output is pending.
//! The connection answers pings and closes by itself; data messages go back to
//! the server, which decides who receives them. State changes only in
//! [`Connection::set_state`], which logs them (notes/01-readiness.md#states).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};

use log::{debug, trace};
use mio::Token;
use mio::net::TcpStream;

use crate::error::ProtocolError;
use crate::frame::{FrameHeader, Opcode, encode_close, encode_frame};
use crate::handshake::Endpoint;
use crate::message::{CloseBody, Incoming, MessageReader};
use crate::timer::TimerHandle;

/// Reads per connection per loop turn, so one flooding client cannot starve
/// the others (notes/04-broadcast.md#fairness). Edge-triggered readiness does
/// not repeat, so a connection that still has bytes goes on the server's
/// read backlog and gets another turn.
pub const READS_PER_TURN: usize = 4;

/// Frames at least this big skip `write_buf` when nothing is queued before them
/// (see `Connection::queue_data`).
pub const WRITE_THROUGH_BYTES: usize = 64 * 1024;

/// Where a connection is in its life (RFC 6455 §4 and §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// TCP accepted; reading the HTTP request head (§4.2.1).
    Handshaking,
    /// `101` sent: frames flow both ways.
    Open,
    /// We sent a Close and wait for the peer's (§7.1.2), at most `--close-timeout-ms`.
    Closing,
    /// Our last bytes are queued (an HTTP answer, or a Close that ends the
    /// conversation). Once they are written we half-close and discard input
    /// until the peer closes: closing with unread input would make the kernel
    /// send a reset, which can destroy the answer before the peer reads it.
    Lingering,
    /// Finished; `reap_closed` removes it at the end of the turn.
    Closed,
}

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

/// Why a connection ended, kept for the disconnect log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseRecord {
    /// The close code (§7.4): the peer's, ours, or 1006 when no Close frame was exchanged.
    pub code: u16,
    pub reason: String,
    /// Who ended it and how, in words.
    pub cause: &'static str,
}

/// One accepted TCP connection.
#[derive(Debug)]
pub struct Connection {
    pub token: Token,
    pub socket: TcpStream,
    pub peer: SocketAddr,
    /// Changed only by `set_state`.
    state: ConnState,
    /// Chat or echo, once upgraded; `None` for plain HTTP requests.
    pub endpoint: Option<Endpoint>,
    /// Bytes read but not yet parsed. Empty (and unallocated) while idle.
    pub read_buf: Vec<u8>,
    /// How much of `read_buf` has been decoded; drained once decoding stops,
    /// so a read full of small frames is shifted once, not once per frame.
    read_pos: usize,
    /// Bytes encoded but not yet written. Empty (and unallocated) while idle.
    pub write_buf: Vec<u8>,
    /// Fragments of a message in progress.
    reader: MessageReader,
    /// A Ping was sent and nothing has been heard since (§5.5.2).
    pub awaiting_pong: bool,
    /// The one timer this connection has; what it means depends on `state`.
    pub timer: Option<TimerHandle>,
    /// The state `timer` was armed for; when `state` moves on, the timer is re-armed.
    pub timer_state: Option<ConnState>,
    /// The last write hit `WouldBlock` with output left: wait for `WRITABLE`.
    pub write_blocked: bool,
    /// `WRITABLE` is part of the registered interest (exactly while `write_blocked`).
    pub writable_registered: bool,
    /// On the server's list of connections to flush at the end of this turn.
    pub queued_for_flush: bool,
    /// On the server's read backlog (it spent its read budget).
    pub in_read_backlog: bool,
    /// The peer sent FIN.
    pub peer_closed: bool,
    /// Counted in the server's `open_count` (true from the upgrade until it leaves `Open`).
    pub counted_open: bool,
    /// We half-closed our side (Lingering, after the last bytes went out).
    write_shut: bool,
    /// Why the connection ended, for the log.
    pub close: Option<Box<CloseRecord>>,
}

impl Connection {
    pub fn new(token: Token, socket: TcpStream, peer: SocketAddr) -> Connection {
        Connection {
            token,
            socket,
            peer,
            state: ConnState::Handshaking,
            endpoint: None,
            read_buf: Vec::new(),
            read_pos: 0,
            write_buf: Vec::new(),
            reader: MessageReader::default(),
            awaiting_pong: false,
            timer: None,
            timer_state: None,
            write_blocked: false,
            writable_registered: false,
            queued_for_flush: false,
            in_read_backlog: false,
            peer_closed: false,
            counted_open: false,
            write_shut: false,
            close: None,
        }
    }

    pub fn state(&self) -> ConnState {
        self.state
    }

    /// The one place a state changes, so a debugger watchpoint or the log shows every move.
    pub fn set_state(&mut self, next: ConnState) {
        if self.state != next {
            debug!(
                "{:?} {}: {:?} => {:?}",
                self.token, self.peer, self.state, next
            );
            self.state = next;
        }
    }

    /// Records why the connection ends (the first reason wins) and moves to `next`.
    pub fn end(&mut self, next: ConnState, code: u16, reason: &str, cause: &'static str) {
        if self.close.is_none() {
            self.close = Some(Box::new(CloseRecord {
                code,
                reason: reason.to_owned(),
                cause,
            }));
        }
        self.set_state(next);
    }

    // ---- reading ----

    /// Reads until the socket is drained or the budget is spent, appending to
    /// `read_buf` (or discarding, while Lingering). mio is edge-triggered: a
    /// socket left with unread bytes gets no second event, so draining is required.
    ///
    /// A read that returns less than `scratch` holds has drained the socket
    /// as surely as a `WouldBlock` would, since bytes that arrive later raise a
    /// new edge, and skipping that extra `read` saves a syscall per event
    /// (libuv does the same). The exception is a FIN that is already
    /// announced (`fin_announced`, from the event): it raises no new edge,
    /// so then we read on until `Ok(0)` (notes/01-readiness.md#draining).
    pub fn read_available(&mut self, scratch: &mut [u8], fin_announced: bool) -> ReadOutcome {
        for _ in 0..READS_PER_TURN {
            match self.socket.read(scratch) {
                // Ok(0): the peer closed its side (FIN).
                Ok(0) => {
                    self.peer_closed = true;
                    return ReadOutcome::PeerClosed;
                }
                Ok(n) => {
                    trace!("{:?} read {n} bytes", self.token);
                    if self.state != ConnState::Lingering {
                        self.read_buf.extend_from_slice(&scratch[..n]);
                    }
                    if n < scratch.len() && !fin_announced {
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

    /// Decodes frames until a data message is complete (returned, already
    /// encoded as a server frame in `outgoing`) or more bytes are needed (`None`).
    /// Control frames are answered here (§5.5); a broken rule fails the connection.
    pub fn next_message(&mut self, max_message: usize, outgoing: &mut Vec<u8>) -> Option<Opcode> {
        while matches!(self.state, ConnState::Open | ConnState::Closing) {
            let decoded =
                self.reader
                    .decode(&mut self.read_buf[self.read_pos..], max_message, outgoing);
            let incoming = match decoded {
                Ok(Some((incoming, used))) => {
                    self.read_pos += used;
                    // §5.5.2-3 and our heartbeat: any frame shows the peer is alive.
                    self.awaiting_pong = false;
                    incoming
                }
                Ok(None) => break,
                Err(error) => {
                    self.fail(error);
                    break;
                }
            };
            match incoming {
                // A fragment that did not finish its message.
                None => {}
                Some(Incoming::Data(opcode)) if self.state == ConnState::Open => {
                    debug!(
                        "{:?} {} sent {:?}: {}",
                        self.token,
                        self.peer,
                        opcode,
                        preview(outgoing)
                    );
                    return Some(opcode);
                }
                // §7.1.2: after our Close we may discard data the peer still sends.
                Some(Incoming::Data(_)) => outgoing.clear(),
                Some(Incoming::Ping(payload)) if self.state == ConnState::Open => {
                    // §5.5.2: "MUST send a Pong frame in response ... the same Application data".
                    encode_frame(
                        &mut self.write_buf,
                        true,
                        Opcode::Pong,
                        payload.as_bytes(),
                        None,
                    );
                }
                Some(Incoming::Ping(_) | Incoming::Pong) => {}
                Some(Incoming::Close(body)) => self.on_close_frame(body),
            }
        }
        self.compact_read_buf();
        None
    }

    /// §5.5.1: the peer's Close. If we had sent ours, the handshake is done;
    /// otherwise echo its code and end the conversation.
    fn on_close_frame(&mut self, body: Option<CloseBody>) {
        let (code, reason) = body.map_or((1005, String::new()), |b| (b.code, b.reason));
        if self.state == ConnState::Closing {
            // §7.1.1: the server closes TCP first once both Close frames have passed.
            self.set_state(ConnState::Closed);
            return;
        }
        // §5.5.1: "the endpoint MUST send a Close frame in response ... typically echoing the status code".
        if code == 1005 {
            encode_frame(&mut self.write_buf, true, Opcode::Close, &[], None);
        } else {
            encode_close(&mut self.write_buf, code, "");
        }
        // §1.4: the peer "MUST NOT send any more data" after its Close; whatever follows is dropped.
        self.discard_input();
        self.end(ConnState::Lingering, code, &reason, "closed by peer");
    }

    /// §7.1.7 "Fail the WebSocket Connection": send a Close with the code, stop
    /// processing input, and let the peer go.
    pub fn fail(&mut self, error: ProtocolError) {
        if self.state == ConnState::Closing {
            self.set_state(ConnState::Closed);
            return;
        }
        encode_close(&mut self.write_buf, error.close_code(), &error.to_string());
        self.discard_input();
        self.end(
            ConnState::Lingering,
            error.close_code(),
            &error.to_string(),
            "failed by server",
        );
    }

    /// Sends our Close first (server shutdown) and waits for the peer's reply.
    pub fn start_closing(&mut self, code: u16, reason: &str) {
        encode_close(&mut self.write_buf, code, reason);
        self.end(ConnState::Closing, code, reason, "closed by server");
    }

    fn discard_input(&mut self) {
        self.read_buf = Vec::new();
        self.read_pos = 0;
    }

    /// Drops the bytes decoded so far; frees the buffer once it is empty, so an
    /// idle connection holds no read memory (notes/04-broadcast.md#memory).
    /// When a large frame is arriving in pieces, room for all of it is made
    /// once, instead of the buffer doubling (and copying itself) read by read.
    /// Its size was already checked against `--max-message-bytes` by the decoder.
    pub fn compact_read_buf(&mut self) {
        self.read_buf.drain(..self.read_pos);
        self.read_pos = 0;
        if self.read_buf.is_empty() {
            self.read_buf = Vec::new();
        } else if self.state == ConnState::Open
            && let Ok(Some(header)) = FrameHeader::parse(&self.read_buf)
        {
            let frame_len = header.header_len + header.payload_len as usize;
            self.read_buf
                .reserve_exact(frame_len.saturating_sub(self.read_buf.len()));
        }
    }

    // ---- writing ----

    /// Queues a data frame unless this client is too far behind already.
    ///
    /// A reader whose unsent output is over `limit` is not reading: drop it
    /// rather than grow without bound, and free what it held. The check comes
    /// before the append, so one message always fits and memory stays under
    /// `limit` + one message (notes/04-broadcast.md#slow-consumers).
    ///
    /// A large frame with nothing queued before it is written at once:
    /// coalescing could not merge it into fewer writes, and writing it now
    /// saves copying it into `write_buf`. Only what the socket does not take
    /// is queued; `flush_pending` deals with that, and with any error.
    pub fn queue_data(&mut self, frame: &[u8], limit: usize) -> bool {
        if self.write_buf.len() > limit {
            self.drop_slow_consumer();
            return false;
        }
        let mut rest = frame;
        if frame.len() >= WRITE_THROUGH_BYTES
            && self.write_buf.is_empty()
            && !self.write_blocked
            && let Ok(n) = self.socket.write(frame)
        {
            trace!("{:?} wrote {n} bytes", self.token);
            rest = &frame[n..];
        }
        self.write_buf.extend_from_slice(rest);
        true
    }

    /// Closes a client that does not read what it is sent, without a Close
    /// frame: it would only queue behind everything it has not read.
    pub fn drop_slow_consumer(&mut self) {
        log::warn!(
            "{} is a slow consumer: {} bytes unsent; dropping it",
            self.peer,
            self.write_buf.len()
        );
        self.write_buf = Vec::new();
        self.end(
            ConnState::Closed,
            1008,
            "slow consumer",
            "dropped by server",
        );
    }

    /// Writes `write_buf` until it is empty or the socket would block.
    /// Returns `Ok(true)` when everything was written.
    pub fn flush_write_buf(&mut self) -> io::Result<bool> {
        while !self.write_buf.is_empty() {
            match self.socket.write(&self.write_buf) {
                // Ok(0) on a non-empty buffer: the socket cannot take bytes any more.
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    trace!("{:?} wrote {n} bytes", self.token);
                    let partial = n < self.write_buf.len();
                    self.write_buf.drain(..n);
                    // A partial write means the send buffer is full: the next
                    // write would only say WouldBlock, so wait for WRITABLE now.
                    if partial {
                        self.write_blocked = true;
                        return Ok(false);
                    }
                }
                // WouldBlock: the kernel's send buffer is full; WRITABLE will tell us when it drains.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.write_blocked = true;
                    return Ok(false);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.write_buf = Vec::new();
        self.write_blocked = false;
        if self.state == ConnState::Lingering && !self.write_shut {
            // Our last bytes are out: send FIN, keep reading until the peer's FIN.
            self.write_shut = true;
            let _ = self.socket.shutdown(Shutdown::Write);
        }
        Ok(true)
    }

    /// One attempt to write `bytes` straight to the socket, for answers given
    /// to a connection that is about to be dropped anyway.
    pub fn write_best_effort(&mut self, bytes: &[u8]) {
        let _ = self.socket.write(bytes);
    }
}

/// The start of a server frame's payload as text, for debug logs.
fn preview(frame: &[u8]) -> String {
    let header_len = match frame.get(1) {
        Some(126) => 4,
        Some(127) => 10,
        _ => 2,
    };
    let payload = frame.get(header_len..).unwrap_or_default();
    let shown = &payload[..payload.len().min(120)];
    format!(
        "{} bytes {:?}",
        payload.len(),
        String::from_utf8_lossy(shown)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A connection on the accepting side of a loopback pair, and the client's end.
    fn pair() -> (Connection, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, peer) = listener.accept().unwrap();
        accepted.set_nonblocking(true).unwrap();
        let conn = Connection::new(Token(7), TcpStream::from_std(accepted), peer);
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
        client.write_all(&[1; 1000]).unwrap();
        wait_readable(&conn, 1000);
        let mut scratch = [0; 16];
        assert!(matches!(
            conn.read_available(&mut scratch, false),
            ReadOutcome::BudgetSpent
        ));
        assert_eq!(conn.read_buf.len(), READS_PER_TURN * scratch.len());
    }

    #[test]
    fn a_short_read_ends_the_round_unless_a_fin_was_announced() {
        let (mut conn, mut client) = pair();
        client.write_all(b"hello").unwrap();
        wait_readable(&conn, 5);
        let mut scratch = [0; 64];
        assert!(matches!(
            conn.read_available(&mut scratch, false),
            ReadOutcome::Drained
        ));
        assert_eq!(conn.read_buf, b"hello");
        client.write_all(b" world").unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        wait_readable(&conn, 6);
        // The event said the peer closed: read on until Ok(0).
        assert!(matches!(
            conn.read_available(&mut scratch, true),
            ReadOutcome::PeerClosed
        ));
        assert_eq!(conn.read_buf, b"hello world");
        assert!(conn.peer_closed);
    }
}
