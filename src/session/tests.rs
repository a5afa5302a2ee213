//! The session driven without a socket: bytes and times in, golden bytes and
//! states out (smoltcp style). Grouped by state, as the RFC is.

use std::time::{Duration, Instant};

use super::*;
use crate::handshake::Endpoint;

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A masked client frame (§5.3).
fn client(fin: bool, opcode: Opcode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&mut out, fin, opcode, payload, Some(KEY));
    out
}

fn config() -> Config {
    Config {
        max_message_bytes: 1000,
        max_buffered_bytes: 100,
        heartbeat: Duration::from_secs(30),
        handshake_timeout: Duration::from_secs(10),
        close_timeout: Duration::from_secs(5),
        ..Config::default()
    }
}

/// A fixed base for every time in these tests; never a clock read.
fn t0() -> Instant {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn at(ms: u64) -> Instant {
    t0() + Duration::from_millis(ms)
}

/// Takes everything the session has to write, as the loop's flush would.
fn written(session: &mut Session, now: Instant) -> Vec<u8> {
    let out = session.output().to_vec();
    session.wrote(out.len(), &config(), now);
    out
}

/// A chat session just upgraded at t0, its `101` already written.
fn open_session() -> Session {
    let mut session = Session::new(2, t0());
    session.upgrade(
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
        Endpoint::Chat,
        t0(),
    );
    written(&mut session, t0());
    session
}

/// Feeds `bytes` and collects every event.
fn feed(session: &mut Session, bytes: &[u8], now: Instant) -> Vec<Event> {
    session.receive(bytes);
    std::iter::from_fn(|| session.next_event(&config(), now)).collect()
}

/// The Close frame a session sends for `code` and `reason`.
fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut out = vec![0x88, (2 + reason.len()) as u8];
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(reason.as_bytes());
    out
}

/// What the session has queued, as text.
fn output_text(session: &Session) -> String {
    String::from_utf8_lossy(session.output()).into_owned()
}

fn request(head: &[u8], body: &[u8]) -> HttpRequest {
    HttpRequest {
        head: head.to_vec(),
        body: body.to_vec(),
    }
}

fn ending(session: &Session) -> (u16, &str, &str) {
    let record = session.ending().expect("an ending was recorded");
    (record.code, record.reason.as_str(), record.cause)
}

// ---- Handshaking (§4.2.1) ----

#[test]
fn a_request_head_arriving_in_pieces_is_handed_over_whole_once_complete() {
    let head = b"GET /chat HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut session = Session::new(2, t0());
    for (i, byte) in head.iter().enumerate() {
        let events = feed(&mut session, &[*byte], t0());
        match i == head.len() - 1 {
            false => assert!(events.is_empty(), "event after {} bytes", i + 1),
            true => assert_eq!(events, [Event::Request(request(head, b""))]),
        }
    }
}

#[test]
fn a_first_frame_in_the_same_read_as_the_head_is_kept_for_after_the_upgrade() {
    let mut bytes = b"GET /chat HTTP/1.1\r\nHost: a\r\n\r\n".to_vec();
    bytes.extend(client(true, Opcode::Text, b"Hello"));
    let mut session = Session::new(2, t0());
    session.receive(&bytes);
    let Some(Event::Request(head)) = session.next_event(&config(), t0()) else {
        panic!("no head");
    };
    assert!(head.head.ends_with(b"\r\n\r\n"));
    session.upgrade(b"101", Endpoint::Chat, t0());
    let Some(Event::Message(message)) = session.next_event(&config(), t0()) else {
        panic!("the frame after the head was lost");
    };
    // §5.7: a single-frame unmasked text message "Hello".
    assert_eq!(message.frame, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
}

#[test]
fn a_head_over_8_kib_is_refused_with_431_and_lingers() {
    let mut session = Session::new(2, t0());
    let events = feed(&mut session, &vec![b'a'; MAX_HEAD_BYTES + 1], t0());
    assert!(events.is_empty());
    assert_eq!(session.state(), ConnState::Lingering);
    assert!(session.output().starts_with(b"HTTP/1.1 431 "));
}

#[test]
fn a_head_not_finished_in_time_gets_408_and_lingers_until_read() {
    let mut session = Session::new(2, t0());
    feed(&mut session, b"GET / HTTP/1.1\r\n", t0());
    assert_eq!(session.poll_at(&config()), Some(at(10_000)));
    session.on_time(&config(), at(9_999));
    assert_eq!(session.state(), ConnState::Handshaking, "fired early");
    session.on_time(&config(), at(10_000));
    assert_eq!(session.state(), ConnState::Lingering);
    let answer = String::from_utf8(written(&mut session, at(10_000))).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{answer}"
    );
    assert!(answer.ends_with("\r\n\r\nrequest head not completed in time\n"));
    // Everything is out: FIN next, then wait for the peer's.
    assert!(session.wants_half_close());
    session.half_closed();
    session.receive_fin(at(10_001));
    assert_eq!(session.state(), ConnState::Closed);
}

