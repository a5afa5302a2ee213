//! Property tests of the pure parsers (issue 6): frames, messages, the handshake.
//!
//! Where `tests/frames.rs` and `tests/handshake.rs` try one bad input each
//! against the real server, these try thousands of generated ones against the
//! parsers directly: encoding then decoding gives a frame back, any split of a
//! byte stream into reads gives the same messages, and no input, however
//! broken, panics or earns an answer outside the documented few.
//!
//! The per-step checks (`used` within the buffer, `Ok(None)` consumes nothing,
//! every server frame well-formed and unmasked, text is UTF-8, close codes in
//! {1002, 1007, 1009}, refusal statuses and reasons) live in `fuzz/checks.rs`,
//! shared with the fuzz targets, and every input in `fuzz/regressions/` (and
//! `fuzz/seeds/`) is replayed through them here.

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

use miochat::error::ProtocolError;
use miochat::frame::{FrameHeader, MAX_HEADER_LEN, Opcode, apply_mask, encode_frame};
use miochat::handshake::{Request, check_upgrade};
use miochat::http::{Answer, Status, answer};
use miochat::message::{Decoded, Message, MessageReader};

use checks::{ALLOWED_ORIGIN, TOKEN, fuzz_config};

const MAX: usize = 1 << 20;

/// Cases per property: enough to matter, while the whole file stays within
/// seconds in a debug build (`cargo test --test properties`).
fn cases(n: u32) -> ProptestConfig {
    ProptestConfig::with_cases(n)
}

// ---- generators ----

fn any_opcode() -> impl Strategy<Value = Opcode> {
    prop_oneof![
        Just(Opcode::Continuation),
        Just(Opcode::Text),
        Just(Opcode::Binary),
        Just(Opcode::Close),
        Just(Opcode::Ping),
        Just(Opcode::Pong),
    ]
}

/// Payloads of every length form: 7-bit mostly, 16-bit often, 64-bit now and then.
fn any_payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => vec(any::<u8>(), 0..=130),
        3 => vec(any::<u8>(), 120..=300),
        1 => (65_530usize..=65_540, any::<u64>()).prop_map(|(len, seed)| noise(len, seed)),
    ]
}

