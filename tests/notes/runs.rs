//! Traces pasted in the notes still come out of a real run.
//!
//! A note marks a pasted log as taken from a run with an HTML comment on the
//! line before its fence (the comment does not show when the note is read):
//!
//! ```text
//! <!-- run: --heartbeat-ms 1500; client: python3 notes/two_clients.py --port PORT -->
//! <!-- run: ; client: python3 notes/two_clients.py --port PORT; for: 2 s -->
//! ```
//!
//! The test starts miochat with `RUST_LOG=trace`, those flags and a port of
//! its own, runs the client (with `PORT` replaced, through `bash -c`, so it may
//! be a pipeline or `A & B`, though not `;`) until it exits, or for the
//! seconds given, then sends SIGINT and takes the log. Every line of ours in
//! the block must be in that log: the same level, target and words, and the
//! same numbers, except a port (any) and a duration (`1.5s`, or `1001 ms` with
//! a space), which may differ by 20%
//! (at least 50 ms): a timeout quoted as `Some(10.24s)` where a run prints
//! `Some(29.99s)` fails. A line with a duration must also come after the
//! line quoted before it; other lines may be in another order (which of two
//! connections is logged first can depend on the machine's timing).
//!
//! `logs.rs` checks every quoted line against the code's format strings; this
//! checks the ones a note marks against what a run prints.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use super::common::{ServerProcess, wait_until};
use super::logs::{Quoted, parse_log_line};
use super::notes;

const MARKER: &str = "<!-- run:";

/// What a marker asks for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Run {
    flags: Vec<String>,
    client: Vec<String>,
    seconds: Option<u64>,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let flags = match self.flags.is_empty() {
            true => "(default flags)".to_owned(),
            false => self.flags.join(" "),
        };
        write!(
            f,
            "RUST_LOG=trace miochat {flags}, with `{}`",
            self.client.join(" ")
        )?;
        match self.seconds {
            Some(s) => write!(f, " for {s} s"),
            None => write!(f, " until it exits"),
        }
    }
}

/// `<!-- run: FLAGS; client: COMMAND[; for: N s] -->`
fn parse_marker(line: &str) -> Result<Run, String> {
    let body = line
        .trim()
        .strip_prefix(MARKER)
        .and_then(|b| b.strip_suffix("-->"))
        .ok_or("a marker is one line: <!-- run: FLAGS; client: COMMAND; for: N s -->")?;
    let mut parts = body.split(';').map(str::trim);
    let flags = parts.next().unwrap_or("").split_whitespace();
    let mut run = Run {
        flags: flags.map(str::to_owned).collect(),
        client: Vec::new(),
        seconds: None,
    };
    for part in parts {
        if let Some(command) = part.strip_prefix("client:") {
            run.client = command.split_whitespace().map(str::to_owned).collect();
        } else if let Some(seconds) = part.strip_prefix("for:") {
            let number = seconds.trim().trim_end_matches('s').trim();
            run.seconds = Some(number.parse().map_err(|_| format!("bad for: {part:?}"))?);
        } else {
            return Err(format!("unknown part {part:?}"));
        }
    }
    if run.client.is_empty() {
        return Err("no client: COMMAND".into());
    }
    Ok(run)
}

/// (marker's place, the run, the log lines of ours in the block after it).
fn marked_blocks() -> Vec<(String, Run, Vec<Quoted>)> {
    let ours = super::logs::crate_name();
    let mut blocks = Vec::new();
    for (note, text) in notes() {
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            if !line.trim_start().starts_with(MARKER) {
                continue;
            }
            let place = format!("notes/{note}:{}", n + 1);
            let run = parse_marker(line).unwrap_or_else(|e| panic!("{place}: {e}"));
            assert!(
                lines.get(n + 1).is_some_and(|l| l.starts_with("```")),
                "{place}: a run marker must stand on the line just before a fenced block"
            );
            let block = lines[n + 2..]
                .iter()
                .enumerate()
                .take_while(|(_, l)| !l.starts_with("```"));
            let quoted: Vec<Quoted> = block
                .filter_map(|(k, l)| {
                    let (level, target, message) = parse_log_line(l)?;
                    Some(Quoted {
                        place: format!("notes/{note}:{}", n + 3 + k),
                        level,
                        target,
                        message,
                    })
                })
                .filter(|q| q.target.split("::").next() == Some(ours.as_str()))
                .collect();
            assert!(
                !quoted.is_empty(),
                "{place}: no log lines of ours in the block"
            );
            blocks.push((place, run, quoted));
        }
    }
    blocks
}