#[test]
fn shutdown_during_the_handshake_answers_503_and_lingers() {
    let mut session = Session::new(2, t0());
    session.end(Ending::ShuttingDown, t0());
    assert_eq!(session.state(), ConnState::Lingering);
    assert!(
        session
            .output()
            .starts_with(b"HTTP/1.1 503 Service Unavailable\r\n")
    );
    assert!(session.output().ends_with(b"server shutting down\n"));
}

#[test]
fn a_peer_that_leaves_before_reading_its_answer_is_closed_once_it_is_written() {
    let mut session = Session::new(2, t0());
    session.answer(b"HTTP/1.1 404 Not Found\r\n\r\n", t0());
    session.receive_fin(t0());
    assert_eq!(
        session.state(),
        ConnState::Lingering,
        "answer still unwritten"
    );
    written(&mut session, t0());
    assert_eq!(session.state(), ConnState::Closed);
}

// ---- Open: data and control frames (§5.4, §5.5) ----

#[test]
fn a_ping_is_answered_with_a_pong_carrying_the_same_payload() {
    let mut session = open_session();
    assert!(feed(&mut session, &client(true, Opcode::Ping, b"hi"), t0()).is_empty());
    // §5.5.3: a Pong "MUST have identical Application data".
    assert_eq!(session.output(), [0x8a, 0x02, b'h', b'i']);
}

#[test]
fn an_unsolicited_pong_gets_no_answer() {
    let mut session = open_session();
    assert!(feed(&mut session, &client(true, Opcode::Pong, b"x"), t0()).is_empty());
    assert!(session.output().is_empty());
    assert_eq!(session.state(), ConnState::Open);
}

#[test]
fn fragments_with_a_ping_between_them_give_a_pong_then_one_message() {
    let mut session = open_session();
    let mut bytes = client(false, Opcode::Text, b"Hel");
    bytes.extend(client(true, Opcode::Ping, b""));
    bytes.extend(client(true, Opcode::Continuation, b"lo"));
    let events = feed(&mut session, &bytes, t0());
    assert_eq!(
        session.output(),
        [0x8a, 0x00],
        "the pong, before the message ends"
    );
    assert_eq!(
        events,
        [Event::Message(Message::new(Opcode::Text, b"Hello"))]
    );
}

#[test]
fn a_message_split_across_receives_is_handed_over_once_whole() {
    let mut session = open_session();
    let frame = client(true, Opcode::Binary, &[0xAB; 300]);
    let (first, second) = frame.split_at(100);
    assert!(feed(&mut session, first, t0()).is_empty());
    let events = feed(&mut session, second, t0());
    assert_eq!(
        events,
        [Event::Message(Message::new(Opcode::Binary, &[0xAB; 300]))]
    );
}

// ---- the close handshake (§7) ----

