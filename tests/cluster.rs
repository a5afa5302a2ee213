//! `--redis` and `--reuse-port` against a real `redis-server` (Debian's
//! package; tests/install-deps.sh installs it): several miochat processes,
//! one room, one id sequence, one epoch (notes/10-redis.md).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

// ---- a real Redis, one per test ----

/// `redis-server` in a child process, killed on drop. Its port is found by
/// binding port 0 and letting go, then starting Redis on it; if another
/// process took the port in between, Redis fails to start and the next
/// port is tried, so the race costs a retry, never a wrong test.
struct RedisServer {
    child: Child,
    port: u16,
    /// Where the append-only file lives, when the test wants Redis to keep
    /// the room across a restart.
    dir: Option<PathBuf>,
}

impl RedisServer {
    /// Without persistence (`--save '' --appendonly no`): a restart loses the room.
    fn start() -> RedisServer {
        Self::start_in(None)
    }

    /// With an append-only file fsynced on every write: a restart keeps the room.
    fn start_persistent(name: &str) -> RedisServer {
        let dir = std::env::temp_dir().join(format!("miochat-redis-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self::start_in(Some(dir))
    }

    fn start_in(dir: Option<PathBuf>) -> RedisServer {
        for _ in 0..20 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            if let Some(child) = spawn_redis(port, dir.as_ref()) {
                return RedisServer { child, port, dir };
            }
        }
        panic!("redis-server did not start on any of 20 ports");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `kill -9`, then a new `redis-server` on the same port (and files).
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn restart(&mut self) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(child) = spawn_redis(self.port, self.dir.as_ref()) {
                self.child = child;
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not restart");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Starts Redis on `port` and waits until it answers `PING`; `None` if it exited.
fn spawn_redis(port: u16, dir: Option<&PathBuf>) -> Option<Child> {
    let mut command = Command::new("redis-server");
    command.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
    ]);
    match dir {
        Some(dir) => command
            .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
            .arg(dir),
        None => command.args(["--appendonly", "no"]),
    };
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server (apt-get install redis-server, or make deps)");
    let deadline = Instant::now() + DEADLINE;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        if redis_ping(port) {
            return Some(child);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn redis_ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = [0; 7];
    stream.write_all(b"*1\r\n$4\r\nPING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

// ---- miochat processes and clients ----

/// A miochat process on `redis`, once it says the room is ready.
fn node(redis: &str, extra: &[&str]) -> ServerProcess {
    let mut args = vec!["--redis", redis];
    args.extend_from_slice(extra);
    let server = ServerProcess::start(&args);
    server.wait_for_log("redis: ready");
    server
}

fn status_body(server: &ServerProcess) -> String {
    let response = http_request(server.addr, "GET /status HTTP/1.1\r\nHost: t\r\n\r\n");
    response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

/// The next object, which must be `kind` with this id (and this text, for messages).
fn expect(client: &mut RawClient, kind: &str, id: u64, text: Option<&str>) {
    let got = next_json(client);
    assert_eq!(
        (got["type"].as_str(), got["id"].as_u64()),
        (Some(kind), Some(id)),
        "{got}"
    );
    if let Some(text) = text {
        assert_eq!(got["text"], text, "{got}");
    }
}

// ---- the scenarios ----

#[test]
fn two_processes_chat_both_ways_with_the_same_ids_and_epoch() {
    let redis = RedisServer::start();
    let a = node(&redis.url(), &[]);
    let b = node(&redis.url(), &[]);
    let (mut ann, ann_welcome) = join_v1(a.addr, "?name=ann");
    let (mut bob, bob_welcome) = join_v1(b.addr, "?name=bob");
    assert_eq!(ann_welcome["epoch"], bob_welcome["epoch"]);
    assert_eq!(
        (
            ann_welcome["last_id"].as_u64(),
            bob_welcome["last_id"].as_u64()
        ),
        (Some(0), Some(0))
    );
    ann.send_text("from a");
    expect(&mut ann, "ack", 1, None);
    let seen = next_json(&mut bob);
    assert_eq!(
        (
            seen["id"].as_u64(),
            seen["from"].as_str(),
            seen["text"].as_str()
        ),
        (Some(1), Some("ann"), Some("from a"))
    );
    bob.send_text("from b");
    expect(&mut bob, "ack", 2, None);
    expect(&mut ann, "message", 2, Some("from b"));
    // A plain client on either side gets the raw frames, its own skipped.
    let mut plain = RawClient::connect(b.addr, "/chat");
    plain.skip_welcome();
    ann.send_text("three");
    expect(&mut ann, "ack", 3, None);
    assert_eq!(plain.read_text(), "three");
    for (server, connections) in [(&a, 1), (&b, 2)] {
        let body = status_body(server);
        assert!(
            body.contains(&format!(
                "\"connections\": {connections}, \"sse\": 0, \"long_poll\": 0, \"last_id\": 3"
            )),
            "{body}"
        );
        assert!(body.contains("\"redis\": \"ready\""), "{body}");
    }
}

#[test]
fn a_client_of_a_killed_process_resumes_on_another_with_exactly_what_it_missed() {
    let redis = RedisServer::start();
    let mut a = node(&redis.url(), &[]);
    let b = node(&redis.url(), &[]);
    let (mut ann, welcome) = join_v1(a.addr, "?name=ann");
    let epoch = welcome["epoch"].as_str().unwrap().to_owned();
    let (mut bob, _) = join_v1(b.addr, "?name=bob");
    bob.send_text("m1");
    expect(&mut bob, "ack", 1, None);
    expect(&mut ann, "message", 1, Some("m1"));
    a.signal("KILL");
    a.wait_exit(DEADLINE);
    for text in ["m2", "m3"] {
        bob.send_text(text);
    }
    expect(&mut bob, "ack", 2, None);
    expect(&mut bob, "ack", 3, None);
    let (mut ann, welcome) = join_v1(b.addr, &format!("?name=ann&since=1&epoch={epoch}"));
    assert_eq!(welcome["last_id"], 3);
    expect(&mut ann, "message", 2, Some("m2"));
    expect(&mut ann, "message", 3, Some("m3"));
    bob.send_text("m4");
    expect(&mut ann, "message", 4, Some("m4"));
    assert!(
        ann.poll_frame(Duration::from_millis(200)).is_none(),
        "a duplicate"
    );
}

#[test]
fn two_processes_with_reuse_port_share_one_port_and_one_room() {
    let redis = RedisServer::start();
    let a = node(&redis.url(), &["--reuse-port"]);
    let port = a.addr.to_string();
    let b = node(&redis.url(), &["--reuse-port", "--addr", &port]);
    assert_eq!(a.addr, b.addr);
    // The kernel spreads connections by a hash of their addresses: 40
    // clients all on one process would be a 1 in 2^39 chance.
    let mut clients: Vec<RawClient> = (0..40).map(|_| join_v1(a.addr, "").0).collect();
    let upgraded = |s: &ServerProcess| s.log().matches("upgraded to Chat").count();
    assert!(wait_until(DEADLINE, || upgraded(&a) + upgraded(&b) == 40));
    assert!(
        upgraded(&a) > 0 && upgraded(&b) > 0,
        "{} and {}",
        upgraded(&a),
        upgraded(&b)
    );
    // One room: a message from the first reaches the last, wherever each is.
    clients[0].send_text("to everyone");
    expect(&mut clients[0], "ack", 1, None);
    for client in &mut clients[1..] {
        expect(client, "message", 1, Some("to everyone"));
    }
}

/// A process that joined the room late has none of the old entries in its
/// log: a client resuming there gets them from the stream (XRANGE), then
/// live ones; once Redis has trimmed what it missed, one `reset` instead.
#[test]
fn a_resume_the_local_log_cannot_serve_is_served_from_the_stream_or_reset() {
    let redis = RedisServer::start();
    let a = node(&redis.url(), &[]);
    let (mut ann, welcome) = join_v1(a.addr, "?name=ann");
    let epoch = welcome["epoch"].as_str().unwrap().to_owned();
    for i in 1..=5 {
        ann.send_text(&format!("m{i}"));
        expect(&mut ann, "ack", i, None);
    }
    let late = node(&redis.url(), &[]);
    let (mut bob, welcome) = join_v1(late.addr, &format!("?since=2&epoch={epoch}"));
    assert_eq!(welcome["last_id"], 5);
    for i in 3..=5 {
        expect(&mut bob, "message", i, Some(&format!("m{i}")));
    }
    ann.send_text("m6");
    expect(&mut bob, "message", 6, Some("m6"));
    assert!(
        bob.poll_frame(Duration::from_millis(200)).is_none(),
        "a duplicate"
    );
    late.wait_for_log("resumes after 2: 3 entries from Redis, then the log");
    // Redis keeps only the last two entries now: 1..=4 are gone for good.
    let mut redis_client = TcpStream::connect(("127.0.0.1", redis.port)).unwrap();
    let trim = b"*4\r\n$5\r\nXTRIM\r\n$19\r\nmiochat:room:stream\r\n$6\r\nMAXLEN\r\n$1\r\n2\r\n";
    assert_eq!(
        call(&mut redis_client, trim),
        miochat::resp::Reply::Integer(4)
    );
    let later = node(&redis.url(), &[]);
    let (mut cat, _) = join_v1(later.addr, &format!("?since=1&epoch={epoch}"));
    let reset = next_json(&mut cat);
    assert_eq!(
        (reset["type"].as_str(), reset["last_id"].as_u64()),
        (Some("reset"), Some(6))
    );
    ann.send_text("m7");
    expect(&mut cat, "message", 7, Some("m7"));
}

/// A fake Redis that answers every connection with an HTTP error page.
#[test]
fn garbage_from_redis_is_logged_and_reconnected_not_a_panic() {
    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", fake.local_addr().unwrap());
    let server = ServerProcess::start(&["--redis", &url]);
    // Kept open: the server must notice the garbage, not a reset.
    let mut sockets = Vec::new();
    for _ in 0..3 {
        let (mut socket, _) = fake.accept().unwrap();
        let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        sockets.push(socket);
    }
    server.wait_for_log("garbage from Redis (unknown reply type byte 0x48)");
    server.wait_for_log("reconnecting to");
    // The process is alive, says Redis is down, and still serves clients.
    assert!(status_body(&server).contains("\"redis\": \"down\""));
    let (_ann, welcome) = join_v1(server.addr, "?name=ann");
    assert_eq!(welcome["last_id"], 0);
    assert!(!server.log().contains("panicked"));
}

/// Something that accepts connections and never answers: each attempt is
/// given up after the greeting timeout, logged, and made again.
#[test]
fn a_peer_that_never_answers_the_greeting_is_given_up_on_and_tried_again() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", silent.local_addr().unwrap());
    let server = ServerProcess::start(&["--redis", &url]);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(silent.accept().unwrap().0);
    }
    server.wait_for_log("no answer to the greeting in time; reconnecting to");
    assert!(status_body(&server).contains("\"redis\": \"down\""));
}

/// Senders keep sending while Redis is killed and started again (with its
/// append-only file, so the room survives): every client still connected
/// gets every message once, in one order, and no sender was dropped.
#[test]
fn a_redis_restart_pauses_senders_and_loses_or_repeats_nothing() {
    let mut redis = RedisServer::start_persistent("restart");
    let a = node(&redis.url(), &[]);
    let b = node(&redis.url(), &[]);
    let (mut ann, _) = join_v1(a.addr, "?name=ann");
    let (mut bob, _) = join_v1(b.addr, "?name=bob");
    const EACH: usize = 30;
    let send_all = |client: &mut RawClient, name: &str, range: std::ops::Range<usize>| {
        for i in range {
            client.send_text(&format!("{name} {i}"));
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    send_all(&mut ann, "ann", 0..10);
    send_all(&mut bob, "bob", 0..10);
    redis.kill();
    send_all(&mut ann, "ann", 10..20);
    send_all(&mut bob, "bob", 10..20);
    a.wait_for_log("reconnecting to");
    for server in [&a, &b] {
        let down = wait_until(DEADLINE, || {
            status_body(server).contains("\"redis\": \"down\"")
        });
        assert!(
            down,
            "/status never said Redis was down: {}",
            status_body(server)
        );
    }
    redis.restart();
    send_all(&mut ann, "ann", 20..EACH);
    send_all(&mut bob, "bob", 20..EACH);
    let ann_saw = read_room(&mut ann, "ann", 2 * EACH);
    let bob_saw = read_room(&mut bob, "bob", 2 * EACH);
    assert_eq!(ann_saw, bob_saw, "the two processes disagree on the order");
    let mut texts: Vec<&str> = ann_saw.iter().map(|(_, text)| text.as_str()).collect();
    texts.sort();
    let mut sent: Vec<String> = (0..EACH)
        .flat_map(|i| [format!("ann {i}"), format!("bob {i}")])
        .collect();
    sent.sort();
    assert_eq!(texts, sent, "lost or repeated messages");
    assert!(a.log().contains("redis: ready") && !a.log().contains("left Chat"));
}

/// Redis restarted without its data: the room gets a new epoch, ids go on
/// after the last one the processes held, connected clients notice nothing,
/// and a resume that names the old epoch is a `reset`.
#[test]
fn a_redis_that_lost_the_room_gets_a_new_epoch_and_ids_go_on() {
    let mut redis = RedisServer::start();
    let a = node(&redis.url(), &[]);
    let b = node(&redis.url(), &[]);
    let (mut ann, welcome) = join_v1(a.addr, "?name=ann");
    let old_epoch = welcome["epoch"].as_str().unwrap().to_owned();
    let (mut bob, _) = join_v1(b.addr, "?name=bob");
    for i in 1..=2 {
        ann.send_text(&format!("m{i}"));
        expect(&mut ann, "ack", i, None);
        expect(&mut bob, "message", i, None);
    }
    redis.kill();
    redis.restart();
    for server in [&a, &b] {
        server.wait_for_log("Redis lost its data; ids go on after 2");
    }
    bob.send_text("m3");
    expect(&mut bob, "ack", 3, None);
    expect(&mut ann, "message", 3, Some("m3"));
    let (mut cat, welcome) = join_v1(a.addr, &format!("?since=1&epoch={old_epoch}"));
    assert_ne!(welcome["epoch"].as_str(), Some(old_epoch.as_str()));
    let reset = next_json(&mut cat);
    assert_eq!(
        (reset["type"].as_str(), reset["last_id"].as_u64()),
        (Some("reset"), Some(3))
    );
}

/// A Redis that stops answering (SIGSTOP) without closing anything: the
/// stream connection's `XREAD BLOCK` goes unanswered past its own timeout,
/// so it is made again; once Redis runs again, the room goes on.
#[test]
fn a_redis_that_stops_answering_is_noticed_and_the_room_goes_on_when_it_is_back() {
    let redis = RedisServer::start();
    let a = node(&redis.url(), &[]);
    let (mut ann, _) = join_v1(a.addr, "?name=ann");
    let signal = |name: &str| {
        let pid = redis.child.id().to_string();
        assert!(
            Command::new("kill")
                .args([name, &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    signal("-STOP");
    // 5 s of BLOCK plus 5 s of grace: wait up to twice that.
    let noticed = wait_until(Duration::from_secs(20), || {
        a.log()
            .contains("redis stream: XREAD BLOCK went unanswered; reconnecting")
    });
    signal("-CONT");
    assert!(noticed, "the silent Redis was never noticed");
    ann.send_text("still here");
    expect(&mut ann, "ack", 1, None);
}

/// Reads `count` messages and acks as (id, text): an ack stands for the
/// client's own next message (`NAME i`, sent in that order).
fn read_room(client: &mut RawClient, name: &str, count: usize) -> Vec<(u64, String)> {
    let (mut seen, mut own) = (Vec::new(), 0);
    for _ in 0..count {
        let object = next_json(client);
        let id = object["id"].as_u64().unwrap();
        let text = match object["type"].as_str() {
            Some("ack") => {
                own += 1;
                format!("{name} {}", own - 1)
            }
            _ => object["text"].as_str().unwrap().to_owned(),
        };
        seen.push((id, text));
    }
    let ids: Vec<u64> = seen.iter().map(|(id, _)| *id).collect();
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "ids not one by one: {ids:?}"
    );
    seen
}

/// One command to a real Redis over a blocking socket; its reply.
fn call(stream: &mut TcpStream, command: &[u8]) -> miochat::resp::Reply {
    stream.write_all(command).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        let limits = miochat::resp::Limits::default();
        if let Some((reply, _)) = miochat::resp::decode(&buf, &limits).unwrap() {
            return reply;
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "Redis closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The append whose reply was lost is sent again with the same sequence
/// number: the script stores it once and answers the retry with 0; the
/// next sequence number gets the next id.
#[test]
fn the_append_script_stores_a_retried_append_once() {
    use miochat::cluster::commands;
    use miochat::resp::Reply;
    let redis = RedisServer::start();
    let mut stream = TcpStream::connect(("127.0.0.1", redis.port)).unwrap();
    let mut command = Vec::new();
    commands::load_append_script(&mut command);
    let sha = call(&mut stream, &command);
    let sha = String::from_utf8(sha.bytes().unwrap().to_vec()).unwrap();
    let append = |seq: u64| {
        let mut out = Vec::new();
        let a = commands::Append {
            process: "p1",
            seq,
            max_len: 100,
            from: "ann",
            frame: b"\x81\x01x",
        };
        commands::append(&mut out, &sha, &a);
        out
    };
    assert_eq!(call(&mut stream, &append(1)), Reply::Integer(1));
    assert_eq!(
        call(&mut stream, &append(1)),
        Reply::Integer(0),
        "a retry stored twice"
    );
    assert_eq!(call(&mut stream, &append(2)), Reply::Integer(2));
    let mut range = Vec::new();
    commands::range(&mut range, 0, 10);
    let entries = commands::range_reply(&call(&mut stream, &range)).unwrap();
    let ids: Vec<(u64, u64)> = entries.iter().map(|e| (e.id, e.seq)).collect();
    assert_eq!(ids, [(1, 1), (2, 2)]);
}

/// The other transports on a cluster: a POST on one process reaches an
/// event stream on the other with the room's id, and a stream's own POST
/// comes back to it as an ack with that id when the room's stream gives
/// it back; the POST itself is answered 202 (its id is not known yet).
#[test]
fn sse_and_post_on_two_processes_share_the_room_and_its_ids() {
    let redis = RedisServer::start();
    let a = node(&redis.url(), &[]);
    let b = node(&redis.url(), &[]);
    let (mut ws, _) = join_v1(a.addr, "?name=wes");
    let mut stream = TcpStream::connect(a.addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream
        .write_all(b"GET /events?name=sue HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut events = std::io::BufReader::new(stream);
    let mut next_data = move || -> Value {
        loop {
            let mut line = String::new();
            assert!(std::io::BufRead::read_line(&mut events, &mut line).unwrap() > 0);
            if let Some(data) = line.strip_prefix("data: ") {
                return serde_json::from_str(data.trim_end()).unwrap();
            }
        }
    };
    let key = next_data()["client"].as_str().unwrap().to_string();
    let post = |addr: SocketAddr, query: &str, text: &str| {
        let request = format!(
            "POST /send?{query} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
            text.len()
        );
        http_request(addr, &request)
    };
    // From the other process, with a name.
    let answer = post(b.addr, "name=pat", "from b over http");
    assert!(answer.starts_with("HTTP/1.1 202 Accepted"), "{answer}");
    assert!(answer.ends_with(r#"{"type":"accepted"}"#), "{answer}");
    let seen = next_data();
    assert_eq!(
        (seen["id"].as_u64(), seen["from"].as_str()),
        (Some(1), Some("pat"))
    );
    expect(&mut ws, "message", 1, Some("from b over http"));
    // The stream's own message, posted on its process: an ack in its place.
    post(a.addr, &format!("client={key}"), "mine");
    assert_eq!(next_data(), serde_json::json!({"type": "ack", "id": 2}));
    let theirs = next_json(&mut ws);
    assert_eq!(
        (theirs["id"].as_u64(), theirs["from"].as_str()),
        (Some(2), Some("sue"))
    );
}
