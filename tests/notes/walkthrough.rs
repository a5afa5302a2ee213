//! The debugger walkthrough of notes/08-debugger.md, run under gdb: every
//! breakpoint resolves, no command fails, the stops come in the order the
//! note shows them, and the note's listing is what gdb prints (`listing.rs`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::listing::{Shown, differences, missing_bytes, session_lines, shown, stops};
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

    /// gdb in batch mode, without the user's init files, running `scripts`
    /// (gdb's own `-x` and `-ex` options) on the debug build of the server,
    /// on a port of its own, with `server_args` after `--addr`.
    fn batch(gdb: &str, scripts: &[&str], server_args: &[&str]) -> Gdb {
        let mut args = vec![
            "-batch",
            "-nx",
            "-iex",
            "set debuginfod enabled off",
            "-ex",
            "set startup-with-shell off",
        ];
        args.extend_from_slice(scripts);
        args.extend_from_slice(&[
            "--args",
            env!("CARGO_BIN_EXE_miochat"),
            "--addr",
            "127.0.0.1:0",
        ]);
        args.extend_from_slice(server_args);
        Gdb::start(gdb, &args)
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

/// The note whose session `notes/walkthrough.gdb` scripts, as its first
/// line names it ("the session of notes/08-debugger.md").
fn walkthrough_note() -> (String, String) {
    let script = std::fs::read_to_string(root().join("notes/walkthrough.gdb")).unwrap();
    let first = script.lines().next().unwrap_or("");
    let name = first
        .split_whitespace()
        .filter_map(|w| w.trim_end_matches(['.', ',', ':']).strip_prefix("notes/"))
        .find(|w| w.ends_with(".md"))
        .expect("the first line of notes/walkthrough.gdb names the note it scripts");
    let text = std::fs::read_to_string(root().join("notes").join(name)).unwrap();
    (name.to_owned(), text)
}

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
    let started = Instant::now();
    let mut session = Gdb::batch(
        gdb,
        &[
            "-x",
            "notes/breakpoints.gdb",
            // Which stops are on when the session starts (checked below).
            "-ex",
            "info breakpoints",
            "-x",
            "notes/walkthrough.gdb",
        ],
        &["--heartbeat-ms", "1000"],
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
    // The stops the note shows, in its order, are the stops gdb made.
    let (note_name, note) = walkthrough_note();
    let shown_in =
        |lines: Vec<String>| -> Vec<Shown> { lines.iter().filter_map(|l| shown(l)).collect() };
    let documented = stops(&shown_in(
        session_lines(&note).into_iter().map(|(_, l)| l).collect(),
    ));
    let made = stops(&shown_in(transcript.lines().map(str::to_owned).collect()));
    assert!(
        documented.len() >= 5,
        "notes/{note_name} shows only {} stops: the listing reader is broken",
        documented.len()
    );
    assert_eq!(
        made, documented,
        "the stops gdb made (left) are not the stops notes/{note_name} shows (right), in \
         order: the note's console blocks must show every stop notes/walkthrough.gdb makes"
    );
    // Every file:line, frame, banner, source line and plain value the note
    // shows is what gdb printed, and so is what `bytes` showed.
    let mut differences = differences(&note_name, &note, &transcript);
    for (n, output) in missing_bytes(&note, &transcript) {
        differences.push(format!(
            "notes/{note_name}:{n}: gdb no longer prints this `bytes` output:\n{output}"
        ));
    }
    assert!(
        differences.is_empty(),
        "the gdb session in notes/{note_name} is not what gdb prints today (addresses and \
         arguments may differ; files, lines, frames and values may not). Copy the lines \
         from target/tmp/notes-walkthrough.txt (plain gdb) or a rust-gdb run of the same \
         script:\n{}",
        differences.join("\n")
    );
    // A stop the note turns on along the way (`(gdb) enable $bp_timer`) must
    // be off when gdb starts: at a person's pace, a heartbeat would
    // otherwise stop the session before the step that explains it.
    for (line, number) in enabled_later(&note) {
        let state = transcript
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|w| w.len() > 3 && w[0] == number && w[1] == "breakpoint")
            .map(|w| w[3].to_owned());
        assert_eq!(
            state.as_deref(),
            Some("n"),
            "notes/{note_name}:{line} enables breakpoint {number} at that step, so it must be \
             disabled when gdb starts (`disable` it in notes/breakpoints.gdb); `info \
             breakpoints` says Enb {state:?}"
        );
    }
    assert!(
        transcript.contains("[Inferior 1 (process ") && transcript.contains(") killed]"),
        "the walkthrough did not reach its last line"
    );
}