#[test]
fn the_peers_close_is_echoed_then_the_server_half_closes_and_waits_for_fin() {
    let mut session = open_session();
    let events = feed(
        &mut session,
        &client(true, Opcode::Close, &[0x03, 0xe8, b'b', b'y', b'e']),
        t0(),
    );
    assert!(events.is_empty());
    assert_eq!(session.state(), ConnState::Lingering);
    // §5.5.1: echo the code (1000 = 03 e8).
    assert_eq!(written(&mut session, t0()), [0x88, 0x02, 0x03, 0xe8]);
    assert_eq!(ending(&session), (1000, "bye", "closed by peer"));
    assert!(session.wants_half_close());
    session.half_closed();
    assert!(!session.wants_half_close());
    session.receive_fin(t0());
    assert_eq!(session.state(), ConnState::Closed);
}

#[test]
fn an_empty_close_is_answered_with_an_empty_close_and_logged_as_1005() {
    let mut session = open_session();
    feed(&mut session, &client(true, Opcode::Close, b""), t0());
    assert_eq!(written(&mut session, t0()), [0x88, 0x00]);
    assert_eq!(ending(&session).0, 1005);
}

#[test]
fn data_after_the_peers_close_is_ignored() {
    let mut session = open_session();
    let mut bytes = client(true, Opcode::Close, &[0x03, 0xe8]);
    bytes.extend(client(true, Opcode::Text, b"too late"));
    assert!(feed(&mut session, &bytes, t0()).is_empty());
    assert_eq!(session.output(), [0x88, 0x02, 0x03, 0xe8]);
}

#[test]
fn shutdown_sends_1001_and_the_peers_close_completes_the_handshake() {
    let mut session = open_session();
    session.end(Ending::ShuttingDown, t0());
    assert_eq!(session.state(), ConnState::Closing);
    assert_eq!(
        written(&mut session, t0()),
        close_frame(1001, "server shutting down")
    );
    // §7.1.2: data may still arrive before the peer's Close; it is dropped.
    let mut bytes = client(true, Opcode::Text, b"in flight");
    bytes.extend(client(true, Opcode::Close, &[0x03, 0xe9]));
    assert!(feed(&mut session, &bytes, at(1)).is_empty());
    assert_eq!(session.state(), ConnState::Closed);
    assert!(session.output().is_empty(), "no second Close");
    assert_eq!(
        ending(&session),
        (1001, "server shutting down", "closed by server")
    );
}

#[test]
fn a_close_that_is_never_answered_ends_at_the_close_timeout() {
    let mut session = open_session();
    session.end(Ending::ShuttingDown, at(1000));
    assert_eq!(session.poll_at(&config()), Some(at(6000)));
    session.on_time(&config(), at(6000));
    assert_eq!(session.state(), ConnState::Closed);
    assert_eq!(session.poll_at(&config()), None);
}

#[test]
fn a_fin_without_a_close_frame_is_1006() {
    let mut session = open_session();
    session.receive_fin(t0());
    assert_eq!(session.state(), ConnState::Closed);
    assert_eq!(ending(&session), (1006, "", "connection lost"));
}

// ---- failing the connection (§7.1.7): every close code we send ----

/// Feeds one bad input to an open session; returns the Close it sent and its state.
fn fail_with(bytes: &[u8]) -> (Vec<u8>, ConnState) {
    let mut session = open_session();
    assert!(feed(&mut session, bytes, t0()).is_empty());
    (written(&mut session, t0()), session.state())
}

