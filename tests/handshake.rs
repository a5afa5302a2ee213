//! The opening handshake over raw TCP (RFC 6455 §4.2), against the real binary.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

#[test]
fn the_rfc_key_gets_the_rfc_accept_and_the_welcome() {
    let server = ServerProcess::start(&[]);
    let mut client = RawClient::connect(server.addr, "/chat");
    assert_eq!(
        client.read_text(),
        r#"{"type":"welcome","message":"connected to chat"}"#
    );
    server.wait_for_log("upgraded to Chat");
}

#[test]
fn a_request_fed_one_byte_at_a_time_is_upgraded() {
    let server = ServerProcess::start(&[]);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_nodelay(true).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    for byte in upgrade_request("/").bytes() {
        stream.write_all(&[byte]).unwrap();
        std::thread::sleep(Duration::from_micros(300));
    }
    let mut response = [0u8; 129];
    stream.read_exact(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response);
    assert!(
        text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
        "{text}"
    );
    assert!(text.contains(ACCEPT));
}

#[test]
fn a_frame_sent_in_the_same_write_as_the_request_is_processed() {
    let server = ServerProcess::start(&[]);
    let mut echo = RawClient::connect_with(
        server.addr,
        &upgrade_request("/echo"),
        &client_frame(true, TEXT, b"early"),
    );
    assert_eq!(echo.read_text(), "early");
}

#[test]
fn an_upgrade_with_content_length_zero_is_accepted() {
    let server = ServerProcess::start(&[]);
    let request = upgrade_request("/").replace("\r\n\r\n", "\r\nContent-Length: 0\r\n\r\n");
    let mut client = RawClient::connect_with(server.addr, &request, &[]);
    client.skip_welcome();
}

#[test]
fn connection_keep_alive_upgrade_is_accepted() {
    let server = ServerProcess::start(&[]);
    let request =
        upgrade_request("/").replace("Connection: Upgrade", "Connection: keep-alive, Upgrade");
    let mut client = RawClient::connect_with(server.addr, &request, &[]);
    client.skip_welcome();
}

/// Each bad request gets its status and a one-line reason, and the server goes on serving.
#[test]
fn each_bad_request_gets_its_status_and_the_server_keeps_serving() {
    let server = ServerProcess::start(&[]);
    let good = upgrade_request("/chat");
    let mut chatter = RawClient::connect(server.addr, "/chat");
    chatter.skip_welcome();
    let big_header = format!("X-Padding: {}\r\n", "a".repeat(9000));
    let cases: Vec<(String, &str, &str)> = vec![
        (
            good.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
            "400 Bad Request",
            "Sec-WebSocket-Key",
        ),
        (
            good.replace("dGhlIHNhbXBsZSBub25jZQ==", "dG9vIHNob3J0"),
            "400 Bad Request",
            "16 bytes",
        ),
        (
            good.replace("Upgrade: websocket\r\n", ""),
            "400 Bad Request",
            "Upgrade",
        ),
        (
            good.replace("Connection: Upgrade", "Connection: close"),
            "400 Bad Request",
            "Connection",
        ),
        (
            good.replace("Host: 127.0.0.1\r\n", ""),
            "400 Bad Request",
            "Host",
        ),
        (
            good.replace("HTTP/1.1", "HTTP/1.0"),
            "400 Bad Request",
            "HTTP/1.1",
        ),
        (
            good.replace("Version: 13", "Version: 8"),
            "426 Upgrade Required",
            "version 13",
        ),
        (good.replace("GET", "POST"), "405 Method Not Allowed", "GET"),
        (
            good.replace("/chat", "/nowhere"),
            "404 Not Found",
            "no WebSocket endpoint",
        ),
        (
            "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n".into(),
            "404 Not Found",
            "not found",
        ),
        (
            good.replace(
                "Host: 127.0.0.1\r\n",
                &format!("Host: 127.0.0.1\r\n{big_header}"),
            ),
            "431",
            "8 KiB",
        ),
        ("BLAH\r\n\r\n".into(), "400 Bad Request", "request line"),
        (
            good.replace("Host: 127.0.0.1", "Host : 127.0.0.1"),
            "400 Bad Request",
            "header name",
        ),
    ];
    for (request, status, reason) in cases {
        let response = http_request(server.addr, &request);
        assert!(
            response.starts_with(&format!("HTTP/1.1 {status}")),
            "{request:?} got {response:?}"
        );
        let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
        assert!(
            body.contains(reason) && body.ends_with('\n') && body.lines().count() == 1,
            "body {body:?}"
        );
    }
    // A body that is a masked chat frame: were it read as frames, `chatter`
    // would receive "smuggled" before "still here" below.
    let smuggled = client_frame(true, TEXT, b"smuggled");
    // RFC 9112 §6.1: a chunked body cannot be framed here at all (411); a
    // Content-Length body is read as a body, then refused (400).
    for (header, status, reason) in [
        (
            format!("Content-Length: {}", smuggled.len()),
            "400 Bad Request",
            "an upgrade request must not have a body",
        ),
        (
            "Transfer-Encoding: chunked".into(),
            "411 Length Required",
            "chunked request bodies are not accepted: send Content-Length",
        ),
    ] {
        let mut request = good.replace("\r\n\r\n", &format!("\r\n{header}\r\n\r\n"));
        let mut request = std::mem::take(&mut request).into_bytes();
        request.extend_from_slice(&smuggled);
        let mut stream = TcpStream::connect(server.addr).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream.write_all(&request).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(
            response.starts_with(&format!("HTTP/1.1 {status}\r\n"))
                && response.ends_with(&format!("\r\n\r\n{reason}\n")),
            "{header}: {response:?}"
        );
    }
    let response = http_request(server.addr, &good.replace("Version: 13", "Version: 8"));
    assert!(
        response.contains("\r\nSec-WebSocket-Version: 13\r\n"),
        "{response}"
    );
    // The chat client is still served.
    let mut other = RawClient::connect(server.addr, "/chat");
    other.skip_welcome();
    other.send_text("still here");
    assert_eq!(chatter.read_text(), "still here");
}

