//! Chat and echo with an independent client library (tungstenite), so the
//! server is not only checked by codecs written alongside it.

mod common;

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use common::*;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

type Client = WebSocket<TcpStream>;

fn connect(server: &ServerProcess, path: &str) -> Client {
    let stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let url = format!("ws://{}{path}", server.addr);
    let (socket, response) = tungstenite::client(url, stream).expect("upgrade");
    assert_eq!(response.status(), 101);
    socket
}

fn join_chat(server: &ServerProcess) -> Client {
    let mut client = connect(server, "/chat");
    let welcome = client.read().unwrap();
    assert_eq!(
        welcome,
        Message::text(r#"{"type":"welcome","message":"connected to chat"}"#)
    );
    client
}

/// Reads until a data message (tungstenite answers pings by itself).
fn next_message(client: &mut Client) -> Message {
    loop {
        match client.read().expect("read") {
            message @ (Message::Text(_) | Message::Binary(_)) => return message,
            _ => continue,
        }
    }
}

/// Asserts that nothing arrives within a short while (used only to check "never").
fn assert_silent(client: &mut Client) {
    client
        .get_mut()
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    match client.read() {
        Err(tungstenite::Error::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => panic!("expected silence, got {other:?}"),
    }
    client.get_mut().set_read_timeout(Some(DEADLINE)).unwrap();
}

#[test]
fn a_message_reaches_the_other_client_and_never_its_sender() {
    let server = ServerProcess::start(&[]);
    let mut a = join_chat(&server);
    let mut b = join_chat(&server);
    a.send(Message::text("hello from a")).unwrap();
    assert_eq!(next_message(&mut b), Message::text("hello from a"));
    b.send(Message::binary(vec![0, 1, 2, 255])).unwrap();
    assert_eq!(next_message(&mut a), Message::binary(vec![0, 1, 2, 255]));
    assert_silent(&mut a);
    assert_silent(&mut b);
}

#[test]
fn status_counts_open_connections() {
    let server = ServerProcess::start(&[]);
    server.wait_for_status(0);
    let mut a = join_chat(&server);
    let _b = join_chat(&server);
    server.wait_for_status(2);
    a.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .unwrap();
    // The close handshake completes when the server echoes our Close; a
    // read timeout or a reset is not that.
    loop {
        match a.read() {
            Ok(_) => continue,
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("the close was not answered: {e}"),
        }
    }
    server.wait_for_status(1);
    server.wait_for_log("closed by peer, code 1000 \"bye\"; 1 open");
}

#[test]
fn echo_returns_text_as_text_and_binary_as_binary() {
    let server = ServerProcess::start(&[]);
    let mut client = connect(&server, "/echo");
    client.send(Message::text("echo me ✓")).unwrap();
    assert_eq!(next_message(&mut client), Message::text("echo me ✓"));
    client.send(Message::binary(vec![9; 70_000])).unwrap();
    assert_eq!(next_message(&mut client), Message::binary(vec![9; 70_000]));
}

#[test]
fn a_graceful_close_from_the_library_is_answered() {
    let server = ServerProcess::start(&[]);
    let mut client = connect(&server, "/echo");
    client.close(None).unwrap();
    loop {
        match client.read() {
            Ok(_) => continue,
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("unclean close: {e}"),
        }
    }
}

/// 200 clients, 5 of them sending 100 messages each: every other client gets
/// every message, each sender's messages in order, nothing twice, nothing echoed.
#[test]
fn two_hundred_clients_receive_every_message_in_order() {
    const CLIENTS: usize = 200;
    const SENDERS: usize = 5;
    const MESSAGES: usize = 100;
    let server = ServerProcess::start(&[]);
    let mut clients: Vec<Client> = (0..CLIENTS).map(|_| join_chat(&server)).collect();
    server.wait_for_status(CLIENTS as u64);
    for round in 0..MESSAGES {
        for (sender, client) in clients.iter_mut().enumerate().take(SENDERS) {
            client
                .send(Message::text(format!("{sender}:{round}")))
                .unwrap();
        }
    }
    for (index, client) in clients.iter_mut().enumerate() {
        let expected_senders = (0..SENDERS).filter(|&s| s != index).count();
        let mut next_round = [0; SENDERS];
        for _ in 0..expected_senders * MESSAGES {
            let text = match next_message(client) {
                Message::Text(text) => text.to_string(),
                other => panic!("unexpected {other:?}"),
            };
            let (sender, round) = text.split_once(':').unwrap();
            let (sender, round): (usize, usize) = (sender.parse().unwrap(), round.parse().unwrap());
            assert_ne!(sender, index, "client {index} got its own message back");
            assert_eq!(
                round, next_round[sender],
                "client {index}: sender {sender} out of order"
            );
            next_round[sender] += 1;
        }
        assert!(
            next_round
                .iter()
                .enumerate()
                .all(|(s, &n)| n == if s == index { 0 } else { MESSAGES })
        );
    }
}

// ---- who gets a broadcast (`Server::broadcast_from`) ----
//
// A witness is a second chat client: once it has a message, the server has
// broadcast it and flushed it, in the same pass as any other recipient.

/// Two chat clients on raw sockets: one to speak, one to witness.
fn speaker_and_witness(server: &ServerProcess) -> (RawClient, RawClient) {
    let mut speaker = RawClient::connect(server.addr, "/chat");
    let mut witness = RawClient::connect(server.addr, "/chat");
    speaker.skip_welcome();
    witness.skip_welcome();
    (speaker, witness)
}

fn say(speaker: &mut RawClient, witness: &mut RawClient, text: &str) {
    speaker.send_text(text);
    assert_eq!(witness.read_text(), text);
}

/// A connection that has sent half a request head is not a chat client yet:
/// its first bytes must be the 101, its first message the welcome, and the
/// message broadcast before its upgrade must never reach it. (Both the
/// `Open` and the `Chat` conditions exclude it: only deleting both fails this.)
#[test]
fn a_connection_still_handshaking_gets_no_broadcast() {
    let server = ServerProcess::start(&[]);
    let (mut speaker, mut witness) = speaker_and_witness(&server);
    let mut halfway = TcpStream::connect(server.addr).unwrap();
    let request = upgrade_request("/chat");
    let (first, rest) = request.split_at(request.len() / 2);
    halfway.write_all(first.as_bytes()).unwrap();
    server.wait_for_log(&format!("accepted {}", halfway.local_addr().unwrap()));
    say(&mut speaker, &mut witness, "before your upgrade");
    halfway.write_all(rest.as_bytes()).unwrap();
    let mut newcomer = RawClient::expect_upgrade(halfway);
    newcomer.skip_welcome();
    say(&mut speaker, &mut witness, "after your upgrade");
    assert_eq!(newcomer.read_text(), "after your upgrade");
}

/// An `/echo` client is open but not in the chat: its next message is its own echo.
#[test]
fn an_echo_client_gets_no_chat_broadcast() {
    let server = ServerProcess::start(&[]);
    let (mut speaker, mut witness) = speaker_and_witness(&server);
    let mut echo = RawClient::connect(server.addr, "/echo");
    say(&mut speaker, &mut witness, "for the chat only");
    echo.send_text("my own words");
    assert_eq!(echo.read_text(), "my own words");
}

/// A chat client that has sent its Close is no longer `Open`: nothing may
/// follow the Close the server echoes to it.
///
/// The server would skip it anyway once its side is shut down, so the
/// closer first stops reading while 10 MiB is broadcast: the kernel holds at
/// most a few MiB for it (`tcp_wmem` tops out at 4 MiB, and its receive
/// window does not grow while it does not read), so its output backs up,
/// the echoed Close waits in the server's write buffer, and a broadcast
/// that ignored the state would be queued right behind it.
#[test]
fn a_client_that_has_sent_its_close_gets_no_broadcast() {
    const BACKLOG: u32 = 160; // × 64 KiB = 10 MiB
    let server = ServerProcess::start(&[
        "--max-buffered-bytes",
        "67108864",
        "--close-timeout-ms",
        "60000",
    ]);
    let (mut speaker, mut witness) = speaker_and_witness(&server);
    let mut closer = RawClient::connect(server.addr, "/chat");
    closer.skip_welcome();
    let closer_peer = closer.stream.local_addr().unwrap();
    for seq in 0..BACKLOG {
        let mut payload = vec![0u8; 64 * 1024];
        payload[..4].copy_from_slice(&seq.to_be_bytes());
        speaker.send(&client_frame(true, BINARY, &payload));
        assert_eq!(witness.read_message().payload, payload);
    }
    closer.send(&client_frame(true, CLOSE, &1000u16.to_be_bytes()));
    let closer_token = server.token_of(closer_peer);
    server.wait_for_log(&format!("{closer_token}: Open => Lingering"));
    say(&mut speaker, &mut witness, "after your close");
    // §5.5.1: the Close goes out "as soon as practical": after the frame being
    // written, before the rest of the backlog. What came before it is a
    // prefix of the backlog, in order; the message after the close never comes.
    let mut seq = 0u32;
    let close = loop {
        let frame = closer.read_frame().expect("no Close after the backlog");
        if frame.opcode == CLOSE {
            break frame;
        }
        assert_eq!(
            frame.payload[..4],
            seq.to_be_bytes(),
            "backlog out of order"
        );
        seq += 1;
    };
    assert!(seq <= BACKLOG);
    assert_eq!(close.close_code(), Some(1000), "{close:?}");
    if let Some(after) = closer.read_frame() {
        panic!(
            "got {:?} after the Close: {:?}",
            after.opcode,
            String::from_utf8_lossy(&after.payload)
        );
    }
}

/// A message written just before the sender's FIN is delivered. The server
/// is frozen while both are sent, so it finds them in one read: the message,
/// then the end of the stream.
#[test]
fn a_message_sent_just_before_the_senders_fin_is_still_delivered() {
    let server = ServerProcess::start(&[]);
    let (mut leaver, mut witness) = speaker_and_witness(&server);
    let leaver_peer = leaver.stream.local_addr().unwrap();
    server.signal("STOP");
    leaver.send_text("last words");
    leaver.stream.shutdown(Shutdown::Write).unwrap();
    server.signal("CONT");
    assert_eq!(witness.read_text(), "last words");
    leaver.expect_eof();
    server.wait_for_left(leaver_peer, "Chat", "connection lost", 1006, "");
}
