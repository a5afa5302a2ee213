//! The backend's protocol without sockets: greetings, the outbox sent again
//! after a failure, own entries matched to their senders.

use super::*;

fn backend() -> (Backend, Instant) {
    let now = Instant::now();
    (Backend::new("p1".into(), 100, now), now)
}

/// Feeds `bytes` to a link and acts on every whole reply.
fn answer(b: &mut Backend, role: Role, bytes: &[u8]) -> Result<Vec<BackendEvent>, String> {
    b.link(role).read_buf.extend_from_slice(bytes);
    let mut events = Vec::new();
    while let Some((expect, reply)) = b.link(role).next_reply(&Limits::default())? {
        events.extend(b.on_reply(role, expect, reply)?);
    }
    Ok(events)
}

fn entry_bytes(id: u64, process: &str, seq: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let (id, seq) = (format!("0-{id}"), seq.to_string());
    let fields: [&[u8]; 8] = [
        b"p",
        process.as_bytes(),
        b"q",
        seq.as_bytes(),
        b"n",
        b"ann",
        b"f",
        b"\x81\x00",
    ];
    crate::resp::encode_command(&mut out, &fields);
    let fields = out;
    let mut bytes = format!("*2\r\n${}\r\n{id}\r\n", id.len()).into_bytes();
    bytes.extend_from_slice(&fields);
    bytes
}

/// Greets the commands connection: OK, the SHA1, the hello's [epoch, counter].
fn greet_commands(b: &mut Backend) -> Vec<BackendEvent> {
    b.commands.connecting(Instant::now());
    b.greet(Role::Commands, 0, "offered", 0);
    answer(
        b,
        Role::Commands,
        b"+OK\r\n$3\r\nsha\r\n*2\r\n$4\r\nroom\r\n:40\r\n",
    )
    .unwrap()
}

#[test]
fn the_commands_greeting_selects_loads_and_says_hello_then_is_ready() {
    let (mut b, _) = backend();
    assert!(!b.accepts());
    b.commands.connecting(Instant::now());
    b.greet(Role::Commands, 3, "offered", 0);
    let sent = String::from_utf8_lossy(&b.commands.write_buf).into_owned();
    assert!(
        sent.starts_with("*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n*3\r\n$6\r\nSCRIPT\r\n"),
        "{sent}"
    );
    assert!(sent.contains("$4\r\nEVAL\r\n") && sent.ends_with("$7\r\noffered\r\n$1\r\n0\r\n"));
    let events = answer(
        &mut b,
        Role::Commands,
        b"+OK\r\n$3\r\nsha\r\n*2\r\n$4\r\nroom\r\n:40\r\n",
    );
    let greeted = BackendEvent::Greeted {
        epoch: "room".into(),
        counter: 40,
    };
    assert_eq!(events, Ok(vec![greeted]));
    assert!(b.accepts());
    assert_eq!(b.epoch.as_deref(), Some("room"));
}

#[test]
fn messages_wait_in_the_outbox_while_redis_is_down_and_go_once_it_is_up() {
    let (mut b, _) = backend();
    b.submit(5, "ann".into(), b"\x01a".to_vec());
    assert!(b.commands.write_buf.is_empty());
    greet_commands(&mut b);
    let sent = String::from_utf8_lossy(&b.commands.write_buf).into_owned();
    assert!(sent.ends_with("$3\r\nsha\r\n$1\r\n3\r\n$20\r\nmiochat:room:counter\r\n$19\r\nmiochat:room:stream\r\n$20\r\nmiochat:room:seen:p1\r\n$2\r\np1\r\n$1\r\n1\r\n$3\r\n100\r\n$3\r\nann\r\n$2\r\n\x01a\r\n$5\r\n86400\r\n"), "{sent}");
}

/// The reply to an append was lost with the connection: the same sequence
/// number goes again on the next one (the script then answers 0).
#[test]
fn a_failure_sends_the_unechoed_outbox_again_with_the_same_sequence_numbers() {
    let (mut b, now) = backend();
    greet_commands(&mut b);
    b.submit(5, "ann".into(), b"x".to_vec());
    b.submit(6, "bob".into(), b"y".to_vec());
    let first = b.commands.write_buf.split_off(0);
    let (wait, _) = b.failed(Role::Commands, now);
    assert_eq!(wait, link::MIN_BACKOFF);
    assert!(!b.accepts());
    greet_commands(&mut b);
    let again = b.commands.write_buf.split_off(0);
    let appends = |bytes: &[u8]| String::from_utf8_lossy(bytes).matches("EVALSHA").count();
    assert_eq!((appends(&first), appends(&again)), (2, 2));
    assert!(String::from_utf8_lossy(&again).contains("$2\r\np1\r\n$1\r\n1\r\n"));
    assert!(String::from_utf8_lossy(&again).contains("$2\r\np1\r\n$1\r\n2\r\n"));
    assert_eq!(answer(&mut b, Role::Commands, b":0\r\n:41\r\n"), Ok(vec![]));
}

#[test]
fn own_entries_come_back_with_their_senders_token_and_leave_the_outbox() {
    let (mut b, _) = backend();
    greet_commands(&mut b);
    b.submit(5, "ann".into(), b"x".to_vec());
    b.submit(6, "ann".into(), b"y".to_vec());
    b.stream.connecting(Instant::now());
    b.greet(Role::Stream, 0, "", 0);
    answer(&mut b, Role::Stream, b"+OK\r\n").unwrap();
    assert!(b.read_after(40));
    assert!(!b.read_after(40), "one XREAD at a time");
    let mut reply = b"*1\r\n*2\r\n$19\r\nmiochat:room:stream\r\n*3\r\n".to_vec();
    reply.extend(entry_bytes(41, "p1", 1));
    reply.extend(entry_bytes(42, "p2", 1));
    reply.extend(entry_bytes(43, "p1", 2));
    let events = answer(&mut b, Role::Stream, &reply).unwrap();
    let [BackendEvent::Entries(entries)] = &events[..] else {
        panic!("{events:?}")
    };
    let got: Vec<_> = entries.iter().map(|(e, token)| (e.id, *token)).collect();
    assert_eq!(got, [(41, Some(5)), (42, None), (43, Some(6))]);
    assert!(b.outbox.is_empty() && b.outbox_bytes == 0 && b.sent == 0);
}

#[test]
fn an_error_where_none_may_be_ends_the_connection_with_a_reason() {
    let (mut b, _) = backend();
    greet_commands(&mut b);
    b.submit(5, "ann".into(), b"x".to_vec());
    let error = answer(&mut b, Role::Commands, b"-NOSCRIPT No matching script.\r\n").unwrap_err();
    assert!(error.contains("NOSCRIPT"), "{error}");
    let error = answer(&mut b, Role::Commands, b"+OK\r\n").unwrap_err();
    assert!(error.contains("nothing was sent"), "{error}");
}

#[test]
fn a_range_answer_goes_to_its_client_and_a_lost_one_is_reported() {
    let (mut b, now) = backend();
    greet_commands(&mut b);
    assert!(b.request_range(9, 3, 5));
    assert!(b.request_range(10, 3, 5));
    let mut reply = b"*1\r\n".to_vec();
    reply.extend(entry_bytes(3, "p2", 1));
    let events = answer(&mut b, Role::Commands, &reply).unwrap();
    let [
        BackendEvent::Range {
            token: 9,
            entries: Ok(entries),
        },
    ] = &events[..]
    else {
        panic!("{events:?}")
    };
    assert_eq!(entries[0].id, 3);
    assert_eq!(b.failed(Role::Commands, now).1, [10]);
}
