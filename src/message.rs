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
mod tests;