/// The head of a response, as its lines (the status line first).
fn head_lines(response: &str) -> Vec<&str> {
    let head = response.split("\r\n\r\n").next().unwrap_or_default();
    head.split("\r\n").collect()
}

/// Each refusal that calls for a header (RFC 9110 §11.6.1, §10.2.1, §10.2.3)
/// carries it, exactly as `http::refusal_response` writes it.
#[test]
fn each_refusal_carries_the_header_its_status_calls_for() {
    let server = ServerProcess::start(&["--token", "tok-31337"]);
    let unauthorized = http_request(server.addr, &upgrade_request("/chat"));
    let lines = head_lines(&unauthorized);
    assert_eq!(lines[0], "HTTP/1.1 401 Unauthorized", "{unauthorized:?}");
    assert!(
        lines.contains(&"WWW-Authenticate: Bearer"),
        "{unauthorized:?}"
    );
    let not_allowed = http_request(server.addr, "POST /status HTTP/1.1\r\nHost: x\r\n\r\n");
    let lines = head_lines(&not_allowed);
    assert_eq!(
        lines[0], "HTTP/1.1 405 Method Not Allowed",
        "{not_allowed:?}"
    );
    assert!(lines.contains(&"Allow: GET, HEAD"), "{not_allowed:?}");

    let busy = ServerProcess::start(&["--max-connections", "1"]);
    let mut only = RawClient::connect(busy.addr, "/chat");
    only.skip_welcome();
    let refused = http_request(busy.addr, &upgrade_request("/chat"));
    let lines = head_lines(&refused);
    assert_eq!(lines[0], "HTTP/1.1 503 Service Unavailable", "{refused:?}");
    assert!(lines.contains(&"Retry-After: 1"), "{refused:?}");
}

#[test]
fn a_head_that_never_ends_is_refused_at_8_kib() {
    let server = ServerProcess::start(&[]);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nX: ").unwrap();
    let _ = stream.write_all(&[b'a'; 20_000]);
    let response = String::from_utf8_lossy(&read_to_eof(&mut stream)).into_owned();
    assert!(response.starts_with("HTTP/1.1 431"), "{response:?}");
}

#[test]
fn status_and_page_are_served_as_plain_http() {
    let server = ServerProcess::start(&[]);
    let page = http_request(server.addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        page.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/html"),
        "{page}"
    );
    let status = http_request(server.addr, "GET /status HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        status.contains("Content-Type: application/json\r\n"),
        "{status}"
    );
    assert!(
        status.ends_with(
            "{\"connections\": 0, \"sse\": 0, \"long_poll\": 0, \"last_id\": 0, \"history\": {\"messages\": 0, \"bytes\": 0}}\n"
        ),
        "{status}"
    );
}

// ---- security on the upgrade (token, Origin) ----

