//! The client half of RFC 6455, as small as a load generator can have it:
//! the upgrade request and its check, masked frames out, unmasked frames in.

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// xorshift64*: masks and handshake keys need variety, not secrecy.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

pub fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for c in input.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn new_key(rng: &mut Rng) -> [u8; 24] {
    let mut raw = [0u8; 16];
    raw[..8].copy_from_slice(&rng.next_u64().to_ne_bytes());
    raw[8..].copy_from_slice(&rng.next_u64().to_ne_bytes());
    let mut key = [0u8; 24];
    key.copy_from_slice(base64(&raw).as_bytes());
    key
}

pub fn accept_for(key: &[u8]) -> String {
    let mut h = sha1_smol::Sha1::new();
    h.update(key);
    h.update(GUID.as_bytes());
    base64(&h.digest().bytes())
}

pub fn upgrade_request(out: &mut Vec<u8>, host: &str, path: &str, key: &[u8; 24]) {
    upgrade_request_with(out, host, path, key, "");
}

/// The upgrade with `extra` header lines (each ending in CRLF) before the blank line.
pub fn upgrade_request_with(
    out: &mut Vec<u8>,
    host: &str,
    path: &str,
    key: &[u8; 24],
    extra: &str,
) {
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
    out.extend_from_slice(key);
    out.extend_from_slice(b"\r\nSec-WebSocket-Version: 13\r\n");
    out.extend_from_slice(extra.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Checks a complete response head (up to and including the blank line).
pub fn check_upgrade_response(head: &[u8], key: &[u8; 24]) -> Result<(), String> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap_or("");
    let mut parts = status.split(' ');
    if parts.next() != Some("HTTP/1.1") || parts.next() != Some("101") {
        return Err(format!("upgrade refused: {status:?}"));
    }
    let want = accept_for(key);
    for line in lines {
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("sec-websocket-accept")
        {
            return if value.trim() == want {
                Ok(())
            } else {
                Err(format!("bad Sec-WebSocket-Accept {:?}", value.trim()))
            };
        }
    }
    Err("101 response without Sec-WebSocket-Accept".into())
}

pub fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// Appends one masked frame (FIN set) to `out`.
pub fn encode_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    out.push(0x80 | opcode);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], mask);
}

/// XORs the mask over `data`, eight bytes at a time where it can.
pub fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    let m8 = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes(c.try_into().unwrap()) ^ m8;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

pub enum Parsed {
    /// A whole frame: its header length and payload length.
    Frame {
        fin: bool,
        opcode: u8,
        header: usize,
        len: usize,
    },
    Incomplete,
    Error(String),
}

/// Parses one server frame at the start of `buf`. Server frames are never masked.
pub fn parse_frame(buf: &[u8], max_len: usize) -> Parsed {
    if buf.len() < 2 {
        return Parsed::Incomplete;
    }
    let fin = buf[0] & 0x80 != 0;
    if buf[0] & 0x70 != 0 {
        return Parsed::Error("reserved bits set in a server frame".into());
    }
    let opcode = buf[0] & 0x0F;
    if buf[1] & 0x80 != 0 {
        return Parsed::Error("server sent a masked frame".into());
    }
    let (header, len) = match buf[1] & 0x7F {
        126 => {
            if buf.len() < 4 {
                return Parsed::Incomplete;
            }
            (4, u16::from_be_bytes([buf[2], buf[3]]) as usize)
        }
        127 => {
            if buf.len() < 10 {
                return Parsed::Incomplete;
            }
            (
                10,
                u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
            )
        }
        n => (2, n as usize),
    };
    if len > max_len {
        return Parsed::Error(format!(
            "frame of {len} bytes is over the {max_len}-byte limit"
        ));
    }
    if opcode >= 8 && (len > 125 || !fin) {
        return Parsed::Error("invalid control frame".into());
    }
    if buf.len() < header + len {
        return Parsed::Incomplete;
    }
    Parsed::Frame {
        fin,
        opcode,
        header,
        len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_accept_example() {
        assert_eq!(
            accept_for(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn base64_padding() {
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }

    #[test]
    fn mask_roundtrip_and_lengths() {
        for len in [0usize, 5, 125, 126, 65535, 65536, 70000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut out = Vec::new();
            encode_frame(&mut out, OP_BINARY, &payload, [1, 2, 3, 4]);
            // Unmask and reparse as if the server had sent it unmasked.
            let hdr = if len < 126 {
                2
            } else if len <= 0xFFFF {
                4
            } else {
                10
            };
            let mut body = out[hdr + 4..].to_vec();
            apply_mask(&mut body, [1, 2, 3, 4]);
            assert_eq!(body, payload);
            let mut plain = out[..hdr].to_vec();
            plain[1] &= 0x7F;
            plain.extend_from_slice(&body);
            match parse_frame(&plain, 1 << 20) {
                Parsed::Frame {
                    fin,
                    opcode,
                    header,
                    len: l,
                } => {
                    assert!(fin);
                    assert_eq!((opcode, header, l), (OP_BINARY, hdr, len));
                }
                _ => panic!("no frame for {len}"),
            }
        }
    }
}