/// `len` pseudo-random bytes: cheaper than asking proptest for 64 KiB one by one.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            // xorshift64*
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            (seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// Text that is mostly ASCII with 2-, 3- and 4-byte characters mixed in, so
/// fragment boundaries often fall inside a character.
fn any_text() -> impl Strategy<Value = String> {
    let ch = prop_oneof![
        3 => proptest::char::range('a', 'z'),
        1 => Just('é'),
        1 => Just('€'),
        1 => Just('😀'),
        1 => any::<char>(),
    ];
    vec(ch, 0..40).prop_map(String::from_iter)
}

/// A valid close code and a reason that fits in a control frame.
fn any_close() -> impl Strategy<Value = (u16, String)> {
    let code = prop_oneof![1000u16..=1003, 1007u16..=1014, 3000u16..=4999];
    let reason = any_text().prop_map(|mut r| {
        while r.len() > 123 {
            r.pop();
        }
        r
    });
    (code, reason)
}

/// One thing a well-behaved client sends.
#[derive(Debug, Clone)]
enum Item {
    /// A text or binary message, cut into fragments at `cuts`, with a Ping
    /// (`pings[i]`) after the i-th fragment when one is given.
    Message {
        opcode: Opcode,
        payload: Vec<u8>,
        cuts: Vec<Index>,
        pings: Vec<Option<Vec<u8>>>,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

fn any_item() -> impl Strategy<Value = Item> {
    let payload = prop_oneof![
        any_text().prop_map(|t| (Opcode::Text, t.into_bytes())),
        vec(any::<u8>(), 0..80).prop_map(|b| (Opcode::Binary, b)),
    ];
    let control = vec(any::<u8>(), 0..=125);
    prop_oneof![
        6 => (payload, vec(any::<Index>(), 0..4), vec(proptest::option::of(vec(any::<u8>(), 0..20)), 4))
            .prop_map(|((opcode, payload), cuts, pings)| Item::Message { opcode, payload, cuts, pings }),
        1 => control.clone().prop_map(Item::Ping),
        1 => control.prop_map(Item::Pong),
    ]
}

/// What the decoder said, in a form a test can write down.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Data(Opcode),
    Ping(Vec<u8>),
    Pong,
    Close(Option<(u16, String)>),
}

fn seen(incoming: &Decoded) -> Seen {
    match incoming {
        Decoded::Data(message) => Seen::Data(message.opcode),
        Decoded::Ping(payload) => Seen::Ping(payload.as_bytes().to_vec()),
        Decoded::Pong => Seen::Pong,
        Decoded::Close(body) => Seen::Close(body.as_ref().map(|b| (b.code, b.reason.clone()))),
    }
}

/// A client's byte stream for `items` (and a final Close), with what the
/// decoder must say about it and the server frames it must write.
struct Script {
    stream: Vec<u8>,
    expected: Vec<Seen>,
    outgoing: Vec<u8>,
}

fn script(items: &[Item], close: Option<&(u16, String)>, key_seed: u64) -> Script {
    let keys = noise(4 * 64, key_seed);
    let mut keys = keys.chunks(4).map(|k| [k[0], k[1], k[2], k[3]]).cycle();
    let mut s = Script {
        stream: Vec::new(),
        expected: Vec::new(),
        outgoing: Vec::new(),
    };
    let mut frame = |s: &mut Script, fin: bool, opcode: Opcode, payload: &[u8]| {
        encode_frame(&mut s.stream, fin, opcode, payload, keys.next());
    };
    for item in items {
        match item {
            Item::Message {
                opcode,
                payload,
                cuts,
                pings,
            } => {
                let mut at: Vec<usize> = cuts.iter().map(|c| c.index(payload.len() + 1)).collect();
                at.sort_unstable();
                at.push(payload.len());
                let mut start = 0;
                for (i, &end) in at.iter().enumerate() {
                    let first = i == 0;
                    let last = i == at.len() - 1;
                    let op = if first { *opcode } else { Opcode::Continuation };
                    frame(&mut s, last, op, &payload[start..end]);
                    start = end;
                    if let (false, Some(Some(ping))) = (last, pings.get(i)) {
                        // §5.4: control frames may come between fragments.
                        frame(&mut s, true, Opcode::Ping, ping);
                        s.expected.push(Seen::Ping(ping.clone()));
                    }
                }
                s.expected.push(Seen::Data(*opcode));
                encode_frame(&mut s.outgoing, true, *opcode, payload, None);
            }
            Item::Ping(payload) => {
                frame(&mut s, true, Opcode::Ping, payload);
                s.expected.push(Seen::Ping(payload.clone()));
            }
            Item::Pong(payload) => {
                frame(&mut s, true, Opcode::Pong, payload);
                s.expected.push(Seen::Pong);
            }
        }
    }
    if let Some((code, reason)) = close {
        let mut body = code.to_be_bytes().to_vec();
        body.extend_from_slice(reason.as_bytes());
        frame(&mut s, true, Opcode::Close, &body);
        s.expected.push(Seen::Close(Some((*code, reason.clone()))));
    }
    s
}

/// A frame as a careless or hostile client might write it: reserved bits,
/// reserved opcodes, missing masks, bad UTF-8 and bad close bodies now and then.
fn rough_frame() -> impl Strategy<Value = Vec<u8>> {
    let opcode_bits = prop_oneof![
        8 => prop_oneof![Just(0u8), Just(1), Just(2), Just(8), Just(9), Just(10)],
        1 => 0u8..16,
    ];
    let payload = prop_oneof![
        3 => any_text().prop_map(String::into_bytes),
        2 => vec(any::<u8>(), 0..40),
        1 => Just(vec![0xED, 0xA0, 0x80]),
        1 => Just(vec![0xE2, 0x82]),
        1 => any_close().prop_map(|(code, reason)| [&code.to_be_bytes()[..], reason.as_bytes()].concat()),
        1 => (close_code_edge(), vec(any::<u8>(), 0..4)).prop_map(|(code, rest)| [&code.to_be_bytes()[..], &rest].concat()),
        1 => vec(any::<u8>(), 126..200),
    ];
    let rsv = prop_oneof![20 => Just(0u8), 1 => 1u8..8];
    (
        any::<bool>(),
        rsv,
        opcode_bits,
        prop::bool::weighted(0.95),
        payload,
        any::<[u8; 4]>(),
    )
        .prop_map(|(fin, rsv, opcode, masked, payload, key)| {
            let mut bytes = Vec::new();
            let key = masked.then_some(key);
            encode_frame(&mut bytes, fin, Opcode::Binary, &payload, key);
            bytes[0] = (u8::from(fin) << 7) | (rsv << 4) | opcode;
            bytes
        })
}

/// Close codes on and around the edges of §7.4.1's ranges, and any other.
fn close_code_edge() -> impl Strategy<Value = u16> {
    let edges = vec![
        0u16, 999, 1000, 1003, 1004, 1005, 1006, 1007, 1014, 1015, 1016, 2999, 3000, 4999, 5000,
        65535,
    ];
    prop_oneof![3 => proptest::sample::select(edges), 1 => any::<u16>()]
}

fn any_max_message() -> impl Strategy<Value = usize> {
    prop_oneof![0usize..=200, Just(MAX)]
}

fn any_reads() -> impl Strategy<Value = Vec<usize>> {
    vec(1usize..=48, 1..8)
}

// ---- frames: encode, then decode ----

proptest! {
    #![proptest_config(cases(2000))]

    /// Any frame a client may send comes back from `FrameHeader::parse` and
    /// `apply_mask` exactly as `encode_frame` was given it, whatever the length form.
    #[test]
    fn encoding_then_decoding_any_frame_gives_it_back(
        fin in any::<bool>(),
        opcode in any_opcode(),
        payload in any_payload(),
        key in any::<[u8; 4]>(),
        split in any::<Index>(),
    ) {
        // §5.5: control frames are final and carry at most 125 bytes.
        let (fin, payload) = if opcode.is_control() {
            (true, payload[..payload.len().min(125)].to_vec())
        } else {
            (fin, payload)
        };
        let mut bytes = Vec::new();
        encode_frame(&mut bytes, fin, opcode, &payload, Some(key));
        let header = FrameHeader::parse(&bytes).unwrap().unwrap();
        prop_assert_eq!((header.fin, header.opcode, header.mask), (fin, opcode, key));
        prop_assert_eq!(header.payload_len, payload.len() as u64);
        // §5.2: the shortest length form, then the 4-byte key.
        let form = match payload.len() { 0..=125 => 0, 126..=0xFFFF => 2, _ => 8 };
        prop_assert_eq!(header.header_len, 2 + form + 4);
        prop_assert!(header.header_len <= MAX_HEADER_LEN);
        prop_assert_eq!(bytes.len(), header.header_len + payload.len());
        // Fed one byte at a time, the header needs more until it is whole.
        for cut in 0..header.header_len {
            prop_assert_eq!(FrameHeader::parse(&bytes[..cut]), Ok(None), "cut {}", cut);
        }
        // Unmasked at once, or in two pieces with the offset carried over (§5.3).
        let mut whole = bytes[header.header_len..].to_vec();
        apply_mask(&mut whole, key, 0);
        prop_assert_eq!(&whole, &payload);
        let mut pieces = bytes[header.header_len..].to_vec();
        let at = split.index(pieces.len() + 1);
        let (a, b) = pieces.split_at_mut(at);
        apply_mask(a, key, 0);
        apply_mask(b, key, at);
        prop_assert_eq!(&pieces, &payload);
        // The server's unmasked form is the same frame without the key, and a
        // server must refuse it from a client (§5.1).
        let mut unmasked = Vec::new();
        encode_frame(&mut unmasked, fin, opcode, &payload, None);
        prop_assert_eq!(unmasked[1] & 0x80, 0);
        prop_assert_eq!(&unmasked[2..2 + form], &bytes[2..2 + form]);
        prop_assert_eq!(&unmasked[2 + form..], &payload[..]);
        prop_assert_eq!(FrameHeader::parse(&unmasked), Err(ProtocolError::UnmaskedFrame));
    }
}

// ---- messages: any split into reads ----

proptest! {
    #![proptest_config(cases(2000))]

    /// Several messages, fragmented anywhere (inside characters too), with
    /// pings between fragments, pongs, and a final Close: any split into reads,
    /// one byte at a time, or all at once gives the same messages in the same
    /// order, and the same server frames.
    #[test]
    fn any_split_of_a_valid_stream_gives_the_same_messages(
        items in vec(any_item(), 1..6),
        close in proptest::option::of(any_close()),
        key_seed in any::<u64>(),
        reads in any_reads(),
    ) {
        let s = script(&items, close.as_ref(), key_seed);
        for reads in [&reads[..], &[1], &[s.stream.len().max(1)]] {
            let run = checks::check_decoder_with(&s.stream, reads, MAX);
            prop_assert_eq!(run.error, None);
            prop_assert_eq!(run.consumed, s.stream.len());
            let said: Vec<Seen> = run.events.iter().flatten().map(seen).collect();
            prop_assert_eq!(&said, &s.expected);
            prop_assert_eq!(&run.outgoing, &s.outgoing);
        }
    }

    /// With the limit at its largest message the stream passes; one byte below,
    /// it ends in 1009 at that message, whatever the reads (§10.4).
    #[test]
    fn a_limit_below_the_largest_message_ends_in_1009(
        items in vec(any_item(), 1..6),
        key_seed in any::<u64>(),
        reads in any_reads(),
    ) {
        let largest = items.iter().filter_map(|item| match item {
            Item::Message { payload, .. } => Some(payload.len()),
            _ => None,
        }).max();
        let Some(largest @ 1..) = largest else {
            return Ok(());
        };
        let s = script(&items, None, key_seed);
        let run = checks::check_decoder_with(&s.stream, &reads, largest);
        prop_assert_eq!(run.error, None);
        let run = checks::check_decoder_with(&s.stream, &reads, largest - 1);
        prop_assert_eq!(run.error, Some(ProtocolError::MessageTooBig));
        prop_assert_eq!(run.error.unwrap().close_code(), 1009);
    }
}

// ---- the rules with an exact answer: close bodies and UTF-8 ----

/// Byte pieces on the edges of UTF-8: valid characters of every width, and
/// overlong forms, surrogates, code points past U+10FFFF, stray and missing
/// continuation bytes.
fn utf8_edge_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        6 => any_text().prop_map(String::into_bytes),
        1 => proptest::sample::select(vec![
            vec![0x80],
            vec![0xC0, 0x80],
            vec![0xC1, 0xBF],
            vec![0xE0, 0x80, 0x80],
            vec![0xED, 0xA0, 0x80],
            vec![0xF4, 0x90, 0x80, 0x80],
            vec![0xF5],
            vec![0xFF],
            vec![0xE2, 0x82],
            vec![0xF0, 0x9F, 0x98],
        ]),
    ];
    vec(piece, 0..4).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(cases(2000))]

    /// §5.5.1 and §7.4: a Close body is accepted exactly when it is empty or a
    /// code that may be sent followed by UTF-8; a one-byte body or a bad code
    /// gets 1002, a reason that is not UTF-8 gets 1007.
    #[test]
    fn a_close_body_is_accepted_exactly_when_the_rfc_allows_it(
        body in prop_oneof![
            vec(any::<u8>(), 0..2),
            (close_code_edge(), utf8_edge_bytes())
                .prop_map(|(code, reason)| [&code.to_be_bytes()[..], &reason].concat()),
        ],
        key in any::<[u8; 4]>(),
    ) {
        let body = &body[..body.len().min(125)];
        let expected = match body {
            [] => Ok(Seen::Close(None)),
            [_] => Err(1002),
            [hi, lo, reason @ ..] => {
                let code = u16::from_be_bytes([*hi, *lo]);
                // §7.4.1, §7.4.2 and the IANA registry: the codes that may be sent.
                let sendable = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
                match (sendable, std::str::from_utf8(reason)) {
                    (false, _) => Err(1002),
                    (true, Err(_)) => Err(1007),
                    (true, Ok(reason)) => Ok(Seen::Close(Some((code, reason.to_string())))),
                }
            }
        };
        let mut frame = Vec::new();
        encode_frame(&mut frame, true, Opcode::Close, body, Some(key));
        let len = frame.len();
        let got = match MessageReader::default().decode(&mut frame, MAX) {
            Ok(Some((Some(incoming), used))) if used == len => Ok(seen(&incoming)),
            Err(error) => Err(error.close_code()),
            other => return Err(TestCaseError::fail(format!("close decoded as {other:?}"))),
        };
        prop_assert_eq!(got, expected);
    }

    /// §5.6, §8.1: a fragmented text message is accepted exactly when it is
    /// UTF-8 as a whole, and otherwise fails with 1007 at the first fragment
    /// after which the bytes so far can no longer begin valid UTF-8 (or at
    /// the last one), never waiting for the rest.
    #[test]
    fn fragmented_text_fails_at_the_first_fragment_that_cannot_be_utf8(
        text in utf8_edge_bytes(),
        cuts in vec(any::<Index>(), 0..4),
        key in any::<[u8; 4]>(),
        reads in any_reads(),
    ) {
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(text.len() + 1)).collect();
        at.sort_unstable();
        at.push(text.len());
        let mut stream = Vec::new();
        let mut frame_ends = Vec::new();
        let mut failing = None;
        let mut start = 0;
        for (i, &end) in at.iter().enumerate() {
            let last = i == at.len() - 1;
            let opcode = if i == 0 { Opcode::Text } else { Opcode::Continuation };
            encode_frame(&mut stream, last, opcode, &text[start..end], Some(key));
            frame_ends.push(stream.len());
            start = end;
            let hopeless = match std::str::from_utf8(&text[..end]) {
                Ok(_) => false,
                Err(e) => last || e.error_len().is_some(),
            };
            if hopeless && failing.is_none() {
                failing = Some(i);
            }
        }
        let run = checks::check_decoder_with(&stream, &reads, MAX);
        match failing {
            None => {
                prop_assert_eq!(run.error, None);
                let whole = Decoded::Data(Message::new(Opcode::Text, &text));
                prop_assert_eq!(run.events.last(), Some(&Some(whole)));
                prop_assert_eq!(run.consumed, stream.len());
            }
            Some(i) => {
                prop_assert_eq!(run.error, Some(ProtocolError::InvalidUtf8));
                // Every frame before the hopeless one was taken, and no more.
                let before = if i == 0 { 0 } else { frame_ends[i - 1] };
                prop_assert_eq!(run.consumed, before);
            }
        }
    }
}

