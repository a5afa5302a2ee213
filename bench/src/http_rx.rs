//! The receive side of miochat's two HTTP transports, as small as a load
//! generator can have it (notes/07-sse-or-polling.md): the requests, the
//! response head, Server-Sent Events blocks and long-poll batches. Pure
//! parsing, no IO; `net.rs` drives the sockets.
//!
//! A chat message reaches these readers as a `miochat.v1` object,
//! `{"type":"message","id":N,"from":"…","text":"…"}`; `chat_payload` hands
//! the scenario the `text`, so the same checks (sender, sequence number,
//! size, send time) apply to every transport.

/// How a connection reads the chat.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// The upgrade on the target's path, then frames: plain text, as the
    /// other scenarios' clients read them.
    Ws,
    /// The same, offering `miochat.v1`: each message the JSON object SSE and
    /// long-poll readers get, in a frame.
    WsV1,
    /// `GET /events`: one endless `text/event-stream` response.
    Sse,
    /// `GET /poll`, then `GET /poll?since=L` again at once after every answer,
    /// on the same kept-alive connection.
    Poll,
}

impl Kind {
    pub fn parse(s: &str) -> Result<Kind, String> {
        match s {
            "ws" | "websocket" => Ok(Kind::Ws),
            "websocket-v1" => Ok(Kind::WsV1),
            "sse" => Ok(Kind::Sse),
            "poll" | "long-poll" => Ok(Kind::Poll),
            _ => Err(format!(
                "--transport {s:?}: one of websocket, websocket-v1, sse, long-poll"
            )),
        }
    }

    /// Reads frames (the upgrade), not HTTP responses.
    pub fn is_ws(self) -> bool {
        matches!(self, Kind::Ws | Kind::WsV1)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Ws => "websocket",
            Kind::WsV1 => "websocket-v1",
            Kind::Sse => "sse",
            Kind::Poll => "long-poll",
        }
    }
}

/// The request that opens a stream, or asks for the next batch (`since`:
/// None for the first poll, the welcome). Only what HTTP/1.1 requires: a
/// browser adds a few hundred bytes of headers (User-Agent, Accept, cookies).
pub fn request(out: &mut Vec<u8>, kind: Kind, host: &str, since: Option<u64>) {
    let target = match (kind, since) {
        (Kind::Sse, _) => "/events".to_string(),
        (_, None) => "/poll".to_string(),
        (_, Some(l)) => format!("/poll?since={l}"),
    };
    out.extend_from_slice(format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
}

/// What the generator needs from a response head.
#[derive(Debug, PartialEq, Eq)]
pub struct Head {
    pub content_length: Option<usize>,
    /// `Connection: close`: the server ends the connection after this answer.
    pub close: bool,
    pub event_stream: bool,
}

/// Checks a complete response head (up to and including the blank line): 200 only.
pub fn parse_head(head: &[u8]) -> Result<Head, String> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap_or("");
    let mut parts = status.split(' ');
    if parts.next() != Some("HTTP/1.1") || parts.next() != Some("200") {
        return Err(format!("refused: {status:?}"));
    }
    let mut h = Head {
        content_length: None,
        close: false,
        event_stream: false,
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            h.content_length = Some(value.parse().map_err(|_| "bad Content-Length")?);
        } else if name.eq_ignore_ascii_case("connection") {
            h.close = value.eq_ignore_ascii_case("close");
        } else if name.eq_ignore_ascii_case("content-type") {
            h.event_stream = value.starts_with("text/event-stream");
        }
    }
    Ok(h)
}

/// The next complete event block at the start of `data` (miochat ends
/// lines with `\n` alone): its `data:` field, if it has one (a comment or
/// the `retry:` block has none), and the bytes it took with its blank line.
pub fn next_event(data: &[u8]) -> Option<(Option<&[u8]>, usize)> {
    let end = data.windows(2).position(|w| w == b"\n\n")?;
    let field = data[..end]
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"data:"))
        .map(|v| v.strip_prefix(b" ").unwrap_or(v));
    Some((field, end + 2))
}

