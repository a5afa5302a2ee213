//! The debugger walkthrough of notes/08-debugger.md, run under gdb.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::root;

// ---- 3. the debugger walkthrough ----

/// gdb and the server it runs; both are killed on drop, and the transcript is
/// printed if the test is failing.
struct Gdb {
    child: Child,
    transcript: Arc<Mutex<String>>,
}

impl Gdb {
    fn start(gdb: &str, args: &[&str]) -> Gdb {
        let mut child = Command::new(gdb)
            .args(args)
            .current_dir(root())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {gdb}: {e}"));
        let transcript = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for stream in [Box::new(stdout) as Box<dyn Read + Send>, Box::new(stderr)] {
            let sink = transcript.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut transcript = sink.lock().unwrap();
                    transcript.push_str(&line);
                    transcript.push('\n');
                }
            });
        }
        Gdb { child, transcript }
    }

    fn transcript(&self) -> String {
        self.transcript.lock().unwrap().clone()
    }

    /// The rest of the line after `what`, once gdb (or the server under it)
    /// prints it; fails early, with gdb's errors, if gdb exits first.
    fn wait_for(&mut self, what: &str, deadline: Instant) -> String {
        while Instant::now() < deadline {
            let transcript = self.transcript();
            if let Some(at) = transcript.find(what) {
                let rest = &transcript[at + what.len()..];
                return rest.lines().next().unwrap_or("").to_owned();
            }
            if self.child.try_wait().unwrap().is_some() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "gdb exited before printing {what:?}:\n{}",
                    gdb_errors(&self.transcript()).join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("gdb never printed {what:?}");
    }

    /// Waits for gdb to exit by itself (the walkthrough ends with `kill`).
    fn wait_exit(&mut self, deadline: Instant) -> bool {
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                // Let the reader threads take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn kill_inferiors(&self) {
        for pid in self.inferiors() {
            let _ = Command::new("sh")
                .args(["-c", &format!("kill -9 {pid}")])
                .status();
        }
    }

    /// Processes whose parent is gdb: the server it started.
    fn inferiors(&self) -> Vec<u32> {
        let parent = self.child.id().to_string();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|entry| {
            let name = entry.ok()?.file_name().to_string_lossy().into_owned();
            let stat = std::fs::read_to_string(format!("/proc/{name}/stat")).ok()?;
            // Field 4 is the parent; the name (field 2) may hold spaces, so count from ')'.
            let ppid = stat[stat.rfind(')')? + 2..].split(' ').nth(1)?;
            (ppid == parent).then(|| name.parse().ok()).flatten()
        })
        .collect()
    }
}

impl Drop for Gdb {
    fn drop(&mut self) {
        // gdb killed first would leave the server running, detached: kill it first.
        self.kill_inferiors();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- gdb transcript ----\n{}---- end ----",
                self.transcript()
            );
        }
    }
}

/// Connects and upgrades one chat client; returns it after the welcome frame.
fn chat_client(addr: &str, deadline: Duration) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect to the server under gdb");
    stream.set_read_timeout(Some(deadline)).unwrap();
    stream.set_write_timeout(Some(deadline)).unwrap();
    let request = "GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
                   Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                   Sec-WebSocket-Version: 13\r\n\r\n";
    stream.write_all(request.as_bytes()).unwrap();
    let mut received = Vec::new();
    let mut chunk = [0u8; 1024];
    // The 101 head, then the welcome frame (one byte of length: under 126 bytes).
    loop {
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).into_owned();
            assert!(head.starts_with("HTTP/1.1 101 "), "no upgrade: {head}");
            let frame = &received[end + 4..];
            if frame.len() >= 2 && frame.len() >= 2 + usize::from(frame[1]) {
                return stream;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => panic!("the server closed during the upgrade"),
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("upgrade not answered: {e}"),
        }
    }
}

/// Answers every Ping with a Pong until the server goes away.
fn answer_pings(mut client: TcpStream) {
    let mut header = [0u8; 2];
    while client.read_exact(&mut header).is_ok() {
        let mut payload = vec![0u8; usize::from(header[1] & 0x7f)];
        if client.read_exact(&mut payload).is_err() {
            return;
        }
        if header[0] & 0x0f == 0x9 {
            // A masked Pong with an all-zero key: the payload goes out as it came.
            let mut pong = vec![0x8a, 0x80 | payload.len() as u8, 0, 0, 0, 0];
            pong.extend_from_slice(&payload);
            if client.write_all(&pong).is_err() {
                return;
            }
        }
    }
}

/// The stops the walkthrough documents, in order: banner name and function.
const DOCUMENTED_STOPS: [(&str, &str); 7] = [
    ("accept", "miochat::server::Server::accept_new_clients"),
    ("handshake", "miochat::http::switching_protocols"),
    ("accept", "miochat::server::Server::accept_new_clients"),
    ("handshake", "miochat::http::switching_protocols"),
    ("frame", "miochat::frame::apply_mask"),
    ("broadcast", "miochat::server::Server::append_to_history"),
    ("timer", "miochat::session::Session::on_time"),
];

