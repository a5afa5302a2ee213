//! The notes' "try it" commands run, and print what the notes say they print.
//!
//! A note shows a run of `tools/wsraw.py` (the course's raw WebSocket client)
//! in a fenced block marked `console wsraw`: a line `$ COMMAND` (continued by
//! a trailing `\`), then the output it printed. This test starts a fresh
//! server for every command, runs the command as a shell would, with the
//! note's address `127.0.0.1:8080` replaced by the server's, and compares
//! the output with the block line by line. A line `...` in the block stands
//! for any number of lines (the upgrade, usually); every other line must
//! match exactly. So a note edit that breaks a command, or a server change
//! that changes what the note shows, fails `make test`.

mod common;

use common::{DEADLINE, ServerProcess};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The address the notes write; each command gets the test server's instead.
const NOTE_ADDR: &str = "127.0.0.1:8080";

/// The fence that marks a block this test runs.
const FENCE: &str = "```console wsraw";

/// Notes that must show the tool: the handshake and the frames.
const NOTES_WITH_TRY_IT: &[&str] = &["02-handshake.md", "03-framing.md"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One command from a note, and the output the note quotes for it.
#[derive(Debug)]
struct Example {
    /// `notes/NAME.md:LINE` of the `$` line, for the failure message.
    place: String,
    command: String,
    expected: Vec<String>,
}

/// Every `console wsraw` block of one note, cut into its commands.
fn examples_in(note: &str, text: &str) -> Vec<Example> {
    let mut examples: Vec<Example> = Vec::new();
    let mut in_block = false;
    let mut continued = false;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if !in_block {
            in_block = trimmed == FENCE;
            continue;
        }
        if trimmed.starts_with("```") {
            in_block = false;
        } else if let Some(command) = trimmed.strip_prefix("$ ") {
            examples.push(Example {
                place: format!("notes/{note}:{}", i + 1),
                command: command.trim_end_matches('\\').trim().to_owned(),
                expected: Vec::new(),
            });
            continued = command.ends_with('\\');
        } else if let Some(example) = examples.last_mut() {
            if continued {
                example.command.push(' ');
                example
                    .command
                    .push_str(trimmed.trim_end_matches('\\').trim());
                continued = trimmed.ends_with('\\');
            } else {
                example.expected.push(line.trim_end().to_owned());
            }
        }
    }
    examples
}

/// (note file name, its examples) for every note.
fn all_examples() -> Vec<(String, Vec<Example>)> {
    let mut notes: Vec<PathBuf> = std::fs::read_dir(root().join("notes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    notes.sort();
    notes
        .iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(path).unwrap();
            let examples = examples_in(&name, &text);
            (name, examples)
        })
        .collect()
}

/// Whether `actual` is `expected`, where a `...` line of `expected` matches
/// any number of lines (shortest match first, backtracking).
fn matches(expected: &[String], actual: &[String]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "..." => {
            (0..=actual.len()).any(|skip| matches(rest, &actual[skip..]))
        }
        Some((first, rest)) => actual.first() == Some(first) && matches(rest, &actual[1..]),
    }
}

/// Runs one command against `addr` in the repository's top folder, as
/// `bash -c` would; returns its standard output and error, in that order.
/// The tool bounds its own reads; this bounds the whole run as well.
fn run(command: &str, addr: &str) -> String {
    let command = command.replace(NOTE_ADDR, addr);
    let mut child = Command::new("bash")
        .args(["-c", &command])
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash");
    let end = Instant::now() + DEADLINE * 3;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    text
}

/// Checks one example against a fresh server; `Err` says what differs.
fn check(example: &Example) -> Result<(), String> {
    let server = ServerProcess::start(&[]);
    let addr = server.addr.to_string();
    let output = run(&example.command, &addr);
    let actual: Vec<String> = output
        .replace(&addr, NOTE_ADDR)
        .lines()
        .map(|l| l.trim_end().to_owned())
        .collect();
    if matches(&example.expected, &actual) {
        return Ok(());
    }
    Err(format!(
        "{}: `{}` printed something else.\n--- the note shows ---\n{}\n--- it printed ---\n{}\n\
         --- the server's log ---\n{}",
        example.place,
        example.command,
        example.expected.join("\n"),
        actual.join("\n"),
        server.log()
    ))
}

