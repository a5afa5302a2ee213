//! One connection to Redis, without its socket: its state, the bytes read
//! and not yet decoded, the bytes encoded and not yet written, which reply
//! each command sent is waiting for, and when to try again after a failure.
//!
//! ```text
//!            connect()          greeting sent          greeting answered
//!   Down ───────────────▶ Connecting ──────▶ Greeting ──────────────▶ Ready
//!    ▲                        │                  │                      │
//!    └──── fail(): retry after a backoff (100 ms, doubling to 5 s) ◀────┘
//! ```
//!
//! Redis answers the commands of one connection in the order they were sent
//! (pipelining, Redis docs "Redis pipelining"), so `expected` is a queue: the
//! next reply belongs to its front. Pure: the loop passes the time in and
//! moves the bytes (src/server/redis.rs).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::resp::{Limits, Reply, decode};

/// The first wait after a failure, and the longest.
pub const MIN_BACKOFF: Duration = Duration::from_millis(100);
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// From `connect` to the greeting's last answer: a peer that accepts but
/// never answers (a stopped Redis, a wrong port) is given up on after this.
pub const GREETING_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// No socket; the loop connects at `retry_at`.
    Down,
    /// A non-blocking `connect` is under way: `WRITABLE` will say how it went.
    Connecting,
    /// Connected; the greeting (SELECT, SCRIPT LOAD, the hello) is not answered yet.
    Greeting,
    /// Greeted: commands may flow.
    Ready,
}

/// What a reply is the answer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Select,
    ScriptLoad,
    Hello,
    /// `EVALSHA` of the append with this sequence number.
    Append(u64),
    /// `XREAD BLOCK`.
    Read,
    /// `XRANGE` for the client with this token, resuming.
    Range(usize),
}

/// One connection's protocol state.
#[derive(Debug)]
pub struct Link {
    /// "commands" or "stream", for the log.
    pub name: &'static str,
    pub state: LinkState,
    /// Bytes read, not yet decoded.
    pub read_buf: Vec<u8>,
    /// Bytes encoded, not yet written.
    pub write_buf: Vec<u8>,
    /// The replies still to come, in the order they will come.
    expected: VecDeque<Expect>,
    /// The wait before the next attempt after a failure.
    backoff: Duration,
    /// When `Down`: when to connect again.
    pub retry_at: Option<Instant>,
    /// While `Connecting` or `Greeting`: when to give up on this attempt.
    pub greeting_due: Option<Instant>,
}

impl Link {
    pub fn new(name: &'static str, now: Instant) -> Link {
        Link {
            name,
            state: LinkState::Down,
            read_buf: Vec::new(),
            write_buf: Vec::new(),
            expected: VecDeque::new(),
            backoff: MIN_BACKOFF,
            retry_at: Some(now),
            greeting_due: None,
        }
    }

    /// A command was encoded into `write_buf`; its reply will be `expect`.
    pub fn sent(&mut self, expect: Expect) {
        self.expected.push_back(expect);
    }

    /// Whether a reply of this kind is still to come.
    pub fn awaits(&self, expect: Expect) -> bool {
        self.expected.contains(&expect)
    }

    pub fn awaiting(&self) -> usize {
        self.expected.len()
    }

    /// The tokens of the resuming clients whose `XRANGE` is still to be answered.
    pub fn ranges_awaited(&self) -> Vec<usize> {
        let token = |e: &Expect| match e {
            Expect::Range(token) => Some(*token),
            _ => None,
        };
        self.expected.iter().filter_map(token).collect()
    }

    /// The next whole reply and what it answers; `Ok(None)` while it has
    /// not all arrived. `Err`: garbage, or a reply nothing was sent for.
    pub fn next_reply(&mut self, limits: &Limits) -> Result<Option<(Expect, Reply)>, String> {
        let Some((reply, used)) = decode(&self.read_buf, limits).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        self.read_buf.drain(..used);
        match self.expected.pop_front() {
            Some(expect) => Ok(Some((expect, reply))),
            None => Err(format!("a reply nothing was sent for: {reply:?}")),
        }
    }

