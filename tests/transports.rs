//! The chat without WebSocket, against the real binary: Server-Sent Events
//! (`GET /events`), long-polling (`GET /poll`) and `POST /send`, on the same
//! loop and the same log as WebSocket clients, and HTTP/1.1 as browsers use
//! it (keep-alive, pipelining, bodies, their timeouts)
//! (notes/07-sse-or-polling.md).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

// ---- clients ----

/// A raw Server-Sent Events client: the response head, then events.
struct SseClient {
    head: String,
    reader: BufReader<TcpStream>,
}

/// One event block: its `id:`, its `data:`, and the comments before it.
#[derive(Debug, Default)]
struct Event {
    id: Option<u64>,
    data: Option<Value>,
    comments: Vec<String>,
    retry: Option<u64>,
}

impl SseClient {
    /// `GET {target}` with extra header lines, and the response head.
    fn open(addr: SocketAddr, target: &str, headers: &str) -> SseClient {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        Self::open_on(stream, target, headers)
    }

    fn open_on(mut stream: TcpStream, target: &str, headers: &str) -> SseClient {
        let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        while !head.ends_with("\r\n\r\n") {
            let n = reader.read_line(&mut head).unwrap();
            assert!(n > 0, "stream closed in the head: {head:?}");
        }
        SseClient { head, reader }
    }

    /// The next block ended by a blank line (comments alone make a block too).
    fn next_block(&mut self) -> Event {
        let mut event = Event::default();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).unwrap();
            assert!(n > 0, "stream closed mid-event: {event:?}");
            let line = line.strip_suffix('\n').unwrap();
            if line.is_empty() {
                return event;
            }
            match line.split_once(": ") {
                _ if line.starts_with(':') => event.comments.push(line.to_string()),
                Some(("id", id)) => event.id = Some(id.parse().unwrap()),
                Some(("data", data)) => event.data = Some(serde_json::from_str(data).unwrap()),
                Some(("retry", ms)) => event.retry = Some(ms.parse().unwrap()),
                _ => panic!("unexpected line {line:?}"),
            }
        }
    }

    /// The next event with data, skipping comment-only blocks.
    fn next_event(&mut self) -> Event {
        loop {
            let event = self.next_block();
            if event.data.is_some() {
                return event;
            }
        }
    }

    /// The welcome that opens every stream, after the `retry:` block.
    fn welcome(&mut self) -> Value {
        assert_eq!(self.next_block().retry, Some(1000));
        let welcome = self.next_event();
        assert_eq!(welcome.id, None, "a welcome is not a position");
        let data = welcome.data.unwrap();
        assert_eq!(data["type"], "welcome");
        data
    }
}

/// A kept-alive HTTP/1.1 connection: requests one after another.
struct Http {
    stream: TcpStream,
}

impl Http {
    fn connect(addr: SocketAddr) -> Http {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        Http { stream }
    }

    /// Sends a request (head and body) and reads its response.
    fn request(&mut self, method: &str, target: &str, headers: &str, body: &[u8]) -> Response {
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {}\r\n\r\n",
            body.len()
        );
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        self.stream.write_all(&bytes).unwrap();
        self.response()
    }

    fn get(&mut self, target: &str) -> Response {
        self.stream
            .write_all(format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        self.response()
    }

    fn post(&mut self, target: &str, text: &str) -> Response {
        self.request("POST", target, "", text.as_bytes())
    }

    fn response(&mut self) -> Response {
        Response::parse(&read_response(&mut self.stream, false))
    }
}

/// One response: status, head and body.
#[derive(Debug)]
struct Response {
    status: u16,
    head: String,
    body: String,
}

impl Response {
    fn parse(bytes: &[u8]) -> Response {
        let text = String::from_utf8_lossy(bytes).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").expect("a whole response");
        Response {
            status: head[9..12].parse().unwrap(),
            head: head.to_string(),
            body: body.to_string(),
        }
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }
}

/// A plain WebSocket chat client, welcome read.
fn ws_client(server: &ServerProcess) -> RawClient {
    let mut client = RawClient::connect(server.addr, "/chat");
    client.skip_welcome();
    client
}

/// Sends `n` messages from a WebSocket client and waits until the log holds them.
fn say(server: &ServerProcess, texts: &[&str]) {
    let mut sender = ws_client(server);
    let before = server.status_field("last_id");
    for text in texts {
        sender.send_text(text);
    }
    let expected = before + texts.len() as u64;
    assert!(wait_until(DEADLINE, || server.status_field("last_id") == expected));
}