#[test]
fn the_token_is_required_on_the_upgrade_and_never_logged() {
    let secret = "tok-9f8e7d";
    let server = ServerProcess::start(&["--token", secret]);
    let plain = upgrade_request("/chat");
    assert!(http_request(server.addr, &plain).starts_with("HTTP/1.1 401 Unauthorized"));
    let wrong = plain.replace("/chat", "/chat?token=nope");
    assert!(http_request(server.addr, &wrong).starts_with("HTTP/1.1 401"));
    let wrong_bearer = plain.replace("Host:", "Authorization: Bearer nope\r\nHost:");
    assert!(http_request(server.addr, &wrong_bearer).starts_with("HTTP/1.1 401"));
    let by_query = plain.replace("/chat", &format!("/chat?token={secret}"));
    RawClient::connect_with(server.addr, &by_query, &[]).skip_welcome();
    let by_header = plain.replace("Host:", &format!("Authorization: Bearer {secret}\r\nHost:"));
    RawClient::connect_with(server.addr, &by_header, &[]).skip_welcome();
    let by_cookie = plain.replace(
        "Host:",
        &format!("Cookie: theme=dark; miochat_token={secret}\r\nHost:"),
    );
    RawClient::connect_with(server.addr, &by_cookie, &[]).skip_welcome();
    // The page and /status stay open.
    assert!(
        http_request(server.addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").starts_with("HTTP/1.1 200")
    );
    server.wait_for_status(0);
    assert!(
        !server.log().contains(secret),
        "the token leaked into the log"
    );
}

#[test]
fn the_token_can_come_from_the_environment() {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_miochat"));
    command.env("MIOCHAT_TOKEN", "from-env");
    let server = ServerProcess::start_with(command, &[]);
    assert!(http_request(server.addr, &upgrade_request("/")).starts_with("HTTP/1.1 401"));
    RawClient::connect_with(server.addr, &upgrade_request("/?token=from-env"), &[]).skip_welcome();
}

#[test]
fn origins_other_than_our_own_are_refused_unless_allowed() {
    let server = ServerProcess::start(&["--allow-origin", "https://friend.example"]);
    let with_origin = |origin: &str| {
        upgrade_request("/").replace(
            "Host: 127.0.0.1\r\n",
            &format!("Host: 127.0.0.1\r\nOrigin: {origin}\r\n"),
        )
    };
    let evil = http_request(server.addr, &with_origin("http://evil.example"));
    assert!(evil.starts_with("HTTP/1.1 403 Forbidden"), "{evil}");
    RawClient::connect_with(server.addr, &with_origin("http://127.0.0.1"), &[]).skip_welcome();
    RawClient::connect_with(server.addr, &with_origin("https://friend.example"), &[])
        .skip_welcome();
    RawClient::connect_with(server.addr, &upgrade_request("/"), &[]).skip_welcome();
    let open = ServerProcess::start(&["--allow-origin", "*"]);
    RawClient::connect_with(open.addr, &with_origin("http://evil.example"), &[]).skip_welcome();
}

// ---- the command line ----

#[test]
fn help_version_and_bad_flags() {
    let bin = env!("CARGO_BIN_EXE_miochat");
    let help = std::process::Command::new(bin)
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).unwrap();
    for flag in [
        "--addr",
        "--max-message-bytes",
        "--heartbeat-ms",
        "--handshake-timeout-ms",
        "--close-timeout-ms",
        "--max-buffered-bytes",
        "--max-connections",
        "--token",
        "--allow-origin",
    ] {
        assert!(text.contains(flag), "--help lacks {flag}");
    }
    let version = std::process::Command::new(bin)
        .arg("--version")
        .output()
        .unwrap();
    assert!(
        version.status.success()
            && String::from_utf8_lossy(&version.stdout).starts_with("miochat ")
    );
    for bad in [&["--bogus"][..], &["--max-message-bytes", "lots"]] {
        let out = std::process::Command::new(bin).args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(!out.stderr.is_empty());
    }
}

/// At the default level (info), every refused request leaves one line with
/// the peer, method, path (never the query, which may hold a token),
/// status and reason; a page or `/status` served leaves none.
#[test]
fn each_refusal_is_logged_at_info_with_method_path_status_and_reason() {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_miochat"));
    command.env("RUST_LOG", "info");
    let server = ServerProcess::start_with(command, &["--token", "s3cret"]);
    let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let cases = [
        (
            "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n".to_string(),
            "GET /nope: 404 not found",
        ),
        (
            "DELETE /status HTTP/1.1\r\nHost: x\r\n\r\n".into(),
            "DELETE /status: 405 only GET, HEAD can be used here",
        ),
        (
            format!(
                "GET /chat?token=s3cret HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{key}Sec-WebSocket-Version: 8\r\n\r\n"
            ),
            "GET /chat: 426 only WebSocket version 13 is supported",
        ),
        (
            format!(
                "GET /chat?token=guess-me-not HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{key}Sec-WebSocket-Version: 13\r\n\r\n"
            ),
            "GET /chat: 401 missing or wrong token",
        ),
        (
            "BLAH\r\n\r\n".into(),
            "? (malformed request): 400 malformed request line",
        ),
        (
            "POST /send HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".into(),
            "POST /send: 411 chunked request bodies are not accepted: send Content-Length",
        ),
    ];
    for (request, line) in &cases {
        http_request(server.addr, request);
        server.wait_for_log(&format!("refused: {line}"));
    }
    http_request(
        server.addr,
        "GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    http_request(
        server.addr,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let log = server.log();
    assert_eq!(log.matches(" refused: ").count(), cases.len(), "{log}");
    assert!(
        !log.contains("s3cret") && !log.contains("guess-me-not"),
        "a token in the log: {log}"
    );
    assert!(
        !log.contains("answered"),
        "a page served is not news at info: {log}"
    );
}
