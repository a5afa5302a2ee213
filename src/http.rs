//! Plain HTTP on the WebSocket port: what each request gets.
//!
//! Like Node's `ws` sharing a port with `node:http`, one listener serves the
//! browser client (`GET /`, `/app.js`, `/style.css`), `GET /status`, the
//! upgrade to WebSocket, and the chat without WebSocket (`/events`, `/poll`,
//! `/send`: `http_chat.rs`). Interface: [`answer`] decides, [`response`],
//! [`refusal_response`] and [`switching_protocols`] write the bytes.
//!
//! Connections persist (HTTP/1.1 keep-alive, `framing.rs`) after a
//! successful answer when the request allows it; a refusal always closes
//! the connection, since after a bad request we cannot trust where the next
//! one starts.

use crate::config::Config;
use crate::framing::keep_alive;
use crate::handshake::{Refusal, Request, Upgrade, check_upgrade};
use crate::http_chat::HttpChat;

/// What a complete request gets.
#[derive(Debug)]
pub enum Answer {
    /// A valid upgrade: send `101` and switch to frames.
    Upgrade(Upgrade),
    /// A response: send these bytes; the connection then carries the next
    /// request if the request allowed it (`framing::keep_alive`).
    Respond(Vec<u8>),
    /// A refusal: send these bytes, then close. The status and reason they
    /// carry come with them, for the log line.
    Refuse(Vec<u8>, Refusal),
    /// `/events`, `/poll` or `/send`: the loop answers from the shared log.
    Chat(HttpChat),
}

/// The browser client, compiled in so the binary serves it from any working directory.
const ASSETS: [(&str, &str, &[u8]); 3] = [
    (
        "/",
        "text/html; charset=utf-8",
        include_bytes!("../client/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../client/app.js"),
    ),
    (
        "/style.css",
        "text/css; charset=utf-8",
        include_bytes!("../client/style.css"),
    ),
];

/// What `GET /status` reports: the loop fills it in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Status {
    /// Open WebSocket connections.
    pub connections: usize,
    /// Open Server-Sent Events streams.
    pub sse: usize,
    /// Long-poll requests held, waiting for a message.
    pub long_poll: usize,
    /// The newest id in the shared log (0: nothing said yet).
    pub last_id: u64,
    /// Messages and bytes the shared log holds.
    pub history_messages: usize,
    pub history_bytes: usize,
    /// With `--redis`: "ready", "busy" or "down" (`None`: no backend).
    pub backend: Option<&'static str>,
}

impl Status {
    fn json(&self) -> String {
        let redis = match self.backend {
            Some(state) => format!(", \"redis\": \"{state}\""),
            None => String::new(),
        };
        format!(
            "{{\"connections\": {}, \"sse\": {}, \"long_poll\": {}, \"last_id\": {}, \"history\": {{\"messages\": {}, \"bytes\": {}}}{redis}}}\n",
            self.connections,
            self.sse,
            self.long_poll,
            self.last_id,
            self.history_messages,
            self.history_bytes
        )
    }
}

/// Decides what a request (its head, and its body if it has one) gets.
pub fn answer(request: &Request, body: &[u8], config: &Config, status: &Status) -> Answer {
    match decide(request, body, config, status) {
        // RFC 9110 §9.3.2 and RFC 9112 §6.3: the answer to HEAD is the answer
        // to GET without its content, refusals included.
        Answer::Respond(bytes) if request.method == "HEAD" => Answer::Respond(head_only(bytes)),
        Answer::Refuse(bytes, why) if request.method == "HEAD" => {
            Answer::Refuse(head_only(bytes), why)
        }
        answer => answer,
    }
}

fn head_only(mut bytes: Vec<u8>) -> Vec<u8> {
    let head_end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(bytes.len(), |at| at + 4);
    bytes.truncate(head_end);
    bytes
}