/// What gdb prints when a name, an expression or a script line went stale.
const GDB_ERRORS: &[&str] = &[
    "not defined",
    "Make breakpoint pending",
    "<PENDING>",
    "No symbol",
    "There is no member",
    "Error in sourced command file",
    "Error in testing",
    "Python Exception",
    "Error occurred in Python",
    "Undefined command",
    "Cannot access memory",
    "not a Vec<u8>",
    "No frame",
    "The program is not being run",
];

/// The lines of a transcript that report a gdb error.
fn gdb_errors(transcript: &str) -> Vec<&str> {
    let lines: Vec<&str> = transcript.lines().collect();
    let mut errors = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if GDB_ERRORS.iter().any(|e| line.contains(e)) {
            // "file:line: Error in sourced command file:" names the line; the next says what.
            errors.push(*line);
            let next = lines.get(i + 1).copied().unwrap_or("");
            if line.ends_with(':') && !GDB_ERRORS.iter().any(|e| next.contains(e)) {
                errors.push(next);
            }
        }
    }
    errors
}

#[test]
fn the_debugger_walkthrough_stops_in_the_documented_order() {
    let gdb = "gdb";
    if Command::new(gdb).arg("--version").output().is_err() {
        panic!(
            "gdb is not installed, so the debugger walkthrough (notes/08-debugger.md) cannot be \
             checked. Install it (Debian: apt-get install gdb); `make test` does."
        );
    }
    let binary = env!("CARGO_BIN_EXE_miochat");
    let started = Instant::now();
    let mut session = Gdb::start(
        gdb,
        &[
            "-batch",
            "-nx",
            "-iex",
            "set debuginfod enabled off",
            "-ex",
            "set startup-with-shell off",
            "-x",
            "notes/breakpoints.gdb",
            "-x",
            "notes/walkthrough.gdb",
            "--args",
            binary,
            "--addr",
            "127.0.0.1:0",
            "--heartbeat-ms",
            "1000",
        ],
    );
    let deadline = started + Duration::from_secs(90);
    let addr = session.wait_for("listening on ", deadline);
    let addr = addr.split_whitespace().next().unwrap().to_owned();
    // Each step waits on the server, which waits on gdb: allow a slow machine.
    let patience = Duration::from_secs(30);
    let mut a = chat_client(&addr, patience);
    let mut b = chat_client(&addr, patience);
    // "Hello", masked with the RFC's example key (RFC 6455 §5.7).
    a.write_all(&[
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ])
    .unwrap();
    let mut broadcast = [0u8; 7];
    b.read_exact(&mut broadcast)
        .expect("B receives A's message");
    assert_eq!(&broadcast, b"\x81\x05Hello");
    // Keep both clients open, and alive however slow gdb is: the
    // walkthrough's last stop is a heartbeat.
    let keepers = [a, b].map(|client| std::thread::spawn(move || answer_pings(client)));
    let exited = session.wait_exit(deadline);
    // Normally the walkthrough has ended the server (`kill`); if not, end it here.
    session.kill_inferiors();
    for keeper in keepers {
        let _ = keeper.join();
    }
    let transcript = session.transcript();
    let _ = std::fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("notes-walkthrough.txt"),
        &transcript,
    );
    assert!(exited, "gdb did not finish the walkthrough in time");
    let errors = gdb_errors(&transcript);
    assert!(
        errors.is_empty(),
        "gdb reported errors:\n{}",
        errors.join("\n")
    );
    let breakpoints = std::fs::read_to_string(root().join("notes/breakpoints.gdb")).unwrap();
    let declared = breakpoints
        .lines()
        .filter(|l| l.starts_with("break "))
        .count();
    let resolved = transcript
        .lines()
        .filter(|l| l.starts_with("Breakpoint ") && l.contains(" at 0x") && l.contains("file src/"))
        .count();
    assert_eq!(
        resolved, declared,
        "every breakpoint must resolve to a line of src/"
    );
    // "Breakpoint 3, miochat::frame::apply_mask (payload=...) at src/frame.rs:157"
    let stops: Vec<(String, String)> = transcript
        .lines()
        .filter_map(|l| l.strip_prefix("Breakpoint "))
        .filter_map(|l| l.split_once(", "))
        .filter(|(number, _)| number.chars().all(|c| c.is_ascii_digit()))
        .map(|(_, rest)| rest.split([' ', '(']).next().unwrap_or("").to_owned())
        .zip(
            transcript
                .lines()
                .filter_map(|l| l.strip_prefix(">>> "))
                .map(|l| l.split(':').next().unwrap_or("").to_owned()),
        )
        .map(|(function, banner)| (banner, function))
        .collect();
    let expected: Vec<(String, String)> = DOCUMENTED_STOPS
        .iter()
        .map(|(b, f)| (b.to_string(), f.to_string()))
        .collect();
    assert_eq!(stops, expected, "the stops of the walkthrough");
    assert!(
        transcript.contains("[Inferior 1 (process ") && transcript.contains(") killed]"),
        "the walkthrough did not reach its last line"
    );
    // What the walkthrough shows must still be there to see.
    for shown in [
        "GET /chat HTTP/1.1\\r\\n",
        "7f 9f 4d 51 58",
        "5 bytes, as text:\nHello",
        "81 05 48 65 6c 6c 6f",
        "89 00",
    ] {
        assert!(
            transcript.contains(shown),
            "the walkthrough no longer shows {shown:?}"
        );
    }
}
