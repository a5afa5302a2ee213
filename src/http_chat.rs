//! The chat without WebSocket: what `GET /events` (Server-Sent Events),
//! `GET /poll` (long-polling) and `POST /send` ask for, checked. Pure: a
//! parsed request in, its options or a refusal out; the loop does the rest
//! (`server/transports.rs`, notes/07-sse-or-polling.md).
//!
//! The upgrade's rules apply to all three: a `Host`, the Origin check
//! (a cross-site POST is the CSRF twin of cross-site WebSocket hijacking)
//! and the token when `--token` is set.

use crate::config::Config;
use crate::handshake::{Refusal, Request, check_host, check_policy};

/// What a listening client (SSE stream or long-poll) asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listen {
    /// `?name=`: how the others see it; `None` means `guest-<n>`.
    pub name: Option<String>,
    /// The last id it saw, to resume after: `Last-Event-ID`,
    /// `?last_event_id=` or `?since=`. `None`: start live.
    pub since: Option<u64>,
    /// `?epoch=`: the epoch `since` belongs to; `None` means the current one.
    pub epoch: Option<String>,
    /// `?client=`: the key a long-poll client was given in its welcome.
    pub client: Option<String>,
}

/// A message sent over plain HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    /// `?name=`, for a sender that names no client key.
    pub name: Option<String>,
    /// `?client=`: the key of the SSE stream or long-poll client sending it.
    pub client: Option<String>,
    /// The message: the whole body, as UTF-8 text.
    pub text: String,
}

/// One of the three routes, with what it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpChat {
    Events(Listen),
    Poll(Listen),
    Send(Post),
}

/// Checks a request for `/events`, `/poll` or `/send` (the caller matched
/// the path and the method).
pub fn check(request: &Request, body: &[u8], config: &Config) -> Result<HttpChat, Refusal> {
    let host = check_host(request)?;
    check_policy(request, host, config)?;
    let name = request.query_param("name");
    if let Some(name) = &name {
        crate::v1::check_name(name).map_err(|reason| Refusal {
            status: 400,
            reason,
        })?;
    }
    let client = request.query_param("client");
    match request.path {
        "/send" => Ok(HttpChat::Send(check_post(request, body, name, client)?)),
        path => {
            let listen = Listen {
                name,
                since: resume_point(request, path == "/events")?,
                epoch: request.query_param("epoch"),
                client,
            };
            Ok(match path {
                "/events" => HttpChat::Events(listen),
                _ => HttpChat::Poll(listen),
            })
        }
    }
}

/// Where a listener resumes. For an event stream, `Last-Event-ID` (what
/// `EventSource` sends when it reconnects on its own) comes first, since it
/// is newer than the URL the page opened the stream with.
fn resume_point(request: &Request, events: bool) -> Result<Option<u64>, Refusal> {
    let header = request.header("Last-Event-ID").filter(|_| events);
    if let Some(id) = header.and_then(crate::sse::parse_id) {
        return Ok(Some(id));
    }
    let query = match events {
        true => request
            .query_param("last_event_id")
            .or_else(|| request.query_param("since")),
        false => request.query_param("since"),
    };
    match query {
        Some(n) => n.parse().map(Some).map_err(|_| Refusal {
            status: 400,
            reason: "since must be a whole number",
        }),
        None => Ok(None),
    }
}

/// `POST /send`: the body is the message. `Content-Length` is required
/// (RFC 9110 §15.5.12, 411): without it there is no telling where the
/// body ends. Its size was checked against `--max-message-bytes` before
/// it was read (413, in the session).
fn check_post(
    request: &Request,
    body: &[u8],
    name: Option<String>,
    client: Option<String>,
) -> Result<Post, Refusal> {
    if request.header("Content-Length").is_none() {
        return Err(Refusal {
            status: 411,
            reason: "POST /send needs Content-Length",
        });
    }
    let text = std::str::from_utf8(body).map_err(|_| Refusal {
        status: 400,
        reason: "message is not valid UTF-8",
    })?;
    Ok(Post {
        name,
        client,
        text: text.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(head: &str, body: &[u8]) -> Result<HttpChat, Refusal> {
        let config = Config {
            token: Some("s3cret".into()),
            ..Config::default()
        };
        check(&Request::parse(head.as_bytes()).unwrap(), body, &config)
    }

    #[test]
    fn an_event_stream_resumes_from_last_event_id_before_the_query() {
        let head = "GET /events?last_event_id=3&epoch=e&token=s3cret HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 7\r\n\r\n";
        let Ok(HttpChat::Events(listen)) = checked(head, b"") else {
            panic!()
        };
        assert_eq!(
            (listen.since, listen.epoch.as_deref()),
            (Some(7), Some("e"))
        );
        let head = "GET /events?last_event_id=3&token=s3cret HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(matches!(checked(head, b""), Ok(HttpChat::Events(l)) if l.since == Some(3)));
    }

    #[test]
    fn a_post_carries_its_text_name_and_client() {
        let head = "POST /send?name=ann&client=4.ab&token=s3cret HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n";
        let post = Post {
            name: Some("ann".into()),
            client: Some("4.ab".into()),
            text: "hi".into(),
        };
        assert_eq!(checked(head, b"hi"), Ok(HttpChat::Send(post)));
    }

    #[test]
    fn the_upgrade_rules_apply_and_bad_posts_are_refused() {
        let status = |head: &str, body: &[u8]| checked(head, body).unwrap_err().status;
        let no_token = "POST /send HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(status(no_token, b"hi"), 401);
        let cross_site = "POST /send?token=s3cret HTTP/1.1\r\nHost: x\r\nOrigin: http://evil\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(status(cross_site, b"hi"), 403);
        let no_length = "POST /send?token=s3cret HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(status(no_length, b""), 411);
        let bad_utf8 = "POST /send?token=s3cret HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n";
        assert_eq!(status(bad_utf8, &[0xFF]), 400);
        let bad_since = "GET /poll?since=x&token=s3cret HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(status(bad_since, b""), 400);
    }
}
