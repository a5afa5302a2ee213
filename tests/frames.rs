//! Frames over raw bytes (RFC 6455 §5, §7): every rule in the checklist gets
//! the close code it deserves, and the server keeps serving everyone else.

mod common;

use common::*;

/// Connects to `/echo` (no welcome), sends `bytes`, expects Close `code` and the end of the stream.
fn expect_close_after(bytes: &[u8], code: u16) {
    let server = ServerProcess::start(&["--max-message-bytes", "1000"]);
    let mut client = RawClient::connect(server.addr, "/echo");
    client.send(bytes);
    client.expect_close(code);
    // Our FIN ends the server's lingering close; the disconnect is then logged.
    drop(client);
    server.wait_for_log(&format!("code {code}"));
    // The server is unharmed.
    let mut other = RawClient::connect(server.addr, "/echo");
    other.send_text("fine");
    assert_eq!(other.read_text(), "fine");
}

#[test]
fn an_unmasked_frame_gets_1002() {
    expect_close_after(&[0x81, 0x02, b'h', b'i'], 1002);
}

#[test]
fn a_reserved_opcode_gets_1002() {
    for opcode in [0x3, 0x7, 0xB, 0xF] {
        expect_close_after(&client_frame(true, opcode, b"x"), 1002);
    }
}

#[test]
fn reserved_bits_get_1002() {
    let mut frame = client_frame(true, TEXT, b"x");
    frame[0] |= 0x40; // RSV1 without a negotiated extension
    expect_close_after(&frame, 1002);
}

#[test]
fn invalid_utf8_gets_1007() {
    expect_close_after(&client_frame(true, TEXT, &[b'o', b'k', 0xC0, 0x80]), 1007);
}

#[test]
fn invalid_utf8_in_a_middle_fragment_gets_1007_before_the_last_fragment() {
    let mut bytes = client_frame(false, TEXT, b"fine so far ");
    bytes.extend(client_frame(false, CONTINUATION, &[0xED, 0xA0, 0x80])); // a UTF-16 surrogate
    // The final fragment is never sent: the server must not wait for it.
    expect_close_after(&bytes, 1007);
}

#[test]
fn invalid_utf8_gets_1007_before_its_frame_has_fully_arrived() {
    // A 900-byte text frame cut after 40 payload bytes, the 21st of which is
    // invalid: the rest is never sent, so only an early check can answer.
    let mut payload = vec![b'a'; 900];
    payload[20] = 0xC1;
    let mut frame = client_frame(true, TEXT, &payload);
    frame.truncate(8 + 40);
    expect_close_after(&frame, 1007);
}

#[test]
fn an_oversized_message_gets_1009_from_its_header() {
    // Only the header of a 5000-byte frame (limit 1000): no payload is ever sent.
    let mut header = client_frame(true, BINARY, &[0; 5000]);
    header.truncate(8);
    expect_close_after(&header, 1009);
}

#[test]
fn fragments_adding_up_past_the_limit_get_1009() {
    let mut bytes = client_frame(false, BINARY, &[1; 600]);
    bytes.extend(client_frame(true, CONTINUATION, &[2; 600]));
    expect_close_after(&bytes, 1009);
}

#[test]
fn a_64_bit_length_with_its_top_bit_set_gets_1002() {
    expect_close_after(&[0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4], 1002);
}

#[test]
fn control_frame_rules_get_1002() {
    expect_close_after(&client_frame(true, PING, &[0; 126]), 1002);
    expect_close_after(&client_frame(false, PING, b"x"), 1002);
}

#[test]
fn fragmentation_rules_get_1002() {
    expect_close_after(&client_frame(true, CONTINUATION, b"orphan"), 1002);
    let mut nested = client_frame(false, TEXT, b"a");
    nested.extend(client_frame(true, TEXT, b"b"));
    expect_close_after(&nested, 1002);
}

#[test]
fn each_invalid_close_code_gets_1002() {
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000] {
        expect_close_after(&client_frame(true, CLOSE, &code.to_be_bytes()), 1002);
    }
    expect_close_after(&client_frame(true, CLOSE, &[0x03]), 1002);
}

#[test]
fn a_close_reason_that_is_not_utf8_gets_1007() {
    expect_close_after(&client_frame(true, CLOSE, &[0x03, 0xE8, 0xFF, 0xFE]), 1007);
}

#[test]
fn a_valid_close_is_echoed_logged_and_tcp_closed() {
    let server = ServerProcess::start(&[]);
    let mut client = RawClient::connect(server.addr, "/chat");
    client.skip_welcome();
    client.send(&client_frame(true, CLOSE, &[0x0F, 0xA0, b'b', b'y', b'e'])); // 4000 "bye"
    client.expect_close(4000);
    drop(client);
    server.wait_for_log("closed by peer, code 4000 \"bye\"");
    server.wait_for_status(0);
}

#[test]
fn fragmented_text_with_a_ping_inside_gives_the_pong_first_then_the_message_once() {
    let server = ServerProcess::start(&[]);
    let mut sender = RawClient::connect(server.addr, "/chat");
    let mut receiver = RawClient::connect(server.addr, "/chat");
    sender.skip_welcome();
    receiver.skip_welcome();
    let mut bytes = client_frame(false, TEXT, b"three ");
    bytes.extend(client_frame(false, CONTINUATION, "fragments ".as_bytes()));
    bytes.extend(client_frame(true, PING, b"mid-message"));
    bytes.extend(client_frame(
        true,
        CONTINUATION,
        "ending in € sign".as_bytes(),
    ));
    sender.send(&bytes);
    let pong = sender.read_frame().unwrap();
    assert_eq!(
        (pong.opcode, pong.payload.as_slice()),
        (PONG, &b"mid-message"[..])
    );
    let message = receiver.read_message();
    assert!(message.fin);
    assert_eq!(
        String::from_utf8(message.payload).unwrap(),
        "three fragments ending in € sign"
    );
    // Exactly once: the next thing the receiver sees is the next message.
    sender.send_text("next");
    assert_eq!(receiver.read_text(), "next");
}

#[test]
fn lengths_of_7_16_and_64_bits_round_trip_through_echo() {
    let server = ServerProcess::start(&["--max-message-bytes", "200000"]);
    let mut client = RawClient::connect(server.addr, "/echo");
    for len in [0, 125, 126, 65535, 65536, 150_000] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        client.send(&client_frame(true, BINARY, &payload));
        let echoed = client.read_message();
        assert_eq!((echoed.opcode, echoed.payload.len()), (BINARY, len));
        assert_eq!(echoed.payload, payload);
    }
}

#[test]
fn a_ping_gets_a_pong_with_the_same_payload() {
    let server = ServerProcess::start(&[]);
    let mut client = RawClient::connect(server.addr, "/echo");
    client.send(&client_frame(true, PING, b"payload 123"));
    let pong = client.read_frame().unwrap();
    assert_eq!((pong.opcode, pong.payload), (PONG, b"payload 123".to_vec()));
}

#[test]
fn an_abrupt_disconnect_is_logged_as_1006() {
    let server = ServerProcess::start(&[]);
    let client = RawClient::connect(server.addr, "/chat");
    let peer = client.stream.local_addr().unwrap();
    server.wait_for_status(1);
    drop(client);
    server.wait_for_left(peer, "Chat", "connection lost", 1006, "");
    server.wait_for_status(0);
}