/// (line, breakpoint number) for each `(gdb) enable ...` in the note's
/// session: the number is that of the next stop the note shows.
fn enabled_later(note: &str) -> Vec<(usize, String)> {
    let lines = session_lines(note);
    let mut found = Vec::new();
    for (i, (n, line)) in lines.iter().enumerate() {
        if !line.starts_with("(gdb) enable") {
            continue;
        }
        let number = lines[i + 1..].iter().find_map(|(_, l)| {
            let rest = l.strip_prefix("Breakpoint ")?;
            let (number, _) = rest.split_once(", ")?;
            number
                .chars()
                .all(|c| c.is_ascii_digit())
                .then(|| number.to_owned())
        });
        if let Some(number) = number {
            found.push((*n, number));
        }
    }
    found
}

// ---- the gdb sessions of the exercises' solutions ----

/// The marker, on the line before a solution's `console` block, of a gdb
/// session that a script replays: `<!-- gdb: SCRIPT; client: COMMAND -->`.
const GDB_MARKER: &str = "<!-- gdb:";

/// One marked session: where, the script, the client (`PORT` in its
/// address), and the block as a `console` block of its own.
struct MarkedSession {
    place: String,
    script: String,
    client: String,
    block: String,
}

fn marked_sessions() -> Vec<MarkedSession> {
    let mut found = Vec::new();
    for (note, text) in super::notes() {
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            let Some(body) = line.trim().strip_prefix(GDB_MARKER) else {
                continue;
            };
            let place = format!("notes/{note}:{}", n + 1);
            let body = body.strip_suffix("-->").unwrap_or(body);
            let (script, client) = body
                .split_once("; client:")
                .unwrap_or_else(|| panic!("{place}: <!-- gdb: SCRIPT; client: COMMAND -->"));
            assert!(
                lines.get(n + 1).is_some_and(|l| l.trim() == "```console"),
                "{place}: a gdb marker stands just before a ```console block"
            );
            let block: Vec<&str> = lines[n + 1..]
                .iter()
                .skip(1)
                .take_while(|l| !l.starts_with("```"))
                .copied()
                .collect();
            found.push(MarkedSession {
                place,
                script: script.trim().to_owned(),
                client: client.trim().to_owned(),
                block: format!("```console\n{}\n```\n", block.join("\n")),
            });
        }
    }
    found
}

/// Runs one marked session under gdb with its client; returns the transcript.
fn replay(session: &MarkedSession) -> String {
    let started = Instant::now();
    let mut gdb = Gdb::batch("gdb", &["-x", &session.script], &[]);
    let deadline = started + Duration::from_secs(60);
    let addr = gdb.wait_for("listening on ", deadline);
    let addr = addr.split_whitespace().next().unwrap().to_owned();
    let port = addr.rsplit(':').next().unwrap();
    let mut client = super::common::shell(&session.client.replace("PORT", port))
        .spawn()
        .expect("bash");
    let exited = gdb.wait_exit(deadline);
    gdb.kill_inferiors();
    let _ = client.kill();
    let _ = client.wait();
    assert!(
        exited,
        "{}: gdb did not finish {}",
        session.place, session.script
    );
    gdb.transcript()
}

/// The `Old value = ` and `New value = ` lines of a text, in order.
fn watched_values(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim_end)
        .filter(|l| l.starts_with("Old value = ") || l.starts_with("New value = "))
        .collect()
}

#[test]
fn the_gdb_sessions_of_the_solutions_are_what_gdb_prints() {
    let sessions = marked_sessions();
    assert!(
        !sessions.is_empty(),
        "no `<!-- gdb: -->` session in the solutions"
    );
    let mut problems = Vec::new();
    for session in &sessions {
        let transcript = replay(session);
        let errors = gdb_errors(&transcript);
        if !errors.is_empty() {
            problems.push(format!(
                "{}: gdb reported errors running {}:\n{}",
                session.place,
                session.script,
                errors.join("\n")
            ));
            continue;
        }
        let name = session.place.trim_start_matches("notes/");
        let shown_lines = session.block.lines().filter_map(shown).count();
        assert!(
            shown_lines > 0,
            "{}: nothing gdb prints is shown",
            session.place
        );
        for difference in differences(name, &session.block, &transcript) {
            problems.push(format!(
                "{difference}\n  (the block marked at {})",
                session.place
            ));
        }
        if watched_values(&session.block) != watched_values(&transcript) {
            problems.push(format!(
                "{}: the watchpoint's values differ.\n--- shown ---\n{}\n--- gdb printed ---\n{}",
                session.place,
                watched_values(&session.block).join("\n"),
                watched_values(&transcript).join("\n")
            ));
        }
        if !problems.is_empty() {
            eprintln!(
                "---- gdb transcript of {} ----\n{transcript}",
                session.script
            );
        }
    }
    assert!(
        problems.is_empty(),
        "gdb sessions in the solutions that gdb no longer prints (run the marker's script \
         and client, and paste again):\n\n{}",
        problems.join("\n\n")
    );
}
