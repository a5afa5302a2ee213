//! UTF-8 that arrives in pieces (RFC 6455 §8.1): fail at the first byte that
//! can never become valid, and let a character be cut between pieces.
//!
//! The rule is that a whole text message is UTF-8; the plain check is
//! `std::str::from_utf8` on the message once every fragment has arrived. The
//! shortcut: the message is checked piece by piece as it arrives, keeping
//! only a character cut off at the end of the last piece (at most 3 bytes),
//! so feeding n bytes checks each of them once, and a bad byte fails in the
//! piece that holds it instead of at the end of the message. The verdict is
//! the plain one because `from_utf8` itself tells bytes cut off by the end of
//! its input (`error_len()` is `None`: carried to the next piece) from bytes
//! that can never become valid (an error at once); the tests below feed text
//! in pieces of every size (notes/README.md#shortcuts).
//!
//! Interface: [`Utf8Stream::feed`] takes the next bytes of a text message, in
//! order; [`Utf8Stream::ends_on_a_character`] says whether the message may end
//! here. `message.rs` uses one stream per text message, across its fragments and
//! across the reads a large frame arrives in.

/// The bytes fed so far can still begin valid UTF-8; `Err(InvalidUtf8)` otherwise.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Utf8Stream {
    /// The start of a character whose remaining bytes have not been fed yet.
    carry: [u8; 3],
    carry_len: usize,
}

/// The bytes can never be (the start of) valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidUtf8;

impl Utf8Stream {
    /// Checks the next `bytes` of the text.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), InvalidUtf8> {
        if self.carry_len > 0 {
            // First finish the character the last piece cut off.
            let width = char_width(self.carry[0]);
            let wanted = (width - self.carry_len).min(bytes.len());
            let mut char_bytes = [0u8; 4];
            char_bytes[..self.carry_len].copy_from_slice(&self.carry[..self.carry_len]);
            char_bytes[self.carry_len..self.carry_len + wanted].copy_from_slice(&bytes[..wanted]);
            let have = self.carry_len + wanted;
            self.carry_len = 0;
            self.check(&char_bytes[..have])?;
            bytes = &bytes[wanted..];
            if have < width {
                return Ok(()); // still cut off: `check` carried it again
            }
        }
        self.check(bytes)
    }

    /// Whether the text fed so far ends between characters (a message must).
    pub fn ends_on_a_character(&self) -> bool {
        self.carry_len == 0
    }

    /// Checks `bytes` from a character boundary, carrying a cut-off last character.
    fn check(&mut self, bytes: &[u8]) -> Result<(), InvalidUtf8> {
        match std::str::from_utf8(bytes) {
            Ok(_) => Ok(()),
            // error_len() == None: the bytes end in the middle of a character.
            Err(e) if e.error_len().is_none() => {
                let cut = &bytes[e.valid_up_to()..];
                self.carry[..cut.len()].copy_from_slice(cut);
                self.carry_len = cut.len();
                Ok(())
            }
            Err(_) => Err(InvalidUtf8),
        }
    }
}

/// How many bytes the character starting with `lead` takes (`lead` was
/// accepted as the start of a character, so it is a valid lead byte).
fn char_width(lead: u8) -> usize {
    match lead {
        0xF0.. => 4,
        0xE0.. => 3,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `text` in pieces of `size` and reports the outcome.
    fn feed_in_pieces(text: &[u8], size: usize) -> Result<bool, InvalidUtf8> {
        let mut stream = Utf8Stream::default();
        for piece in text.chunks(size) {
            stream.feed(piece)?;
        }
        Ok(stream.ends_on_a_character())
    }

    #[test]
    fn valid_text_is_valid_in_pieces_of_any_size() {
        let text = "naïve café €uro 😀 Кириллица".as_bytes();
        for size in 1..=text.len() {
            assert_eq!(feed_in_pieces(text, size), Ok(true), "pieces of {size}");
        }
    }

    #[test]
    fn a_cut_character_is_not_an_end() {
        let euro = "€".as_bytes();
        let mut stream = Utf8Stream::default();
        stream.feed(&euro[..2]).unwrap();
        assert!(!stream.ends_on_a_character());
        stream.feed(&euro[2..]).unwrap();
        assert!(stream.ends_on_a_character());
    }

    #[test]
    fn invalid_bytes_fail_in_the_piece_that_holds_them() {
        for bad in [
            &[0xFF][..],
            &[0xC0, 0x80],
            &[0xED, 0xA0, 0x80],
            &[0xF4, 0x90, 0x80, 0x80],
            &[0xE2, 0x41],
        ] {
            let mut text = b"fine ".to_vec();
            text.extend_from_slice(bad);
            for size in 1..=text.len() {
                assert_eq!(
                    feed_in_pieces(&text, size),
                    Err(InvalidUtf8),
                    "{bad:x?} in pieces of {size}"
                );
            }
        }
    }
}