#[test]
fn every_wsraw_command_in_the_notes_prints_what_the_note_shows() {
    let mut failures = Vec::new();
    let mut ran = 0;
    for (_, examples) in all_examples() {
        for example in &examples {
            ran += 1;
            if let Err(why) = check(example) {
                failures.push(why);
            }
        }
    }
    assert!(ran > 0, "no `console wsraw` blocks in the notes");
    assert!(
        failures.is_empty(),
        "{} of {ran} commands differ from their notes:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn the_handshake_and_framing_notes_try_things_with_the_tool() {
    let examples = all_examples();
    for note in NOTES_WITH_TRY_IT {
        let (_, found) = examples.iter().find(|(n, _)| n == note).unwrap();
        assert!(
            found.len() >= 3,
            "notes/{note} has {} `console wsraw` commands; its \"Try it\" should run the tool",
            found.len()
        );
        for example in found {
            assert!(
                example.command.starts_with("python3 tools/wsraw.py ")
                    && example.command.contains(NOTE_ADDR),
                "{}: a `console wsraw` block runs the tool against {NOTE_ADDR}",
                example.place
            );
            assert!(
                !example.expected.is_empty(),
                "{}: the block shows no output",
                example.place
            );
        }
    }
}

#[test]
fn no_note_sends_bytes_with_tools_the_course_does_not_ship() {
    // `nc` is not installed by `make test`, and hand-made clients are not in the repo.
    for (note, _) in all_examples() {
        let text = std::fs::read_to_string(root().join("notes").join(&note)).unwrap();
        for bad in ["| nc ", "nc 127.0.0.1", "| xxd", "websocat"] {
            assert!(
                !text.contains(bad),
                "notes/{note} uses {bad:?}: use tools/wsraw.py"
            );
        }
    }
}

// ---- the checker itself ----

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

#[test]
fn the_matcher_takes_dots_for_any_lines_and_nothing_else() {
    let actual = lines("a\nb\nc\nd");
    assert!(matches(&lines("a\nb\nc\nd"), &actual));
    assert!(matches(&lines("...\nd"), &actual));
    assert!(matches(&lines("a\n...\nd"), &actual));
    assert!(matches(&lines("a\n...\nb\nc\nd"), &actual));
    assert!(!matches(&lines("a\nb\nc"), &actual), "a missing last line");
    assert!(
        !matches(&lines("a\nc\nd"), &actual),
        "a missing middle line"
    );
    assert!(!matches(&lines("...\nx"), &actual));
    assert!(!matches(&lines("a\nb\nc\nd\ne"), &actual));
}

#[test]
fn the_extractor_finds_commands_outputs_and_continuations() {
    let note = "text\n\n```console wsraw\n$ python3 tools/wsraw.py 127.0.0.1:8080 \\\n    head quit\nsent x\n\
                $ python3 tools/wsraw.py 127.0.0.1:8080 head\n...\ngot y\n```\n\n```console\n$ not this\n```\n";
    let examples = examples_in("x.md", note);
    assert_eq!(examples.len(), 2);
    assert_eq!(
        examples[0].command,
        "python3 tools/wsraw.py 127.0.0.1:8080 head quit"
    );
    assert_eq!(examples[0].expected, ["sent x"]);
    assert_eq!(examples[0].place, "notes/x.md:4");
    assert_eq!(examples[1].expected, ["...", "got y"]);
}

#[test]
fn a_broken_command_fails_the_check() {
    // The note's own first example, with one step changed: the check must say so.
    let (_, examples) = all_examples()
        .into_iter()
        .find(|(n, _)| n == "03-framing.md")
        .unwrap();
    let good = &examples[0];
    assert_eq!(check(good), Ok(()), "the note's own example");
    let broken = Example {
        place: good.place.clone(),
        command: good.command.replace("/echo", "/nowhere"),
        expected: good.expected.clone(),
    };
    assert!(check(&broken).is_err(), "a wrong path went unnoticed");
}

// ---- the tool's own failures: clear, and never a hang ----

/// Runs the tool with `args`; returns (exit code, stdout + stderr).
fn wsraw(args: &[&str]) -> (i32, String) {
    let output = Command::new("python3")
        .arg(root().join("tools/wsraw.py"))
        .args(args)
        .output()
        .expect("python3");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn the_tool_says_why_it_cannot_connect_and_exits_1() {
    // A port that was just free: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, text) = wsraw(&[&format!("127.0.0.1:{port}"), "head"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("cannot connect to 127.0.0.1:"), "{text}");
}

#[test]
fn the_tool_gives_up_a_read_after_its_timeout_and_exits_1() {
    let server = ServerProcess::start(&[]);
    let started = Instant::now();
    let (code, text) = wsraw(&[
        &server.addr.to_string(),
        "--path",
        "/echo",
        "--timeout",
        "0.5",
        "head",
        "read:5",
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("read: 1 of 5 within 0.5 s"), "{text}");
    assert!(
        started.elapsed() < DEADLINE,
        "the read outlived its timeout"
    );
}

#[test]
fn the_tool_refuses_a_bad_step_before_connecting_and_exits_2() {
    // Nothing listens on port 9 here, and nothing is tried: the step is checked first.
    for bad in [
        "dance",
        "frame:opcode=16",
        "frame:speed=3",
        "raw:zz",
        "read:x",
    ] {
        let (code, text) = wsraw(&["127.0.0.1:9", "head", bad]);
        assert_eq!(code, 2, "{bad}: {text}");
        assert!(!text.contains("cannot connect"), "{bad}: {text}");
    }
}