    /// The socket is being connected; the attempt has `GREETING_TIMEOUT`.
    pub fn connecting(&mut self, now: Instant) {
        self.state = LinkState::Connecting;
        self.retry_at = None;
        self.greeting_due = Some(now + GREETING_TIMEOUT);
    }

    /// Whether this attempt to connect and greet has run out of time.
    pub fn greeting_overdue(&self, now: Instant) -> bool {
        self.greeting_due.is_some_and(|due| due <= now)
    }

    /// Connected: the greeting is in `write_buf`.
    pub fn greeting(&mut self) {
        self.state = LinkState::Greeting;
    }

    /// The greeting was answered: a later failure retries quickly again.
    pub fn ready(&mut self) {
        self.state = LinkState::Ready;
        self.backoff = MIN_BACKOFF;
        self.greeting_due = None;
    }

    /// The connection failed (or sent garbage): everything in flight on it
    /// is forgotten (the caller re-sends what must be), and the next attempt
    /// waits a backoff that doubles up to `MAX_BACKOFF`, so a Redis that is
    /// down is not hammered.
    pub fn fail(&mut self, now: Instant) -> Duration {
        let wait = self.backoff;
        self.state = LinkState::Down;
        self.read_buf.clear();
        self.write_buf.clear();
        self.expected.clear();
        self.retry_at = Some(now + wait);
        self.greeting_due = None;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_matched_to_commands_in_order() {
        let now = Instant::now();
        let mut link = Link::new("commands", now);
        link.sent(Expect::Select);
        link.sent(Expect::Append(7));
        link.read_buf.extend_from_slice(b"+OK\r\n:4");
        let limits = Limits::default();
        assert_eq!(
            link.next_reply(&limits),
            Ok(Some((Expect::Select, Reply::Simple("OK".into()))))
        );
        assert_eq!(link.next_reply(&limits), Ok(None));
        link.read_buf.extend_from_slice(b"2\r\n");
        assert_eq!(
            link.next_reply(&limits),
            Ok(Some((Expect::Append(7), Reply::Integer(42))))
        );
    }

    #[test]
    fn garbage_or_an_unasked_reply_is_an_error() {
        let mut link = Link::new("stream", Instant::now());
        link.read_buf.extend_from_slice(b"+OK\r\n");
        assert!(link.next_reply(&Limits::default()).is_err());
        link.sent(Expect::Read);
        link.read_buf = b"HTTP/1.1 400\r\n".to_vec();
        let error = link.next_reply(&Limits::default()).unwrap_err();
        assert!(error.contains("unknown reply type"), "{error}");
    }

    #[test]
    fn failures_back_off_doubling_up_to_the_cap_and_ready_resets_it() {
        let base = Instant::now();
        let mut link = Link::new("commands", base);
        link.sent(Expect::Hello);
        link.write_buf.extend_from_slice(b"x");
        let waits: Vec<_> = (0..8).map(|_| link.fail(base)).collect();
        assert_eq!(waits[..3], [MIN_BACKOFF, MIN_BACKOFF * 2, MIN_BACKOFF * 4]);
        assert_eq!(waits[7], MAX_BACKOFF);
        assert_eq!((link.awaiting(), link.write_buf.len()), (0, 0));
        assert_eq!(link.retry_at, Some(base + MAX_BACKOFF));
        link.ready();
        assert_eq!(link.fail(base), MIN_BACKOFF);
    }

    #[test]
    fn an_attempt_that_is_not_greeted_in_time_is_overdue_until_it_is() {
        let base = Instant::now();
        let mut link = Link::new("stream", base);
        link.connecting(base);
        link.greeting();
        assert!(!link.greeting_overdue(base + GREETING_TIMEOUT / 2));
        assert!(link.greeting_overdue(base + GREETING_TIMEOUT));
        link.ready();
        assert!(!link.greeting_overdue(base + GREETING_TIMEOUT * 2));
    }
}
