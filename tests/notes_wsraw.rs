//! The notes' "try it" commands, and the exercises' solutions, run and print
//! what the notes say they print.
//!
//! A note (`notes/*.md`) or a solution (`notes/solutions/*.md`) shows a run in
//! a fenced block marked `console wsraw` (commands of `tools/wsraw.py`, the
//! course's raw WebSocket client), `console curl` (plain HTTP with `curl`) or
//! `console python` (a `python3 -c` one-liner that works a sum out by hand):
//! lines `$ COMMAND` (continued by a trailing `\`), each followed by the
//! output it printed. This test starts a fresh server for every block, runs
//! the block's commands in order against it, as a shell would, with the
//! note's address `127.0.0.1:8080` replaced by the server's, and compares the
//! output with the block line by line. A line `...` in the block stands for
//! any number of lines (the upgrade, usually); a `…` inside a line stands for
//! any text within that line (a random epoch or client key); every other
//! character must match. A line `<!-- server: FLAGS -->` just before the
//! fence starts that block's server with those flags (`--heartbeat-ms 500`).
//! So a note edit that breaks a command, or a server change that changes
//! what a note shows, fails `make test`.

mod common;

use common::{DEADLINE, ServerProcess};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The address the notes write; each command gets the test server's instead.
const NOTE_ADDR: &str = "127.0.0.1:8080";

/// The fences that mark a block this test runs, and what each command must start with.
/// A `console python` block is a Python one-liner that needs no server (a
/// sum done by hand, such as an accept key); it gets one all the same.
const FENCES: &[(&str, &str)] = &[
    ("```console wsraw", "python3 tools/wsraw.py "),
    ("```console curl", "curl "),
    ("```console python", "python3 -c "),
];

/// The marker, on the line before a fence, for the flags of that block's server.
const SERVER_MARKER: &str = "<!-- server:";

/// Notes that must show the tool: the handshake and the frames.
const NOTES_WITH_TRY_IT: &[&str] = &["02-handshake.md", "03-framing.md"];

/// Blocks checked at once: most of a block's time is spent waiting.
const WORKERS: usize = 3;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One command from a note, and the output the note quotes for it.
#[derive(Debug, Clone)]
struct Example {
    /// `notes/NAME.md:LINE` of the `$` line, for the failure message.
    place: String,
    command: String,
    expected: Vec<String>,
}

/// One fenced block: its commands share one fresh server, started with `flags`.
#[derive(Debug, Clone)]
struct Block {
    /// `notes/NAME.md:LINE` of the fence.
    place: String,
    /// What every command of the block must start with (`curl `).
    starts: &'static str,
    flags: Vec<String>,
    examples: Vec<Example>,
}

/// `<!-- server: --heartbeat-ms 500 -->` -> its flags.
fn server_flags(line: &str) -> Option<Vec<String>> {
    let body = line
        .trim()
        .strip_prefix(SERVER_MARKER)?
        .strip_suffix("-->")?;
    Some(body.split_whitespace().map(str::to_owned).collect())
}

/// Every checked block of one note (`note` is its path under `notes/`).
fn blocks_in(note: &str, text: &str) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    let mut in_block = false;
    let mut continued = false;
    let mut previous = "";
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if !in_block {
            if let Some((_, starts)) = FENCES.iter().find(|(fence, _)| trimmed == *fence) {
                in_block = true;
                blocks.push(Block {
                    place: format!("notes/{note}:{}", i + 1),
                    starts,
                    flags: server_flags(previous).unwrap_or_default(),
                    examples: Vec::new(),
                });
            }
            previous = line;
            continue;
        }
        let examples = &mut blocks.last_mut().unwrap().examples;
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
        previous = line;
    }
    blocks
}

/// Every `console wsraw` command of one note, block by block.
fn examples_in(note: &str, text: &str) -> Vec<Example> {
    blocks_in(note, text)
        .into_iter()
        .flat_map(|b| b.examples)
        .collect()
}