fn texts_of(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["text"].as_str().unwrap()).collect()
}

// ---- Server-Sent Events ----

#[test]
fn an_event_stream_has_its_headers_a_welcome_and_carries_websocket_messages() {
    let server = ServerProcess::start(&[]);
    let mut sse = SseClient::open(server.addr, "/events?name=ann", "");
    assert!(sse.head.starts_with("HTTP/1.1 200 OK\r\n"), "{}", sse.head);
    assert!(sse.head.contains("\r\nContent-Type: text/event-stream\r\n"));
    assert!(sse.head.contains("\r\nCache-Control: no-store\r\n"));
    let welcome = sse.welcome();
    assert_eq!(
        (welcome["name"].as_str(), welcome["last_id"].as_u64()),
        (Some("ann"), Some(0))
    );
    assert!(welcome["client"].as_str().unwrap().contains('.'));
    server.wait_for_log("streams events; 1 streams");
    assert_eq!(server.status_field("sse"), 1);
    let mut ws = ws_client(&server);
    ws.send_text("hello, stream");
    let event = sse.next_event();
    let data = event.data.unwrap();
    assert_eq!(event.id, Some(1));
    assert_eq!(
        (data["type"].as_str(), data["id"].as_u64()),
        (Some("message"), Some(1))
    );
    assert_eq!(data["text"], "hello, stream");
    assert!(data["from"].as_str().unwrap().starts_with("guest-"));
}

#[test]
fn a_stream_resumes_from_last_event_id_or_the_query_with_each_missed_message_once() {
    let server = ServerProcess::start(&[]);
    say(&server, &["one", "two", "three", "four", "five"]);
    for (target, header) in [
        ("/events", "Last-Event-ID: 2\r\n"),
        ("/events?last_event_id=2", ""),
        (
            "/events?last_event_id=4&epoch=wrong",
            "Last-Event-ID: 2\r\n",
        ),
    ] {
        let mut sse = SseClient::open(server.addr, target, header);
        let welcome = sse.welcome();
        if target.contains("epoch=wrong") {
            // Another epoch's id 2 says nothing about this log: one reset.
            let reset = sse.next_event();
            assert_eq!(reset.data.unwrap()["type"], "reset");
            continue;
        }
        let epoch = welcome["epoch"].as_str().unwrap().to_string();
        let replayed: Vec<Event> = (0..3).map(|_| sse.next_event()).collect();
        let ids: Vec<Option<u64>> = replayed.iter().map(|e| e.id).collect();
        assert_eq!(ids, [Some(3), Some(4), Some(5)], "{target}");
        let data: Vec<Value> = replayed.into_iter().map(|e| e.data.unwrap()).collect();
        assert_eq!(texts_of(&data), ["three", "four", "five"]);
        say(&server, &["live"]);
        let live = sse.next_event();
        assert_eq!(
            live.data.unwrap()["text"],
            "live",
            "then live, nothing twice"
        );
        // The same resume with the epoch named explicitly.
        let target = format!("/events?last_event_id=5&epoch={epoch}");
        let mut again = SseClient::open(server.addr, &target, "");
        again.welcome();
        assert_eq!(again.next_event().id, Some(6));
    }
}

