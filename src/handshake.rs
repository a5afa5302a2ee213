//! The opening handshake (RFC 6455 §4.2): parse an HTTP request head and decide
//! whether it is a valid WebSocket upgrade. Pure functions, no sockets.
//!
//! Interface: [`find_head_end`] says whether the head is complete;
//! [`Request::parse`] splits it into method, target and headers;
//! [`check_upgrade`] applies every rule of §4.2.1 (plus our token and Origin
//! policy) and answers with the accept key or the HTTP status to refuse with;
//! [`accept_key`] is the §4.2.2 hash. notes/02-handshake.md shows real bytes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::config::Config;

/// §4.2.2: the GUID appended to the client's key before hashing.
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Where an upgraded connection goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/` and `/chat`: every message goes to every other chat client.
    Chat,
    /// `/echo`: every message comes back to its sender (for conformance suites).
    Echo,
    /// `/events`: not an upgrade but a Server-Sent Events stream, which
    /// reads the chat as `/chat` does (`http_chat.rs`).
    Events,
}

/// An HTTP answer that refuses the request, with a one-line reason for the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: &'static str,
}

const fn refuse(status: u16, reason: &'static str) -> Refusal {
    Refusal { status, reason }
}

/// A parsed request head; the strings borrow from the read buffer.
#[derive(Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The request target as sent, query included (`/chat?token=...`).
    pub target: &'a str,
    /// The target without its query.
    pub path: &'a str,
    /// `HTTP/1.x`: the x. Versions other than 1.x are refused while parsing.
    pub minor_version: u8,
    headers: Vec<(&'a str, &'a str)>,
}

/// The index just past `\r\n\r\n`, once the whole request head has arrived.
pub fn find_head_end(buf: &[u8]) -> Option<usize> {
    find_head_end_after(buf, 0)
}

/// The same, when the first `known` bytes were already searched: only the
/// new bytes (and the three before them) are looked at, so a head that
/// arrives one byte per read costs linear time, not quadratic.
pub fn find_head_end_after(buf: &[u8], known: usize) -> Option<usize> {
    let from = known.saturating_sub(3).min(buf.len());
    buf[from..]
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| from + at + 4)
}

impl<'a> Request<'a> {
    /// Parses a request head (everything up to and including `\r\n\r\n`).
    pub fn parse(head: &'a [u8]) -> Result<Request<'a>, Refusal> {
        let head =
            std::str::from_utf8(head).map_err(|_| refuse(400, "request head is not UTF-8"))?;
        let mut lines = head.strip_suffix("\r\n\r\n").unwrap_or(head).split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.split(' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(refuse(400, "malformed request line"));
        };
        if method.is_empty() || !target.starts_with('/') {
            return Err(refuse(400, "malformed request line"));
        }
        let minor_version = match version.strip_prefix("HTTP/1.") {
            Some(minor) if minor.len() == 1 && minor.as_bytes()[0].is_ascii_digit() => {
                minor.as_bytes()[0] - b'0'
            }
            _ => return Err(refuse(400, "malformed HTTP version")),
        };
        let mut headers = Vec::new();
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                return Err(refuse(400, "malformed header line"));
            };
            // RFC 9112 §5.1: no whitespace between the name and the colon; and a
            // line that starts with whitespace is an obsolete fold, which we refuse.
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return Err(refuse(400, "malformed header name"));
            }
            // RFC 9112 §2.2: a bare CR (or any control byte) inside a value is refused.
            if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7F) {
                return Err(refuse(400, "control character in a header value"));
            }
            headers.push((name, value.trim_matches([' ', '\t'])));
        }
        let path = target.split_once('?').map_or(target, |(path, _)| path);
        Ok(Request {
            method,
            target,
            path,
            minor_version,
            headers,
        })
    }

    /// The value of the first header called `name` (names are case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, v)| v)
    }

    fn header_count(&self, name: &str) -> usize {
        self.header_values(name).count()
    }

    /// The values of every header called `name`, in order.
    pub fn header_values<'r>(&'r self, name: &'r str) -> impl Iterator<Item = &'a str> + 'r {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, v)| v)
    }

    /// Whether any `name` header lists `token` among its comma-separated values.
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether the client is asking for a WebSocket at all (as opposed to a page).
    pub fn wants_websocket(&self) -> bool {
        self.header("Upgrade").is_some() || self.header("Sec-WebSocket-Key").is_some()
    }

    /// The value of `name` in the query string, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let (_, query) = self.target.split_once('?')?;
        query
            .split('&')
            .find_map(|pair| match pair.split_once('=') {
                Some((key, value)) if key == name => Some(percent_decode(value)),
                _ => None,
            })
    }

    fn cookie(&self, name: &str) -> Option<&'a str> {
        let cookies = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("Cookie"));
        cookies
            .flat_map(|(_, v)| v.split(';'))
            .find_map(|pair| match pair.trim().split_once('=') {
                Some((key, value)) if key == name => Some(value),
                _ => None,
            })
    }
}

/// RFC 9110 §5.6.2: the characters allowed in a header name.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// An accepted upgrade: where it goes, the `Sec-WebSocket-Accept` value,
/// and what a chat client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upgrade {
    pub endpoint: Endpoint,
    pub accept: String,
    pub chat: ChatOptions,
}

/// What a chat client may ask for besides the upgrade (notes/09-shared-log.md#miochat-v1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatOptions {
    /// It offered the `miochat.v1` subprotocol: JSON objects with ids, and resume.
    pub v1: bool,
    /// `?name=`: how the others see it; `None` means `guest-<n>`.
    pub name: Option<String>,
    /// `?since=N`: the last id it saw, to resume after (`miochat.v1` only).
    pub since: Option<u64>,
    /// `?epoch=E`: the epoch that id belongs to; `None` means the current one.
    pub epoch: Option<String>,
}

/// Applies the rules of §4.2.1 to a GET for a WebSocket endpoint, in the order
/// a client most needs to hear about them.
pub fn check_upgrade(request: &Request, config: &Config) -> Result<Upgrade, Refusal> {
    let endpoint = match request.path {
        "/" | "/chat" => Endpoint::Chat,
        "/echo" => Endpoint::Echo,
        _ => return Err(refuse(404, "no WebSocket endpoint at this path")),
    };
    // §4.2.1 item 1: "An HTTP/1.1 or higher GET request".
    if request.method != "GET" {
        return Err(refuse(405, "only GET can be upgraded"));
    }
    if request.minor_version < 1 {
        return Err(refuse(400, "HTTP/1.1 or later is required"));
    }
    check_no_body(request)?;
    let host = check_host(request)?;
    check_upgrade_headers(request)?;
    let key = check_key(request)?;
    check_policy(request, host, config)?;
    let chat = match endpoint {
        Endpoint::Chat => check_chat_options(request)?,
        Endpoint::Echo | Endpoint::Events => ChatOptions::default(),
    };
    Ok(Upgrade {
        endpoint,
        accept: accept_key(key),
        chat,
    })
}

/// The subprotocol (§4.2.2 item 5.4: the server picks one the client
/// offered, or none), the name and the resume point.
fn check_chat_options(request: &Request) -> Result<ChatOptions, Refusal> {
    let v1 = request
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("Sec-WebSocket-Protocol"))
        .flat_map(|(_, v)| v.split(','))
        .any(|offered| offered.trim() == crate::v1::SUBPROTOCOL);
    let name = request.query_param("name");
    if let Some(name) = &name {
        crate::v1::check_name(name).map_err(|reason| refuse(400, reason))?;
    }
    let since = match request.query_param("since") {
        Some(n) => Some(
            n.parse()
                .map_err(|_| refuse(400, "since must be a whole number"))?,
        ),
        None => None,
    };
    Ok(ChatOptions {
        v1,
        name,
        since,
        epoch: request.query_param("epoch"),
    })
}

/// A GET that upgrades has no body (RFC 9110 §9.3.1 gives a GET body no
/// meaning): bytes after the head are the client's first frames, so a body
/// would be read as frames. `Content-Length: 0` is harmless.
fn check_no_body(request: &Request) -> Result<(), Refusal> {
    let length = request.header("Content-Length").map(str::trim);
    if request.header("Transfer-Encoding").is_some() || length.is_some_and(|n| n != "0") {
        return Err(refuse(400, "an upgrade request must not have a body"));
    }
    Ok(())
}

/// Item 2: a Host header field; RFC 9112 §3.2: exactly one.
pub fn check_host<'a>(request: &Request<'a>) -> Result<&'a str, Refusal> {
    match (request.header("Host"), request.header_count("Host")) {
        (Some(host), 1) if !host.is_empty() => Ok(host),
        (_, 0 | 1) => Err(refuse(400, "missing Host header")),
        _ => Err(refuse(400, "more than one Host header")),
    }
}

/// Items 3, 4 and 6: `Upgrade` contains "websocket", `Connection` contains
/// "Upgrade", and the version is 13.
fn check_upgrade_headers(request: &Request) -> Result<(), Refusal> {
    if !request.header_has_token("Upgrade", "websocket") {
        return Err(refuse(400, "missing Upgrade: websocket header"));
    }
    if !request.header_has_token("Connection", "Upgrade") {
        return Err(refuse(400, "Connection header must contain Upgrade"));
    }
    // §4.4: any version but 13 gets 426 and the version we speak.
    match (
        request.header("Sec-WebSocket-Version"),
        request.header_count("Sec-WebSocket-Version"),
    ) {
        (None, _) => Err(refuse(400, "missing Sec-WebSocket-Version header")),
        (Some("13"), 1) => Ok(()),
        _ => Err(refuse(426, "only WebSocket version 13 is supported")),
    }
}

/// Item 5: the key is base64 of 16 bytes.
fn check_key<'a>(request: &Request<'a>) -> Result<&'a str, Refusal> {
    match (
        request.header("Sec-WebSocket-Key"),
        request.header_count("Sec-WebSocket-Key"),
    ) {
        (None, _) => Err(refuse(400, "missing Sec-WebSocket-Key header")),
        (Some(key), 1) if is_valid_key(key) => Ok(key),
        _ => Err(refuse(400, "Sec-WebSocket-Key must be base64 of 16 bytes")),
    }
}

/// Our policy on top of the RFC: the Origin and the token.
pub fn check_policy(request: &Request, host: &str, config: &Config) -> Result<(), Refusal> {
    // §10.2: browsers send Origin; refuse pages from other sites (cross-site hijacking).
    if let Some(origin) = request.header("Origin")
        && !origin_allowed(origin, host, &config.allowed_origins)
    {
        return Err(refuse(403, "Origin not allowed"));
    }
    if let Some(expected) = &config.token
        && !token_matches(request, expected)
    {
        return Err(refuse(401, "missing or wrong token"));
    }
    Ok(())
}

fn is_valid_key(key: &str) -> bool {
    matches!(BASE64.decode(key), Ok(bytes) if bytes.len() == 16)
}

/// §4.2.2 item 5.4: base64(SHA-1(key + GUID)), the key exactly as the client sent it.
pub fn accept_key(key: &str) -> String {
    let mut sha1 = sha1_smol::Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(WEBSOCKET_GUID.as_bytes());
    BASE64.encode(sha1.digest().bytes())
}

/// Same origin (scheme://Host) or listed with `--allow-origin` (`*` allows every origin).
fn origin_allowed(origin: &str, host: &str, allowed: &[String]) -> bool {
    let same_origin = ["http://", "https://"].iter().any(|scheme| {
        origin
            .strip_prefix(scheme)
            .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
    });
    same_origin
        || allowed
            .iter()
            .any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

/// The token may come as `?token=`, `Authorization: Bearer`, or a `miochat_token` cookie.
fn token_matches(request: &Request, expected: &str) -> bool {
    // RFC 9110 §11.1: the scheme name is case-insensitive.
    let bearer = request.header("Authorization").and_then(|v| {
        let (scheme, token) = v.split_once(' ')?;
        scheme.eq_ignore_ascii_case("Bearer").then(|| token.trim())
    });
    let offered = [
        request.query_param("token"),
        bearer.map(str::to_owned),
        request.cookie("miochat_token").map(str::to_owned),
    ];
    // Check every source, so the time taken does not say which one was present.
    offered.iter().flatten().fold(false, |found, t| {
        constant_time_eq(t.as_bytes(), expected.as_bytes()) | found
    })
}

/// Compares in time that depends on the lengths only, never on where the bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0xFF));
    }
    diff == 0
}

/// Decodes `%XX` escapes and `+` (as a space), leaving malformed escapes as they are.
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (other, _) => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests;
