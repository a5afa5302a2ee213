//! Log lines quoted in the notes are lines the code can print.
//!
//! A quoted line is any line of a note that reads like env_logger's output,
//! `LEVEL TARGET] MESSAGE` (the timestamp trimmed or not):
//!
//! ```text
//! INFO  miochat::server::incoming] 127.0.0.1:47476 upgraded to Chat; 1 open
//! ```
//!
//! For a target of ours (`miochat...`), some log call in `src/` must have that
//! level and that target (the module path of its file, or its `target:`),
//! and a format string that matches the message, each `{...}` matching any
//! text. Lines of other crates (`mio::poll`) are not checked.

use std::collections::HashMap;

use super::rust::{Tok, lex};
use super::{notes, root, sources};

/// One `info!`, `debug!`, ... call in `src/`.
#[derive(Debug, Clone)]
pub struct LogCall {
    /// `src/server/incoming.rs:202`
    pub place: String,
    /// `INFO`, or `None` for `log!(level, ..)`, whose level is decided at run time.
    pub level: Option<&'static str>,
    pub target: String,
    /// The format string, its escapes resolved.
    pub format: String,
}

impl LogCall {
    /// The call as a line of the log: `INFO  miochat::server] {peer} ...`.
    pub fn shape(&self) -> String {
        let level = self.level.unwrap_or("LEVEL");
        format!("{level:<5} {}] {}", self.target, self.format)
    }

    pub fn matches(&self, message: &str) -> bool {
        format_matches(&self.format, message)
    }
}

const LEVELS: [(&str, &str); 5] = [
    ("error", "ERROR"),
    ("warn", "WARN"),
    ("info", "INFO"),
    ("debug", "DEBUG"),
    ("trace", "TRACE"),
];

/// The crate's name, the first part of every target of ours.
pub fn crate_name() -> String {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let line = manifest
        .lines()
        .find(|l| l.starts_with("name"))
        .expect("Cargo.toml names the package");
    line.split('"').nth(1).unwrap().replace('-', "_")
}

/// The module path of a source file: `src/server/incoming.rs` is
/// `miochat::server::incoming`; `src/main.rs` and `src/lib.rs` are `miochat`.
fn module_path(path: &str) -> String {
    let relative = path.trim_start_matches("src/").trim_end_matches(".rs");
    let mut parts = vec![crate_name()];
    for part in relative.split('/') {
        if !["main", "lib", "mod"].contains(&part) {
            parts.push(part.to_owned());
        }
    }
    parts.join("::")
}

/// Every log call in `src/` outside its tests.
pub fn log_calls() -> Vec<LogCall> {
    let mut calls = Vec::new();
    for (path, text) in sources() {
        if path.ends_with("/tests.rs") {
            continue;
        }
        let (toks, lines) = lex(&text);
        let consts = string_consts(&toks);
        let module = module_path(&path);
        for i in 0..toks.len() {
            let Tok::Ident(name) = &toks[i] else { continue };
            let level = match LEVELS.iter().find(|(macro_name, _)| macro_name == name) {
                Some((_, level)) => Some(*level),
                None if name == "log" => None,
                None => continue,
            };
            if toks.get(i + 1) != Some(&Tok::Punct('!'))
                || toks.get(i + 2) != Some(&Tok::Punct('('))
            {
                continue;
            }
            let args = arguments(&toks[i + 3..]);
            let mut target = module.clone();
            let mut rest = &args[..];
            // `target: EXPR,` first, then (for `log!`) the level.
            if let [first, more @ ..] = rest
                && first.first() == Some(&Tok::Ident("target".into()))
                && first.get(1) == Some(&Tok::Punct(':'))
            {
                target = match first.get(2) {
                    Some(Tok::Str(value)) => value.clone(),
                    Some(Tok::Ident(name)) => consts.get(name).cloned().unwrap_or_default(),
                    _ => String::new(),
                };
                rest = more;
            }
            if level.is_none() {
                rest = rest.get(1..).unwrap_or_default();
            }
            let Some(Tok::Str(format)) = rest.first().and_then(|arg| arg.first()) else {
                continue;
            };
            calls.push(LogCall {
                place: format!("{path}:{}", lines[i]),
                level,
                target,
                format: format.clone(),
            });
        }
    }
    calls
}

