//! The gdb session a note shows is the one gdb prints today.
//!
//! `walkthrough.rs` runs `notes/walkthrough.gdb` and keeps gdb's transcript.
//! The note the script names in its first line (note 8) pastes that session
//! into its `console` blocks. What does not depend on the machine or on the
//! pretty-printers must be the same in both, in the same order:
//!
//! - `Breakpoint 1 at 0x...: file src/server.rs, line 214.`: each breakpoint's file and line;
//! - `Breakpoint 1, FUNCTION (...) at FILE:LINE`: each stop, in order;
//! - `>>> accept: ...`: the banner each stop prints;
//! - `#1  0x... in FUNCTION (...) at FILE:LINE`: each frame of a backtrace or an `up`;
//! - `0x... in FUNCTION (...) at FILE:LINE`: where a `finish` returned to;
//! - `214<TAB>        loop {`: the source line gdb shows;
//! - `$4 = mio::token::Token (2)`: a printed value, where it has no `{...}`
//!   (rust-gdb and plain gdb print structs and collections differently);
//! - what each `(gdb) bytes EXPR` printed.
//!
//! The stops the walkthrough must make, in order, are the note's stops.

use std::fmt;

/// One line of a gdb session that the note and a run must agree on.
#[derive(Debug, Clone, PartialEq)]
pub enum Shown {
    Breakpoint {
        number: String,
        at: String,
    },
    Stop {
        function: String,
        at: String,
    },
    Banner(String),
    Frame {
        depth: String,
        function: String,
        at: String,
    },
    Returned {
        function: String,
        at: String,
    },
    Source {
        line: String,
        text: String,
    },
    Value {
        number: String,
        value: String,
    },
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Shown::Breakpoint { number, at } => write!(f, "breakpoint {number} set at {at}"),
            Shown::Stop { function, at } => write!(f, "a stop in {function} at {at}"),
            Shown::Banner(banner) => write!(f, "the banner {banner:?}"),
            Shown::Frame {
                depth,
                function,
                at,
            } => write!(f, "frame #{depth}, {function} at {at}"),
            Shown::Returned { function, at } => write!(f, "a return to {function} at {at}"),
            Shown::Source { line, text } => write!(f, "source line {line}: {text:?}"),
            Shown::Value { number, value } => write!(f, "${number} = {value}"),
        }
    }
}

/// `FUNCTION (args) at FILE:LINE` → (FUNCTION, FILE:LINE).
fn function_at(text: &str) -> Option<(String, String)> {
    let (call, at) = text.rsplit_once(" at ")?;
    let function = call.split(" (").next()?.trim();
    let function = function.rsplit(" in ").next()?.to_owned();
    at.contains(':').then(|| (function, at.trim().to_owned()))
}

/// What a line of a session shows, if it is one of the kinds compared.
pub fn shown(line: &str) -> Option<Shown> {
    let line = line.trim_end();
    if let Some(rest) = line.strip_prefix("Breakpoint ") {
        let (number, rest) = rest.split_at(rest.find(|c: char| !c.is_ascii_digit())?);
        if let Some(place) = rest.strip_prefix(" at ") {
            // " at 0xd80cc: file src/server.rs, line 214."
            let (_, place) = place.split_once(": file ")?;
            let (file, line) = place.trim_end_matches('.').split_once(", line ")?;
            return Some(Shown::Breakpoint {
                number: number.to_owned(),
                at: format!("{file}:{line}"),
            });
        }
        let (function, at) = function_at(rest.strip_prefix(", ")?)?;
        return Some(Shown::Stop { function, at });
    }
    if let Some(banner) = line.strip_prefix(">>> ") {
        return Some(Shown::Banner(banner.to_owned()));
    }
    if let Some(rest) = line.strip_prefix('#') {
        let (depth, rest) = rest.split_at(rest.find(|c: char| !c.is_ascii_digit())?);
        let (function, at) = function_at(rest)?;
        return Some(Shown::Frame {
            depth: depth.to_owned(),
            function,
            at,
        });
    }
    if line.starts_with("0x") && line.contains(" in ") {
        let (function, at) = function_at(line)?;
        return Some(Shown::Returned { function, at });
    }
    if let Some((number, text)) = line.split_once('\t')
        && !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit())
    {
        return Some(Shown::Source {
            line: number.to_owned(),
            text: text.to_owned(),
        });
    }
    if let Some(rest) = line.strip_prefix('$')
        && let Some((number, value)) = rest.split_once(" = ")
        && number.chars().all(|c| c.is_ascii_digit())
    {
        // Structs, collections and times print differently under rust-gdb.
        let plain = !value.contains('{') && !value.contains("size=");
        return plain.then(|| Shown::Value {
            number: number.to_owned(),
            value: value.to_owned(),
        });
    }
    None
}

/// The lines of a note's `console` blocks that show a gdb session, with
/// their line numbers: the blocks that hold a stop or a breakpoint.
pub fn session_lines(note: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut block: Vec<(usize, String)> = Vec::new();
    let mut in_console = false;
    for (n, line) in note.lines().enumerate() {
        if let Some(info) = line.trim_start().strip_prefix("```") {
            if in_console {
                let gdb = block.iter().any(|(_, l)| {
                    matches!(
                        shown(l),
                        Some(Shown::Stop { .. } | Shown::Breakpoint { .. })
                    )
                });
                if gdb {
                    lines.append(&mut block);
                }
                block.clear();
            }
            in_console = !in_console && info.trim() == "console";
            continue;
        }
        if in_console {
            block.push((n + 1, line.to_owned()));
        }
    }
    lines
}