/// What a plain WebSocket client would get for this object: a chat
/// message's `text` (still JSON-escaped: the generator's payloads need no
/// escaping, so an escape shows up as a wrong size), anything else whole
/// (the welcome, or an object the scenario counts as foreign).
pub fn chat_payload(object: &[u8]) -> &[u8] {
    if !object.starts_with(br#"{"type":"message""#) {
        return object;
    }
    let key = br#""text":""#;
    let Some(at) = object.windows(key.len()).position(|w| w == key) else {
        return object;
    };
    let start = at + key.len();
    let mut i = start;
    while i < object.len() {
        match object[i] {
            b'\\' => i += 2,
            b'"' => return &object[start..i],
            _ => i += 1,
        }
    }
    object
}

/// A long-poll answer, `{"epoch":…,"messages":[{…},…],"last_id":L}`: its
/// objects and `last_id` (where the next poll starts).
pub fn poll_batch(body: &[u8]) -> Result<(Vec<&[u8]>, u64), String> {
    let bad = || {
        format!(
            "bad poll answer {:?}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )
    };
    let key = br#""messages":["#;
    let at = body
        .windows(key.len())
        .position(|w| w == key)
        .ok_or_else(bad)?;
    let mut objects = Vec::new();
    let (mut i, mut depth, mut start, mut in_str) = (at + key.len(), 0usize, 0, false);
    while i < body.len() {
        let b = body[i];
        if in_str {
            match b {
                b'\\' => i += 1,
                b'"' => in_str = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_str = true,
                b'{' => {
                    if depth == 0 {
                        start = i;
                    }
                    depth += 1;
                }
                b'}' => {
                    depth = depth.checked_sub(1).ok_or_else(bad)?;
                    if depth == 0 {
                        objects.push(&body[start..=i]);
                    }
                }
                b']' if depth == 0 => break,
                _ => {}
            }
        }
        i += 1;
    }
    // After the array: `"last_id":` cannot occur inside an escaped string.
    let key = br#""last_id":"#;
    let at = body[i..]
        .windows(key.len())
        .position(|w| w == key)
        .ok_or_else(bad)?;
    let digits: String = body[i + at + key.len()..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .map(|&b| b as char)
        .collect();
    Ok((objects, digits.parse().map_err(|_| bad())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        let mut out = Vec::new();
        request(&mut out, Kind::Poll, "127.0.0.1:80", Some(42));
        assert_eq!(
            out,
            b"GET /poll?since=42 HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n"
        );
    }

    #[test]
    fn heads() {
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\nConnection: keep-alive\r\n\r\n").unwrap();
        assert_eq!(
            h,
            Head {
                content_length: Some(12),
                close: false,
                event_stream: false
            }
        );
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n").unwrap();
        assert!(h.event_stream && h.content_length.is_none());
        assert!(parse_head(b"HTTP/1.1 400 Bad Request\r\n\r\n").is_err());
    }

    #[test]
    fn events() {
        let s = b"retry: 1000\n\ndata: {\"type\":\"welcome\"}\n\nid: 3\ndata: {\"type\":\"message\",\"id\":3,\"from\":\"a\",\"text\":\"hi \\\"x\\\"\"}\n\n: keep-alive\n\nid: 4\nda";
        let (f, n) = next_event(s).unwrap();
        assert_eq!((f, n), (None, 13));
        let (f, m) = next_event(&s[n..]).unwrap();
        assert_eq!(f, Some(&b"{\"type\":\"welcome\"}"[..]));
        let (f, k) = next_event(&s[n + m..]).unwrap();
        assert_eq!(chat_payload(f.unwrap()), b"hi \\\"x\\\"");
        let rest = &s[n + m + k..];
        assert_eq!(next_event(rest).unwrap().0, None);
        assert!(next_event(&rest[14..]).is_none());
    }

    #[test]
    fn batches() {
        let body = br#"{"epoch":"e]{","messages":[{"type":"message","id":5,"from":"b","text":"}]\"last_id\":9"},{"type":"ack","id":6}],"last_id":6}"#;
        let (objects, last) = poll_batch(body).unwrap();
        assert_eq!(last, 6);
        assert_eq!(objects.len(), 2);
        assert_eq!(chat_payload(objects[0]), br#"}]\"last_id\":9"#);
        assert_eq!(objects[1], br#"{"type":"ack","id":6}"#);
        let (objects, last) = poll_batch(br#"{"epoch":"e","messages":[],"last_id":0}"#).unwrap();
        assert_eq!((objects.len(), last), (0, 0));
    }
}
