//! From frames to messages (RFC 6455 §5.4-§5.6): reassembly, UTF-8 and size limits.
//!
//! [`MessageReader::decode`] takes the bytes read so far and returns the next
//! thing the peer said, or `Ok(None)` when it needs more bytes (nothing is
//! consumed then). It owns the only state that spans frames: the fragments of
//! a message in progress. It knows nothing about sockets, so tests and the
//! fuzzer drive it with plain byte slices.
//!
//! A complete data message comes back as a value, a [`Message`], already
//! re-encoded as one unmasked server frame: the server encodes each message
//! once, stores those bytes once in the shared log, and writes every
//! recipient's socket from there (notes/04-broadcast.md#encode-once).

use crate::error::{ProtocolError, is_valid_close_code};
use crate::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, Opcode, apply_mask, encode_frame};
use crate::utf8::Utf8Stream;

/// One thing the peer said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A whole Text or Binary message.
    Data(Message),
    /// §5.5.2: a Ping; the Pong must carry the same payload.
    Ping(ControlPayload),
    /// §5.5.3: a Pong, solicited or not.
    Pong,
    /// §5.5.1: a Close; `None` when the body was empty (the code is then 1005 locally).
    Close(Option<CloseBody>),
}

/// A whole data message, as the server will send it.
///
/// The plain form would be the opcode and the payload, encoded into a frame
/// for every recipient. The shortcut: it is encoded once, here, as the
/// unmasked server frame (§5.1), and every recipient is written those same
/// bytes; [`Message::payload`] reads the payload back out of the frame
/// (notes/README.md#shortcuts).
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// Text or Binary.
    pub opcode: Opcode,
    /// The server frame: header, then the payload.
    pub frame: Vec<u8>,
}

impl Message {
    /// Encodes `payload` as one unmasked server frame.
    pub fn new(opcode: Opcode, payload: &[u8]) -> Message {
        let mut frame = Vec::new();
        encode_frame(&mut frame, true, opcode, payload, None);
        Message { opcode, frame }
    }

    /// The payload: the frame without its header.
    pub fn payload(&self) -> &[u8] {
        server_frame_payload(&self.frame)
    }
}

/// The payload of an unmasked server frame: the frame without its header
/// (§5.2: 2, 4 or 10 bytes, by the 7-bit length).
pub fn server_frame_payload(frame: &[u8]) -> &[u8] {
    let header_len = match frame[1] & 0x7F {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    &frame[header_len..]
}

impl std::fmt::Debug for Message {
    /// The opcode, the size and the start of the payload as text, for debug logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let payload = self.payload();
        let shown = &payload[..payload.len().min(120)];
        write!(
            f,
            "{:?} {} bytes {:?}",
            self.opcode,
            payload.len(),
            String::from_utf8_lossy(shown)
        )
    }
}

/// A control frame's payload (at most 125 bytes), kept inline to avoid an allocation.
#[derive(Clone, PartialEq, Eq)]
pub struct ControlPayload {
    len: u8,
    bytes: [u8; MAX_CONTROL_PAYLOAD],
}

impl ControlPayload {
    fn new(payload: &[u8]) -> ControlPayload {
        let mut bytes = [0; MAX_CONTROL_PAYLOAD];
        bytes[..payload.len()].copy_from_slice(payload);
        ControlPayload {
            len: payload.len() as u8,
            bytes,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for ControlPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ControlPayload({:?})",
            String::from_utf8_lossy(self.as_bytes())
        )
    }
}

/// The status code and reason of a Close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseBody {
    pub code: u16,
    pub reason: String,
}

/// A fragmented message that has started but not finished (§5.4).
#[derive(Debug)]
struct Fragments {
    /// Text or Binary: the opcode of the first frame.
    opcode: Opcode,
    /// Unmasked payload of the frames so far.
    payload: Vec<u8>,
    /// For text: the UTF-8 check, up to the end of `payload`.
    utf8: Utf8Stream,
}

/// Bytes of a partly arrived text frame unmasked and checked per step.
const TEXT_CHECK_CHUNK: usize = 2048;

/// A text frame whose payload is still arriving, checked as far as it came.
#[derive(Debug, Default)]
struct TextSoFar {
    /// Payload bytes of the frame already checked.
    checked: usize,
    /// The message's UTF-8 check, up to those bytes.
    utf8: Utf8Stream,
}