#[test]
fn each_broken_rule_sends_its_close_code_and_lingers() {
    let unmasked = {
        let mut frame = Vec::new();
        encode_frame(&mut frame, true, Opcode::Text, b"x", None);
        frame
    };
    let mut reserved_bits = client(true, Opcode::Text, b"x");
    reserved_bits[0] |= 0x40;
    let mut reserved_opcode = client(true, Opcode::Text, b"x");
    reserved_opcode[0] = 0x83;
    let bad_close_code = client(true, Opcode::Close, &[0x03, 0xed]);
    let cases: [(&str, Vec<u8>, u16, &str); 10] = [
        ("unmasked", unmasked, 1002, "client frame not masked"),
        ("rsv", reserved_bits, 1002, "reserved bits set"),
        ("opcode", reserved_opcode, 1002, "reserved opcode 0x3"),
        (
            "long ping",
            client(true, Opcode::Ping, &[0; 126]),
            1002,
            "control frame over 125 bytes",
        ),
        (
            "fragmented ping",
            client(false, Opcode::Ping, b""),
            1002,
            "fragmented control frame",
        ),
        (
            "continuation",
            client(true, Opcode::Continuation, b"x"),
            1002,
            "continuation without a message",
        ),
        (
            "close code",
            bad_close_code,
            1002,
            "invalid close code 1005",
        ),
        (
            "utf-8",
            client(true, Opcode::Text, &[0xff]),
            1007,
            "invalid UTF-8 in text message",
        ),
        (
            "close reason",
            client(true, Opcode::Close, &[0x03, 0xe8, 0xff]),
            1007,
            "close reason is not UTF-8",
        ),
        (
            "too big",
            client(true, Opcode::Binary, &[0; 1001]),
            1009,
            "message too big",
        ),
    ];
    for (name, bytes, code, reason) in cases {
        let (sent, state) = fail_with(&bytes);
        assert_eq!(sent, close_frame(code, reason), "{name}");
        assert_eq!(state, ConnState::Lingering, "{name}");
    }
}

#[test]
fn a_message_too_big_fails_from_its_header_before_the_payload_arrives() {
    let header = &client(true, Opcode::Binary, &[0; 1001])[..8];
    let (sent, _) = fail_with(header);
    assert_eq!(sent, close_frame(1009, "message too big"));
}

#[test]
fn a_protocol_error_after_our_close_just_ends_the_connection() {
    let mut session = open_session();
    session.end(Ending::ShuttingDown, t0());
    written(&mut session, t0());
    feed(&mut session, &client(true, Opcode::Text, &[0xff]), t0());
    assert_eq!(session.state(), ConnState::Closed);
    assert!(session.output().is_empty());
}

// ---- output and its limit ----

/// A 62-byte server frame.
fn sixty() -> Vec<u8> {
    [0x81, 60].into_iter().chain([b'x'; 60]).collect()
}

#[test]
fn output_over_the_limit_holds_input_and_clears_once_written() {
    let mut session = open_session();
    session.queue_data(&sixty(), &config(), t0());
    assert!(!session.output_full(&config()));
    session.queue_data(&sixty(), &config(), t0());
    assert!(session.output_full(&config()), "124 bytes, over 100");
    assert_eq!(session.poll_at(&config()), Some(t0() + config().stall));
    session.wrote(62, &config(), at(10));
    assert!(!session.output_full(&config()));
    assert_eq!(
        session.poll_at(&config()),
        Some(at(30_000)),
        "back to the heartbeat"
    );
}

#[test]
fn output_stuck_over_the_limit_for_the_stall_time_is_a_slow_consumer_with_1008() {
    let mut session = open_session();
    for _ in 0..3 {
        session.queue_data(&sixty(), &config(), t0());
    }
    session.on_time(&config(), t0() + config().stall - Duration::from_millis(1));
    assert_eq!(session.state(), ConnState::Open);
    session.on_time(&config(), t0() + config().stall);
    assert_eq!(session.state(), ConnState::Closed);
    assert_eq!(
        ending(&session),
        (1008, "slow consumer", "dropped by server")
    );
    // What it did not read is gone; a Close 1008 is left for one try.
    assert_eq!(session.output(), close_frame(1008, "slow consumer"));
}

#[test]
fn a_slow_consumer_cut_mid_write_gets_no_close_frame() {
    let mut session = open_session();
    session.queue_data(&sixty(), &config(), t0());
    session.wrote(10, &config(), t0());
    session.end(Ending::SlowConsumer, t0());
    assert!(
        session.output().is_empty(),
        "a Close here would land inside a frame"
    );
}

// ---- the heartbeat (§5.5.2) ----

