//! What miochat says to Redis, and what it makes of the answers: the keys,
//! the two Lua scripts, each command as RESP bytes, and the stream entries
//! read back. Pure: bytes out, replies in (notes/10-redis.md).
//!
//! ```text
//!   miochat:room:epoch     string   set once (SET NX), the same for every process
//!   miochat:room:counter   integer  the last id given out (INCR in the append script)
//!   miochat:room:stream    stream   entries 0-1, 0-2, ... with fields p q n f
//!   miochat:room:seen:P    integer  the last sequence number process P appended
//! ```

use crate::resp::{Reply, encode_command};

pub const EPOCH_KEY: &str = "miochat:room:epoch";
pub const COUNTER_KEY: &str = "miochat:room:counter";
pub const STREAM_KEY: &str = "miochat:room:stream";
/// Followed by the process id: one key per process, so the check is O(1).
pub const SEEN_PREFIX: &str = "miochat:room:seen:";
/// How long Redis remembers a process's last sequence number: long after
/// any retry of that process could come (it retries within seconds).
pub const SEEN_TTL_SECONDS: &str = "86400";

/// The append, atomic because Redis runs a script as one command (Redis
/// docs, "Scripting with Lua": "blocks all server activities during its
/// entire runtime"): one order and one id sequence for every process, the
/// way Centrifugo's Redis engine gives each publication its offset.
///
/// KEYS: counter, stream, seen-key. ARGV: process id, sequence number,
/// MAXLEN, name, frame. A sequence number at or below the one this process
/// last appended is a retry whose first try got through (its reply was lost
/// with the connection): it is answered 0 and not stored again.
/// `XADD ... MAXLEN ~ N 0-ID` (Redis docs, XADD: "~" lets Redis trim whole
/// macro nodes only, which is cheaper; an explicit ID must be greater than
/// the stream's last one, and the counter guarantees it).
pub const APPEND_SCRIPT: &str = "\
local seen = tonumber(redis.call('GET', KEYS[3]) or '0')
if tonumber(ARGV[2]) <= seen then return 0 end
redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[6])
local id = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '0-' .. id,
  'p', ARGV[1], 'q', ARGV[2], 'n', ARGV[4], 'f', ARGV[5])
return id";

/// The greeting: the room's epoch (set by the first process ever, `SET NX`,
/// then read by every one) and its counter. ARGV[2] is the last id this
/// process already holds: if Redis lost the room (restarted without
/// persistence), the counter is raised to it, so ids never go back.
/// KEYS: epoch, counter. ARGV: a new epoch to offer, the last id held.
pub const HELLO_SCRIPT: &str = "\
redis.call('SET', KEYS[1], ARGV[1], 'NX')
local counter = tonumber(redis.call('GET', KEYS[2]) or '0')
if counter < tonumber(ARGV[2]) then
  counter = tonumber(ARGV[2])
  redis.call('SET', KEYS[2], ARGV[2])
end
return {redis.call('GET', KEYS[1]), counter}";

/// `SELECT db` (Redis docs, SELECT): the database the URL names.
pub fn select(out: &mut Vec<u8>, db: u32) {
    encode_command(out, &["SELECT", &db.to_string()]);
}

/// `SCRIPT LOAD` the append script; Redis answers its SHA1, for `EVALSHA`.
pub fn load_append_script(out: &mut Vec<u8>) {
    encode_command(out, &["SCRIPT", "LOAD", APPEND_SCRIPT]);
}

/// `EVAL` the greeting (sent once per connection: `EVAL` is fine).
pub fn hello(out: &mut Vec<u8>, new_epoch: &str, last_id: u64) {
    let last = last_id.to_string();
    encode_command(
        out,
        &[
            "EVAL",
            HELLO_SCRIPT,
            "2",
            EPOCH_KEY,
            COUNTER_KEY,
            new_epoch,
            &last,
        ],
    );
}

/// One message to append, as the process sends it (and sends it again,
/// unchanged, after a reconnect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Append<'a> {
    pub process: &'a str,
    pub seq: u64,
    pub max_len: usize,
    pub from: &'a str,
    /// The plain server frame, as every plain client gets it.
    pub frame: &'a [u8],
}

/// `EVALSHA sha 3 counter stream seen-key process seq maxlen name frame ttl`.
pub fn append(out: &mut Vec<u8>, sha: &str, a: &Append) {
    let seen = format!("{SEEN_PREFIX}{}", a.process);
    let (seq, max_len) = (a.seq.to_string(), a.max_len.to_string());
    let args: [&[u8]; 12] = [
        b"EVALSHA",
        sha.as_bytes(),
        b"3",
        COUNTER_KEY.as_bytes(),
        STREAM_KEY.as_bytes(),
        seen.as_bytes(),
        a.process.as_bytes(),
        seq.as_bytes(),
        max_len.as_bytes(),
        a.from.as_bytes(),
        a.frame,
        SEEN_TTL_SECONDS.as_bytes(),
    ];
    encode_command(out, &args);
}

