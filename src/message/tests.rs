//! Frames to messages without a socket: single frames, fragmentation, UTF-8
//! checked as it arrives, limits and close bodies, with golden bytes.
use super::*;

const MAX: usize = 1 << 20;
const KEY: [u8; 4] = [0x11, 0x22, 0x33, 0x44];

fn client_frame(fin: bool, opcode: Opcode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&mut out, fin, opcode, payload, Some(KEY));
    out
}

/// Decodes every frame in `bytes`; returns what came out and the server frames.
fn decode_all(bytes: &[u8]) -> (Vec<Decoded>, Vec<u8>, Result<(), ProtocolError>) {
    let mut reader = MessageReader::default();
    let mut buf = bytes.to_vec();
    let (mut seen, mut outgoing, mut at) = (Vec::new(), Vec::new(), 0);
    loop {
        match reader.decode(&mut buf[at..], MAX) {
            Ok(Some((incoming, used))) => {
                if let Some(Decoded::Data(message)) = &incoming {
                    outgoing.extend_from_slice(&message.frame);
                }
                seen.extend(incoming);
                at += used;
            }
            Ok(None) => return (seen, outgoing, Ok(())),
            Err(e) => return (seen, outgoing, Err(e)),
        }
    }
}

/// Whether `incoming` is a whole message of this opcode.
fn is_data(incoming: &Decoded, opcode: Opcode) -> bool {
    matches!(incoming, Decoded::Data(message) if message.opcode == opcode)
}

// ---- single frames ----

#[test]
fn a_masked_text_frame_becomes_an_unmasked_server_frame() {
    let (seen, outgoing, result) = decode_all(&client_frame(true, Opcode::Text, b"Hello"));
    assert_eq!(result, Ok(()));
    assert_eq!(seen.len(), 1);
    assert!(is_data(&seen[0], Opcode::Text));
    assert_eq!(outgoing, [0x81, 0x05, b'H', b'e', b'l', b'l', b'o']);
}

#[test]
fn a_frame_fed_one_byte_at_a_time_needs_more_and_consumes_nothing() {
    let frame = client_frame(true, Opcode::Binary, &[1, 2, 3, 4, 5]);
    let mut reader = MessageReader::default();
    for cut in 0..frame.len() {
        let mut partial = frame[..cut].to_vec();
        assert_eq!(reader.decode(&mut partial, MAX), Ok(None), "cut {cut}");
        assert_eq!(partial, frame[..cut], "nothing unmasked at cut {cut}");
    }
    let mut whole = frame.clone();
    let decoded = reader.decode(&mut whole, MAX).unwrap();
    assert_eq!(
        decoded,
        Some((
            Some(Decoded::Data(Message::new(
                Opcode::Binary,
                &[1, 2, 3, 4, 5]
            ))),
            frame.len()
        ))
    );
}

#[test]
fn invalid_utf8_text_fails_with_1007() {
    let (_, _, result) = decode_all(&client_frame(true, Opcode::Text, &[0xce, 0xba, 0xff]));
    assert_eq!(result, Err(ProtocolError::InvalidUtf8));
}

#[test]
fn binary_payload_is_not_checked_for_utf8() {
    let (seen, _, result) = decode_all(&client_frame(true, Opcode::Binary, &[0xff, 0xfe]));
    assert_eq!(result, Ok(()));
    assert_eq!(
        seen,
        [Decoded::Data(Message::new(Opcode::Binary, &[0xff, 0xfe]))]
    );
}

#[test]
fn an_oversized_message_fails_from_its_header_alone() {
    let mut reader = MessageReader::default();
    // Only the header of a 2 MiB frame: the payload never has to arrive.
    let header = [0x82, 0x80 | 127, 0, 0, 0, 0, 0, 0x20, 0, 0, 1, 2, 3, 4];
    let result = reader.decode(&mut header.clone(), MAX);
    assert_eq!(result, Err(ProtocolError::MessageTooBig));
}

// ---- fragmentation (§5.4) ----

#[test]
fn fragments_with_a_ping_between_them_give_the_ping_then_one_message() {
    let mut bytes = client_frame(false, Opcode::Text, b"frag");
    bytes.extend(client_frame(true, Opcode::Ping, b"are you there"));
    bytes.extend(client_frame(false, Opcode::Continuation, b"men"));
    bytes.extend(client_frame(true, Opcode::Continuation, b"ted"));
    let (seen, outgoing, result) = decode_all(&bytes);
    assert_eq!(result, Ok(()));
    assert_eq!(
        seen,
        [
            Decoded::Ping(ControlPayload::new(b"are you there")),
            Decoded::Data(Message::new(Opcode::Text, b"fragmented"))
        ]
    );
    let mut expected = Vec::new();
    encode_frame(&mut expected, true, Opcode::Text, b"fragmented", None);
    assert_eq!(outgoing, expected);
}

#[test]
fn a_character_split_across_fragments_is_valid() {
    let euro = "€".as_bytes(); // e2 82 ac
    let mut bytes = client_frame(false, Opcode::Text, &euro[..1]);
    bytes.extend(client_frame(false, Opcode::Continuation, &euro[1..2]));
    bytes.extend(client_frame(true, Opcode::Continuation, &euro[2..]));
    let (seen, _, result) = decode_all(&bytes);
    assert_eq!(result, Ok(()));
    assert_eq!(seen, [Decoded::Data(Message::new(Opcode::Text, euro))]);
}