#[test]
fn a_ping_goes_out_each_interval_and_a_silent_peer_is_reaped_one_interval_later() {
    let mut session = open_session();
    assert_eq!(session.poll_at(&config()), Some(at(30_000)));
    session.on_time(&config(), at(30_000));
    assert_eq!(written(&mut session, at(30_000)), [0x89, 0x00]);
    assert_eq!(session.poll_at(&config()), Some(at(60_000)));
    session.on_time(&config(), at(60_000));
    assert_eq!(session.state(), ConnState::Closed);
    assert_eq!(ending(&session), (1006, "no pong", "reaped by heartbeat"));
}

#[test]
fn a_pong_keeps_the_peer_alive() {
    let mut session = open_session();
    for interval in 1..=5 {
        let now = at(30_000 * interval);
        session.on_time(&config(), now);
        assert_eq!(written(&mut session, now), [0x89, 0x00]);
        feed(&mut session, &client(true, Opcode::Pong, b""), now);
    }
    assert_eq!(session.state(), ConnState::Open);
}

#[test]
fn any_byte_shows_the_peer_is_alive_even_inside_an_unfinished_frame() {
    let mut session = open_session();
    session.on_time(&config(), at(30_000));
    written(&mut session, at(30_000));
    // Half of a large frame: no frame is complete, but the peer is sending.
    let frame = client(true, Opcode::Binary, &[0; 500]);
    assert!(feed(&mut session, &frame[..200], at(40_000)).is_empty());
    session.on_time(&config(), at(60_000));
    assert_eq!(session.state(), ConnState::Open);
}

#[test]
fn a_peer_whose_input_is_held_is_not_reaped_for_silence() {
    let mut session = open_session();
    session.hold_input(true);
    session.on_time(&config(), at(30_000));
    written(&mut session, at(30_000));
    session.on_time(&config(), at(60_000));
    assert_eq!(session.state(), ConnState::Open, "we were not listening");
    session.hold_input(false);
    written(&mut session, at(60_000));
    session.on_time(&config(), at(90_000));
    assert_eq!(session.state(), ConnState::Closed);
}

#[test]
fn a_message_not_finished_within_the_timeout_fails_with_1008() {
    let config = Config {
        message_timeout: Duration::from_secs(50),
        ..config()
    };
    let mut session = open_session();
    session.receive(&client(false, Opcode::Text, b"never "));
    assert_eq!(session.next_event(&config, at(1_000)), None);
    assert!(session.mid_message());
    // Empty continuations keep coming: frames, but the message never ends.
    for ms in [20_000, 40_000] {
        session.receive(&client(false, Opcode::Continuation, b""));
        assert_eq!(session.next_event(&config, at(ms)), None);
    }
    assert_eq!(
        session.poll_at(&config),
        Some(at(30_000)),
        "the heartbeat first"
    );
    session.on_time(&config, at(30_000));
    written(&mut session, at(30_000));
    assert_eq!(
        session.poll_at(&config),
        Some(at(51_000)),
        "then the message's limit"
    );
    session.on_time(&config, at(51_000));
    assert_eq!(session.state(), ConnState::Lingering);
    assert_eq!(
        written(&mut session, at(51_000)),
        close_frame(1008, "message not finished in time")
    );
}

#[test]
fn a_stream_of_messages_cut_mid_frame_never_times_out() {
    let config = Config {
        message_timeout: Duration::from_secs(50),
        heartbeat: Duration::from_secs(3600),
        ..config()
    };
    let mut session = open_session();
    let stream: Vec<u8> = (0..200)
        .flat_map(|_| client(true, Opcode::Binary, &[7; 100]))
        .collect();
    // Every read ends inside a frame, one a second for 150 seconds.
    for (second, piece) in stream.chunks(150).enumerate() {
        let now = at(1000 * second as u64);
        session.receive(piece);
        while session.next_event(&config, now).is_some() {}
        session.on_time(&config, now);
        assert_eq!(session.state(), ConnState::Open, "at {second} s");
    }
}