#[test]
fn a_stream_whose_history_is_gone_gets_one_reset_with_the_id_to_go_on_from() {
    let server = ServerProcess::start(&["--history-messages", "4"]);
    let texts: Vec<String> = (1..=10).map(|i| format!("m{i}")).collect();
    say(
        &server,
        &texts.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let mut sse = SseClient::open(server.addr, "/events?last_event_id=1", "");
    sse.welcome();
    let reset = sse.next_event();
    assert_eq!(
        reset.id,
        Some(10),
        "EventSource resumes after the reset's id"
    );
    let data = reset.data.unwrap();
    assert_eq!(
        (data["type"].as_str(), data["last_id"].as_u64()),
        (Some("reset"), Some(10))
    );
    say(&server, &["after"]);
    let live = sse.next_event();
    assert_eq!(
        (live.id, live.data.unwrap()["text"].as_str()),
        (Some(11), Some("after"))
    );
}

#[test]
fn a_quiet_stream_gets_a_keep_alive_comment_each_heartbeat() {
    let server = ServerProcess::start(&["--heartbeat-ms", "200"]);
    let mut sse = SseClient::open(server.addr, "/events", "");
    sse.welcome();
    let started = Instant::now();
    let block = sse.next_block();
    assert_eq!(block.comments, [": keep-alive"]);
    assert!(block.data.is_none() && started.elapsed() >= Duration::from_millis(150));
    assert_eq!(sse.next_block().comments, [": keep-alive"]);
}

#[test]
fn a_stream_that_takes_nothing_for_a_whole_heartbeat_is_reaped_and_others_go_on() {
    let server = ServerProcess::start(&["--heartbeat-ms", "300", "--send-buffer-bytes", "4096"]);
    // A client whose receive buffer is small and which never reads again.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.addr.into()).unwrap();
    let mut silent = SseClient::open_on(socket.into(), "/events", "");
    silent.welcome();
    let mut healthy = SseClient::open(server.addr, "/events", "");
    healthy.welcome();
    let big = "x".repeat(60_000);
    say(&server, &[&big, &big, &big, &big]);
    for _ in 0..4 {
        assert_eq!(
            healthy.next_event().data.unwrap()["text"]
                .as_str()
                .unwrap()
                .len(),
            60_000
        );
    }
    server.wait_for_log("left Events: reaped by heartbeat");
    assert!(wait_until(DEADLINE, || server.status_field("sse") == 1));
    say(&server, &["still here"]);
    assert_eq!(healthy.next_event().data.unwrap()["text"], "still here");
}

// ---- long-polling ----

#[test]
fn a_poll_answers_at_once_with_what_was_missed_or_holds_until_a_message() {
    let server = ServerProcess::start(&[]);
    let mut http = Http::connect(server.addr);
    let welcome = http.get("/poll?name=lee").json();
    let first = &welcome["messages"][0];
    assert_eq!(
        (first["type"].as_str(), first["name"].as_str()),
        (Some("welcome"), Some("lee"))
    );
    assert_eq!(welcome["epoch"], first["epoch"]);
    say(&server, &["a", "b"]);
    let batch = http.get("/poll?since=0").json();
    let messages: Vec<Value> = batch["messages"].as_array().unwrap().clone();
    assert_eq!(texts_of(&messages), ["a", "b"]);
    assert_eq!(batch["last_id"], 2);
    // Nothing after 2: held until a message comes, counted in /status meanwhile.
    let mut held = Http::connect(server.addr);
    held.stream
        .write_all(b"GET /poll?since=2 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert!(wait_until(DEADLINE, || server.status_field("long_poll") == 1));
    say(&server, &["c"]);
    let batch = held.response().json();
    assert_eq!(texts_of(batch["messages"].as_array().unwrap()), ["c"]);
    assert_eq!(
        (batch["last_id"].as_u64(), server.status_field("long_poll")),
        (Some(3), 0)
    );
}

#[test]
fn a_held_poll_with_nothing_to_say_gets_an_empty_batch_at_the_poll_timeout() {
    let server = ServerProcess::start(&["--poll-timeout-ms", "400"]);
    say(&server, &["a"]);
    let mut http = Http::connect(server.addr);
    let started = Instant::now();
    let batch = http.get("/poll?since=1").json();
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(batch["messages"].as_array().unwrap().len(), 0);
    assert_eq!(batch["last_id"], 1);
    // The connection is kept: the next poll goes on the same one.
    say(&server, &["b"]);
    assert_eq!(
        texts_of(
            http.get("/poll?since=1").json()["messages"]
                .as_array()
                .unwrap()
        ),
        ["b"]
    );
}

#[test]
fn a_poll_after_evicted_history_or_from_another_epoch_gets_a_reset() {
    let server = ServerProcess::start(&["--history-messages", "4"]);
    let texts: Vec<String> = (1..=10).map(|i| format!("m{i}")).collect();
    say(
        &server,
        &texts.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let mut http = Http::connect(server.addr);
    for target in [
        "/poll?since=2",
        "/poll?since=9&epoch=another",
        "/poll?since=99",
    ] {
        let batch = http.get(target).json();
        let messages = batch["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 1, "{target}: {batch}");
        assert_eq!(messages[0]["type"], "reset", "{target}");
        assert_eq!(batch["last_id"], 10, "{target}");
    }
    let batch = http.get("/poll?since=8").json();
    assert_eq!(
        texts_of(batch["messages"].as_array().unwrap()),
        ["m9", "m10"]
    );
}

// ---- POST /send ----

#[test]
fn a_post_reaches_websocket_and_stream_clients_and_is_acked_with_its_id() {
    let server = ServerProcess::start(&[]);
    let mut ws = ws_client(&server);
    let mut sse = SseClient::open(server.addr, "/events", "");
    sse.welcome();
    let mut http = Http::connect(server.addr);
    let answer = http.post("/send?name=poster", "from plain HTTP");
    assert_eq!(
        (answer.status, answer.json()),
        (200, serde_json::json!({"type": "ack", "id": 1}))
    );
    assert_eq!(ws.read_text(), "from plain HTTP");
    let event = sse.next_event().data.unwrap();
    assert_eq!(
        (event["from"].as_str(), event["text"].as_str()),
        (Some("poster"), Some("from plain HTTP"))
    );
}

#[test]
fn a_stream_that_names_its_key_gets_an_ack_in_place_of_its_own_message() {
    let server = ServerProcess::start(&[]);
    let mut sse = SseClient::open(server.addr, "/events?name=ann", "");
    let key = sse.welcome()["client"].as_str().unwrap().to_string();
    let mut other = SseClient::open(server.addr, "/events", "");
    other.welcome();
    let mut http = Http::connect(server.addr);
    assert_eq!(
        http.post(&format!("/send?client={key}"), "mine").status,
        200
    );
    let own = sse.next_event();
    assert_eq!(
        (own.id, own.data.unwrap()),
        (Some(1), serde_json::json!({"type": "ack", "id": 1}))
    );
    let seen = other.next_event().data.unwrap();
    assert_eq!(
        (seen["from"].as_str(), seen["text"].as_str()),
        (Some("ann"), Some("mine"))
    );
    let forged = key.replacen('.', ".0", 1);
    let refused = http.post(&format!("/send?client={forged}"), "x");
    assert_eq!(
        (refused.status, refused.body.as_str()),
        (400, "unknown client key\n")
    );
}

#[test]
fn bad_posts_get_their_status_and_reason() {
    let server = ServerProcess::start(&["--max-message-bytes", "100", "--token", "s3cret"]);
    let ok = "/send?token=s3cret";
    let cases: [(&str, String, &[u8], u16, &str); 5] = [
        (
            ok,
            String::new(),
            &[0xC3, 0x28],
            400,
            "message is not valid UTF-8",
        ),
        (
            ok,
            String::new(),
            &[b'x'; 101],
            413,
            "request body over --max-message-bytes",
        ),
        ("/send", String::new(), b"hi", 401, "missing or wrong token"),
        (
            ok,
            "Origin: http://evil.example\r\n".into(),
            b"hi",
            403,
            "Origin not allowed",
        ),
        (
            "/send?token=s3cret&name=guest-3",
            String::new(),
            b"hi",
            400,
            "names like guest-12 are given to guests",
        ),
    ];
    for (target, headers, body, status, reason) in cases {
        let answer = Http::connect(server.addr).request("POST", target, &headers, body);
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (status, &*format!("{reason}\n")),
            "{target} {headers}"
        );
        assert!(
            answer.head.contains("\r\nConnection: close"),
            "a refusal closes"
        );
    }
    // No Content-Length at all: 411 (RFC 9110 §15.5.12).
    let no_length = "POST /send?token=s3cret HTTP/1.1\r\nHost: x\r\n\r\n";
    let answer = http_request(server.addr, no_length);
    assert!(
        answer.starts_with("HTTP/1.1 411 Length Required\r\n"),
        "{answer}"
    );
    assert_eq!(server.status_field("last_id"), 0, "nothing was stored");
    server.wait_for_log("refused: POST /send: 403 Origin not allowed");
}

// ---- HTTP/1.1 as browsers use it ----

#[test]
fn pipelined_requests_on_one_connection_are_answered_in_order() {
    let server = ServerProcess::start(&[]);
    let mut http = Http::connect(server.addr);
    let mut bytes = b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    bytes.extend(b"POST /send HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\npipelined");
    // A poll held behind a message that the POST before it provides at once.
    bytes.extend(b"GET /poll?since=0 HTTP/1.1\r\nHost: x\r\n\r\n");
    bytes.extend(b"GET /poll?since=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    bytes.extend(b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    http.stream.write_all(&bytes).unwrap();
    assert_eq!(http.response().json()["last_id"], 0);
    assert_eq!(
        http.response().json(),
        serde_json::json!({"type": "ack", "id": 1})
    );
    assert_eq!(
        texts_of(http.response().json()["messages"].as_array().unwrap()),
        ["pipelined"]
    );
    // The held poll keeps the last request waiting until it is answered.
    assert!(wait_until(DEADLINE, || server.status_field("long_poll") == 1));
    say(&server, &["released"]);
    assert_eq!(
        texts_of(http.response().json()["messages"].as_array().unwrap()),
        ["released"]
    );
    let last = http.response();
    assert!(last.head.contains("\r\nConnection: close"));
    assert!(
        read_to_eof(&mut http.stream).is_empty(),
        "closed after the last answer"
    );
}

#[test]
fn a_kept_alive_connection_serves_requests_one_after_another_then_idles_out_silently() {
    let server = ServerProcess::start(&["--handshake-timeout-ms", "500"]);
    let mut http = Http::connect(server.addr);
    for _ in 0..3 {
        let answer = http.get("/status");
        assert!(
            answer.head.contains("\r\nConnection: keep-alive"),
            "{}",
            answer.head
        );
    }
    assert!(http.get("/").body.contains("<html"));
    // RFC 9112 §9.5: an idle connection is closed without an answer (no 408).
    let started = Instant::now();
    assert!(read_to_eof(&mut http.stream).is_empty());
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[test]
fn a_body_that_stops_coming_is_cut_at_the_deadline_with_408() {
    let server = ServerProcess::start(&["--handshake-timeout-ms", "500"]);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    // Slow-loris on the body: the head is prompt, the body never finishes.
    stream
        .write_all(b"POST /send HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        .unwrap();
    let answer = Response::parse(&read_to_eof(&mut stream));
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (408, "request body not completed in time\n")
    );
    assert_eq!(server.status_field("last_id"), 0);
    server.wait_for_log("refused: POST /send: 408 request body not completed in time");
}

// ---- one room, three transports ----

#[test]
fn websocket_sse_and_long_poll_clients_see_the_same_ids_in_the_same_order() {
    let server = ServerProcess::start(&[]);
    let (mut ws, _welcome) = join_v1(server.addr, "?name=wes");
    let mut sse = SseClient::open(server.addr, "/events?name=sue", "");
    let sse_key = sse.welcome()["client"].as_str().unwrap().to_string();
    let mut poll = Http::connect(server.addr);
    let welcome = poll.get("/poll?name=pat").json();
    let poll_key = welcome["messages"][0]["client"]
        .as_str()
        .unwrap()
        .to_string();
    let mut post = Http::connect(server.addr);
    // Each says one thing, in turn, each waiting for the one before to be stored.
    ws.send_text("from ws");
    assert!(wait_until(DEADLINE, || server.status_field("last_id") == 1));
    post.post(&format!("/send?client={sse_key}"), "from sse");
    post.post(&format!("/send?client={poll_key}&name=pat"), "from poll");
    let expected = [
        (1, "wes", "from ws"),
        (2, "sue", "from sse"),
        (3, "pat", "from poll"),
    ];
    // WebSocket: its own message as an ack, the others as messages.
    let ws_seen: Vec<Value> = (0..3)
        .map(|_| serde_json::from_str(&ws.read_text()).unwrap())
        .collect();
    // SSE: the same, as events with ids.
    let sse_seen: Vec<Event> = (0..3).map(|_| sse.next_event()).collect();
    // Long poll: one batch, since the welcome's last_id.
    let batch = poll.get(&format!("/poll?since=0&client={poll_key}")).json();
    let poll_seen = batch["messages"].as_array().unwrap().clone();
    for (i, (id, from, text)) in expected.into_iter().enumerate() {
        for (who, object, own) in [
            ("ws", &ws_seen[i], from == "wes"),
            ("sse", sse_seen[i].data.as_ref().unwrap(), from == "sue"),
            ("poll", &poll_seen[i], from == "pat"),
        ] {
            assert_eq!(object["id"], id, "{who} #{i}: {object}");
            match own {
                true => assert_eq!(object["type"], "ack", "{who} #{i}"),
                false => assert_eq!(
                    (object["from"].as_str(), object["text"].as_str()),
                    (Some(from), Some(text)),
                    "{who} #{i}"
                ),
            }
        }
        assert_eq!(sse_seen[i].id, Some(id));
    }
}

#[test]
fn held_polls_whose_clients_hang_up_are_let_go_and_the_room_goes_on() {
    let server = ServerProcess::start(&[]);
    let mut held: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut stream = TcpStream::connect(server.addr).unwrap();
            stream
                .write_all(b"GET /poll?since=0 HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            stream
        })
        .collect();
    assert!(wait_until(DEADLINE, || server.status_field("long_poll") == 50));
    held.clear();
    // Each hang-up is a FIN the loop reads while the poll is held.
    assert!(wait_until(DEADLINE, || server.status_field("long_poll") == 0));
    let mut http = Http::connect(server.addr);
    let waiting = std::thread::spawn(move || http.get("/poll?since=0").json());
    assert!(wait_until(DEADLINE, || server.status_field("long_poll") == 1));
    say(&server, &["after the hang-ups"]);
    let batch = waiting.join().unwrap();
    assert_eq!(
        texts_of(batch["messages"].as_array().unwrap()),
        ["after the hang-ups"]
    );
}

/// Requests pipelined behind held polls wait, but only a head's worth is
/// read per connection, and it is not a share of `--max-input-bytes`: 200
/// held polls with 60 KB of requests behind each cannot make a WebSocket
/// client's large message (or a POST) fail for want of budget.
#[test]
fn requests_pipelined_behind_held_polls_do_not_pin_the_input_budget() {
    let server = ServerProcess::start(&["--max-input-bytes", "1048576"]);
    let tail = b"GET /poll?since=0 HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1500);
    let held: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut stream = TcpStream::connect(server.addr).unwrap();
            stream.set_nonblocking(true).unwrap();
            let _ = stream.write(&tail);
            stream
        })
        .collect();
    assert!(wait_until(DEADLINE, || server.status_field("long_poll") == 200));
    let mut sender = ws_client(&server);
    let mut reader = ws_client(&server);
    let big = "y".repeat(300_000);
    sender.send_text(&big);
    assert_eq!(
        reader.read_text().len(),
        300_000,
        "delivered, not refused for budget"
    );
    let mut http = Http::connect(server.addr);
    assert_eq!(http.post("/send", &"z".repeat(200_000)).status, 200);
    drop(held);
}

/// A body is read only for a request that will be taken: a POST without
/// the token (or from another site) is refused on its head, before a byte
/// of its body is held, and only `POST /send` takes a body at all.
#[test]
fn a_body_is_refused_on_its_head_when_the_request_would_be_refused() {
    let server = ServerProcess::start(&["--token", "s3cret"]);
    for (head, status, reason) in [
        (
            "POST /send HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n",
            401,
            "missing or wrong token",
        ),
        (
            "POST /send?token=s3cret HTTP/1.1\r\nHost: x\r\nOrigin: http://evil.example\r\nContent-Length: 100000\r\n\r\n",
            403,
            "Origin not allowed",
        ),
        (
            "GET /status HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n",
            400,
            "only POST /send takes a body",
        ),
    ] {
        // The head only: the answer comes without the body ever being sent.
        let mut http = Http::connect(server.addr);
        http.stream.write_all(head.as_bytes()).unwrap();
        let answer = http.response();
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (status, &*format!("{reason}\n"))
        );
    }
}

/// One message released to many held polls is many copies: they are
/// released only while the answers nobody has read yet are under
/// `--max-output-bytes`; the rest stay held until those are written (or
/// their readers dropped), so the copies held at once stay bounded.
#[test]
fn a_message_released_to_many_polls_that_do_not_read_is_bounded_by_the_output_limit() {
    let server = ServerProcess::start(&[
        "--max-output-bytes",
        "262144",
        "--send-buffer-bytes",
        "4096",
    ]);
    let baseline_kib = server.rss_kib();
    let polls: Vec<TcpStream> = (0..100)
        .map(|_| {
            let socket =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            socket.set_recv_buffer_size(4096).unwrap();
            socket.connect(&server.addr.into()).unwrap();
            let mut stream: TcpStream = socket.into();
            stream
                .write_all(b"GET /poll?since=0 HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            stream
        })
        .collect();
    assert!(wait_until(DEADLINE, || server.status_field("long_poll") == 100));
    let mut http = Http::connect(server.addr);
    assert_eq!(http.post("/send", &"m".repeat(60_000)).status, 200);
    // 100 answers of 60 KB would be 6 MB; a few fit under 256 KiB.
    let still_held = server.status_field("long_poll");
    let grown_kib = server.peak_rss_kib().saturating_sub(baseline_kib);
    eprintln!("{still_held} polls still held; peak RSS grew {grown_kib} KiB");
    assert!(
        still_held >= 80,
        "{still_held} polls still held: released past the limit"
    );
    assert!(grown_kib < 4 * 1024, "RSS grew {grown_kib} KiB");
    drop(polls);
}
