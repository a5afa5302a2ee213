//! The invariants the fuzz targets check, shared with `tests/properties.rs`.
//!
//! Each fuzz target is one line that calls a function here, and the test suite
//! replays every input kept in `fuzz/regressions/` through the same function,
//! so a crash found once stays fixed. Nothing here may use a dependency other
//! than `miochat` itself: the file is compiled into both crates.
//!
//! Three inputs are checked:
//! - [`check_handshake`]: any bytes as a request head, through `find_head_end`,
//!   `Request::parse`, `check_upgrade` and `http::answer`;
//! - [`check_decoder`]: a few bytes of settings, then any bytes as a client's
//!   stream, through `MessageReader::decode` read at once and in pieces;
//! - [`check_requests`]: a byte of settings, then any bytes as a client's
//!   HTTP/1.1 requests (bodies, keep-alive, pipelining) through a `Session`,
//!   read at once and in pieces.
//! - [`check_resp`]: any bytes as what a Redis server sends, through
//!   `resp::decode` at once and in pieces, with small limits.

use miochat::config::Config;
use miochat::error::ProtocolError;
use miochat::frame::{MAX_CONTROL_PAYLOAD, Opcode};
use miochat::handshake::{Request, accept_key, check_upgrade, find_head_end};
use miochat::http::{Answer, Status, answer};
use miochat::message::{Decoded, MessageReader};
use miochat::resp::{self, Limits, Reply};
use miochat::session::{ConnState, Event, HttpRequest, MAX_HEAD_BYTES, Session};

/// The token the fuzzed server demands (`--token`).
pub const TOKEN: &str = "s3cret-tok";
/// The origin it accepts besides its own (`--allow-origin`).
pub const ALLOWED_ORIGIN: &str = "https://app.example";

/// Every status a refusal of a request head may carry (431 comes from the server
/// loop, for heads over 8 KiB, and is included so the list is the whole truth).
pub const REFUSAL_STATUSES: [u16; 9] = [400, 401, 403, 404, 405, 411, 413, 426, 431];

/// The only close codes a broken client frame may earn.
pub const FAILURE_CLOSE_CODES: [u16; 3] = [1002, 1007, 1009];

/// A server configured with a token and an allowed origin, so both checks run.
pub fn fuzz_config() -> Config {
    Config {
        token: Some(TOKEN.into()),
        allowed_origins: vec![ALLOWED_ORIGIN.into()],
        ..Config::default()
    }
}

// ---- the handshake ----

/// Any bytes as a request head: nothing panics, every refusal is well-formed,
/// and an upgrade is only granted to a request that earned it.
pub fn check_handshake(data: &[u8]) {
    let head = match find_head_end(data) {
        Some(end) => {
            assert!(
                (4..=data.len()).contains(&end),
                "head end {end} out of range"
            );
            assert_eq!(&data[end - 4..end], b"\r\n\r\n");
            // The first blank line ends the head, not a later one.
            assert_eq!(find_head_end(&data[..end - 1]), None);
            &data[..end]
        }
        // The server never parses an unfinished head, but the parser must
        // not mind being given one.
        None => data,
    };
    let config = fuzz_config();
    let request = match Request::parse(head) {
        Ok(request) => request,
        Err(refusal) => {
            check_refusal(refusal.status, refusal.reason);
            return;
        }
    };
    assert!(!request.method.is_empty());
    assert!(request.target.starts_with('/') && request.target.starts_with(request.path));
    assert!(request.minor_version <= 9);
    let checked = check_upgrade(&request, &config);
    match &checked {
        Ok(upgrade) => {
            assert_eq!(request.method, "GET");
            assert!(matches!(request.path, "/" | "/chat" | "/echo"));
            assert!(request.minor_version >= 1);
            let key = request
                .header("Sec-WebSocket-Key")
                .expect("upgrade without a key");
            assert_eq!(upgrade.accept, accept_key(key));
            assert_eq!(request.header("Sec-WebSocket-Version"), Some("13"));
            // The token was offered in plain or percent-encoded (`?token=%73...`).
            let offered = contains(head, TOKEN.as_bytes()) || head.contains(&b'%');
            assert!(
                offered,
                "upgraded without the token: {:?}",
                String::from_utf8_lossy(head)
            );
            if let Some(origin) = request.header("Origin") {
                let host = request.header("Host").unwrap_or_default();
                let own = ["http://", "https://"].iter().any(|scheme| {
                    origin.len() == scheme.len() + host.len()
                        && origin[..scheme.len()].eq_ignore_ascii_case(scheme)
                        && origin[scheme.len()..].eq_ignore_ascii_case(host)
                });
                assert!(
                    own || origin.eq_ignore_ascii_case(ALLOWED_ORIGIN),
                    "upgraded a foreign origin {origin:?}"
                );
            }
        }
        Err(refusal) => check_refusal(refusal.status, refusal.reason),
    }
    match answer(&request, b"", &config, &Status::default()) {
        Answer::Upgrade(upgrade) => {
            assert_eq!(
                checked.as_ref().ok(),
                Some(&upgrade),
                "answer and check_upgrade disagree"
            );
        }
        Answer::Respond(bytes) | Answer::Refuse(bytes, _) => {
            assert!(
                checked.is_err(),
                "a valid upgrade was answered with plain HTTP"
            );
            check_http_response(&bytes, request.method == "HEAD");
        }
        // `/events`, `/poll` or `/send`: checked, answered by the loop.
        Answer::Chat(_) => assert!(checked.is_err(), "a valid upgrade was taken for plain HTTP"),
    }
}