/// `const NAME: &str = "value";` in a file, by name.
fn string_consts(toks: &[Tok]) -> HashMap<String, String> {
    let mut consts = HashMap::new();
    for window in toks.windows(7) {
        if let [
            Tok::Ident(kw),
            Tok::Ident(name),
            ..,
            Tok::Punct('='),
            Tok::Str(value),
        ] = window
            && kw == "const"
        {
            consts.insert(name.clone(), value.clone());
        }
    }
    consts
}

/// The comma-separated arguments of a call whose `(` came just before `toks`.
fn arguments(toks: &[Tok]) -> Vec<Vec<Tok>> {
    let mut args = vec![Vec::new()];
    let mut depth = 0;
    for tok in toks {
        match tok {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') if depth == 0 => break,
            Tok::Punct(')' | ']' | '}') => depth -= 1,
            Tok::Punct(',') if depth == 0 => {
                args.push(Vec::new());
                continue;
            }
            _ => {}
        }
        args.last_mut().unwrap().push(tok.clone());
    }
    args
}

/// Whether `message` is what `format` prints for some arguments: its text
/// between placeholders must appear in order, anchored at both ends.
pub fn format_matches(format: &str, message: &str) -> bool {
    let pieces = literal_pieces(format);
    let (first, rest) = pieces.split_first().expect("at least one piece");
    let Some(mut left) = message.strip_prefix(first.as_str()) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return left.is_empty(); // no placeholder: the whole message
    };
    for piece in middle {
        match left.find(piece.as_str()) {
            Some(at) => left = &left[at + piece.len()..],
            None => return false,
        }
    }
    left.ends_with(last.as_str())
}

/// The literal text of a format string, cut at each `{...}`: one more piece
/// than placeholders (`"{a} b {c}"` is `["", " b ", ""]`).
fn literal_pieces(format: &str) -> Vec<String> {
    let mut pieces = vec![String::new()];
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('{', Some('{')) | ('}', Some('}')) => {
                chars.next();
                pieces.last_mut().unwrap().push(c);
            }
            ('{', _) => {
                for c in chars.by_ref() {
                    if c == '}' {
                        break;
                    }
                }
                pieces.push(String::new());
            }
            _ => pieces.last_mut().unwrap().push(c),
        }
    }
    pieces
}

/// A log line quoted in a note.
#[derive(Debug, Clone)]
pub struct Quoted {
    /// `notes/01-readiness.md:287`
    pub place: String,
    pub level: String,
    pub target: String,
    pub message: String,
}

/// The line as the note has it, from its level on.
impl std::fmt::Display for Quoted {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{:<5} {}] {}", self.level, self.target, self.message)
    }
}

/// `LEVEL TARGET] MESSAGE` anywhere in `line` (after a timestamp, or after
/// "... 256 lines: "), or `None`.
pub fn parse_log_line(line: &str) -> Option<(String, String, String)> {
    for (_, level) in LEVELS {
        let mut from = 0;
        while let Some(at) = line[from..].find(level).map(|a| a + from) {
            from = at + level.len();
            let before = line[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric()) {
                continue;
            }
            let rest = line[from..].trim_start();
            if rest.len() == line[from..].len() {
                continue; // `INFO` must be followed by spaces
            }
            let Some((target, message)) = rest.split_once("] ") else {
                continue;
            };
            let target_ok = !target.is_empty()
                && target
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == ':');
            if target_ok {
                return Some((level.to_owned(), target.to_owned(), message.to_owned()));
            }
        }
    }
    None
}

/// Every log line the notes quote.
pub fn quoted_lines() -> Vec<Quoted> {
    let mut quoted = Vec::new();
    for (note, text) in notes() {
        for (n, line) in text.lines().enumerate() {
            if let Some((level, target, message)) = parse_log_line(line) {
                quoted.push(Quoted {
                    place: format!("notes/{note}:{}", n + 1),
                    level,
                    target,
                    message,
                });
            }
        }
    }
    quoted
}

