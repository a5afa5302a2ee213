use super::*;

fn answer_to(head: &str) -> Answer {
    answer(
        &Request::parse(head.as_bytes()).unwrap(),
        b"",
        &Config::default(),
        &Status {
            connections: 3,
            sse: 1,
            long_poll: 2,
            last_id: 12,
            history_messages: 5,
            history_bytes: 300,
            backend: None,
        },
    )
}

fn http_text(answer: Answer) -> String {
    match answer {
        Answer::Respond(bytes) | Answer::Refuse(bytes, _) => String::from_utf8(bytes).unwrap(),
        _ => panic!("expected an HTTP answer"),
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
        "\r\n\r\n{\"connections\": 3, \"sse\": 1, \"long_poll\": 2, \"last_id\": 12, \"history\": {\"messages\": 5, \"bytes\": 300}}\n"
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
    let get_send = http_text(answer_to("GET /send HTTP/1.1\r\n\r\n"));
    assert!(get_send.starts_with("HTTP/1.1 405") && get_send.contains("Allow: POST\r\n"));
}

#[test]
fn answers_keep_the_connection_unless_asked_not_to_and_refusals_close_it() {
    let page = http_text(answer_to("GET /status HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert!(page.contains("Connection: keep-alive\r\n"));
    let close = "GET /status HTTP/1.1\r\nConnection: close\r\n\r\n";
    assert!(http_text(answer_to(close)).contains("Connection: close\r\n"));
    let old = http_text(answer_to("GET /status HTTP/1.0\r\n\r\n"));
    assert!(old.contains("Connection: close\r\n"));
    let missing = answer_to("GET /nope HTTP/1.1\r\n\r\n");
    assert!(matches!(missing, Answer::Refuse(_, why) if why.status == 404));
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
        text.starts_with("HTTP/1.1 400") && text.ends_with("missing Upgrade: websocket header\n")
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