/// Frames in, messages out, for one connection.
#[derive(Debug, Default)]
pub struct MessageReader {
    /// The message in progress, if its first frame had FIN = 0.
    /// Boxed so an idle connection pays one pointer for it (notes/04-broadcast.md#memory).
    fragments: Option<Box<Fragments>>,
    /// The text frame at the front of the buffer, while its payload is still
    /// arriving. Boxed for the same reason.
    text_so_far: Option<Box<TextSoFar>>,
}

impl MessageReader {
    /// Whether a fragmented message has begun and not ended (§5.4).
    pub fn in_progress(&self) -> bool {
        self.fragments.is_some()
    }

    /// Bytes of a fragmented message in progress received so far.
    pub fn fragment_bytes(&self) -> usize {
        self.fragments.as_ref().map_or(0, |f| f.payload.len())
    }

    /// Decodes the next frame at the front of `buf` (unmasking it in place).
    ///
    /// Returns what the frame completed, if anything, and how many bytes it
    /// used. `Ok(Some((None, n)))` is a fragment that did not end a message.
    /// `max_message` bounds a whole message, checked from the header before
    /// the payload is waited for (§10.4).
    pub fn decode(
        &mut self,
        buf: &mut [u8],
        max_message: usize,
    ) -> Result<Option<(Option<Decoded>, usize)>, ProtocolError> {
        let Some(header) = FrameHeader::parse(buf)? else {
            return Ok(None);
        };
        self.check_sequence(&header, max_message)?;
        let frame_len = header.header_len as u64 + header.payload_len;
        if (buf.len() as u64) < frame_len {
            self.check_text_so_far(&header, &buf[header.header_len..])?;
            return Ok(None);
        }
        // Complete. What was checked while it arrived is not checked again.
        let so_far = self.text_so_far.take();
        let payload = &mut buf[header.header_len..frame_len as usize];
        apply_mask(payload, header.mask, 0);
        let decoded = match header.opcode {
            Opcode::Ping => Some(Decoded::Ping(ControlPayload::new(payload))),
            Opcode::Pong => Some(Decoded::Pong),
            Opcode::Close => Some(Decoded::Close(parse_close_body(payload)?)),
            _ => self.on_data_frame(&header, payload, so_far)?,
        };
        Ok(Some((decoded, frame_len as usize)))
    }

    /// A whole Text, Binary or Continuation frame, unmasked: a message if it
    /// ends one (§5.4), otherwise a fragment kept for later.
    fn on_data_frame(
        &mut self,
        header: &FrameHeader,
        payload: &[u8],
        so_far: Option<Box<TextSoFar>>,
    ) -> Result<Option<Decoded>, ProtocolError> {
        if header.opcode != Opcode::Continuation {
            if header.fin {
                if header.opcode == Opcode::Text {
                    check_rest_of_text(Utf8Stream::default(), so_far, payload, true)?;
                }
                return Ok(Some(Decoded::Data(Message::new(header.opcode, payload))));
            }
            let mut fragments = Box::new(Fragments {
                opcode: header.opcode,
                payload: Vec::new(),
                utf8: Utf8Stream::default(),
            });
            fragments.push(payload, false, so_far)?;
            self.fragments = Some(fragments);
            return Ok(None);
        }
        let fragments = self.fragments.as_mut().expect("checked by check_sequence");
        fragments.push(payload, header.fin, so_far)?;
        if !header.fin {
            return Ok(None);
        }
        let done = self.fragments.take().expect("just used");
        Ok(Some(Decoded::Data(Message::new(
            done.opcode,
            &done.payload,
        ))))
    }