#[test]
fn invalid_utf8_fails_at_the_fragment_that_breaks_it() {
    // The second fragment is invalid; the third never has to arrive.
    let mut bytes = client_frame(false, Opcode::Text, b"ok so far");
    bytes.extend(client_frame(
        false,
        Opcode::Continuation,
        &[0xf4, 0x90, 0x80, 0x80],
    ));
    let (_, _, result) = decode_all(&bytes);
    assert_eq!(result, Err(ProtocolError::InvalidUtf8));
}

#[test]
fn invalid_utf8_fails_before_its_frame_has_fully_arrived() {
    // A 1000-byte text frame; only its first 20 payload bytes have arrived,
    // and byte 10 can never start valid UTF-8.
    let mut payload = vec![b'a'; 1000];
    payload[10] = 0xFF;
    let frame = client_frame(true, Opcode::Text, &payload);
    let mut reader = MessageReader::default();
    let mut partial = frame[..8 + 20].to_vec();
    let result = reader.decode(&mut partial, MAX);
    assert_eq!(result, Err(ProtocolError::InvalidUtf8));
}

#[test]
fn a_character_cut_between_reads_of_one_frame_is_valid() {
    let text = "naïve café €uro 😀 ".repeat(20);
    let frame = client_frame(true, Opcode::Text, text.as_bytes());
    let mut reader = MessageReader::default();
    // Every prefix, as if the frame arrived one byte per read.
    for cut in 0..frame.len() {
        let mut partial = frame[..cut].to_vec();
        assert_eq!(reader.decode(&mut partial, MAX), Ok(None), "cut {cut}");
    }
    let decoded = reader.decode(&mut frame.clone(), MAX).unwrap();
    assert_eq!(
        decoded,
        Some((
            Some(Decoded::Data(Message::new(Opcode::Text, text.as_bytes()))),
            frame.len()
        ))
    );
}

#[test]
fn a_continuation_arriving_in_pieces_is_checked_with_the_fragment_before_it() {
    let euro = "€".as_bytes(); // e2 82 ac
    let mut reader = MessageReader::default();
    let mut first = client_frame(false, Opcode::Text, &euro[..1]);
    assert!(reader.decode(&mut first, MAX).unwrap().is_some());
    // The continuation's first byte completes nothing yet; 0x41 cannot follow e2.
    let bad = client_frame(true, Opcode::Continuation, &[0x41; 50]);
    let mut partial = bad[..6 + 5].to_vec();
    assert_eq!(
        reader.decode(&mut partial, MAX),
        Err(ProtocolError::InvalidUtf8)
    );
    let mut reader = MessageReader::default();
    let mut first = client_frame(false, Opcode::Text, &euro[..1]);
    reader.decode(&mut first, MAX).unwrap();
    let mut good_payload = euro[1..].to_vec();
    good_payload.extend([b'x'; 50]);
    let good = client_frame(true, Opcode::Continuation, &good_payload);
    let mut partial = good[..6 + 10].to_vec();
    assert_eq!(reader.decode(&mut partial, MAX), Ok(None));
}

#[test]
fn a_message_ending_mid_character_is_invalid() {
    let mut bytes = client_frame(false, Opcode::Text, b"ok");
    bytes.extend(client_frame(true, Opcode::Continuation, &[0xe2, 0x82]));
    assert_eq!(decode_all(&bytes).2, Err(ProtocolError::InvalidUtf8));
}

#[test]
fn a_continuation_with_no_message_is_refused() {
    let (_, _, result) = decode_all(&client_frame(true, Opcode::Continuation, b"x"));
    assert_eq!(result, Err(ProtocolError::UnexpectedContinuation));
}

#[test]
fn a_new_message_inside_a_fragmented_one_is_refused() {
    let mut bytes = client_frame(false, Opcode::Text, b"a");
    bytes.extend(client_frame(true, Opcode::Text, b"b"));
    assert_eq!(
        decode_all(&bytes).2,
        Err(ProtocolError::ExpectedContinuation)
    );
}

#[test]
fn fragments_adding_up_past_the_limit_are_refused() {
    let mut reader = MessageReader::default();
    let mut first = client_frame(false, Opcode::Binary, &[0; 10]);
    assert!(reader.decode(&mut first, 15).unwrap().is_some());
    let mut second = client_frame(true, Opcode::Continuation, &[0; 10]);
    assert_eq!(
        reader.decode(&mut second, 15),
        Err(ProtocolError::MessageTooBig)
    );
}

#[test]
fn a_message_reads_its_payload_back_for_every_length_encoding() {
    for len in [0, 125, 126, 65535, 65536] {
        let payload = vec![7u8; len];
        let message = Message::new(Opcode::Binary, &payload);
        assert_eq!(message.payload(), &payload[..], "length {len}");
    }
}

// ---- close bodies (§5.5.1, §7.4) ----

#[test]
fn close_bodies_are_parsed_and_checked() {
    let close = |body: &[u8]| decode_all(&client_frame(true, Opcode::Close, body));
    assert_eq!(close(&[]).0, [Decoded::Close(None)]);
    let body = Some(CloseBody {
        code: 1000,
        reason: "bye".into(),
    });
    assert_eq!(
        close(&[0x03, 0xe8, b'b', b'y', b'e']).0,
        [Decoded::Close(body)]
    );
    assert_eq!(close(&[0x03]).2, Err(ProtocolError::CloseBodyTooShort));
    assert_eq!(
        close(&[0x03, 0xed]).2,
        Err(ProtocolError::InvalidCloseCode(1005))
    );
    assert_eq!(
        close(&[0x03, 0xe8, 0xff]).2,
        Err(ProtocolError::InvalidCloseReason)
    );
}