/// `XREAD COUNT n BLOCK ms STREAMS key 0-LAST`: the entries after `last_id`,
/// waiting up to `block_ms` for one (Redis docs, XREAD: "BLOCK ... the
/// command returns a null reply" on timeout).
pub fn read_after(out: &mut Vec<u8>, last_id: u64, count: usize, block_ms: u64) {
    let (count, block, id) = (
        count.to_string(),
        block_ms.to_string(),
        format!("0-{last_id}"),
    );
    encode_command(
        out,
        &[
            "XREAD", "COUNT", &count, "BLOCK", &block, "STREAMS", STREAM_KEY, &id,
        ],
    );
}

/// `XRANGE key 0-FROM 0-TO`: the entries with ids in `from..=to` that Redis
/// still holds (Redis docs, XRANGE), for a resume the local log cannot serve.
pub fn range(out: &mut Vec<u8>, from: u64, to: u64) {
    let (start, end) = (format!("0-{from}"), format!("0-{to}"));
    encode_command(out, &["XRANGE", STREAM_KEY, &start, &end]);
}

/// One entry of the room's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEntry {
    /// `0-N`: N is the id every process gives it.
    pub id: u64,
    /// `p`: the process that appended it, and `q`: its sequence number there.
    pub process: Vec<u8>,
    pub seq: u64,
    /// `n`: the sender's name.
    pub from: String,
    /// `f`: the plain server frame.
    pub frame: Vec<u8>,
}

/// The entries of an `XREAD` reply: `[[stream, [entry, ...]]]`, or null
/// when `BLOCK` timed out with nothing new.
pub fn read_reply(reply: &Reply) -> Result<Vec<StreamEntry>, String> {
    let Reply::Array(Some(streams)) = reply else {
        return match reply {
            Reply::Array(None) => Ok(Vec::new()),
            other => Err(format!("XREAD answered {other:?}")),
        };
    };
    match streams.as_slice() {
        [stream] => match stream.items() {
            Some([_, entries]) => range_reply(entries),
            _ => Err("XREAD: a stream that is not [name, entries]".into()),
        },
        _ => Err(format!("XREAD: {} streams, asked for one", streams.len())),
    }
}

/// The entries of an `XRANGE` reply: `[[id, [field, value, ...]], ...]`.
pub fn range_reply(reply: &Reply) -> Result<Vec<StreamEntry>, String> {
    let items = reply.items().ok_or("stream entries: not an array")?;
    let entries: Vec<StreamEntry> = items.iter().map(entry).collect::<Result<_, _>>()?;
    match entries.iter().find(|e| !is_server_frame(&e.frame)) {
        Some(bad) => Err(format!("entry 0-{}: field f is not a server frame", bad.id)),
        None => Ok(entries),
    }
}

fn entry(reply: &Reply) -> Result<StreamEntry, String> {
    let Some([id, fields]) = reply.items() else {
        return Err("a stream entry that is not [id, fields]".into());
    };
    let id = id
        .bytes()
        .and_then(parse_id)
        .ok_or("a stream id not of the form 0-N")?;
    let fields = fields.items().ok_or("stream fields: not an array")?;
    let field = |name: &[u8]| {
        let at = fields
            .chunks(2)
            .position(|pair| pair[0].bytes() == Some(name))?;
        fields.get(at * 2 + 1)?.bytes()
    };
    let missing = |name: &str| format!("entry 0-{id}: no field {name}");
    let seq = field(b"q").and_then(|q| std::str::from_utf8(q).ok()?.parse().ok());
    Ok(StreamEntry {
        id,
        process: field(b"p").ok_or_else(|| missing("p"))?.to_vec(),
        seq: seq.ok_or_else(|| missing("q"))?,
        from: String::from_utf8_lossy(field(b"n").ok_or_else(|| missing("n"))?).into_owned(),
        frame: field(b"f").ok_or_else(|| missing("f"))?.to_vec(),
    })
}

/// Whether `frame` is what a miochat process puts in `f`: one whole,
/// unmasked data frame (RFC 6455 §5.2: FIN, opcode text or binary, no mask
/// bit from a server, §5.1), its length as its header says, text in UTF-8.
/// Anything else came from something that is not miochat, and is never
/// passed on to a client.
pub fn is_server_frame(frame: &[u8]) -> bool {
    let [b0, b1, ..] = *frame else {
        return false;
    };
    let (len, at) = match b1 & 0x7F {
        126 if frame.len() >= 4 => (u64::from(u16::from_be_bytes([frame[2], frame[3]])), 4),
        127 if frame.len() >= 10 => (
            u64::from_be_bytes(frame[2..10].try_into().unwrap_or_default()),
            10,
        ),
        126 | 127 => return false,
        short => (u64::from(short), 2),
    };
    let whole = (frame.len() - at) as u64 == len && b1 & 0x80 == 0;
    match b0 {
        0x81 => whole && std::str::from_utf8(&frame[at..]).is_ok(),
        0x82 => whole,
        _ => false,
    }
}

/// `0-42` → 42. Every id miochat writes has 0 milliseconds (XADD with an
/// explicit id); anything else in the stream was not written by miochat.
pub fn parse_id(id: &[u8]) -> Option<u64> {
    let n = id.strip_prefix(b"0-")?;
    std::str::from_utf8(n).ok()?.parse().ok()
}

#[cfg(test)]
#[path = "commands_tests.rs"]
mod tests;
