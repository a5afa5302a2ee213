//! Chat and echo with an independent client library (tungstenite), so the
//! server is not only checked by codecs written alongside it.

mod common;

use std::net::TcpStream;
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
