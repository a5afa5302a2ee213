//! Plain HTTP on the WebSocket port: what each request head gets.
//!
//! Like Node's `ws` sharing a port with `node:http`, one listener serves the
//! browser client (`GET /`, `/app.js`, `/style.css`), `GET /status`, and the
//! upgrade to WebSocket. Interface: [`answer`] decides, [`response`] and
//! [`switching_protocols`] write the bytes. Every answer but `101` closes the
//! connection (`Connection: close`): this server does not do keep-alive.

use crate::config::Config;
use crate::handshake::{Refusal, Request, Upgrade, check_upgrade};

/// What a complete request head gets.
#[derive(Debug)]
pub enum Answer {
    /// A valid upgrade: send `101` and switch to frames.
    Upgrade(Upgrade),
    /// Any other answer: send these bytes, then close.
    Http(Vec<u8>),
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
            "{{\"connections\": {}, \"last_id\": {}, \"history\": {{\"messages\": {}, \"bytes\": {}}}{redis}}}\n",
            self.connections, self.last_id, self.history_messages, self.history_bytes
        )
    }
}

/// Decides what a request gets.
pub fn answer(request: &Request, config: &Config, status: &Status) -> Answer {
    match decide(request, config, status) {
        // RFC 9110 §9.3.2 and RFC 9112 §6.3: the answer to HEAD is the answer
        // to GET without its content, refusals included.
        Answer::Http(mut bytes) if request.method == "HEAD" => {
            let head_end = bytes
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map_or(bytes.len(), |at| at + 4);
            bytes.truncate(head_end);
            Answer::Http(bytes)
        }
        answer => answer,
    }
}

/// The answer as if every request were a GET: an upgrade or a full response.
fn decide(request: &Request, config: &Config, status: &Status) -> Answer {
    // A request that asks for a WebSocket, or one for a path only WebSockets live at,
    // goes through every rule of §4.2.1 so a broken client hears what it got wrong.
    if request.wants_websocket() || matches!(request.path, "/chat" | "/echo") {
        return match check_upgrade(request, config) {
            Ok(upgrade) => Answer::Upgrade(upgrade),
            Err(refusal) => Answer::Http(refusal_response(refusal)),
        };
    }
    if request.method != "GET" && request.method != "HEAD" {
        let reason = "only GET and HEAD are served here";
        return Answer::Http(refusal_response(Refusal {
            status: 405,
            reason,
        }));
    }
    if request.path == "/status" {
        let body = status.json();
        return Answer::Http(response(200, "application/json", body.as_bytes(), &[]));
    }
    Answer::Http(
        match ASSETS.iter().find(|(path, _, _)| *path == request.path) {
            Some((_, content_type, body)) => response(200, content_type, body, &[]),
            None => refusal_response(Refusal {
                status: 404,
                reason: "not found",
            }),
        },
    )
}

/// A refusal as an HTTP response: the status, the headers it calls for, a one-line body.
pub fn refusal_response(refusal: Refusal) -> Vec<u8> {
    let extra: &[(&str, &str)] = match refusal.status {
        // §4.4: tell the client which version we speak.
        426 => &[("Sec-WebSocket-Version", "13"), ("Upgrade", "websocket")],
        405 => &[("Allow", "GET, HEAD")],
        401 => &[("WWW-Authenticate", "Bearer")],
        503 => &[("Retry-After", "1")],
        _ => &[],
    };
    let body = format!("{}\n", refusal.reason);
    response(
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

/// A complete HTTP/1.1 response that ends the connection.
pub fn response(status: u16, content_type: &str, body: &[u8], extra: &[(&str, &str)]) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n",
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
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer_to(head: &str) -> Answer {
        answer(
            &Request::parse(head.as_bytes()).unwrap(),
            &Config::default(),
            &Status {
                connections: 3,
                last_id: 12,
                history_messages: 5,
                history_bytes: 300,
                backend: None,
            },
        )
    }

    fn http_text(answer: Answer) -> String {
        match answer {
            Answer::Http(bytes) => String::from_utf8(bytes).unwrap(),
            Answer::Upgrade(_) => panic!("expected an HTTP answer"),
        }
    }

    #[test]
    fn the_page_and_its_assets_are_served_with_their_types() {
        let page = http_text(answer_to("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(page.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/html"));
        assert!(http_text(answer_to("GET /app.js HTTP/1.1\r\n\r\n")).contains("text/javascript"));
        assert!(http_text(answer_to("GET /style.css HTTP/1.1\r\n\r\n")).contains("text/css"));
    }

    #[test]
    fn status_reports_open_connections_as_json() {
        let status = http_text(answer_to("GET /status HTTP/1.1\r\n\r\n"));
        assert!(status.contains("Content-Type: application/json"));
        assert!(status.ends_with(
            "\r\n\r\n{\"connections\": 3, \"last_id\": 12, \"history\": {\"messages\": 5, \"bytes\": 300}}\n"
        ));
    }

    #[test]
    fn status_names_the_redis_backend_state_only_when_there_is_one() {
        let status = Status {
            backend: Some("down"),
            ..Status::default()
        };
        assert!(
            status
                .json()
                .ends_with("\"bytes\": 0}, \"redis\": \"down\"}\n")
        );
        assert!(!Status::default().json().contains("redis"));
    }

    #[test]
    fn unknown_paths_and_methods_are_refused() {
        assert!(http_text(answer_to("GET /nope HTTP/1.1\r\n\r\n")).starts_with("HTTP/1.1 404"));
        let post = http_text(answer_to("POST /status HTTP/1.1\r\n\r\n"));
        assert!(post.starts_with("HTTP/1.1 405") && post.contains("Allow: GET, HEAD"));
    }

    #[test]
    fn head_gets_the_headers_of_get_without_the_body() {
        let head = http_text(answer_to("HEAD / HTTP/1.1\r\n\r\n"));
        let get = http_text(answer_to("GET / HTTP/1.1\r\n\r\n"));
        assert!(head.ends_with("\r\n\r\n") && get.starts_with(&head) && get.len() > head.len());
    }

    #[test]
    fn head_refusals_carry_no_body_either() {
        let text = http_text(answer_to("HEAD /chat HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(
            text.starts_with("HTTP/1.1 405") && text.ends_with("\r\n\r\n"),
            "{text:?}"
        );
    }

    #[test]
    fn a_plain_get_on_a_websocket_path_is_told_what_is_missing() {
        let text = http_text(answer_to("GET /chat HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(
            text.starts_with("HTTP/1.1 400")
                && text.ends_with("missing Upgrade: websocket header\n")
        );
    }

    #[test]
    fn a_wrong_version_gets_426_with_the_version_we_speak() {
        let text = http_text(answer_to(
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
        ));
        assert!(
            text.starts_with("HTTP/1.1 426 Upgrade Required")
                && text.contains("Sec-WebSocket-Version: 13\r\n")
        );
    }

    #[test]
    fn the_101_carries_the_accept_key() {
        let text =
            String::from_utf8(switching_protocols("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", None)).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        );
    }
}