// ---- hostile bytes: the decoder ----

proptest! {
    #![proptest_config(cases(3000))]

    /// One `decode` call on any bytes ends in one of three answers: a frame
    /// (using no more than the buffer), `Ok(None)` having consumed and changed
    /// nothing, or a protocol error whose close code is 1002, 1007 or 1009.
    #[test]
    fn one_decode_call_on_any_bytes_ends_in_one_of_three_answers(
        bytes in vec(any::<u8>(), 0..64),
        max_message in any_max_message(),
    ) {
        let mut buf = bytes.clone();
        match MessageReader::default().decode(&mut buf, max_message) {
            Ok(Some((_, used))) => prop_assert!((6..=bytes.len()).contains(&used)),
            Ok(None) => prop_assert_eq!(&buf, &bytes),
            Err(e) => prop_assert!(checks::FAILURE_CLOSE_CODES.contains(&e.close_code())),
        }
    }

    /// Arbitrary bytes, in the fuzz target's layout (settings, read sizes,
    /// stream): every step checked, and the reads agree with all-at-once.
    #[test]
    fn arbitrary_bytes_never_break_the_decoder(data in vec(any::<u8>(), 0..400)) {
        checks::check_decoder(&data);
    }

    /// Streams of nearly-right frames (the interesting failures: reserved bits
    /// and opcodes, unmasked frames, fragments out of order, UTF-8 broken inside
    /// or across fragments, bad close bodies, limits): every step checked, one
    /// byte at a time and in any reads give the same result as all at once.
    #[test]
    fn hostile_frame_streams_fail_cleanly_and_the_same_in_any_reads(
        frames in vec(rough_frame(), 1..7),
        reads in any_reads(),
        max_message in any_max_message(),
    ) {
        let stream = frames.concat();
        let run = checks::check_decoder_with(&stream, &reads, max_message);
        let one_by_one = checks::decode_in_reads(&stream, &[1], max_message);
        prop_assert_eq!(&run, &one_by_one);
        if let Some(error) = run.error {
            prop_assert!(checks::FAILURE_CLOSE_CODES.contains(&error.close_code()));
        }
    }
}

