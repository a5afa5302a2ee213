//! Keeps the teaching notes in `notes/` true to the code.
//!
//! The notes are `notes/*.md` and the exercises' solutions,
//! `notes/solutions/*.md`: every check below reads both.
//!
//! 1. Every `src/`, `tests/` or `client/` path a note mentions exists, and every
//!    `notes/NAME.md#anchor` link (in the notes and in the code's comments) finds
//!    its note and heading.
//! 2. Every name of ours a note writes in code format is defined in `src/`
//!    (`notes/names.rs`): `Server::turn` needs `fn turn` in `impl Server`,
//!    `ConnState::Open` a variant, `ConnState` a type, `READS_PER_TURN` a
//!    const, `awaiting_pong` a fn, field, parameter or module, `--heartbeat-ms`
//!    a flag in `src/config.rs`. A local variable or a word inside a string
//!    does not count; a test's name counts only where its paragraph says it
//!    names a test, and "`name` in `FILE.rs`" must be defined in that file.
//!    Names from elsewhere (mio, std, the RFC, other runtimes) are listed in
//!    `EXTERNAL`; a name that is in neither place fails the test.
//!    Inline code spans are checked, and fenced blocks marked `text` (the
//!    drawings); code excerpts and pasted output are not.
//! 3. The debugger walkthrough runs (`notes/walkthrough.rs`): gdb loads
//!    `notes/breakpoints.gdb` and `notes/walkthrough.gdb` against the debug
//!    binary while two raw clients upgrade and send a message; every
//!    breakpoint must resolve, no command may fail, the stops must come in
//!    the order note 8 shows them, and note 8's listing must be what gdb
//!    printed: breakpoint and frame `file:line`s, source lines, banners,
//!    plain values and `bytes` output (`notes/listing.rs`). The transcript is
//!    left in `target/tmp/notes-walkthrough.txt`. A solution's gdb session
//!    marked `<!-- gdb: SCRIPT; client: COMMAND -->` is replayed and
//!    compared the same way.
//! 4. Quoted log lines (`notes/logs.rs`): every `LEVEL target] message` line
//!    in a note is one a log call in `src/` can print: that level, the
//!    module the target names, a format string that matches the message.
//! 5. Pasted traces marked `<!-- run: FLAGS; client: COMMAND -->`
//!    (`notes/runs.rs`) are compared with a real `RUST_LOG=trace` run of
//!    the server and that client, figures included.
//! 6. Numbers tied to a name (`notes/constants.rs`): `` `READS_PER_TURN` (4) ``,
//!    `` `--heartbeat-ms` (30 s) ``, `` 8 KiB (`MAX_HEAD_BYTES`) `` are the
//!    const's value or the flag's default in `miochat --help`.
//!
//! Each check says, when it fails, which note and line, what the code or
//! the run says instead, and how to fix the note.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[path = "common/mod.rs"]
mod common;
#[path = "notes/constants.rs"]
mod constants;
#[path = "notes/listing.rs"]
mod listing;
#[path = "notes/logs.rs"]
mod logs;
#[path = "notes/names.rs"]
mod names;
#[path = "notes/runs.rs"]
mod runs;
#[path = "notes/rust.rs"]
mod rust;
#[path = "notes/walkthrough.rs"]
mod walkthrough;

/// Notes that other people write; links to them are allowed before they exist.
const WRITTEN_ELSEWHERE: &[&str] = &["hostile-inputs.md", "benchmarks.md"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// (path under `notes/`, text) of every `notes/*.md`, then of every
/// `notes/solutions/*.md` (the exercises' solutions, checked like the notes),
/// in name order.
fn notes() -> Vec<(String, String)> {
    let mut notes = Vec::new();
    for dir in ["", "solutions/"] {
        let Ok(entries) = std::fs::read_dir(root().join("notes").join(dir)) else {
            continue;
        };
        let mut found: Vec<(String, String)> = entries
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "md"))
            .map(|path| {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (
                    format!("{dir}{name}"),
                    std::fs::read_to_string(&path).unwrap(),
                )
            })
            .collect();
        found.sort();
        notes.extend(found);
    }
    assert!(!notes.is_empty(), "no notes found");
    notes
}

/// A link's target as a path under `notes/`, resolved from the note that
/// holds it: `../03-framing.md` from `solutions/03-framing.md` is
/// `03-framing.md`, and `solutions/03-framing.md` from a note is itself.
fn resolve_link(from_note: &str, target: &str) -> String {
    let mut parts: Vec<&str> = from_note.split('/').collect();
    parts.pop();
    for part in target.split('/') {
        match part {
            ".." => {
                parts.pop();
            }
            "." => {}
            _ => parts.push(part),
        }
    }
    parts.join("/")
}

