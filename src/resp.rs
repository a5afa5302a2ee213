//! RESP2, the Redis protocol, byte by byte: pure encode and decode, no sockets
//! (the same shape as `frame.rs`; notes/10-redis.md walks through it).
//!
//! ```text
//!  a command:   *3\r\n $3\r\nSET\r\n $1\r\nk\r\n $1\r\nv\r\n   (an array of bulk strings)
//!  its replies: +OK\r\n               simple string
//!               -ERR unknown\r\n      error
//!               :42\r\n               integer
//!               $5\r\nhello\r\n       bulk string ($-1\r\n: null)
//!               *2\r\n:1\r\n:2\r\n    array (*-1\r\n: null), elements of any kind
//! ```
//!
//! Interface: [`encode_command`] appends one command to an output buffer;
//! [`decode`] reads one reply from the front of a buffer and answers
//! `Ok(None)` ("need more bytes", nothing consumed) until the whole reply is
//! there, or `Err` with the rule broken. The spec is the "Redis
//! serialization protocol specification" page of the Redis docs (RESP2).
//!
//! A hostile or broken server must not make us allocate without bound, so a
//! reply is first *measured* (lengths checked against [`Limits`], nothing
//! allocated, bulk payloads skipped by their length), and only a complete,
//! valid reply is built. Measuring again after each read costs a walk over
//! the reply's headers, not its payload bytes.

use std::fmt;