/// Why the code cannot print `line`, with what it prints instead; `None`
/// when a log call of the line's level and target matches its message.
pub fn why_stale(line: &Quoted, calls: &[LogCall]) -> Option<String> {
    let level_ok = |call: &LogCall| call.level.is_none_or(|l| l == line.level);
    let same_message: Vec<&LogCall> = calls.iter().filter(|c| c.matches(&line.message)).collect();
    if same_message
        .iter()
        .any(|c| level_ok(c) && c.target == line.target)
    {
        return None;
    }
    let mut why = format!("{}: the note quotes\n    {line}\n", line.place);
    if same_message.is_empty() {
        let file = target_file(&line.target);
        let here: Vec<String> = calls
            .iter()
            .filter(|c| c.target == line.target && level_ok(c))
            .map(|c| format!("    {}  ({})", c.shape(), c.place))
            .collect();
        why.push_str(&format!(
            "  but no log call prints that message; {} logs at {} only:\n{}\n  \
             Copy the line again from a real run (RUST_LOG=trace), or fix the words to match \
             one of these.",
            file,
            line.level,
            match here.is_empty() {
                true => "    (nothing)".to_owned(),
                false => here.join("\n"),
            }
        ));
    } else {
        let found: Vec<String> = same_message
            .iter()
            .map(|c| format!("    {}  ({})", c.shape(), c.place))
            .collect();
        why.push_str(&format!(
            "  but that message is logged as\n{}\n  Change the line's level and target to the \
             code's.",
            found.join("\n")
        ));
    }
    Some(why)
}

/// The source file whose module is `target`, for the failure message.
fn target_file(target: &str) -> String {
    let crate_name = crate_name();
    let relative = target
        .strip_prefix(&crate_name)
        .unwrap_or(target)
        .trim_start_matches("::")
        .replace("::", "/");
    match relative.is_empty() {
        true => "src/main.rs and src/lib.rs".to_owned(),
        false if root().join(format!("src/{relative}.rs")).exists() => format!("src/{relative}.rs"),
        false => format!("target {target} (no src/{relative}.rs)"),
    }
}

#[test]
fn every_log_line_quoted_in_the_notes_is_one_the_code_prints() {
    let calls = log_calls();
    assert!(
        calls.len() > 10,
        "found only {} log calls in src/: the scanner is broken",
        calls.len()
    );
    let ours = format!("{}::", crate_name());
    let quoted: Vec<Quoted> = quoted_lines()
        .into_iter()
        .filter(|q| q.target == crate_name() || q.target.starts_with(&ours))
        .collect();
    assert!(
        !quoted.is_empty(),
        "no log lines found in the notes: the reader is broken"
    );
    let stale: Vec<String> = quoted.iter().filter_map(|q| why_stale(q, &calls)).collect();
    assert!(
        stale.is_empty(),
        "{} log line(s) in the notes that the code no longer prints:\n\n{}",
        stale.len(),
        stale.join("\n\n")
    );
}

#[test]
fn the_log_line_checker_catches_stale_lines() {
    let calls = log_calls();
    let line = |text: &str| {
        let (level, target, message) = parse_log_line(text).expect("a log line");
        Quoted {
            place: "made up".into(),
            level,
            target,
            message,
        }
    };
    for fine in [
        "INFO  miochat::server::incoming] 127.0.0.1:5 upgraded to Chat; 1 open",
        "[2026-01-01T00:00:00Z TRACE miochat::connection] Token(2) wrote 179 bytes",
        "INFO  miochat::listening] listening on 127.0.0.1:8097 (open http://127.0.0.1:8097/ in two browser tabs)",
    ] {
        assert_eq!(why_stale(&line(fine), &calls), None, "{fine}");
    }
    for (stale, says) in [
        // The message is logged by another module.
        (
            "INFO  miochat::server] 127.0.0.1:5 upgraded to Chat; 1 open",
            "miochat::server::incoming",
        ),
        // A line no code prints (the session logs no writes).
        (
            "TRACE miochat::session] Token(2) wrote 179 bytes",
            "miochat::connection",
        ),
        // Words changed.
        (
            "INFO  miochat::server::incoming] 127.0.0.1:5 upgraded to Chat, 1 open",
            "no log call prints that message",
        ),
    ] {
        let why = why_stale(&line(stale), &calls).unwrap_or_else(|| panic!("{stale} passed"));
        assert!(why.contains(says), "{stale}: {why}");
    }
    assert!(format_matches("{a} b {c}", "x b y"));
    assert!(format_matches("{{literal}} {}", "{literal} x"));
    assert!(!format_matches("{a} b", "x b y"));
    assert!(!format_matches("a {b}", "x a y"));
}