// ---- hostile bytes: the handshake ----

/// The RFC's request (§1.3) with our token, one header a line.
const REQUEST_LINE: &str = "GET /chat?token=s3cret-tok HTTP/1.1";
const HEADERS: [(&str, &str); 6] = [
    ("Host", "server.example.com"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("Sec-WebSocket-Version", "13"),
    ("Origin", ALLOWED_ORIGIN),
];
const RFC_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

fn head(request_line: &str, headers: &[(String, String)]) -> String {
    let mut head = format!("{request_line}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}:{value}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// A header name in a random mix of cases.
fn recase(name: &str, mask: u64) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// Pieces a request head is made of, right and wrong, for building heads
/// that get further than random bytes do.
fn request_piece() -> impl Strategy<Value = String> {
    let fixed: Vec<String> = HEADERS
        .iter()
        .map(|(n, v)| format!("{n}: {v}"))
        .chain(
            [
                "Authorization: Bearer s3cret-tok",
                "Authorization: Bearer wrong",
                "Cookie: a=b; miochat_token=s3cret-tok",
                "Cookie: miochat_token=",
                "Origin: http://evil.example",
                "Origin: http://server.example.com",
                "Sec-WebSocket-Version: 8",
                "Sec-WebSocket-Key: c2hvcnQ=",
                "Connection: keep-alive, Upgrade",
                "Host:",
                "Host : x",
                " folded: line",
                "no colon",
                "",
            ]
            .map(String::from),
        )
        .collect();
    prop_oneof![
        6 => proptest::sample::select(fixed),
        1 => vec(any::<char>(), 0..12).prop_map(String::from_iter),
    ]
}

/// The required headers, each kept with a high chance, plus wrong pieces, shuffled.
fn assembled_headers() -> impl Strategy<Value = Vec<String>> {
    (
        vec(prop::bool::weighted(0.85), HEADERS.len()),
        vec(request_piece(), 0..4),
    )
        .prop_flat_map(|(keep, extra)| {
            let mut pieces: Vec<String> = HEADERS
                .iter()
                .zip(keep)
                .filter(|(_, keep)| *keep)
                .map(|((n, v), _)| format!("{n}: {v}"))
                .collect();
            pieces.extend(extra);
            Just(pieces).prop_shuffle()
        })
}

fn request_line() -> impl Strategy<Value = String> {
    let method = prop_oneof![6 => Just("GET"), 1 => Just("HEAD"), 1 => Just("POST"), 1 => Just("get"), 1 => Just(""), 1 => Just("GET GET")];
    let target = prop_oneof![
        4 => Just("/chat?token=s3cret-tok"),
        2 => Just("/echo?token=s3cret%2dtok&x"),
        1 => Just("/?token=%"),
        1 => Just("/"),
        1 => Just("/status"),
        1 => Just("/app.js"),
        1 => Just("/nowhere"),
        1 => Just("chat"),
        1 => Just(""),
    ];
    let version = prop_oneof![
        6 => Just("HTTP/1.1"),
        1 => Just("HTTP/1.0"),
        1 => Just("HTTP/2"),
        1 => Just("HTTP/1.x"),
        1 => Just("HTTP/1.10"),
    ];
    (method, target, version).prop_map(|(m, t, v)| format!("{m} {t} {v}"))
}

proptest! {
    #![proptest_config(cases(3000))]

    /// Any bytes: `find_head_end`, `Request::parse`, `check_upgrade` and
    /// `answer` never panic; every refusal has a status in {400, 401, 403, 404,
    /// 405, 426, 431} and a non-empty one-line reason; every HTTP answer is a
    /// whole response with the right Content-Length.
    #[test]
    fn arbitrary_bytes_never_break_the_handshake(bytes in vec(any::<u8>(), 0..300)) {
        checks::check_handshake(&bytes);
    }

    /// Heads assembled from right and wrong pieces (most required headers
    /// kept, some dropped, wrong ones added, in any order) reach every rule of
    /// §4.2.1, the token and the Origin check; the same invariants hold for
    /// each, and an upgrade is only ever granted with the token and a good Origin.
    #[test]
    fn assembled_request_heads_are_answered_within_the_rules(
        line in request_line(),
        pieces in assembled_headers(),
    ) {
        let mut head = format!("{line}\r\n");
        for piece in &pieces {
            head.push_str(piece);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        checks::check_handshake(head.as_bytes());
    }
}

proptest! {
    #![proptest_config(cases(1000))]

    /// A valid upgrade stays valid whatever the order of its headers, the case
    /// of their names, the blanks around their values, and unrelated headers
    /// mixed in (§4.2.1: names are case-insensitive; order is not significant).
    #[test]
    fn a_valid_upgrade_is_accepted_in_any_header_order_case_and_spacing(
        order in Just((0..HEADERS.len()).collect::<Vec<_>>()).prop_shuffle(),
        masks in vec(any::<u64>(), HEADERS.len()),
        blanks in vec(prop_oneof![Just(""), Just(" "), Just("\t"), Just("  \t")], HEADERS.len() * 2),
        extra in vec(("X-[A-Za-z]{1,8}", "[ -~]{0,16}"), 0..3),
    ) {
        let mut headers: Vec<(String, String)> = order
            .iter()
            .map(|&i| {
                let (name, value) = HEADERS[i];
                (recase(name, masks[i]), format!("{}{value}{}", blanks[2 * i], blanks[2 * i + 1]))
            })
            .collect();
        for (name, value) in extra {
            let at = value.len() % (headers.len() + 1);
            headers.insert(at, (name, value));
        }
        let text = head(REQUEST_LINE, &headers);
        let request = Request::parse(text.as_bytes()).unwrap();
        match answer(&request, b"", &fuzz_config(), &Status::default()) {
            Answer::Upgrade(upgrade) => prop_assert_eq!(upgrade.accept, RFC_ACCEPT),
            Answer::Respond(bytes) | Answer::Refuse(bytes, _) => {
                let why = format!("refused {text:?}: {}", String::from_utf8_lossy(&bytes));
                return Err(TestCaseError::fail(why));
            }
            Answer::Chat(chat) => return Err(TestCaseError::fail(format!("{chat:?}"))),
        }
        checks::check_handshake(text.as_bytes());
    }

    /// Without any one of the headers §4.2.1 requires, the upgrade is refused
    /// with 400; with the token or a foreign Origin wrong, with 401 or 403.
    #[test]
    fn a_missing_required_header_or_a_wrong_token_or_origin_is_refused(
        omit in 0..=HEADERS.len(),
        order in Just((0..HEADERS.len()).collect::<Vec<_>>()).prop_shuffle(),
    ) {
        let mut headers: Vec<(String, String)> = order
            .iter()
            .filter(|&&i| i != omit)
            .map(|&i| (HEADERS[i].0.to_string(), format!(" {}", HEADERS[i].1)))
            .collect();
        let (line, expected) = match omit {
            // Origin is optional: only a foreign one is refused.
            5 => {
                headers.push(("Origin".into(), " http://evil.example".into()));
                (REQUEST_LINE.to_string(), 403)
            }
            6 => (REQUEST_LINE.replace(TOKEN, "guess"), 401),
            _ => (REQUEST_LINE.to_string(), 400),
        };
        let text = head(&line, &headers);
        let request = Request::parse(text.as_bytes()).unwrap();
        let refusal = check_upgrade(&request, &fuzz_config()).unwrap_err();
        prop_assert_eq!(refusal.status, expected, "{:?}: {}", text, refusal.reason);
        checks::check_handshake(text.as_bytes());
    }
}

/// Odd request heads that no other test sends, each with the exact status it
/// gets (notes/hostile-inputs.md lists them with the rest).
#[test]
fn odd_request_heads_get_their_exact_status() {
    let good = head(
        REQUEST_LINE,
        &HEADERS.map(|(n, v)| (n.to_string(), format!(" {v}"))),
    );
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    // Not UTF-8: Latin-1's "é" in the Host value.
    let mut latin1 = good.clone().into_bytes();
    latin1[good.find("example").unwrap() + 6] = 0xE9;
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (good.clone().into_bytes(), 101),
        (latin1, 400),
        // RFC 9112 §5.2: an obsolete line folding.
        (
            good.replace("\r\nUpgrade:", "\r\n continued\r\nUpgrade:")
                .into_bytes(),
            400,
        ),
        (
            good.replace("Upgrade: websocket", "Upgrade websocket")
                .into_bytes(),
            400,
        ),
        (good.replace("HTTP/1.1", "HTTP/2").into_bytes(), 400),
        (good.replace("HTTP/1.1", "HTTP/1.10").into_bytes(), 400),
        (
            good.replace("GET /chat", "GET http://server.example.com/chat")
                .into_bytes(),
            400,
        ),
        (good.replace("GET /chat", "GET  /chat").into_bytes(), 400),
        (
            good.replace("Host: server.example.com", "Host:")
                .into_bytes(),
            400,
        ),
        (
            good.replace("Connection: Upgrade", "Connection: Upgraded")
                .into_bytes(),
            400,
        ),
        (
            good.replace("Upgrade: websocket", "Upgrade: websockets")
                .into_bytes(),
            400,
        ),
        // §4.2.1 item 5: exactly one key, of exactly 16 bytes.
        (
            good.replace(key, &format!("{key}\r\nSec-WebSocket-Key: {key}"))
                .into_bytes(),
            400,
        ),
        (
            good.replace(key, "AAECAwQFBgcICQoLDA0ODxA=").into_bytes(),
            400,
        ), // 17 bytes
        (good.replace(key, "AAECAwQFBgcICQoLDA0O").into_bytes(), 400), // 15 bytes
        (good.replace(key, "").into_bytes(), 400),
        // §4.4: any version other than a single 13.
        (
            good.replace("Version: 13", "Version: 13\r\nSec-WebSocket-Version: 13")
                .into_bytes(),
            426,
        ),
        (
            good.replace("Version: 13", "Version: 13, 8").into_bytes(),
            426,
        ),
        (good.replace("Version: 13", "Version:").into_bytes(), 426),
        // Methods are case-sensitive (RFC 9110 §9.1).
        (good.replace("GET /chat", "get /chat").into_bytes(), 405),
        (good.replace("GET /chat", "HEAD /chat").into_bytes(), 405),
        // §10.2: an opaque origin is not ours.
        (good.replace(ALLOWED_ORIGIN, "null").into_bytes(), 403),
        (
            good.replace(ALLOWED_ORIGIN, "https://app.example.evil")
                .into_bytes(),
            403,
        ),
        (
            good.replace("token=s3cret-tok", "token=s3cret-to")
                .into_bytes(),
            401,
        ),
        (
            good.replace("token=s3cret-tok", "token=s3cret-tok2")
                .into_bytes(),
            401,
        ),
        (good.replace("token=s3cret-tok", "token=").into_bytes(), 401),
        (
            good.replace("token=s3cret-tok", "token=s3cret%2Dtok")
                .into_bytes(),
            101,
        ),
    ];
    for (bytes, expected) in cases {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let got = match Request::parse(&bytes) {
            Err(refusal) => refusal.status,
            Ok(request) => match answer(&request, b"", &fuzz_config(), &Status::default()) {
                Answer::Upgrade(_) => 101,
                Answer::Chat(_) => 200,
                Answer::Respond(response) | Answer::Refuse(response, _) => {
                    std::str::from_utf8(&response[9..12])
                        .unwrap()
                        .parse()
                        .unwrap()
                }
            },
        };
        assert_eq!(got, expected, "{text:?}");
        checks::check_handshake(&bytes);
    }
}

// ---- inputs kept from fuzzing ----

/// The check a fuzz target's inputs go through.
type Check = fn(&[u8]);

/// The fuzz targets, each with its check.
const TARGETS: [(&str, Check); 4] = [
    ("handshake", checks::check_handshake),
    ("decoder", checks::check_decoder),
    ("requests", checks::check_requests),
    ("resp", checks::check_resp),
];

/// Replays every file under `fuzz/<dir>/<target>/` through that target's
/// checks and returns how many inputs each target folder held. A folder that
/// is missing panics, and so does an input that fails its check, named.
fn replay(dir: &str) -> Vec<(&'static str, usize)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(dir);
    let mut counts = Vec::new();
    for (target, check) in TARGETS {
        let folder = root.join(target);
        let entries = std::fs::read_dir(&folder)
            .unwrap_or_else(|e| panic!("fuzz/{dir}/{target}/ cannot be read: {e}"));
        let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for path in &paths {
            let data = std::fs::read(path).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(
                outcome.is_ok(),
                "fuzz input fuzz/{dir}/{target}/{} fails its check again",
                path.file_name().unwrap().to_string_lossy()
            );
        }
        counts.push((target, paths.len()));
    }
    counts
}

/// Every input kept in fuzz/regressions/TARGET/ still passes its target's
/// checks, and each target folder holds at least one, so the replay replays
/// something (fuzz/regressions/README.md says what is kept there).
#[test]
fn every_kept_fuzz_regression_input_still_passes() {
    for (target, count) in replay("regressions") {
        assert!(
            count >= 1,
            "fuzz/regressions/{target}/ is empty: nothing was replayed"
        );
    }
}

/// The hand-made fuzz seeds (fuzz/seeds/TARGET/) pass too, so they stay valid.
#[test]
fn every_fuzz_seed_passes() {
    let counts = replay("seeds");
    let total: usize = counts.iter().map(|(_, count)| count).sum();
    assert!(
        counts.iter().all(|&(_, count)| count >= 1) && total >= 10,
        "the fuzz seeds went missing: {counts:?}"
    );
}
