//! Shared by the scenario tests: start the real binary on an ephemeral port,
//! and talk to it as a raw TCP client with a small client-side codec written
//! here, independently of the server's own `frame.rs`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `COMMAND` as `bash -c` runs it, in the repository's top folder, with no
/// standard input: a command from a note (`A & B`, `$(...)` and quotes
/// included). Its output goes nowhere until the caller says otherwise.
pub fn shell(command: &str) -> Command {
    let mut shell = Command::new("bash");
    shell
        .args(["-c", command])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    shell
}

/// How long a broken server may take before a test gives up on it. Generous:
/// it bounds how long a failure takes to notice, it is not a speed claim.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// The server binary running in a child process; killed and reaped on drop.
/// If the test is failing, its log is printed, as the first thing to read.
pub struct ServerProcess {
    pub child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl ServerProcess {
    /// Starts `miochat --addr 127.0.0.1:0 ARGS` and waits for its `listening on` line.
    pub fn start(args: &[&str]) -> ServerProcess {
        Self::start_with(Command::new(env!("CARGO_BIN_EXE_miochat")), args)
    }

    /// Same, with a prepared command (for `prlimit` or environment variables).
    pub fn start_with(mut command: Command, args: &[&str]) -> ServerProcess {
        if !args.contains(&"--addr") {
            command.args(["--addr", "127.0.0.1:0"]);
        }
        command.args(args);
        // A level the caller set on the command wins (notes.rs runs at trace).
        if !command.get_envs().any(|(name, _)| name == "RUST_LOG") {
            command.env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or("debug".into()),
            );
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn miochat");
        let log = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let addr = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    let _ = addr_tx.send(addr);
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = match addr_rx.recv_timeout(DEADLINE) {
            Ok(addr) => addr.parse().expect("listening address"),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "server did not print its address; log:\n{}",
                    log.lock().unwrap()
                );
            }
        };
        ServerProcess { child, addr, log }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle` (the server logs asynchronously to us).
    pub fn wait_for_log(&self, needle: &str) {
        let found = wait_until(DEADLINE, || self.log().contains(needle));
        assert!(found, "log never said {needle:?}");
    }

    /// The token the server gave the connection from `peer` (`Token(7)`), as
    /// its `accepted` log line says: the session's own log lines name only that.
    pub fn token_of(&self, peer: SocketAddr) -> String {
        let needle = format!(" accepted {peer}");
        self.wait_for_log(&needle);
        let log = self.log();
        let line = log.lines().find(|l| l.ends_with(&needle)).unwrap();
        let token = line.split_whitespace().rev().nth(2).unwrap();
        token.to_owned()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// utime + stime in clock ticks, from /proc/PID/stat.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after_name.split(' ').collect();
        // Fields 14 and 15 of stat(5), counted from after the name (field 3 is index 0).
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    /// VmRSS in KiB, from /proc/PID/status: what the server holds now.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// VmHWM in KiB, from /proc/PID/status: the peak of VmRSS since the
    /// server started, kept by the kernel, so no sampling can miss it.
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Sends a signal by its `kill` name: "INT", "TERM", "STOP", "CONT".
    /// STOP freezes the server so a test can line up what it will find when
    /// it wakes; the guard's kill still works on a stopped process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the server to exit, at most `within`; returns its status.
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let end = Instant::now() + within;
        loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                return exit;
            }
            assert!(
                Instant::now() < end,
                "the server did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the line `reap_closed` logs when a WebSocket client leaves,
    /// `{peer} left {endpoint}: {cause}, code {code} {reason:?}; N open`,
    /// so the close code is checked as a number, for that very client.
    pub fn wait_for_left(
        &self,
        peer: SocketAddr,
        endpoint: &str,
        cause: &str,
        code: u16,
        reason: &str,
    ) {
        self.wait_for_log(&format!(
            "{peer} left {endpoint}: {cause}, code {code} {reason:?}; "
        ));
    }

    /// `GET /status` → the number of open connections it reports.
    pub fn status_connections(&self) -> u64 {
        self.status_field("connections")
    }

    /// `GET /status` → the number after `"FIELD": ` in its JSON body.
    pub fn status_field(&self, field: &str) -> u64 {
        let response = http_request(self.addr, "GET /status HTTP/1.1\r\nHost: t\r\n\r\n");
        let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
        let after = body
            .split(&format!("\"{field}\": "))
            .nth(1)
            .unwrap_or_else(|| panic!("no {field} in /status body {body:?}"));
        let digits: String = after.chars().take_while(|c| c.is_ascii_digit()).collect();
        digits
            .parse()
            .unwrap_or_else(|_| panic!("bad /status body {body:?}"))
    }

    pub fn wait_for_status(&self, expected: u64) {
        let ok = wait_until(DEADLINE, || self.status_connections() == expected);
        assert!(
            ok,
            "/status never reported {expected}, last {}",
            self.status_connections()
        );
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- server log ----\n{}---- end of server log ----",
                self.log()
            );
        }
    }
}

/// Polls `condition` until it holds or `deadline` passes.
pub fn wait_until(deadline: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    condition()
}

/// Sends a raw request and reads the whole response: its head, and a body
/// of exactly `Content-Length` bytes. A response that says
/// `Connection: close` must then be followed by the server's FIN within the
/// deadline (the server closes after answering); one that keeps the
/// connection alive is returned as soon as it is complete.
pub fn http_request(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let response = read_response(&mut stream, request.starts_with("HEAD "));
    let text = String::from_utf8_lossy(&response).into_owned();
    if text
        .to_ascii_lowercase()
        .contains("\r\nconnection: close\r\n")
    {
        let after = read_to_eof(&mut stream);
        assert!(after.is_empty(), "bytes after a closing answer: {after:?}");
    }
    text
}

/// Reads one HTTP response: the head, then `Content-Length` bytes of body
/// (none for the answer to a HEAD, RFC 9110 §9.3.2).
pub fn read_response(stream: &mut TcpStream, head_only: bool) -> Vec<u8> {
    let mut received = Vec::new();
    let mut byte = [0u8; 1];
    while !received.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(0) => return received,
            Ok(_) => received.push(byte[0]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("{} (head so far {received:?})", read_failure(&e, stream)),
        }
    }
    let head = String::from_utf8_lossy(&received).to_ascii_lowercase();
    let length = head
        .split("\r\n")
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |n| n.trim().parse::<usize>().unwrap());
    let mut body = vec![0u8; if head_only { 0 } else { length }];
    stream
        .read_exact(&mut body)
        .unwrap_or_else(|e| panic!("{} (body of {length} bytes)", read_failure(&e, stream)));
    received.extend(body);
    received
}

/// Reads until the end of the stream: only `Ok(0)`, the peer's FIN, ends it.
/// A read timeout panics (silence is not a close), and so does a reset (an
/// answer followed by a reset may never reach a real client).
pub fn read_to_eof(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return received,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!(
                "{} (after {} bytes: {:?})",
                read_failure(&e, stream),
                received.len(),
                String::from_utf8_lossy(&received)
            ),
        }
    }
}

/// Checks that `bytes` are one whole HTTP response whose head starts with
/// `status_line` and whose body is one reason line of exactly Content-Length
/// bytes; returns the head and the body.
pub fn assert_whole_response(bytes: &[u8], status_line: &str) -> (String, String) {
    let text = String::from_utf8_lossy(bytes).into_owned();
    assert!(
        text.starts_with(status_line),
        "expected {status_line:?}, got {text:?}"
    );
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("the response head never ended: {text:?}"));
    let length = format!("Content-Length: {}", body.len());
    assert!(
        head.lines().any(|line| line == length),
        "the body is not Content-Length bytes long: {text:?}"
    );
    assert!(
        body.len() > 1 && body.ends_with('\n') && body.lines().count() == 1,
        "the body is not one reason line: {body:?}"
    );
    (head.to_owned(), body.to_owned())
}

/// Says why a read failed, telling a timeout (the server stayed silent but
/// kept the connection open) from a reset.
pub fn read_failure(e: &std::io::Error, stream: &TcpStream) -> String {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => format!(
            "the read timed out after {:?}: the server neither sent more nor closed \
             the connection (a timeout is not the end of the stream)",
            stream.read_timeout().ok().flatten()
        ),
        ErrorKind::ConnectionReset => {
            format!("the server reset the connection instead of closing it: {e}")
        }
        _ => format!("the read failed: {e}"),
    }
}

/// Raises this test process's soft limit on open files to `n` (at most the
/// hard limit), for tests that hold thousands of sockets (TESTING.md).
pub fn raise_fd_limit(n: u64) {
    let status = Command::new("prlimit")
        .args([
            "--pid",
            &std::process::id().to_string(),
            &format!("--nofile={n}:"),
        ])
        .status()
        .expect("prlimit (util-linux) is installed by tests/install-deps.sh");
    assert!(status.success(), "prlimit --nofile={n}: failed");
}

/// The server under `prlimit`, with room for `n` open files.
pub fn server_with_fd_limit(n: u64, args: &[&str]) -> ServerProcess {
    let mut command = Command::new("prlimit");
    command.args([&format!("--nofile={n}:"), env!("CARGO_BIN_EXE_miochat")]);
    ServerProcess::start_with(command, args)
}

/// The RFC 6455 §1.3 example key and its accept value.
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

pub fn upgrade_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

// ---- a raw WebSocket client, written for the tests ----

pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CONTINUATION: u8 = 0x0;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// One frame as the server sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// A client frame: masked with a fixed key (the key's value does not matter to the server).
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0xA1, 0xB2, 0xC3, 0xD4];
    let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            out.push(0x80 | 126);
            out.extend((n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend((n as u64).to_be_bytes());
        }
    }
    out.extend(mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// A client on a raw socket, after a successful upgrade.
pub struct RawClient {
    pub stream: TcpStream,
    /// The head of the server's 101 answer.
    pub head: String,
    /// Bytes read past what has been parsed.
    pending: Vec<u8>,
}

impl RawClient {
    /// Connects and upgrades on `path`; panics unless the answer is a correct 101.
    pub fn connect(addr: SocketAddr, path: &str) -> RawClient {
        Self::connect_with(addr, &upgrade_request(path), &[])
    }

    /// Sends `request` followed by `first_bytes` in one write; expects 101.
    pub fn connect_with(addr: SocketAddr, request: &str, first_bytes: &[u8]) -> RawClient {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut bytes = request.as_bytes().to_vec();
        bytes.extend_from_slice(first_bytes);
        stream.write_all(&bytes).unwrap();
        RawClient::expect_upgrade(stream)
    }

    /// Reads the answer to an upgrade request already sent on `stream`:
    /// the first bytes must be a correct 101 (nothing may come before it).
    pub fn expect_upgrade(stream: TcpStream) -> RawClient {
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut client = RawClient {
            stream,
            head: String::new(),
            pending: Vec::new(),
        };
        let head = client.read_head();
        client.head = head.clone();
        assert!(
            head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
            "no 101: {head:?}"
        );
        assert!(
            head.contains(&format!("Sec-WebSocket-Accept: {ACCEPT}\r\n")),
            "{head:?}"
        );
        client
    }

    /// Wraps a socket whose response began with `HTTP/1.1 101` (those 12 bytes already read).
    pub fn from_upgraded(stream: TcpStream) -> RawClient {
        let mut client = RawClient {
            stream,
            head: String::new(),
            pending: b"HTTP/1.1 101".to_vec(),
        };
        let head = client.read_head();
        client.head = head.clone();
        assert!(head.contains(ACCEPT), "{head:?}");
        client
    }

    fn read_head(&mut self) -> String {
        loop {
            if let Some(at) = self.pending.windows(4).position(|w| w == b"\r\n\r\n") {
                let head: Vec<u8> = self.pending.drain(..at + 4).collect();
                return String::from_utf8_lossy(&head).into_owned();
            }
            assert!(
                self.fill() > 0,
                "connection closed before the response head"
            );
        }
    }

    /// Reads once; 0 only at the real end of the stream. A timeout or a reset panics.
    fn fill(&mut self) -> usize {
        match self.try_fill() {
            Ok(n) => n,
            Err(e) => panic!("{}", read_failure(&e, &self.stream)),
        }
    }

    /// Reads once, retrying `Interrupted`; `Ok(0)` is the end of the stream.
    fn try_fill(&mut self) -> std::io::Result<usize> {
        let mut chunk = [0u8; 65536];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.pending.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    pub fn send_text(&mut self, text: &str) {
        self.send(&client_frame(true, TEXT, text.as_bytes()));
    }

    /// Reads the next frame; `None` when the server closed the connection
    /// (`Ok(0)`). Panics if nothing arrives within the read timeout, or on a reset.
    /// The next `n` bytes exactly as they came, unparsed (for golden bytes).
    pub fn read_bytes(&mut self, n: usize) -> Vec<u8> {
        while self.pending.len() < n {
            assert!(self.fill() > 0, "the stream ended before {n} bytes");
        }
        self.pending.drain(..n).collect()
    }

    pub fn read_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.take_parsed() {
                return Some(frame);
            }
            if self.fill() == 0 {
                assert!(
                    self.pending.is_empty(),
                    "the stream ended inside a frame: {:?}",
                    self.pending
                );
                return None;
            }
        }
    }

    /// Waits at most `wait` for the next frame; `None` if none completed in
    /// that time. Panics if the server closes or resets the connection.
    pub fn poll_frame(&mut self, wait: Duration) -> Option<Frame> {
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let result = loop {
            if let Some(frame) = self.take_parsed() {
                break Some(frame);
            }
            match self.try_fill() {
                Ok(0) => panic!("the server closed the connection"),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    break None;
                }
                Err(e) => panic!("{}", read_failure(&e, &self.stream)),
            }
        };
        self.stream.set_read_timeout(Some(DEADLINE)).unwrap();
        result
    }

    fn take_parsed(&mut self) -> Option<Frame> {
        let (frame, used) = parse_server_frame(&self.pending)?;
        self.pending.drain(..used);
        Some(frame)
    }

    /// Reads frames, answering nothing, until a data frame; panics on close.
    pub fn read_message(&mut self) -> Frame {
        loop {
            let frame = self
                .read_frame()
                .expect("connection closed while waiting for a message");
            if matches!(frame.opcode, TEXT | BINARY) {
                return frame;
            }
            assert_ne!(
                frame.opcode,
                CLOSE,
                "got close {:?} while waiting for a message",
                frame.close_code()
            );
        }
    }

    pub fn read_text(&mut self) -> String {
        String::from_utf8(self.read_message().payload).unwrap()
    }

    /// Skips the welcome message every chat client gets first.
    pub fn skip_welcome(&mut self) {
        let welcome = self.read_text();
        assert!(welcome.contains("welcome"), "{welcome}");
    }

    /// Expects a Close with `code` (skipping data and pings before it), then the end of the stream.
    pub fn expect_close(&mut self, code: u16) {
        loop {
            let frame = self.read_frame().expect("closed without a close frame");
            if frame.opcode == CLOSE {
                assert_eq!(
                    frame.close_code(),
                    Some(code),
                    "close payload {:?}",
                    frame.payload
                );
                break;
            }
        }
        self.expect_eof();
    }

    /// Expects the server to close TCP (after we stop sending): frames may
    /// come first, then `Ok(0)`. A read timeout or a reset fails the test.
    pub fn expect_eof(&mut self) {
        while self.read_frame().is_some() {}
    }
}

/// Parses one unmasked server frame; `None` until it is complete.
fn parse_server_frame(buf: &[u8]) -> Option<(Frame, usize)> {
    let (b0, b1) = (*buf.first()?, *buf.get(1)?);
    assert_eq!(b1 & 0x80, 0, "server frames must not be masked");
    let (len, start) = match b1 & 0x7F {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().unwrap()) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().unwrap()) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let payload = buf.get(start..start + len)?.to_vec();
    Some((
        Frame {
            fin: b0 & 0x80 != 0,
            opcode: b0 & 0x0F,
            payload,
        },
        start + len,
    ))
}

// ---- miochat.v1 clients ----

/// An upgrade request for `/chat{query}` offering `miochat.v1`.
pub fn v1_request(query: &str) -> String {
    upgrade_request(&format!("/chat{query}"))
        .replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: miochat.v1\r\n\r\n")
}

/// A `miochat.v1` client on `addr` (the subprotocol echoed) and its welcome.
pub fn join_v1(addr: SocketAddr, query: &str) -> (RawClient, serde_json::Value) {
    let mut client = RawClient::connect_with(addr, &v1_request(query), &[]);
    assert!(
        client
            .head
            .contains("\r\nSec-WebSocket-Protocol: miochat.v1\r\n"),
        "{}",
        client.head
    );
    let welcome = next_json(&mut client);
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    (client, welcome)
}

/// The next frame, which must be a text frame holding one JSON object.
pub fn next_json(client: &mut RawClient) -> serde_json::Value {
    let text = client.read_text();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
}