/// The server's log of one run: (level, target, message) per line.
fn perform(run: &Run) -> Vec<(String, String, String)> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_miochat"));
    command.env("RUST_LOG", "trace");
    let flags: Vec<&str> = run.flags.iter().map(String::as_str).collect();
    let server = ServerProcess::start_with(command, &flags);
    let port = server.addr.port().to_string();
    // As a shell runs it, so that a client may be two programs (`A & B`).
    let command = run.client.join(" ").replace("PORT", &port);
    let mut client = super::common::shell(&command)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start the client `{command}`: {e}"));
    let limit = Duration::from_secs(run.seconds.unwrap_or(30));
    let exited = wait_until(limit, || client.try_wait().unwrap().is_some());
    assert!(
        exited || run.seconds.is_some(),
        "the client of {run} did not exit within {limit:?}"
    );
    server.signal("INT");
    // The server logs its shutdown; wait until the log has been quiet a while.
    let mut last = server.log().len();
    wait_until(Duration::from_secs(5), || {
        std::thread::sleep(Duration::from_millis(300));
        let now = server.log().len();
        std::mem::replace(&mut last, now) == now
    });
    let _ = client.kill();
    let _ = client.wait();
    server.log().lines().filter_map(parse_log_line).collect()
}

/// A message cut into text and numbers; a port becomes `PORT`, and a
/// number with a unit of time becomes a duration in seconds.
#[derive(Debug, PartialEq)]
enum Piece {
    Text(String),
    Number(String),
    Seconds(f64),
}

fn pieces(message: &str) -> Vec<Piece> {
    let chars: Vec<char> = message.chars().collect();
    let mut pieces = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        if !chars[i].is_ascii_digit() {
            while i < chars.len() && !chars[i].is_ascii_digit() {
                i += 1;
            }
            pieces.push(Piece::Text(chars[start..i].iter().collect()));
            continue;
        }
        while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
            i += 1;
        }
        let number: String = chars[start..i].iter().collect();
        // `1.5s` (Debug) or `1001 ms` (our own lines): one space may come first.
        let gap = usize::from(chars.get(i) == Some(&' '));
        let unit: String = chars[i + gap..]
            .iter()
            .take_while(|c| c.is_alphabetic())
            .collect();
        let scale = match unit.as_str() {
            "ns" => Some(1e-9),
            "µs" | "us" => Some(1e-6),
            "ms" => Some(1e-3),
            "s" => Some(1.0),
            _ => None,
        };
        let after_address = number.matches('.').count() == 0
            && pieces.len() >= 2
            && pieces.last() == Some(&Piece::Text(":".into()))
            && matches!(&pieces[pieces.len() - 2], Piece::Number(ip) if ip.matches('.').count() == 3);
        match (scale, number.parse::<f64>()) {
            _ if after_address => pieces.push(Piece::Text("PORT".into())),
            (Some(scale), Ok(value)) => {
                i += gap + unit.chars().count();
                pieces.push(Piece::Seconds(value * scale));
            }
            _ => pieces.push(Piece::Number(number)),
        }
    }
    pieces
}

/// Whether a run's message has the quoted one's words and figures.
fn same_figures(quoted: &str, ran: &str) -> bool {
    let (quoted, ran) = (pieces(quoted), pieces(ran));
    quoted.len() == ran.len()
        && quoted.iter().zip(&ran).all(|pair| match pair {
            (Piece::Seconds(q), Piece::Seconds(r)) => (q - r).abs() <= (0.2 * q).max(0.05),
            (q, r) => q == r,
        })
}