/// The answer as if every request were a GET (or the POST `/send` takes).
fn decide(request: &Request, body: &[u8], config: &Config, status: &Status) -> Answer {
    // A request that asks for a WebSocket, or one for a path only WebSockets live at,
    // goes through every rule of §4.2.1 so a broken client hears what it got wrong.
    if request.wants_websocket() || matches!(request.path, "/chat" | "/echo") {
        return match check_upgrade(request, config) {
            Ok(upgrade) => Answer::Upgrade(upgrade),
            Err(refusal) => refuse(refusal),
        };
    }
    let allowed = match request.path {
        "/send" => "POST",
        // A stream or a held poll has no head-only form worth the states.
        "/events" | "/poll" => "GET",
        _ => "GET, HEAD",
    };
    if !allowed.split(", ").any(|m| m == request.method) {
        return method_not_allowed(allowed);
    }
    let persist = keep_alive(request);
    match request.path {
        "/events" | "/poll" | "/send" => match crate::http_chat::check(request, body, config) {
            Ok(chat) => Answer::Chat(chat),
            Err(refusal) => refuse(refusal),
        },
        "/status" => {
            let body = status.json();
            Answer::Respond(response(200, "application/json", body.as_bytes(), persist))
        }
        path => match ASSETS.iter().find(|(asset, _, _)| *asset == path) {
            Some((_, content_type, body)) => {
                Answer::Respond(response(200, content_type, body, persist))
            }
            None => refuse(Refusal {
                status: 404,
                reason: "not found",
            }),
        },
    }
}

/// What a request with a body must pass before its body is read: only
/// `POST /send` takes one (an upgrade's would be read as frames: RFC 9110
/// §9.3.1 gives a GET body no meaning), and its sender must pass the
/// upgrade's policy first (Host, Origin, token), so a client the route will
/// refuse cannot make the server hold its body.
pub fn check_before_body(request: &Request, config: &Config) -> Result<(), Refusal> {
    if request.wants_websocket() || matches!(request.path, "/chat" | "/echo") {
        return Err(Refusal {
            status: 400,
            reason: "an upgrade request must not have a body",
        });
    }
    if (request.method, request.path) != ("POST", "/send") {
        return Err(Refusal {
            status: 400,
            reason: "only POST /send takes a body",
        });
    }
    let host = crate::handshake::check_host(request)?;
    crate::handshake::check_policy(request, host, config)
}

/// A refusal, with the response that says it.
pub fn refuse(refusal: Refusal) -> Answer {
    Answer::Refuse(refusal_response(refusal), refusal)
}

/// 405, with the methods the path takes (RFC 9110 §15.5.6: `Allow` is required).
fn method_not_allowed(allowed: &'static str) -> Answer {
    let reason = match allowed {
        "POST" => "only POST can be used here",
        "GET" => "only GET can be used here",
        _ => "only GET, HEAD can be used here",
    };
    let body = format!("{reason}\n");
    let extra = [("Allow", allowed)];
    let bytes = closing_response(405, "text/plain; charset=utf-8", body.as_bytes(), &extra);
    Answer::Refuse(
        bytes,
        Refusal {
            status: 405,
            reason,
        },
    )
}

/// A refusal as an HTTP response: the status, the headers it calls for, a one-line body.
pub fn refusal_response(refusal: Refusal) -> Vec<u8> {
    let extra: &[(&str, &str)] = match refusal.status {
        // §4.4: tell the client which version we speak.
        426 => &[("Sec-WebSocket-Version", "13"), ("Upgrade", "websocket")],
        405 => &[("Allow", "GET")],
        401 => &[("WWW-Authenticate", "Bearer")],
        503 => &[("Retry-After", "1")],
        _ => &[],
    };
    let body = format!("{}\n", refusal.reason);
    closing_response(
        refusal.status,
        "text/plain; charset=utf-8",
        body.as_bytes(),
        extra,
    )
}

/// §4.2.2 item 5: the server's opening handshake, with the subprotocol it
/// picked, if any (item 5.4: only one the client offered).
pub fn switching_protocols(accept: &str, subprotocol: Option<&str>) -> Vec<u8> {
    let protocol = subprotocol
        .map(|name| format!("Sec-WebSocket-Protocol: {name}\r\n"))
        .unwrap_or_default();
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{protocol}\r\n"
    )
    .into_bytes()
}

/// A complete HTTP/1.1 response. `keep_alive` says whether the connection
/// carries another request after it (RFC 9112 §9.6: `Connection: close`
/// tells the client it does not).
pub fn response(status: u16, content_type: &str, body: &[u8], keep_alive: bool) -> Vec<u8> {
    let connection = match keep_alive {
        true => "keep-alive",
        false => "close",
    };
    with_head(status, content_type, body, connection, &[])
}

/// A response after which the connection closes, with extra headers.
pub fn closing_response(
    status: u16,
    content_type: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> Vec<u8> {
    with_head(status, content_type, body, "close", extra)
}

fn with_head(
    status: u16,
    content_type: &str,
    body: &[u8],
    connection: &str,
    extra: &[(&str, &str)],
) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: {connection}\r\nCache-Control: no-store\r\n",
        reason_phrase(status),
        body.len()
    );
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests;