/// One reply (RESP2 has five kinds; nulls are the `None`s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`: a short status line.
    Simple(String),
    /// `-ERR ...`: the command failed; the text starts with the error's kind.
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$5 hello`, or `$-1` (null: a missing key).
    Bulk(Option<Vec<u8>>),
    /// `*2 ...`, or `*-1` (null: `XREAD BLOCK` timed out).
    Array(Option<Vec<Reply>>),
}

/// How much one reply may make us hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest bulk string (Redis's own cap is 512 MiB: `proto-max-bulk-len`).
    pub max_bulk: usize,
    /// Elements in one reply, all arrays counted together.
    pub max_elements: usize,
    /// Arrays inside arrays: `XREAD` nests four deep.
    pub max_depth: usize,
    /// Bytes of one whole reply: the limits above bound each part, this
    /// bounds their sum (1,048,576 bulk strings of 64 MiB would be 64 TiB).
    pub max_reply: usize,
}

/// The longest status, error or length line: Redis's are short.
pub const MAX_LINE: usize = 4096;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bulk: 64 << 20,
            max_elements: 1 << 20,
            max_depth: 8,
            max_reply: 256 << 20,
        }
    }
}

/// A reply that breaks RESP2 or our limits: the connection cannot be trusted
/// to be in step any more, so the caller drops it and reconnects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RespError {
    /// The first byte is none of `+ - : $ *`.
    UnknownType(u8),
    /// A line without its `\r\n`, or a `\r` not followed by `\n`.
    BadLineEnd,
    /// A line longer than `MAX_LINE`.
    LineTooLong,
    /// An integer or length that is not a decimal number (or out of range).
    BadNumber,
    /// A bulk string's payload is not followed by `\r\n`.
    BadBulkEnd,
    /// A bulk string over `Limits::max_bulk`.
    BulkTooLong(i64),
    /// More elements than `Limits::max_elements`.
    TooManyElements,
    /// Arrays nested deeper than `Limits::max_depth`.
    TooDeep,
    /// A reply not complete within `Limits::max_reply` bytes.
    ReplyTooLong,
}

impl fmt::Display for RespError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RespError::UnknownType(b) => write!(f, "unknown reply type byte 0x{b:02x}"),
            RespError::BadLineEnd => write!(f, "a line not ended by CRLF"),
            RespError::LineTooLong => write!(f, "a line over {MAX_LINE} bytes"),
            RespError::BadNumber => write!(f, "a length or integer that is not a number"),
            RespError::BadBulkEnd => write!(f, "a bulk string not followed by CRLF"),
            RespError::BulkTooLong(n) => write!(f, "a bulk string of {n} bytes, over the limit"),
            RespError::TooManyElements => write!(f, "more array elements than the limit"),
            RespError::TooDeep => write!(f, "arrays nested deeper than the limit"),
            RespError::ReplyTooLong => write!(f, "a reply longer than the limit"),
        }
    }
}

/// Appends one command: "an array of bulk strings" is how a client sends
/// every command (RESP2 spec, "Sending commands to a Redis server").
pub fn encode_command<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        let arg = arg.as_ref();
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// Decodes one reply from the front of `buf`: `Ok(None)` while it is not
/// all there (nothing consumed), else the reply and the bytes it took.
pub fn decode(buf: &[u8], limits: &Limits) -> Result<Option<(Reply, usize)>, RespError> {
    let mut elements = 0;
    // Only the first `max_reply` bytes are looked at, so the answer is the
    // same whether the bytes came in one read or in many: an error is found
    // in them, or a whole reply, or, past them, the reply is too long.
    let seen = &buf[..buf.len().min(limits.max_reply)];
    let Some(end) = measure(seen, 0, 0, &mut elements, limits)? else {
        return match buf.len() > limits.max_reply {
            true => Err(RespError::ReplyTooLong),
            false => Ok(None),
        };
    };
    let (reply, used) = build(buf, 0)?;
    debug_assert_eq!(used, end);
    Ok(Some((reply, used)))
}

/// One line of a reply: its type byte, the text after it, where the next line starts.
type Line<'b> = (u8, &'b [u8], usize);

/// The first line at `at`; `None` while its `\r\n` has not arrived.
fn line(buf: &[u8], at: usize) -> Result<Option<Line<'_>>, RespError> {
    let rest = buf.get(at..).unwrap_or_default();
    let window = &rest[..rest.len().min(MAX_LINE + 2)];
    let Some(cr) = window.iter().position(|&b| b == b'\r' || b == b'\n') else {
        return match rest.len() > MAX_LINE + 1 {
            true => Err(RespError::LineTooLong),
            false => Ok(None),
        };
    };
    if cr > MAX_LINE {
        return Err(RespError::LineTooLong);
    }
    // RESP2: every line ends in CRLF; a bare LF, or CR then anything else, is garbage.
    match rest.get(cr..cr + 2) {
        _ if rest[cr] == b'\n' => Err(RespError::BadLineEnd),
        None => Ok(None),
        Some(b"\r\n") if cr > 0 => Ok(Some((rest[0], &rest[1..cr], at + cr + 2))),
        Some(_) => Err(RespError::BadLineEnd),
    }
}

/// A length or integer line: an optional `-`, then digits.
fn number(text: &[u8]) -> Result<i64, RespError> {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(RespError::BadNumber);
    }
    let text = std::str::from_utf8(text).map_err(|_| RespError::BadNumber)?;
    text.parse().map_err(|_| RespError::BadNumber)
}

/// Where the reply at `at` ends, checked against the limits; allocates nothing.
fn measure(
    buf: &[u8],
    at: usize,
    depth: usize,
    elements: &mut usize,
    limits: &Limits,
) -> Result<Option<usize>, RespError> {
    let Some((kind, text, next)) = line(buf, at)? else {
        return Ok(None);
    };
    match kind {
        b'+' | b'-' => Ok(Some(next)),
        b':' => number(text).map(|_| Some(next)),
        b'$' => measure_bulk(buf, number(text)?, next, limits),
        b'*' => {
            let count = number(text)?;
            // `*-1`: the null array. No other negative count exists.
            match count {
                -1 => return Ok(Some(next)),
                ..-1 => return Err(RespError::BadNumber),
                _ => {}
            }
            if depth >= limits.max_depth {
                return Err(RespError::TooDeep);
            }
            *elements = elements.saturating_add(count as usize);
            if *elements > limits.max_elements {
                return Err(RespError::TooManyElements);
            }
            let mut end = next;
            for _ in 0..count {
                match measure(buf, end, depth + 1, elements, limits)? {
                    Some(after) => end = after,
                    None => return Ok(None),
                }
            }
            Ok(Some(end))
        }
        other => Err(RespError::UnknownType(other)),
    }
}

/// A bulk string of `len` bytes whose payload starts at `at`: where it ends.
fn measure_bulk(
    buf: &[u8],
    len: i64,
    at: usize,
    limits: &Limits,
) -> Result<Option<usize>, RespError> {
    // `$-1`: the null bulk string. No other negative length exists.
    match len {
        -1 => return Ok(Some(at)),
        ..-1 => return Err(RespError::BadNumber),
        _ => {}
    }
    if len as u64 > limits.max_bulk as u64 {
        return Err(RespError::BulkTooLong(len));
    }
    let end = at + len as usize;
    match buf.get(end..end + 2) {
        None if buf.len() <= end + 1 => Ok(None),
        Some(b"\r\n") => Ok(Some(end + 2)),
        _ => Err(RespError::BadBulkEnd),
    }
}

/// Builds the reply at `at`, which `measure` found complete and valid.
fn build(buf: &[u8], at: usize) -> Result<(Reply, usize), RespError> {
    let Some((kind, text, next)) = line(buf, at)? else {
        return Err(RespError::BadLineEnd);
    };
    let text_of = |t: &[u8]| String::from_utf8_lossy(t).into_owned();
    Ok(match kind {
        b'+' => (Reply::Simple(text_of(text)), next),
        b'-' => (Reply::Error(text_of(text)), next),
        b':' => (Reply::Integer(number(text)?), next),
        b'$' => match number(text)? {
            len if len < 0 => (Reply::Bulk(None), next),
            len => {
                let end = next + len as usize;
                let payload = buf.get(next..end).ok_or(RespError::BadBulkEnd)?;
                (Reply::Bulk(Some(payload.to_vec())), end + 2)
            }
        },
        b'*' => match number(text)? {
            count if count < 0 => (Reply::Array(None), next),
            count => {
                let mut items = Vec::with_capacity(count as usize);
                let mut end = next;
                for _ in 0..count {
                    let (item, after) = build(buf, end)?;
                    items.push(item);
                    end = after;
                }
                (Reply::Array(Some(items)), end)
            }
        },
        other => return Err(RespError::UnknownType(other)),
    })
}

impl Reply {
    /// The bytes of a bulk or simple string.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Reply::Bulk(Some(b)) => Some(b),
            Reply::Simple(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// The elements of a non-null array.
    pub fn items(&self) -> Option<&[Reply]> {
        match self {
            Reply::Array(Some(items)) => Some(items),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