/// (relative path, text) of every `src/**/*.rs`.
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(root()).unwrap();
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((relative.to_string_lossy().into_owned(), text));
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("src"), &mut out);
    out
}

/// (relative path, text) of the Rust tests: `tests/*.rs`, `tests/common/`, and
/// the fuzz targets with their shared checks.
fn test_sources() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for dir in ["tests", "tests/common", "fuzz", "fuzz/fuzz_targets"] {
        let Ok(entries) = std::fs::read_dir(root().join(dir)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            // This file names stale things on purpose, to see them caught.
            let this_file = path.ends_with("tests/notes.rs");
            if path.extension().is_some_and(|e| e == "rs") && !this_file {
                let relative = path.strip_prefix(root()).unwrap();
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((relative.to_string_lossy().into_owned(), text));
            }
        }
    }
    out
}

// ---- 1. paths and links ----

/// Every `PREFIX...` path-like run in `text` that does not continue a longer path or URL.
fn paths_with_prefix(text: &str, prefix: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices(prefix) {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || "_/.-".contains(c)) {
            continue;
        }
        let rest = &text[at..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || "_./-#".contains(c)))
            .unwrap_or(rest.len());
        let path = rest[..end].trim_end_matches(['.', '-']);
        found.push(path.to_owned());
    }
    found
}

#[test]
fn every_path_in_the_notes_exists() {
    let mut missing = Vec::new();
    for (note, text) in notes() {
        for prefix in ["src/", "tests/", "client/", "bench/"] {
            for path in paths_with_prefix(&text, prefix) {
                let file = path.split('#').next().unwrap();
                if !root().join(file).exists() {
                    missing.push(format!("notes/{note}: {path}"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "paths that do not exist:\n{}",
        missing.join("\n")
    );
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> HashSet<String> {
    let mut anchors = HashSet::new();
    let mut in_fence = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        } else if !in_fence && line.starts_with('#') {
            let heading = line.trim_start_matches('#').replace('`', "");
            anchors.insert(slug(&heading));
        }
    }
    anchors
}

#[test]
fn every_link_to_a_note_finds_its_heading() {
    let notes = notes();
    let mut texts: Vec<(String, String)> = notes
        .iter()
        .map(|(name, text)| (format!("notes/{name}"), text.clone()))
        .collect();
    texts.extend(sources());
    let mut broken = Vec::new();
    for (from, text) in &texts {
        // `notes/NAME.md#anchor` anywhere, and `](NAME.md#anchor)` links inside notes.
        let mut links = paths_with_prefix(text, "notes/");
        if let Some(note) = from.strip_prefix("notes/") {
            for (at, _) in text.match_indices("](") {
                let target = &text[at + 2..];
                let target = &target[..target.find(')').unwrap_or(0)];
                if !target.contains("://") && target.contains(".md") {
                    links.push(format!("notes/{}", resolve_link(note, target)));
                }
            }
        }
        for link in links {
            let (file, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let name = file.trim_start_matches("notes/");
            if !name.ends_with(".md") {
                continue; // notes/breakpoints.gdb and friends: checked as paths
            }
            match notes.iter().find(|(n, _)| n == name) {
                None if WRITTEN_ELSEWHERE.contains(&name) => {}
                None => broken.push(format!("{from}: {link}: no such note")),
                Some((_, target)) if !anchor.is_empty() && !anchors(target).contains(anchor) => {
                    broken.push(format!("{from}: {link}: no heading with that anchor"));
                }
                Some(_) => {}
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_file_the_notes_own_is_in_the_course_index() {
    let index = std::fs::read_to_string(root().join("notes/README.md")).unwrap();
    for (name, _) in notes() {
        if name != "README.md" && !WRITTEN_ELSEWHERE.contains(&name.as_str()) {
            assert!(
                index.contains(&name),
                "notes/README.md does not list {name}"
            );
        }
    }
}

#[test]
fn the_size_of_a_connection_in_note_4_is_the_real_one() {
    let note = std::fs::read_to_string(root().join("notes/04-broadcast.md")).unwrap();
    let marker = "The `Connection` itself: **";
    let at = note
        .find(marker)
        .expect("notes/04-broadcast.md states the size of a Connection")
        + marker.len();
    let stated: usize = note[at..]
        .split(" bytes**")
        .next()
        .and_then(|n| n.trim().parse().ok())
        .expect("a number of bytes after the marker");
    let real = std::mem::size_of::<miochat::connection::Connection>();
    assert_eq!(
        stated, real,
        "notes/04-broadcast.md#memory says a Connection takes {stated} bytes; it takes {real}"
    );
}