/// The quoted lines of one block that a run's log lacks, each with what
/// the run printed from the same target instead.
///
/// The lines are looked for in order. A line with a duration must come
/// after the line matched before it: a timeout means something only in its
/// place (`Some(10.24s)` after the message, where a run prints `Some(28s)`,
/// fails even though the run printed a 10.24 s timeout earlier). A line
/// without one may also stand anywhere else in the run: which of two
/// connections is logged first can depend on the machine's timing.
fn missing(quoted: &[Quoted], log: &[(String, String, String)]) -> Vec<String> {
    let matches = |line: &Quoted, (level, target, message): &(String, String, String)| {
        *level == line.level && *target == line.target && same_figures(&line.message, message)
    };
    let mut missing = Vec::new();
    let mut next = 0;
    let mut previous: Option<&Quoted> = None;
    for line in quoted {
        if let Some(at) = log[next..].iter().position(|l| matches(line, l)) {
            next += at + 1;
            previous = Some(line);
            continue;
        }
        let timed = pieces(&line.message)
            .iter()
            .any(|p| matches!(p, Piece::Seconds(_)));
        if !timed && log.iter().any(|l| matches(line, l)) {
            continue;
        }
        let after = match previous {
            Some(previous) if timed => format!(" after\n    {previous}\n "),
            _ => String::new(),
        };
        let printed: Vec<String> = log
            .iter()
            .filter(|(_, target, _)| *target == line.target)
            .map(|(level, target, message)| format!("    {level:<5} {target}] {message}"))
            .take(16)
            .collect();
        missing.push(format!(
            "{}: the note quotes\n    {line}\n  and the run printed no such line{after} (durations \
             may differ by 20%, ports by anything). Its lines from {}:\n{}",
            line.place,
            line.target,
            printed.join("\n")
        ));
    }
    missing
}

#[test]
fn traces_marked_as_from_a_run_are_what_a_run_prints() {
    let blocks = marked_blocks();
    let mut runs: BTreeMap<Run, Vec<(String, Vec<Quoted>)>> = BTreeMap::new();
    for (place, run, quoted) in blocks {
        runs.entry(run).or_default().push((place, quoted));
    }
    // Each run once, all at once (most of their time is the server's timers).
    let problems: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .iter()
            .map(|(run, blocks)| {
                scope.spawn(move || {
                    let gaps_in = |log: &[(String, String, String)]| -> Vec<String> {
                        blocks
                            .iter()
                            .flat_map(|(_, quoted)| missing(quoted, log))
                            .collect()
                    };
                    // A busy machine can shift a timer past a tick: one more run
                    // before calling the note wrong.
                    let mut gaps = gaps_in(&perform(run));
                    if !gaps.is_empty() {
                        gaps = gaps_in(&perform(run));
                    }
                    let places: Vec<&str> = blocks.iter().map(|(p, _)| p.as_str()).collect();
                    gaps.into_iter()
                        .map(|gap| {
                            format!(
                                "{gap}\n  (the block is marked at {} as from: {run})",
                                places.join(", ")
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a run panicked"))
            .collect()
    });
    assert!(
        problems.is_empty(),
        "pasted logs that a run no longer prints: paste the block again from a run of its \
         marker's command, and fix the prose around it to match:\n\n{}",
        problems.join("\n\n")
    );
}

#[test]
fn the_run_checker_compares_words_numbers_and_durations() {
    let same = |a: &str, b: &str| same_figures(a, b);
    assert!(same(
        "127.0.0.1:47476 upgraded to Chat; 1 open",
        "127.0.0.1:5 upgraded to Chat; 1 open"
    ));
    assert!(same(
        "poll woke: 1 events, timeout Some(10.005388714s)",
        "poll woke: 1 events, timeout Some(10.1s)"
    ));
    assert!(same(
        "poll woke: 0 events, timeout Some(0ns)",
        "poll woke: 0 events, timeout Some(0ns)"
    ));
    assert!(!same(
        "poll woke: 1 events, timeout Some(10.248709443s)",
        "poll woke: 1 events, timeout Some(29.999995388s)"
    ));
    assert!(!same(
        "Token(2) wrote 179 bytes",
        "Token(2) wrote 178 bytes"
    ));
    // Our own lines write a space before the unit: still a duration.
    assert!(same(
        "senders resumed: 1 waited 1001 ms",
        "senders resumed: 1 waited 1000 ms"
    ));
    assert!(!same(
        "senders resumed: 1 waited 1001 ms",
        "senders resumed: 1 waited 5004 ms"
    ));
    assert!(!same(
        "Token(2) wrote 179 bytes",
        "Token(3) wrote 179 bytes"
    ));
    assert!(!same("timeout None", "timeout Some(1s)"));
    let run = parse_marker(
        "<!-- run: --heartbeat-ms 1500; client: python3 notes/two_clients.py --port PORT; for: 2 s -->",
    )
    .unwrap();
    assert_eq!(run.flags, ["--heartbeat-ms", "1500"]);
    assert_eq!(run.client[0], "python3");
    assert_eq!(run.seconds, Some(2));
}
