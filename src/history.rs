//! The shared message log: every chat message stored once, with an id, in
//! each wire format; readers hold a position in it, not a copy
//! (notes/09-shared-log.md).
//!
//! ```text
//!   first_id                                   next_id
//!      v                                          v
//!     [ 41 ][ 42 ][ 43 ][ 44 ][ 45 ][ 46 ][ 47 ]     <- append
//!        ^           ^                       ^
//!      reader A    reader B              readers C, D (caught up)
//! ```
//!
//! Interface: [`History::append`] stores a message (O(1), whatever the
//! number of readers); a [`Reader`] is one connection's position, moved by
//! [`History::join`] and [`History::leave`], which keep a count of readers
//! per entry; [`History::resume_point`] answers a reconnecting client.
//!
//! The rule for a full log: an entry that an open reader still has to write
//! is never evicted. When appending needs room that only such entries hold,
//! the log says so, and the loop stops reading from senders (TCP
//! backpressure) until readers have freed a quarter of it; a reader that
//! cannot free that much within `--stall-ms` is dropped (see `stall_cutoff`).
//! Memory is then the log's size plus one message, whatever the number of
//! readers. Pure: no sockets, and the time is passed in.

use std::collections::VecDeque;
use std::time::Instant;

use crate::frame::Opcode;
use crate::message::{Message, server_frame_payload};

/// The fraction of either cap that the log must drop to before senders
/// resume (hysteresis: a pause frees a quarter of the log, not one entry).
const RESUME_NUMERATOR: usize = 3;
const RESUME_DENOMINATOR: usize = 4;

/// One stored message.
#[derive(Debug)]
pub struct Entry {
    /// Its id: 1, 2, 3, … never reused while the process lives.
    pub id: u64,
    /// The token of the connection that sent it.
    pub sender: usize,
    /// The sender's name when it was sent, for the `miochat.v1` form.
    pub from: Box<str>,
    /// The server frame plain clients get: the message as it was sent.
    pub plain: Vec<u8>,
    /// The server frame `miochat.v1` clients get: the `message` object. Made
    /// when a v1 reader first needs it (see `History::prepare`); empty until then.
    pub v1: Vec<u8>,
    /// The Server-Sent Events form, `id: N` + `data: <the v1 object>`,
    /// made when an event stream first needs it, like `v1`.
    pub sse: Vec<u8>,
    /// What its sender gets in place of the message, in its own format: the
    /// `ack` object as a frame (`miochat.v1`) or as an event (SSE); empty
    /// for a plain client or a sender that reads no stream.
    pub ack: Vec<u8>,
    /// Open readers whose next entry is this one: while non-zero, it stays.
    readers: usize,
}

impl Entry {
    fn size(&self) -> usize {
        self.from.len() + self.plain.len() + self.v1.len() + self.sse.len() + self.ack.len()
    }
}

/// Which frames a reader gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The messages of others as they were sent; its own are skipped.
    Plain,
    /// `miochat.v1` objects; its own messages come back as acks.
    V1,
    /// The same objects as Server-Sent Events (`GET /events`).
    Sse,
}

/// One open chat connection's place in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    /// The id of the next entry to write (`next_id` when caught up).
    pub next: u64,
    /// Bytes of that entry's frame already written: a partial write is
    /// always finished before anything else is written.
    pub offset: usize,
    pub format: Format,
    /// The reader's own token, to recognise its own messages.
    pub token: usize,
}

impl Reader {
    /// The frame this reader writes for `entry`: empty for nothing to write
    /// (its own message, plain), `None` while its v1 form is not made yet.
    pub fn frame<'h>(&self, entry: &'h Entry) -> Option<&'h [u8]> {
        match (self.format, entry.sender == self.token) {
            (Format::Plain, true) => Some(&[]),
            (Format::Plain, false) => Some(&entry.plain),
            (Format::V1, true) => Some(&entry.ack),
            // A placeholder for ids the room's stream lost (`append_placeholder`).
            (Format::V1, false) if entry.plain.is_empty() => Some(&entry.v1),
            (Format::V1, false) if entry.v1.is_empty() => None,
            (Format::V1, false) => Some(&entry.v1),
            (Format::Sse, true) => Some(&entry.ack),
            (Format::Sse, false) if entry.plain.is_empty() => Some(&entry.sse),
            (Format::Sse, false) if entry.sse.is_empty() => None,
            (Format::Sse, false) => Some(&entry.sse),
        }
    }
}

/// The log, its caps and its readers' counts.
#[derive(Debug)]
pub struct History {
    /// Chosen at start-up: ids from another epoch mean nothing here.
    epoch: String,
    entries: VecDeque<Entry>,
    /// The id the next entry gets.
    next_id: u64,
    /// Bytes held by all entries' frames.
    bytes: usize,
    /// Readers whose next entry is `next_id`: they have written everything.
    caught_up: usize,
    /// `--history-bytes` and `--history-messages`.
    max_bytes: usize,
    max_messages: usize,
    /// Since when senders have been waiting for room; `None` while they may append.
    full_since: Option<Instant>,
}