#[test]
fn a_finished_message_clears_its_deadline() {
    let mut session = open_session();
    let frame = client(true, Opcode::Text, b"in two reads");
    assert!(feed(&mut session, &frame[..5], at(10)).is_empty());
    assert!(session.mid_message());
    assert_eq!(feed(&mut session, &frame[5..], at(20)).len(), 1);
    assert!(!session.mid_message());
    assert_eq!(session.unfinished_bytes(), 0, "nothing held once decoded");
}

// ---- the one way to end ----

#[test]
fn the_first_ending_is_the_one_recorded() {
    let mut session = open_session();
    feed(
        &mut session,
        &client(true, Opcode::Close, &[0x0f, 0xa0]),
        t0(),
    );
    session.end(Ending::ShuttingDown, t0());
    session.end(Ending::ConnectionLost, t0());
    assert_eq!(ending(&session), (4000, "", "closed by peer"));
    assert_eq!(session.state(), ConnState::Closed);
}

// ---- HTTP/1.1: bodies, keep-alive, pipelining (RFC 9112) ----

const POST: &[u8] = b"POST /send HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n";

#[test]
fn a_body_arriving_byte_by_byte_is_handed_over_with_its_head_once_complete() {
    let mut session = Session::new(2, t0());
    let mut bytes = POST.to_vec();
    bytes.extend(b"hello");
    for (i, byte) in bytes.iter().enumerate() {
        let events = feed(&mut session, &[*byte], t0());
        match i == bytes.len() - 1 {
            false => assert!(events.is_empty(), "event after {} bytes", i + 1),
            true => assert_eq!(events, [Event::Request(request(POST, b"hello"))]),
        }
        let reading_body = i >= POST.len() - 1 && i < bytes.len() - 1;
        assert_eq!(
            session.state() == ConnState::ReadingBody,
            reading_body,
            "{i}"
        );
    }
}

#[test]
fn a_body_over_the_message_limit_is_refused_before_it_is_read() {
    let mut session = Session::new(2, t0());
    let head = b"POST /send HTTP/1.1\r\nHost: a\r\nContent-Length: 1048577\r\n\r\n";
    assert!(feed(&mut session, head, t0()).is_empty());
    assert_eq!(session.state(), ConnState::Lingering);
    assert!(output_text(&session).starts_with("HTTP/1.1 413 Content Too Large"));
    let chunked = b"POST /send HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut session = Session::new(2, t0());
    feed(&mut session, chunked, t0());
    assert!(output_text(&session).starts_with("HTTP/1.1 411 Length Required"));
}

#[test]
fn pipelined_requests_are_answered_in_order_on_a_kept_alive_connection() {
    let mut session = Session::new(2, t0());
    let get = b"GET /status HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut bytes = get.to_vec();
    bytes.extend(POST);
    bytes.extend(b"hello");
    session.receive(&bytes);
    let first = session.next_event(&config(), t0());
    assert_eq!(first, Some(Event::Request(request(get, b""))));
    session.respond(b"first", t0());
    assert_eq!(session.state(), ConnState::Handshaking);
    let second = session.next_event(&config(), t0());
    assert_eq!(second, Some(Event::Request(request(POST, b"hello"))));
    session.respond(b"second", t0());
    assert_eq!(output_text(&session), "firstsecond");
    assert_eq!(session.next_event(&config(), t0()), None);
}