/// A refusal: a known status, and a non-empty reason that fits on one line.
pub fn check_refusal(status: u16, reason: &str) {
    assert!(
        REFUSAL_STATUSES.contains(&status),
        "unexpected status {status}"
    );
    assert!(!reason.is_empty(), "status {status} without a reason");
    assert!(
        !reason.contains(['\r', '\n']),
        "reason {reason:?} is not one line"
    );
}

/// A whole HTTP/1.1 response as `http::response` writes it. The answer to a
/// HEAD may stop after the head (RFC 9110 §9.3.2), keeping GET's Content-Length.
pub fn check_http_response(bytes: &[u8], head_request: bool) {
    let end = find_head_end(bytes).expect("response head does not end");
    let head = std::str::from_utf8(&bytes[..end]).expect("response head is not UTF-8");
    let body = &bytes[end..];
    let status: u16 = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    assert!(
        status == 200 || REFUSAL_STATUSES.contains(&status),
        "status {status}"
    );
    // A refusal closes the connection; an answer may keep it (keep-alive).
    let closes = head.contains("\r\nConnection: close\r\n");
    assert!(closes || (status == 200 && head.contains("\r\nConnection: keep-alive\r\n")));
    if head_request && body.is_empty() {
        assert!(
            head.contains("\r\nContent-Length: "),
            "no Content-Length in {head:?}"
        );
        return;
    }
    let length = format!("\r\nContent-Length: {}\r\n", body.len());
    assert!(
        head.contains(&length),
        "Content-Length is not the body's in {head:?}"
    );
    if status != 200 {
        let body = std::str::from_utf8(body).expect("refusal body is not UTF-8");
        let reason = body
            .strip_suffix('\n')
            .expect("refusal body ends without a newline");
        check_refusal(status, reason);
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

// ---- the frame decoder ----

/// The `max_message` values the first byte of a decoder input picks from.
const MAX_MESSAGES: [usize; 8] = [0, 1, 5, 16, 125, 126, 1000, 1 << 20];

/// What a run of the decoder produced: everything must match between reads.
#[derive(Debug, PartialEq, Eq)]
pub struct Run {
    pub events: Vec<Option<Decoded>>,
    pub outgoing: Vec<u8>,
    pub consumed: usize,
    pub error: Option<ProtocolError>,
}

/// Decoder input: byte 0 picks `max_message` (low 3 bits), one-byte reads
/// (bit 3) and how many read sizes follow (high 4 bits); then the read sizes
/// (each byte + 1), used in turn; then the client's byte stream.
///
/// The stream is decoded read by read as the server does, and all at once;
/// both runs must agree, and each step is checked on its own.
pub fn check_decoder(data: &[u8]) {
    let Some((&settings, rest)) = data.split_first() else {
        return;
    };
    let max_message = MAX_MESSAGES[usize::from(settings & 7)];
    let sizes_len = usize::from(settings >> 4).min(rest.len());
    let (sizes, stream) = rest.split_at(sizes_len);
    let reads: Vec<usize> = if settings & 8 != 0 {
        vec![1]
    } else if sizes.is_empty() {
        vec![stream.len().max(1)]
    } else {
        sizes.iter().map(|&s| usize::from(s) + 1).collect()
    };
    check_decoder_with(stream, &reads, max_message);
}

/// Decodes `stream` all at once and in reads of the given sizes (cycled),
/// checking every step of both; they must agree. Returns the run.
pub fn check_decoder_with(stream: &[u8], reads: &[usize], max_message: usize) -> Run {
    let at_once = decode_in_reads(stream, &[stream.len().max(1)], max_message);
    let in_reads = decode_in_reads(stream, reads, max_message);
    assert_eq!(at_once, in_reads, "reads of {reads:?} changed the result");
    at_once
}

/// Feeds `stream` to a fresh reader in reads of the given sizes (cycled), the
/// way `Session::next_event` does, checking every step. Stops at the
/// first error, as the server does.
pub fn decode_in_reads(stream: &[u8], reads: &[usize], max_message: usize) -> Run {
    let mut reader = MessageReader::default();
    let mut model = Model::default();
    let mut buf = Vec::new();
    let mut run = Run {
        events: Vec::new(),
        outgoing: Vec::new(),
        consumed: 0,
        error: None,
    };
    let mut fed = 0;
    for &size in reads.iter().cycle() {
        let size = size.clamp(1, stream.len().saturating_sub(fed).max(1));
        buf.extend_from_slice(&stream[fed..(fed + size).min(stream.len())]);
        fed = (fed + size).min(stream.len());
        if let Err(error) =
            decode_available(&mut reader, &mut model, &mut buf, &mut run, max_message)
        {
            run.error = Some(error);
            break;
        }
        if fed == stream.len() {
            break;
        }
    }
    run
}

/// Decodes every complete frame in `buf[run.consumed..]`.
fn decode_available(
    reader: &mut MessageReader,
    model: &mut Model,
    buf: &mut [u8],
    run: &mut Run,
    max_message: usize,
) -> Result<(), ProtocolError> {
    loop {
        let before = buf[run.consumed..].to_vec();
        let outgoing_before = run.outgoing.len();
        let decoded = reader.decode(&mut buf[run.consumed..], max_message);
        if let Ok(Some((Some(Decoded::Data(message)), _))) = &decoded {
            run.outgoing.extend_from_slice(&message.frame);
        }
        match decoded {
            Ok(None) => {
                assert_eq!(
                    buf[run.consumed..],
                    before[..],
                    "Ok(None) changed the buffer"
                );
                assert_eq!(run.outgoing.len(), outgoing_before, "Ok(None) wrote output");
                return Ok(());
            }
            Ok(Some((incoming, used))) => {
                assert!(
                    used <= before.len(),
                    "used {used} of {} bytes",
                    before.len()
                );
                // The smallest client frame: 2 bytes of header and 4 of mask.
                assert!(used >= 6, "a {used}-byte frame cannot be masked");
                let frame = model.frame(&before[..used]);
                let sent = &run.outgoing[outgoing_before..];
                model.check(&frame, incoming.as_ref(), sent, max_message);
                run.consumed += used;
                run.events.push(incoming);
            }
            Err(error) => {
                let code = error.close_code();
                assert!(
                    FAILURE_CLOSE_CODES.contains(&code),
                    "{error:?} has close code {code}"
                );
                return Err(error);
            }
        }
    }
}

/// One client frame as an independent, simple reading of §5.2 sees it.
struct ModelFrame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
}

/// What the decoder must have said, worked out independently of it: the
/// frame is re-read from the bytes the decoder used, and data frames are
/// gathered into messages here too.
#[derive(Default)]
struct Model {
    /// The opcode and payload of a fragmented message in progress.
    message: Option<(u8, Vec<u8>)>,
}

impl Model {
    /// Reads one masked client frame that the decoder accepted, from its original bytes.
    fn frame(&self, bytes: &[u8]) -> ModelFrame {
        assert_eq!(bytes[0] & 0x70, 0, "accepted a frame with RSV bits");
        assert_ne!(bytes[1] & 0x80, 0, "accepted an unmasked frame");
        let (len, at) = match bytes[1] & 0x7F {
            126 => (u64::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
            127 => {
                let mut be = [0; 8];
                be.copy_from_slice(&bytes[2..10]);
                (u64::from_be_bytes(be), 10)
            }
            short => (u64::from(short), 2),
        };
        assert_eq!(
            at + 4 + len as usize,
            bytes.len(),
            "frame length disagrees with used"
        );
        let key = &bytes[at..at + 4];
        let payload = bytes[at + 4..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect();
        ModelFrame {
            fin: bytes[0] & 0x80 != 0,
            opcode: bytes[0] & 0x0F,
            payload,
        }
    }

    /// Checks what the decoder made of `frame`, and the server frame it wrote.
    fn check(
        &mut self,
        frame: &ModelFrame,
        incoming: Option<&Decoded>,
        sent: &[u8],
        max_message: usize,
    ) {
        let control = frame.opcode & 0x8 != 0;
        if control {
            assert!(frame.fin && frame.payload.len() <= MAX_CONTROL_PAYLOAD);
            assert!(sent.is_empty(), "a control frame wrote data output");
        }
        match (frame.opcode, incoming) {
            (0x9, Some(Decoded::Ping(payload))) => assert_eq!(payload.as_bytes(), frame.payload),
            (0xA, Some(Decoded::Pong)) => {}
            (0x8, Some(Decoded::Close(None))) => assert!(frame.payload.is_empty()),
            (0x8, Some(Decoded::Close(Some(body)))) => {
                let code = u16::from_be_bytes([frame.payload[0], frame.payload[1]]);
                assert_eq!(body.code, code);
                assert_eq!(body.reason.as_bytes(), &frame.payload[2..]);
                assert!(
                    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999),
                    "code {code}"
                );
            }
            (0x1 | 0x2, _) => {
                assert!(
                    self.message.is_none(),
                    "a new message inside a fragmented one"
                );
                self.data(
                    frame.opcode,
                    frame.payload.clone(),
                    frame.fin,
                    incoming,
                    sent,
                    max_message,
                );
            }
            (0x0, _) => {
                let (opcode, mut payload) =
                    self.message.take().expect("continuation with no message");
                payload.extend_from_slice(&frame.payload);
                self.data(opcode, payload, frame.fin, incoming, sent, max_message);
            }
            (opcode, incoming) => panic!("opcode {opcode:#x} decoded as {incoming:?}"),
        }
    }

    /// A data frame: either the message is complete and sent, or it waits.
    fn data(
        &mut self,
        opcode: u8,
        payload: Vec<u8>,
        fin: bool,
        incoming: Option<&Decoded>,
        sent: &[u8],
        max_message: usize,
    ) {
        assert!(
            payload.len() <= max_message,
            "{} bytes passed a limit of {max_message}",
            payload.len()
        );
        if !fin {
            assert_eq!(incoming, None, "a fragment completed a message");
            assert!(sent.is_empty(), "a fragment wrote output");
            if opcode == 0x1 {
                // §8.1: what has arrived must still be able to start valid UTF-8.
                if let Err(e) = std::str::from_utf8(&payload) {
                    assert_eq!(e.error_len(), None, "invalid UTF-8 accepted mid-message");
                }
            }
            self.message = Some((opcode, payload));
            return;
        }
        let expected = if opcode == 0x1 {
            Opcode::Text
        } else {
            Opcode::Binary
        };
        assert!(
            matches!(incoming, Some(Decoded::Data(m)) if m.opcode == expected),
            "a final {expected:?} frame decoded as {incoming:?}"
        );
        let (fin, op, masked, body) = parse_server_frame(sent);
        assert!(fin && !masked, "server frame must be final and unmasked");
        assert_eq!(op, opcode);
        assert_eq!(body, payload, "the server frame does not carry the message");
        if opcode == 0x1 {
            assert!(
                std::str::from_utf8(body).is_ok(),
                "a text message is not UTF-8"
            );
        }
    }
}

/// Parses exactly one server frame filling `bytes`, checking §5.2's layout
/// (RSV clear, shortest length form); returns (fin, opcode, masked, payload).
pub fn parse_server_frame(bytes: &[u8]) -> (bool, u8, bool, &[u8]) {
    assert!(bytes.len() >= 2, "no frame in {bytes:?}");
    assert_eq!(bytes[0] & 0x70, 0, "server frame with RSV bits");
    let (len, at) = match bytes[1] & 0x7F {
        126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
        127 => {
            let mut be = [0; 8];
            be.copy_from_slice(&bytes[2..10]);
            (u64::from_be_bytes(be) as usize, 10)
        }
        short => (usize::from(short), 2),
    };
    let shortest = match len {
        0..=125 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    };
    assert_eq!(at, shortest, "{len} bytes not in the shortest length form");
    let masked = bytes[1] & 0x80 != 0;
    let at = if masked { at + 4 } else { at };
    assert_eq!(bytes.len(), at + len, "one frame expected");
    (bytes[0] & 0x80 != 0, bytes[0] & 0x0F, masked, &bytes[at..])
}

// ---- requests: HTTP/1.1 bodies, keep-alive and pipelining in a session ----

/// Statuses the session itself may refuse a request with: a head it cannot
/// frame (400, 411), a body too large (413), a head too large (431), a
/// body on a route that takes none (400), or from a sender the route would
/// refuse (401, 403: checked before the body is read).
const SESSION_REFUSALS: [u16; 6] = [400, 401, 403, 411, 413, 431];

/// The first byte picks the read sizes (1 to 256 bytes, cycling through
/// the next few bytes); the rest is what a client sends on one connection.
/// Fed to a `Session` in those pieces, and all at once, the requests that
/// come out must be the same, each a whole head with exactly the body its
/// framing announces; every answer goes out in order; a refusal ends the
/// connection; nothing but a refusal (or a `100 Continue`) is ever written
/// by the session itself.
pub fn check_requests(data: &[u8]) {
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    let whole = requests_of(input, &[input.len().max(1)]);
    let sizes: Vec<usize> = input
        .iter()
        .take(8)
        .map(|&b| 1 + (usize::from(b ^ split) % 256))
        .collect();
    let pieces = requests_of(input, if sizes.is_empty() { &[1] } else { &sizes });
    assert_eq!(whole, pieces, "read boundaries changed what was parsed");
}

/// What a session makes of `input` read in pieces of `sizes` (cycling):
/// the requests, each checked, and the refusal that ended it, if any.
fn requests_of(input: &[u8], sizes: &[usize]) -> (Vec<HttpRequest>, Option<u16>) {
    let config = Config {
        max_message_bytes: 4096,
        ..fuzz_config()
    };
    let now = std::time::Instant::now();
    let mut session = Session::new(2, now);
    let mut requests = Vec::new();
    let mut expected_output = Vec::new();
    let mut at = 0;
    for &size in sizes.iter().cycle() {
        if at >= input.len()
            || session.state() != ConnState::Handshaking
                && session.state() != ConnState::ReadingBody
        {
            break;
        }
        let end = (at + size).min(input.len());
        session.receive(&input[at..end]);
        at = end;
        while let Some(Event::Request(request)) = session.next_event(&config, now) {
            check_framed(&request);
            // Each answer names its request, so order is visible in the output.
            let answer = format!("answer {}\n", requests.len());
            expected_output.extend_from_slice(answer.as_bytes());
            session.respond(answer.as_bytes(), now);
            requests.push(request);
        }
    }
    let refusal = check_output(session.output(), &expected_output);
    (requests, refusal)
}

/// A request as the session hands it over: a whole head (at most 8 KiB)
/// and the body its Content-Length announces.
fn check_framed(request: &HttpRequest) {
    assert!(
        request.head.ends_with(b"\r\n\r\n"),
        "a head without its end"
    );
    assert!(request.head.len() <= MAX_HEAD_BYTES, "a head over 8 KiB");
    let head_end = find_head_end(&request.head).expect("the head's end");
    assert_eq!(head_end, request.head.len(), "two heads in one request");
    if let Ok(parsed) = Request::parse(&request.head) {
        let length = miochat::framing::of(&parsed).map_or(0, |f| f.body_len);
        assert_eq!(
            request.body.len(),
            length,
            "body is not Content-Length long"
        );
        // The router takes any head and body without panicking.
        let _ = answer(&parsed, &request.body, &fuzz_config(), &Status::default());
    }
}

/// The session's output is our answers in order, then at most one
/// refusal of its own; returns the refusal's status.
fn check_output(output: &[u8], answers: &[u8]) -> Option<u16> {
    // A `100 Continue` may come before a body (`Expect: 100-continue`,
    // when the body had not arrived with the head): not an answer.
    let text = String::from_utf8_lossy(output).replace("HTTP/1.1 100 Continue\r\n\r\n", "");
    let output = text.as_bytes();
    assert!(output.starts_with(answers), "answers out of order or lost");
    let rest = &output[answers.len()..];
    if rest.is_empty() {
        return None;
    }
    check_http_response(rest, false);
    let status: u16 = std::str::from_utf8(&rest[9..12]).unwrap().parse().unwrap();
    assert!(
        SESSION_REFUSALS.contains(&status),
        "the session refused with {status}"
    );
    Some(status)
}
// ---- RESP ----

/// Small limits, so the fuzzer reaches them with short inputs (up to 1 KiB).
pub const RESP_LIMITS: Limits = Limits {
    max_bulk: 64,
    max_elements: 32,
    max_depth: 4,
    max_reply: 512,
};

/// Any bytes as a Redis server's replies: decoding them one after another
/// never panics, never claims more bytes than it was given, answers the
/// same fed in pieces as whole, and a decoded reply encodes back to bytes
/// that decode to it again.
pub fn check_resp(data: &[u8]) {
    let whole = resp_replies(data, data.len().max(1));
    let piece = 1 + data.first().map_or(0, |b| usize::from(b % 7));
    assert_eq!(resp_replies(data, piece), whole, "pieces of {piece}");
    for reply in whole.0.iter() {
        let mut bytes = Vec::new();
        encode_reply(&mut bytes, reply);
        let again = resp::decode(&bytes, &Limits::default()).expect("own encoding");
        assert_eq!(again, Some((reply.clone(), bytes.len())));
    }
}

/// The replies in `data` as a client reading `piece` bytes at a time sees
/// them, and the error that stopped it, if one did.
fn resp_replies(data: &[u8], piece: usize) -> (Vec<Reply>, Option<resp::RespError>) {
    let (mut replies, mut buf, mut fed) = (Vec::new(), Vec::new(), 0);
    while fed < data.len() || !buf.is_empty() {
        let more = piece.min(data.len() - fed);
        buf.extend_from_slice(&data[fed..fed + more]);
        fed += more;
        match resp::decode(&buf, &RESP_LIMITS) {
            Ok(Some((reply, used))) => {
                assert!(
                    used > 0 && used <= buf.len(),
                    "used {used} of {}",
                    buf.len()
                );
                // Every reply, bulk payloads included, ends in CRLF (RESP2).
                assert!(buf[..used].ends_with(b"\r\n"), "a reply not ended by CRLF");
                replies.push(reply);
                buf.drain(..used);
            }
            Ok(None) if fed == data.len() => break,
            Ok(None) => {}
            Err(error) => return (replies, Some(error)),
        }
    }
    (replies, None)
}

/// A reply in its RESP2 form (what a Redis server would send).
fn encode_reply(out: &mut Vec<u8>, reply: &Reply) {
    match reply {
        Reply::Simple(s) => out.extend_from_slice(format!("+{s}\r\n").as_bytes()),
        Reply::Error(s) => out.extend_from_slice(format!("-{s}\r\n").as_bytes()),
        Reply::Integer(n) => out.extend_from_slice(format!(":{n}\r\n").as_bytes()),
        Reply::Bulk(None) => out.extend_from_slice(b"$-1\r\n"),
        Reply::Bulk(Some(b)) => {
            out.extend_from_slice(format!("${}\r\n", b.len()).as_bytes());
            out.extend_from_slice(b);
            out.extend_from_slice(b"\r\n");
        }
        Reply::Array(None) => out.extend_from_slice(b"*-1\r\n"),
        Reply::Array(Some(items)) => {
            out.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
            items.iter().for_each(|item| encode_reply(out, item));
        }
    }
}