    /// Checks the part of a text frame that has arrived, before the rest comes.
    ///
    /// The rule (§8.1) is that the text is UTF-8; the plain way checks a frame
    /// once it is whole and unmasked, so a bad byte early in a 1 MiB frame
    /// fails only after the megabyte. The shortcut: each read's new bytes are
    /// checked at once, as the checklist (and Autobahn's strict cases) ask.
    /// The arrived bytes stay masked in the buffer (they are unmasked in place
    /// once the frame is whole), so each new byte is unmasked into a small
    /// copy, checked, and forgotten; only the check's place (`TextSoFar`:
    /// how far, and a character cut off at the end) is carried to the next
    /// read. The verdict is the plain one: it is the same `Utf8Stream` fed the
    /// same bytes in the same order, and once the frame is whole
    /// `check_rest_of_text` feeds only the bytes not yet checked, so each
    /// byte is checked exactly once (notes/README.md#shortcuts).
    fn check_text_so_far(
        &mut self,
        header: &FrameHeader,
        arrived: &[u8],
    ) -> Result<(), ProtocolError> {
        let fragments = &self.fragments;
        let is_text = match header.opcode {
            Opcode::Text => true,
            Opcode::Continuation => fragments.as_ref().is_some_and(|f| f.opcode == Opcode::Text),
            _ => false,
        };
        if !is_text {
            return Ok(());
        }
        // A continuation goes on from where the earlier frames ended, maybe mid-character.
        let so_far = self.text_so_far.get_or_insert_with(|| {
            let utf8 = fragments
                .as_ref()
                .map(|f| f.utf8.clone())
                .unwrap_or_default();
            Box::new(TextSoFar { checked: 0, utf8 })
        });
        let mut chunk = [0u8; TEXT_CHECK_CHUNK];
        while so_far.checked < arrived.len() {
            let new = (arrived.len() - so_far.checked).min(TEXT_CHECK_CHUNK);
            chunk[..new].copy_from_slice(&arrived[so_far.checked..so_far.checked + new]);
            apply_mask(&mut chunk[..new], header.mask, so_far.checked);
            so_far
                .utf8
                .feed(&chunk[..new])
                .map_err(|_| ProtocolError::InvalidUtf8)?;
            so_far.checked += new;
        }
        Ok(())
    }

    /// The rules that relate a frame to the frames before it (§5.4) and the size limit (§10.4).
    fn check_sequence(
        &self,
        header: &FrameHeader,
        max_message: usize,
    ) -> Result<(), ProtocolError> {
        let so_far = match (&self.fragments, header.opcode) {
            (_, op) if op.is_control() => return Ok(()),
            (None, Opcode::Continuation) => return Err(ProtocolError::UnexpectedContinuation),
            (Some(_), Opcode::Text | Opcode::Binary) => {
                return Err(ProtocolError::ExpectedContinuation);
            }
            (Some(fragments), _) => fragments.payload.len() as u64,
            (None, _) => 0,
        };
        if so_far + header.payload_len > max_message as u64 {
            return Err(ProtocolError::MessageTooBig);
        }
        Ok(())
    }
}

impl Fragments {
    /// Appends one frame's payload, checking text as far as it can be checked now.
    ///
    /// §8.1 lets a character be split across frames, so an incomplete sequence at
    /// the end is fine until the last frame; anything else invalid fails at once,
    /// without waiting for the rest of the message. `so_far` is what was checked
    /// while this frame arrived.
    fn push(
        &mut self,
        payload: &[u8],
        fin: bool,
        so_far: Option<Box<TextSoFar>>,
    ) -> Result<(), ProtocolError> {
        self.payload.extend_from_slice(payload);
        if self.opcode == Opcode::Text {
            let utf8 = std::mem::take(&mut self.utf8);
            self.utf8 = check_rest_of_text(utf8, so_far, payload, fin)?;
        }
        Ok(())
    }
}

/// Finishes the UTF-8 check of a frame's (unmasked) `payload`: from where the
/// check stood while it arrived (`so_far`), or from `utf8` if nothing was
/// checked early. At the end of a message the text must end on a character.
fn check_rest_of_text(
    utf8: Utf8Stream,
    so_far: Option<Box<TextSoFar>>,
    payload: &[u8],
    end_of_message: bool,
) -> Result<Utf8Stream, ProtocolError> {
    let (mut utf8, checked) = match so_far {
        Some(so_far) => (so_far.utf8, so_far.checked),
        None => (utf8, 0),
    };
    utf8.feed(&payload[checked..])
        .map_err(|_| ProtocolError::InvalidUtf8)?;
    if end_of_message && !utf8.ends_on_a_character() {
        return Err(ProtocolError::InvalidUtf8);
    }
    Ok(utf8)
}

/// §5.5.1: an empty body, or a 2-byte code and a UTF-8 reason.
fn parse_close_body(payload: &[u8]) -> Result<Option<CloseBody>, ProtocolError> {
    match payload {
        [] => Ok(None),
        [_] => Err(ProtocolError::CloseBodyTooShort),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_close_code(code) {
                return Err(ProtocolError::InvalidCloseCode(code));
            }
            let reason =
                std::str::from_utf8(reason).map_err(|_| ProtocolError::InvalidCloseReason)?;
            Ok(Some(CloseBody {
                code,
                reason: reason.to_owned(),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
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
}