impl History {
    pub fn new(epoch: String, max_bytes: usize, max_messages: usize) -> History {
        History {
            epoch,
            entries: VecDeque::new(),
            next_id: 1,
            bytes: 0,
            caught_up: 0,
            max_bytes,
            max_messages,
            full_since: None,
        }
    }

    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// The newest id; 0 while nothing was ever said.
    pub fn last_id(&self) -> u64 {
        self.next_id - 1
    }

    /// The oldest id still held (`next_id` when empty).
    pub fn first_id(&self) -> u64 {
        self.entries.front().map_or(self.next_id, |e| e.id)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The entry with this id, if it is still held.
    pub fn get(&self, id: u64) -> Option<&Entry> {
        let index = id.checked_sub(self.first_id())?;
        self.entries.get(usize::try_from(index).ok()?)
    }

    /// With `--redis`, the room's epoch and ids are Redis's: this takes its
    /// epoch and, while the log is empty (no message was ever stored here),
    /// moves the next id to the room's. Returns the old next id if it
    /// moved: the loop moves every reader waiting there to the new one.
    pub fn adopt(&mut self, epoch: String, next_id: u64) -> Option<u64> {
        self.epoch = epoch;
        if !self.entries.is_empty() || next_id <= self.next_id {
            return None;
        }
        Some(std::mem::replace(&mut self.next_id, next_id))
    }

    // ---- readers ----

    /// A reader starts (or goes on) at `next`, which must still be held.
    pub fn join(&mut self, next: u64) {
        debug_assert!((self.first_id()..=self.next_id).contains(&next));
        match self.entry_mut(next) {
            Some(entry) => entry.readers += 1,
            None => self.caught_up += 1,
        }
    }

    /// A reader leaves `next` (it moved on, or it is gone).
    pub fn leave(&mut self, next: u64) {
        match self.entry_mut(next) {
            Some(entry) => entry.readers -= 1,
            None => self.caught_up -= 1,
        }
    }

    fn entry_mut(&mut self, id: u64) -> Option<&mut Entry> {
        let index = id.checked_sub(self.first_id())?;
        self.entries.get_mut(usize::try_from(index).ok()?)
    }

    /// Where a client resuming after `since` starts: the entry after it, if
    /// the epoch is this one and that entry is still held (or `since` is the
    /// newest id: nothing to replay). `None`: history is gone; it must be
    /// told so, and starts live. Never a partial replay.
    pub fn resume_point(&self, since: u64, epoch: &str) -> Option<u64> {
        let held = since >= self.first_id().saturating_sub(1) && since <= self.last_id();
        (epoch == self.epoch && held).then_some(since + 1)
    }

    // ---- appending ----

    /// Whether senders may append now. While they wait, the log first drops
    /// what no reader needs, down to three quarters of its caps.
    pub fn accepts(&mut self) -> bool {
        if self.full_since.is_none() {
            return true;
        }
        let (bytes, messages) = self.resume_level();
        self.evict_unread(bytes, messages);
        if self.bytes > bytes || self.entries.len() > messages {
            return false;
        }
        self.full_since = None;
        true
    }

    /// Stores one message and returns its id. Entries nobody needs are
    /// evicted first; if that is not enough, it is stored anyway (the log may
    /// exceed its cap by this one message) and the log reports itself full
    /// from now on: `full_since` is set and `accepts` says no.
    pub fn append(
        &mut self,
        sender: usize,
        from: Box<str>,
        frames: [Vec<u8>; 2],
        now: Instant,
    ) -> u64 {
        let [plain, ack] = frames;
        let id = self.next_id;
        let entry = Entry {
            id,
            sender,
            from,
            plain,
            v1: Vec::new(),
            sse: Vec::new(),
            ack,
            readers: std::mem::take(&mut self.caught_up),
        };
        let size = entry.size();
        self.evict_unread(
            self.max_bytes.saturating_sub(size),
            self.max_messages.saturating_sub(1),
        );
        self.bytes += size;
        self.entries.push_back(entry);
        self.next_id += 1;
        if self.bytes > self.max_bytes || self.entries.len() > self.max_messages {
            self.full_since.get_or_insert(now);
        }
        id
    }

    /// With `--redis`: an entry for an id the room's stream no longer holds
    /// (src/server/redis.rs `stream_gap`). It has no plain frame, so no one
    /// writes anything for it, except `miochat.v1` readers when `v1` is
    /// given (a `reset`, on the last one of a gap).
    pub fn append_placeholder(&mut self, reset: Option<&str>, now: Instant) -> u64 {
        let id = self.append(usize::MAX, "".into(), [Vec::new(), Vec::new()], now);
        if let (Some(entry), Some(reset)) = (self.entry_mut(id), reset) {
            // The same `reset` for both readers with ids: a frame, an event.
            entry.v1 = Message::new(Opcode::Text, reset.as_bytes()).frame;
            entry.sse = crate::sse::event(Some(id), reset);
            self.bytes += entry.v1.len() + entry.sse.len();
        }
        id
    }

    /// The `miochat.v1` object of entry `id` as JSON text: what a long poll
    /// answers with. It is the payload of the entry's v1 frame, made once
    /// (as for a v1 reader, `prepare`) and kept, so a thousand polls format
    /// a message once, not a thousand times. Empty for a placeholder that
    /// says nothing.
    pub fn v1_object(&mut self, id: u64, now: Instant) -> Option<&[u8]> {
        let entry = self.entry_mut(id)?;
        if entry.v1.is_empty() && !entry.plain.is_empty() {
            let size = make_form(entry, Format::V1);
            self.bytes += size;
            if self.bytes > self.max_bytes {
                self.full_since.get_or_insert(now);
            }
        }
        self.v1_object_made(id)
    }

    /// The same, once `v1_object` has made it (empty if it was not made).
    pub fn v1_object_made(&self, id: u64) -> Option<&[u8]> {
        let entry = self.get(id)?;
        match entry.v1.is_empty() {
            true => Some(&[]),
            false => Some(server_frame_payload(&entry.v1)),
        }
    }

    /// Makes the `miochat.v1` form of the next `count` entries this reader
    /// will write, where it is not made yet.
    ///
    /// The plain rule would encode every format when a message is appended.
    /// The shortcut: the v1 form (JSON, binary payloads in base64) costs more
    /// than the message itself, and a room of plain clients never needs it,
    /// so it is made once, on first need, and counted in the log's size from
    /// then on; if that takes the log over its cap, senders wait as for any
    /// full log (notes/09-shared-log.md#two-forms).
    pub fn prepare(&mut self, reader: &Reader, count: usize, now: Instant) {
        if reader.format == Format::Plain {
            return;
        }
        // Room first: what no reader needs goes before more is made.
        self.evict_unread(self.max_bytes, self.max_messages);
        let mut id = reader.next;
        let mut made_one = false;
        while id < reader.next + count as u64
            && (!made_one || self.bytes <= self.max_bytes)
            && let Some(entry) = self.entry_mut(id)
        {
            // A placeholder (no plain frame) has no form to make.
            if entry.sender != reader.token
                && reader.frame(entry).is_none()
                && !entry.plain.is_empty()
            {
                let size = make_form(entry, reader.format);
                self.bytes += size;
                made_one = true;
            }
            id += 1;
        }
        // The v1 form of one message (JSON escapes a control character in 6
        // bytes: up to 6 times the text) may take the log over its cap; more
        // is not made until readers have moved on and room is made again.
        if self.bytes > self.max_bytes {
            self.full_since.get_or_insert(now);
        }
    }

    /// Since when senders have waited for room, if they are waiting.
    pub fn full_since(&self) -> Option<Instant> {
        self.full_since
    }

    /// Readers whose next entry is below this id hold the log full: dropping
    /// them would let it fall to the level where senders resume.
    pub fn stall_cutoff(&self) -> u64 {
        let (bytes, messages) = self.resume_level();
        let (mut held, mut count) = (self.bytes, self.entries.len());
        for entry in &self.entries {
            if held <= bytes && count <= messages {
                return entry.id;
            }
            held -= entry.size();
            count -= 1;
        }
        self.next_id
    }

    /// The level senders resume at: three quarters of each cap.
    fn resume_level(&self) -> (usize, usize) {
        (
            self.max_bytes / RESUME_DENOMINATOR * RESUME_NUMERATOR,
            self.max_messages / RESUME_DENOMINATOR * RESUME_NUMERATOR,
        )
    }

    /// Drops the oldest entries while over either goal and no reader needs them.
    fn evict_unread(&mut self, bytes: usize, messages: usize) {
        while self.bytes > bytes || self.entries.len() > messages {
            match self.entries.front() {
                Some(oldest) if oldest.readers == 0 => {
                    self.bytes -= oldest.size();
                    self.entries.pop_front();
                }
                _ => return,
            }
        }
    }
}

/// Makes an entry's form for `format` (v1 frame or SSE event); returns its size.
fn make_form(entry: &mut Entry, format: Format) -> usize {
    let json = v1_json(entry);
    let form = match format {
        Format::Sse => &mut entry.sse,
        _ => &mut entry.v1,
    };
    *form = match format {
        Format::Sse => crate::sse::event(Some(entry.id), &json),
        _ => Message::new(Opcode::Text, json.as_bytes()).frame,
    };
    form.len()
}

/// The `miochat.v1` `message` object for an entry: what a v1 frame, an SSE
/// event and a long-poll batch all carry.
pub fn v1_json(entry: &Entry) -> String {
    // The opcode is the low 4 bits of the first byte (§5.2).
    let opcode = match entry.plain[0] & 0x0F {
        0x1 => Opcode::Text,
        _ => Opcode::Binary,
    };
    let payload = server_frame_payload(&entry.plain);
    crate::v1::message(entry.id, &entry.from, opcode, payload)
}

#[cfg(test)]
mod tests;