/// The notes and the solutions: (path under `notes/`, text), in name order.
fn note_files() -> Vec<(String, String)> {
    let mut files = Vec::new();
    for dir in ["", "solutions/"] {
        let Ok(entries) = std::fs::read_dir(root().join("notes").join(dir)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "md"))
            .collect();
        paths.sort();
        for path in paths {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            files.push((
                format!("{dir}{name}"),
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
    files
}

/// (note, its blocks) for every note and solution.
fn all_blocks() -> Vec<(String, Vec<Block>)> {
    note_files()
        .into_iter()
        .map(|(name, text)| {
            let blocks = blocks_in(&name, &text);
            (name, blocks)
        })
        .collect()
}

/// (note, its examples) for every note and solution.
fn all_examples() -> Vec<(String, Vec<Example>)> {
    all_blocks()
        .into_iter()
        .map(|(name, blocks)| (name, blocks.into_iter().flat_map(|b| b.examples).collect()))
        .collect()
}

/// Whether one line matches its expected form, where each `…` stands for
/// any text (possibly none) within the line.
fn line_matches(expected: &str, actual: &str) -> bool {
    let mut parts = expected.split('…');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = actual.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Whether `actual` is `expected`, where a `...` line of `expected` matches
/// any number of lines (shortest match first, backtracking).
fn matches(expected: &[String], actual: &[String]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "..." => {
            (0..=actual.len()).any(|skip| matches(rest, &actual[skip..]))
        }
        Some((first, rest)) => {
            actual.first().is_some_and(|a| line_matches(first, a)) && matches(rest, &actual[1..])
        }
    }
}

/// Runs one command against `addr` in the repository's top folder, as
/// `bash -c` would; returns its standard output and error, in that order.
/// The tool bounds its own reads; this bounds the whole run as well.
fn run(command: &str, addr: &str) -> String {
    let command = command.replace(NOTE_ADDR, addr);
    let mut child = common::shell(&command)
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

/// Checks one block's commands, in order, against one fresh server; `Err`
/// says what differs.
fn check_block(block: &Block) -> Result<(), String> {
    let flags: Vec<&str> = block.flags.iter().map(String::as_str).collect();
    let server = ServerProcess::start(&flags);
    let addr = server.addr.to_string();
    let mut failures = Vec::new();
    for example in &block.examples {
        let output = run(&example.command, &addr);
        let mut actual: Vec<String> = output
            .replace(&addr, NOTE_ADDR)
            .lines()
            .map(|l| l.trim_end().to_owned())
            .collect();
        // A stream ends in a blank line, which a block cannot end in.
        while actual.last().is_some_and(String::is_empty) {
            actual.pop();
        }
        if !matches(&example.expected, &actual) {
            failures.push(format!(
                "{}: `{}` printed something else.\n--- the note shows ---\n{}\n--- it printed ---\n{}",
                example.place,
                example.command,
                example.expected.join("\n"),
                actual.join("\n"),
            ));
        }
    }
    if failures.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{}\n--- the server's log (flags: {:?}) ---\n{}",
        failures.join("\n"),
        block.flags,
        server.log()
    ))
}

/// Checks one example alone, against a fresh server with default flags.
fn check(example: &Example) -> Result<(), String> {
    check_block(&Block {
        place: example.place.clone(),
        starts: FENCES[0].1,
        flags: Vec::new(),
        examples: vec![example.clone()],
    })
}

#[test]
fn every_command_in_the_notes_and_solutions_prints_what_the_note_shows() {
    let blocks: Vec<Block> = all_blocks().into_iter().flat_map(|(_, b)| b).collect();
    let ran: usize = blocks.iter().map(|b| b.examples.len()).sum();
    assert!(ran > 0, "no `console wsraw` blocks in the notes");
    let queue = Mutex::new(blocks.iter());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..WORKERS {
            scope.spawn(|| {
                loop {
                    let Some(block) = queue.lock().unwrap().next() else {
                        break;
                    };
                    // A busy machine can delay a client past its `sleep`: one
                    // more run, on a fresh server, before calling the note wrong.
                    if let Err(why) = check_block(block).or_else(|_| check_block(block)) {
                        failures.lock().unwrap().push(why);
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} blocks ({ran} commands) differ from their notes:\n\n{}",
        failures.len(),
        blocks.len(),
        failures.join("\n\n")
    );
}

#[test]
fn every_checked_block_runs_its_own_kind_of_command_against_the_note_address() {
    for (_, blocks) in all_blocks() {
        for block in blocks {
            let first = block.examples.first();
            assert!(
                first.is_some_and(|e| e.command.starts_with(block.starts)),
                "{}: a block of this kind starts with `$ {}...`",
                block.place,
                block.starts.trim()
            );
            // After its first command, a block may run the other kind where a
            // step needs it (a post by curl, then a WebSocket reader).
            for example in &block.examples {
                let known = FENCES.iter().any(|(_, s)| example.command.starts_with(s));
                let offline = example.command.starts_with("python3 -c ");
                assert!(
                    known && (offline || example.command.contains(NOTE_ADDR)),
                    "{}: a checked command runs tools/wsraw.py or curl against {NOTE_ADDR}, or is `python3 -c`",
                    example.place
                );
            }
        }
    }
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
fn the_line_matcher_takes_an_ellipsis_for_any_text_within_a_line() {
    assert!(line_matches("abc", "abc"));
    assert!(!line_matches("abc", "abcd"));
    assert!(line_matches(
        "{\"epoch\":\"…\",\"last_id\":1}",
        "{\"epoch\":\"0de4\",\"last_id\":1}"
    ));
    assert!(line_matches("a…", "a"));
    assert!(line_matches("…z", "xyz"));
    assert!(line_matches("a…b…c", "a-b-b-c"));
    assert!(!line_matches("a…b…c", "a-c-b"));
    assert!(
        !line_matches("ab…ba", "aba"),
        "the two ends may not overlap"
    );
    assert!(!line_matches(
        "{\"epoch\":\"…\",\"last_id\":1}",
        "{\"epoch\":\"x\",\"last_id\":2}"
    ));
}

#[test]
fn a_block_takes_its_server_flags_from_the_line_before_its_fence() {
    let note = "<!-- server: --heartbeat-ms 500 -->\n```console curl\n$ curl -s http://127.0.0.1:8080/status\n{}\n\
                $ curl -s http://127.0.0.1:8080/status\n{}\n```\n\n```console wsraw\n$ python3 tools/wsraw.py 127.0.0.1:8080 head\nx\n```\n";
    let blocks = blocks_in("solutions/x.md", note);
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0].flags, ["--heartbeat-ms", "500"]);
    assert_eq!(blocks[0].examples.len(), 2, "two commands, one server");
    assert_eq!(blocks[0].starts, "curl ");
    assert_eq!(blocks[0].place, "notes/solutions/x.md:2");
    assert!(blocks[1].flags.is_empty());
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

// ---- the exercises and their solutions ----

/// The course's notes, each ending with exercises whose solutions are in
/// `notes/solutions/` under the same name.
const NOTES_WITH_EXERCISES: &[&str] = &[
    "01-readiness.md",
    "02-handshake.md",
    "03-framing.md",
    "04-broadcast.md",
    "05-timers.md",
    "06-vs-async.md",
    "07-sse-or-polling.md",
    "08-debugger.md",
    "09-shared-log.md",
    "10-redis.md",
    "hostile-inputs.md",
];

#[test]
fn every_note_has_exercises_and_a_solution_with_commands_that_are_checked() {
    let files = note_files();
    let text_of = |name: &str| {
        files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.clone())
    };
    for note in NOTES_WITH_EXERCISES {
        let text = text_of(note).unwrap_or_else(|| panic!("no notes/{note}"));
        let exercises = text
            .split("\n## Exercises\n")
            .nth(1)
            .unwrap_or_else(|| panic!("notes/{note} has no `## Exercises` section"));
        let link = format!("](solutions/{note})");
        assert!(
            exercises.contains(&link),
            "the exercises of notes/{note} do not link to their solutions ({link})"
        );
        let count = exercises
            .lines()
            .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()) && l.contains(". "))
            .count();
        assert!(
            (3..=5).contains(&count),
            "notes/{note} has {count} numbered exercises: 3 to 5"
        );
        let solution = format!("solutions/{note}");
        let text = text_of(&solution).unwrap_or_else(|| panic!("no notes/{solution}"));
        let checked = blocks_in(&solution, &text).len() + text.matches("<!-- run:").count();
        assert!(
            checked > 0,
            "notes/{solution} has no block that make test runs (`console wsraw`, `console curl`, \
             or a log marked `<!-- run: ... -->`)"
        );
    }
}

/// The `cargo test` commands of a text: (the `--test` file or `None`, the
/// filter or `None`), from `$ cargo test ...` lines and code spans alike.
fn cargo_test_commands(text: &str) -> Vec<(Option<String>, Option<String>)> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices("cargo test") {
        let rest = &text[at + "cargo test".len()..];
        let end = rest.find(['`', '\n', ';', '&', '|']).unwrap_or(rest.len());
        let mut words = rest[..end].split_whitespace();
        let (mut file, mut filter) = (None, None);
        while let Some(word) = words.next() {
            match word {
                "--" => break,
                "--test" => file = words.next().map(str::to_owned),
                w if w.starts_with('-') => {}
                w if filter.is_none() => filter = Some(w.to_owned()),
                _ => {}
            }
        }
        found.push((file, filter));
    }
    found
}

#[test]
fn every_cargo_test_command_in_the_exercises_names_a_test_that_exists() {
    let sources = |dir: &str| -> String {
        let mut all = String::new();
        let mut stack = vec![root().join(dir)];
        while let Some(path) = stack.pop() {
            if path.is_dir() {
                stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            } else if path.extension().is_some_and(|e| e == "rs") {
                all.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
        all
    };
    let everything = sources("src") + &sources("tests");
    let mut checked = 0;
    for (note, text) in note_files() {
        if !note.starts_with("solutions/") && !text.contains("\n## Exercises\n") {
            continue;
        }
        let text = match note.starts_with("solutions/") {
            true => text.as_str(),
            false => text.split("\n## Exercises\n").nth(1).unwrap(),
        };
        for (file, filter) in cargo_test_commands(text) {
            let haystack = match &file {
                Some(file) => {
                    let path = root().join("tests").join(format!("{file}.rs"));
                    std::fs::read_to_string(&path).unwrap_or_else(|_| {
                        panic!("notes/{note}: `cargo test --test {file}`: no tests/{file}.rs")
                    })
                }
                None => everything.clone(),
            };
            if let Some(filter) = filter {
                let name = filter.rsplit("::").next().unwrap();
                assert!(
                    haystack.contains(&format!("fn {name}")),
                    "notes/{note}: `cargo test ... {filter}` names no test fn starting {name:?}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 0, "no `cargo test` command in the exercises");
}
