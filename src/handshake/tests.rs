//! The opening handshake's rules, one by one, on request heads written out
//! in full, starting from the RFC's own example (§1.3).
use super::*;

/// §1.3: the RFC's own example request.
const RFC_REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Origin: http://server.example.com\r\nSec-WebSocket-Version: 13\r\n\r\n";

fn check(request: &str, config: &Config) -> Result<Upgrade, Refusal> {
    check_upgrade(&Request::parse(request.as_bytes())?, config)
}

fn status_of(request: &str) -> u16 {
    check(request, &Config::default())
        .err()
        .map_or(101, |r| r.status)
}

#[test]
fn the_rfc_key_gives_the_rfc_accept() {
    assert_eq!(
        accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
}

#[test]
fn the_rfc_request_is_accepted() {
    let upgrade = check(RFC_REQUEST, &Config::default()).unwrap();
    assert_eq!(
        upgrade,
        Upgrade {
            endpoint: Endpoint::Chat,
            accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into(),
            chat: ChatOptions::default(),
        }
    );
}

#[test]
fn a_chat_client_may_ask_for_v1_a_name_and_a_resume_point() {
    let request = RFC_REQUEST
        .replace("GET /chat ", "GET /chat?name=ann%20b&since=41&epoch=e7 ")
        .replace(
            "\r\n\r\n",
            "\r\nSec-WebSocket-Protocol: chat, miochat.v1\r\n\r\n",
        );
    let upgrade = check(&request, &Config::default()).unwrap();
    assert_eq!(
        upgrade.chat,
        ChatOptions {
            v1: true,
            name: Some("ann b".into()),
            since: Some(41),
            epoch: Some("e7".into()),
        }
    );
    // Only unknown subprotocols: none is picked (§4.2.2), and no refusal.
    let other = RFC_REQUEST.replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: Miochat.V1\r\n\r\n");
    assert!(!check(&other, &Config::default()).unwrap().chat.v1);
    for (query, reason) in [
        ("?name=", "name must be 1 to 32 characters"),
        ("?name=%07", "name must not contain control characters"),
        ("?since=x", "since must be a whole number"),
    ] {
        let request = RFC_REQUEST.replace("GET /chat ", &format!("GET /chat{query} "));
        let refusal = check(&request, &Config::default()).unwrap_err();
        assert_eq!((refusal.status, refusal.reason), (400, reason), "{query}");
    }
}

#[test]
fn the_head_is_found_only_once_complete() {
    let bytes = RFC_REQUEST.as_bytes();
    for cut in 0..bytes.len() {
        assert_eq!(find_head_end(&bytes[..cut]), None, "cut {cut}");
    }
    assert_eq!(find_head_end(bytes), Some(bytes.len()));
    // Searching only what is new finds the same end, wherever the reads split it.
    for known in 0..bytes.len() {
        assert_eq!(
            find_head_end_after(bytes, known),
            Some(bytes.len()),
            "known {known}"
        );
    }
}

#[test]
fn header_names_and_tokens_are_case_insensitive_and_listed() {
    let request = RFC_REQUEST
        .replace("Connection: Upgrade", "connection: keep-alive, UPGRADE")
        .replace("Upgrade: websocket", "upgrade: WebSocket");
    assert_eq!(status_of(&request), 101);
}

#[test]
fn each_broken_rule_gets_its_status() {
    let cases = [
        (RFC_REQUEST.replace("GET", "POST"), 405),
        (RFC_REQUEST.replace("HTTP/1.1", "HTTP/1.0"), 400),
        (RFC_REQUEST.replace("/chat", "/nowhere"), 404),
        (RFC_REQUEST.replace("Host: server.example.com\r\n", ""), 400),
        (RFC_REQUEST.replace("Upgrade: websocket\r\n", ""), 400),
        (
            RFC_REQUEST.replace("Connection: Upgrade", "Connection: keep-alive"),
            400,
        ),
        (RFC_REQUEST.replace("Version: 13", "Version: 8"), 426),
        (
            RFC_REQUEST.replace("Sec-WebSocket-Version: 13\r\n", ""),
            400,
        ),
        (
            RFC_REQUEST.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
            400,
        ),
        (
            RFC_REQUEST.replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="),
            400,
        ),
        (
            RFC_REQUEST.replace("dGhlIHNhbXBsZSBub25jZQ==", "!!!not base64!!!"),
            400,
        ),
        (
            RFC_REQUEST.replace("http://server.example.com", "http://evil.example"),
            403,
        ),
        (RFC_REQUEST.replace("GET /chat HTTP/1.1", "GET /chat"), 400),
        (RFC_REQUEST.replace("Host:", "Host :"), 400),
        (
            RFC_REQUEST.replace("Host: server.example.com", "Host: a\r\nHost: b"),
            400,
        ),
        (
            RFC_REQUEST.replace("Host: server.example.com", "Host: a\rb"),
            400,
        ),
        (
            RFC_REQUEST.replace("Upgrade: websocket", "Upgrade: web\x00socket"),
            400,
        ),
    ];
    for (request, status) in cases {
        assert_eq!(status_of(&request), status, "{request:?}");
    }
}

#[test]
fn echo_is_its_own_endpoint() {
    let upgrade = check(&RFC_REQUEST.replace("/chat", "/echo"), &Config::default()).unwrap();
    assert_eq!(upgrade.endpoint, Endpoint::Echo);
}

#[test]
fn allowed_origins_are_accepted() {
    let request = RFC_REQUEST.replace("http://server.example.com", "https://app.example");
    let listed = Config {
        allowed_origins: vec!["https://app.example/".into()],
        ..Config::default()
    };
    assert!(check(&request, &listed).is_ok());
    let any = Config {
        allowed_origins: vec!["*".into()],
        ..Config::default()
    };
    assert!(check(&request, &any).is_ok());
    assert_eq!(status_of(&request), 403);
    assert_eq!(
        status_of(&RFC_REQUEST.replace("Origin: http://server.example.com\r\n", "")),
        101
    );
}

#[test]
fn the_token_is_accepted_from_query_bearer_or_cookie() {
    let config = Config {
        token: Some("s3 cret".into()),
        ..Config::default()
    };
    let with = |from: &str| {
        check(
            &RFC_REQUEST.replace("Origin", &format!("{from}\r\nOrigin")),
            &config,
        )
    };
    assert_eq!(check(RFC_REQUEST, &config).unwrap_err().status, 401);
    assert_eq!(with("Authorization: Bearer wrong").unwrap_err().status, 401);
    assert!(with("Authorization: Bearer s3 cret").is_ok());
    assert!(with("Authorization: bearer s3 cret").is_ok());
    assert!(with("Cookie: a=b; miochat_token=s3 cret").is_ok());
    let query = RFC_REQUEST.replace("/chat", "/chat?x=1&token=s3%20cret");
    assert!(check(&query, &config).is_ok());
    assert_eq!(
        check(&query.replace("%20", "%21"), &config)
            .unwrap_err()
            .status,
        401
    );
}

#[test]
fn constant_time_eq_compares_whole_strings() {
    assert!(constant_time_eq(b"secret", b"secret"));
    assert!(!constant_time_eq(b"secret", b"secreT"));
    assert!(!constant_time_eq(b"secret", b"secret1"));
    assert!(!constant_time_eq(b"", b"x"));
    assert!(constant_time_eq(b"", b""));
}