/// The stops of a session, in order: (banner name, function).
pub fn stops(shown: &[Shown]) -> Vec<(String, String)> {
    let mut stops = Vec::new();
    let mut function = None;
    for item in shown {
        match item {
            Shown::Stop { function: f, .. } => function = Some(f.clone()),
            Shown::Banner(banner) => {
                if let Some(f) = function.take() {
                    let name = banner.split(':').next().unwrap_or("").to_owned();
                    stops.push((name, f));
                }
            }
            _ => {}
        }
    }
    stops
}

/// Where the note's session and gdb's transcript part: for each line of
/// the note that gdb prints otherwise, the line and what gdb printed.
pub fn differences(note_name: &str, note: &str, transcript: &str) -> Vec<String> {
    let noted: Vec<(usize, Shown)> = session_lines(note)
        .into_iter()
        .filter_map(|(n, l)| shown(&l).map(|s| (n, s)))
        .collect();
    let printed: Vec<Shown> = transcript.lines().filter_map(shown).collect();
    let mut problems = Vec::new();
    // Values by their number: a note may leave some out.
    let (noted_values, noted): (Vec<_>, Vec<_>) = noted
        .into_iter()
        .partition(|(_, s)| matches!(s, Shown::Value { .. }));
    let (printed_values, printed): (Vec<_>, Vec<_>) = printed
        .into_iter()
        .partition(|s| matches!(s, Shown::Value { .. }));
    for (n, value) in &noted_values {
        let Shown::Value { number, .. } = value else {
            continue;
        };
        let same_number = printed_values
            .iter()
            .find(|p| matches!(p, Shown::Value { number: m, .. } if m == number));
        if let Some(printed) = same_number
            && printed != value
        {
            problems.push(format!(
                "notes/{note_name}:{n}: the note shows {value}; gdb printed {printed}"
            ));
        }
    }
    for (i, (n, item)) in noted.iter().enumerate() {
        let Some(printed) = printed.get(i) else {
            problems.push(format!(
                "notes/{note_name}:{n}: the note shows {item}; gdb printed nothing more"
            ));
            break;
        };
        if printed == item {
            continue;
        }
        problems.push(format!(
            "notes/{note_name}:{n}: the note shows {item}; gdb now prints {printed}"
        ));
        // Once the two are out of step, the rest would all differ.
        if std::mem::discriminant(printed) != std::mem::discriminant(item) || problems.len() >= 8 {
            break;
        }
    }
    if printed.len() > noted.len() && problems.is_empty() {
        problems.push(format!(
            "notes/{note_name}: gdb printed more than the note shows, from {}",
            printed[noted.len()]
        ));
    }
    problems
}

/// What each `(gdb) bytes EXPR` in the note printed (the lines up to the
/// next prompt) that the transcript does not hold, as (line, output).
pub fn missing_bytes(note: &str, transcript: &str) -> Vec<(usize, String)> {
    let lines = session_lines(note);
    let mut missing = Vec::new();
    for (i, (n, line)) in lines.iter().enumerate() {
        if !line.starts_with("(gdb) bytes ") {
            continue;
        }
        let output: Vec<&str> = lines[i + 1..]
            .iter()
            .map(|(_, l)| l.as_str())
            .take_while(|l| !l.starts_with("(gdb)"))
            .collect();
        let output = output.join("\n");
        if !transcript.contains(&output) {
            missing.push((*n, output));
        }
    }
    missing
}

#[test]
fn the_listing_checker_reads_gdb_lines_and_finds_a_moved_line() {
    let session = "```console\n\
        Breakpoint 1 at 0xd80cc: file src/server.rs, line 214.\n\
        (gdb) run\n\
        Breakpoint 1, miochat::server::Server::accept_new_clients (self=0x7ff, now=...) at src/server.rs:214\n\
        214\t        loop {\n\
        >>> accept: the listener is readable\n\
        (gdb) backtrace\n\
        #1  0x000055555562bf71 in miochat::server::Server::dispatch_events (self=0x7ff, now=...) at src/server.rs:193\n\
        (gdb) print token\n\
        $4 = mio::token::Token (2)\n\
        (gdb) print self.connections\n\
        $2 = HashMap(size=0)\n\
        ```\n";
    let transcript = session
        .replace("```console\n", "")
        .replace("```\n", "")
        .replace("(self=0x7ff, now=...)", "(self=0x1, now=...)")
        .replace(
            "$2 = HashMap(size=0)",
            "$2 = std::collections::HashMap {base: ...}",
        );
    assert_eq!(
        differences("n.md", session, &transcript),
        Vec::<String>::new()
    );
    assert_eq!(
        stops(&session.lines().filter_map(shown).collect::<Vec<_>>()),
        [(
            "accept".to_owned(),
            "miochat::server::Server::accept_new_clients".to_owned()
        )]
    );
    let moved = transcript.replace("src/server.rs:193", "src/server.rs:195");
    let found = differences("n.md", session, &moved);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("notes/n.md:8:"), "{found:?}");
    assert!(found[0].contains("src/server.rs:195"), "{found:?}");
    let relined = transcript.replace("line 214.", "line 216.");
    assert_eq!(differences("n.md", session, &relined).len(), 1);
    let renumbered = transcript.replace("Token (2)", "Token (3)");
    assert_eq!(differences("n.md", session, &renumbered).len(), 1);
}