#[test]
fn connection_close_ends_the_connection_after_the_answer() {
    let mut session = Session::new(2, t0());
    session.receive(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    assert!(matches!(
        session.next_event(&config(), t0()),
        Some(Event::Request(_))
    ));
    session.respond(b"page", t0());
    assert_eq!(session.state(), ConnState::Lingering);
    assert_eq!(session.next_event(&config(), t0()), None);
}

#[test]
fn an_idle_kept_alive_connection_is_closed_without_a_408() {
    let mut session = Session::new(2, t0());
    session.receive(b"GET / HTTP/1.1\r\n\r\n");
    session.next_event(&config(), t0());
    session.respond(b"page", at(5_000));
    let written = session.output().len();
    session.wrote(written, &config(), at(5_000));
    // The idle time counts from the answer: 10 s after it, not after accept.
    session.on_time(&config(), at(14_000));
    assert_eq!(session.state(), ConnState::Handshaking);
    session.on_time(&config(), at(15_000));
    assert_eq!(session.state(), ConnState::Lingering);
    assert!(
        session.output().is_empty(),
        "RFC 9112 §9.5: no answer to no request"
    );
}

#[test]
fn a_body_that_does_not_arrive_in_time_gets_408() {
    let mut session = Session::new(2, t0());
    feed(&mut session, POST, at(1_000));
    feed(&mut session, b"he", at(2_000));
    session.on_time(&config(), at(11_000));
    assert_eq!(session.state(), ConnState::Lingering);
    assert!(output_text(&session).starts_with("HTTP/1.1 408"));
    assert!(output_text(&session).ends_with("request body not completed in time\n"));
}

#[test]
fn a_fin_after_pipelined_requests_still_lets_their_answers_out() {
    let mut session = Session::new(2, t0());
    session.receive(b"GET / HTTP/1.1\r\n\r\n");
    session.next_event(&config(), t0());
    session.respond(b"page", t0());
    session.receive_fin(t0());
    assert_eq!(session.state(), ConnState::Lingering);
    assert_eq!(output_text(&session), "page");
}

// ---- Server-Sent Events and long polls ----

#[test]
fn an_event_stream_sends_a_comment_each_interval_and_is_reaped_if_it_stays_unread() {
    let mut session = Session::new(2, t0());
    session.receive(b"GET /events HTTP/1.1\r\n\r\n");
    session.next_event(&config(), t0());
    session.stream(b"head", t0());
    let written = session.output().len();
    session.wrote(written, &config(), t0());
    session.receive(b"ignored");
    assert_eq!(session.next_event(&config(), t0()), None);
    session.on_time(&config(), at(30_000));
    assert_eq!(session.output(), crate::sse::KEEP_ALIVE);
    assert_eq!(session.state(), ConnState::Streaming);
    // Not one byte of it was written in the next interval.
    session.on_time(&config(), at(60_000));
    assert_eq!(session.state(), ConnState::Closed);
    assert_eq!(ending(&session).2, "reaped by heartbeat");
}

#[test]
fn a_held_poll_expires_after_the_poll_timeout_and_caps_what_waits_behind_it() {
    let mut session = Session::new(2, t0());
    session.receive(b"GET /poll?since=3 HTTP/1.1\r\n\r\n");
    session.next_event(&config(), t0());
    session.hold_request(t0());
    assert!(!session.hold_expired(&config(), at(24_000)));
    assert!(session.hold_expired(&config(), at(25_000)));
    assert!(session.wants_input());
    assert_eq!(session.read_room(), super::MAX_HEAD_BYTES);
    session.receive(&vec![b'x'; super::MAX_HEAD_BYTES]);
    assert!(
        !session.wants_input(),
        "a whole head's worth waits: stop reading"
    );
    assert_eq!(session.read_room(), 0);
    // Bounded here, so not a share of the budget every client shares.
    assert_eq!(session.unfinished_bytes(), 0);
    session.respond(b"batch", at(25_000));
    assert_eq!(session.state(), ConnState::Handshaking);
}

#[test]
fn a_client_that_expects_100_continue_is_told_to_go_on_before_its_body() {
    let mut session = Session::new(2, t0());
    let head =
        b"POST /send HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
    assert!(feed(&mut session, head, t0()).is_empty());
    assert_eq!(output_text(&session), "HTTP/1.1 100 Continue\r\n\r\n");
    let events = feed(&mut session, b"hello", t0());
    assert_eq!(events, [Event::Request(request(head, b"hello"))]);
    // A body that came with the head was not waited for: no 100.
    let mut session = Session::new(2, t0());
    let mut bytes = head.to_vec();
    bytes.extend(b"hello");
    assert_eq!(feed(&mut session, &bytes, t0()).len(), 1);
    assert!(session.output().is_empty());
}
