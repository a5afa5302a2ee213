//! Keeps the teaching notes in `notes/` true to the code.
//!
//! 1. Every `src/`, `tests/` or `client/` path a note mentions exists, and every
//!    `notes/NAME.md#anchor` link (in the notes and in the code's comments) finds
//!    its note and heading.
//! 2. Every name of ours a note writes in code format is defined in `src/`:
//!    `Server::turn` needs `fn turn` in `impl Server`, `ConnState::Open` a
//!    variant, `ConnState` a type, `READS_PER_TURN` a const, `flush_write_buf`
//!    a fn, field or binding, `--heartbeat-ms` a flag in `src/config.rs`.
//!    Names from elsewhere (mio, std, the RFC, other runtimes) are listed in
//!    `EXTERNAL` below; a name that is in neither place fails the test.
//!    Inline code spans are checked, and fenced blocks marked `text` (the
//!    drawings); code excerpts and pasted output are not.
//! 3. The debugger walkthrough runs: gdb loads `notes/breakpoints.gdb` and
//!    `notes/walkthrough.gdb` against the debug binary while two raw clients
//!    upgrade and send a message; every breakpoint must resolve, every stop
//!    must come in the documented order, and no command of the walkthrough
//!    may fail. The transcript is left in `target/tmp/notes-walkthrough.txt`.

use std::collections::{BTreeSet, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Names the notes may write in code format that are not defined in src/:
/// other crates, std, the RFC, the kernel, gdb, other runtimes.
const EXTERNAL: &[&str] = &[
    // HTTP words and tools named in notes/hostile-inputs.md
    "Bearer",
    "Upgraded",
    "RUSTC_BOOTSTRAP",
    // notes/benchmarks.md: JavaScript's Set, /proc/PID/status's VmRSS, a kernel function
    "Set",
    "VmRSS",
    "tcp_sendmsg",
    // notes/09-shared-log.md: the peak of VmRSS, the kernel's TCP memory limits
    "VmHWM",
    "tcp_wmem",
    "tcp_mem",
    // mio and the kernel's readiness API
    "Poll",
    "Token",
    "Interest",
    "Events",
    "Event",
    "Registry",
    "READABLE",
    "WRITABLE",
    "EPOLLET",
    "EPOLLIN",
    "EPOLLOUT",
    "EPOLLONESHOT",
    "epoll_wait",
    "epoll_ctl",
    "EPOLL_CTL_MOD",
    "is_readable",
    "is_writable",
    "is_read_closed",
    "TcpListener",
    "TcpStream",
    "SO_SNDBUF",
    "SO_RCVBUF",
    "TCP_NODELAY",
    "set_nodelay",
    "EAGAIN",
    "EMFILE",
    "ENFILE",
    // std
    "WouldBlock",
    "Interrupted",
    "VecDeque",
    "IoSlice",
    "write_vectored",
    "ErrorKind",
    "WriteZero",
    "Instant",
    "Duration",
    "Vec",
    "HashMap",
    "String",
    "Option",
    "Result",
    "Some",
    "None",
    "Ok",
    "Err",
    "Box",
    "Read",
    "Write",
    "read_exact",
    "write_all",
    "swap_remove",
    "extend_from_slice",
    "size_of",
    "Display",
    "Arc",
    "Mutex",
    // async runtimes (notes/06-vs-async.md)
    "Future",
    "Waker",
    "Context",
    "Pin",
    "JoinHandle",
    "WebSocketStream",
    "Message",
    "UnboundedSender",
    "Socket",
    "accept_async",
    "tokio_tungstenite",
    "AsyncRead",
    "AsyncWrite",
    "WebSocketServer",
    "WebSocket",
    "EventSource",
    "ReadableStream",
    "setInterval",
    "readyState",
    "bufferedAmount",
    "perMessageDeflate",
    "maxPayload",
    "clientTracking",
    // HTTP header names written alone
    "Origin",
    "Host",
    // gdb and CodeLLDB
    "CodeLLDB",
    "LLDB",
    "VSCode",
    "RUST_LOG",
];

/// Crates and std modules: a path starting with one of these is not ours.
const EXTERNAL_ROOTS: &[&str] = &[
    "std",
    "core",
    "alloc",
    "mio",
    "io",
    "net",
    "tokio",
    "tokio_tungstenite",
    "tungstenite",
    "futures",
    "signal_hook",
    "signal_hook_mio",
    "env_logger",
    "log",
];

/// Flags of other programs (cargo, gdb) the notes may show.
const EXTERNAL_FLAGS: &[&str] = &[
    "--args",
    "--release",
    "--test",
    "--nocapture",
    "--bin",
    "--batch",
];

/// A word ending like this is a file name, not a name in the code.
const FILE_TYPES: &[&str] = &[
    ".rs", ".md", ".py", ".gdb", ".sh", ".json", ".js", ".toml", ".txt", ".html", ".css",
];

/// Notes that other people write; links to them are allowed before they exist.
const WRITTEN_ELSEWHERE: &[&str] = &["hostile-inputs.md", "benchmarks.md"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// (file name, text) of every `notes/*.md`, in name order.
fn notes() -> Vec<(String, String)> {
    let mut notes: Vec<(String, String)> = std::fs::read_dir(root().join("notes"))
        .expect("notes/ exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    notes.sort();
    assert!(!notes.is_empty(), "no notes found");
    notes
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
        if from.starts_with("notes/") {
            for (at, _) in text.match_indices("](") {
                let target = &text[at + 2..];
                let target = &target[..target.find(')').unwrap_or(0)];
                if !target.contains("://") && target.contains(".md") {
                    links.push(format!("notes/{target}"));
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

// ---- 2. names ----

/// What src/ defines, collected by a small lexer (comments and strings skipped).
#[derive(Default)]
struct Definitions {
    types: HashSet<String>,
    fns: HashSet<String>,
    /// (type, fn) for every fn inside an `impl Type` block.
    methods: HashSet<(String, String)>,
    /// (enum, variant).
    variants: HashSet<(String, String)>,
    consts: HashSet<String>,
    /// Fields, parameters and struct-literal keys: names written `name:`.
    colon_names: HashSet<String>,
    /// Names bound by `let` and `for` patterns.
    bindings: HashSet<String>,
    /// Contents of string literals (for environment variables like `MIOCHAT_TOKEN`).
    strings: String,
    modules: HashSet<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Punct(char),
    PathSep,
}

/// Splits Rust source into identifiers and punctuation; drops comments,
/// strings (kept aside in `strings`), chars and lifetimes.
fn lex(source: &str, strings: &mut String) -> Vec<Tok> {
    let chars: Vec<char> = source.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied().unwrap_or('\0');
        if c == '/' && next == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == '*' {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == 'r' && (next == '"' || next == '#') && !prev_is_ident(&chars, i) {
            // Raw string r"..." or r#"..."#.
            let mut hashes = 0;
            let mut j = i + 1;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                toks.push(Tok::Ident("r".into()));
                i += 1;
                continue;
            }
            j += 1;
            let start = j;
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (0..hashes).all(|h| chars.get(j + 1 + h) == Some(&'#')) {
                    break;
                }
                j += 1;
            }
            strings.extend(&chars[start..j.min(chars.len())]);
            strings.push('\n');
            i = j + 1 + hashes;
        } else if c == '"' {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '"' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            strings.extend(&chars[i + 1..j.min(chars.len())]);
            strings.push('\n');
            i = j + 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\'') or a lifetime ('a).
            if next == '\\' {
                let mut j = i + 2;
                while j < chars.len() && chars[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            toks.push(Tok::Ident(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
        } else if c == ':' && next == ':' {
            toks.push(Tok::PathSep);
            i += 2;
        } else if c.is_whitespace() {
            i += 1;
        } else {
            toks.push(Tok::Punct(c));
            i += 1;
        }
    }
    toks
}

fn prev_is_ident(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

impl Definitions {
    fn of_src() -> Definitions {
        let mut defs = Definitions::default();
        // Test names count too: notes/hostile-inputs.md names the test that
        // checks each input, and a renamed test must fail this check as well.
        for (path, text) in sources().into_iter().chain(test_sources()) {
            let stem = Path::new(&path).file_stem().unwrap().to_string_lossy();
            defs.modules.insert(stem.into_owned());
            let toks = lex(&text, &mut defs.strings);
            defs.scan(&toks);
        }
        defs
    }

    fn scan(&mut self, toks: &[Tok]) {
        let ident = |i: usize| match toks.get(i) {
            Some(Tok::Ident(name)) => Some(name.as_str()),
            _ => None,
        };
        // (kind, name, depth at which its block opened)
        let mut blocks: Vec<(&str, String, usize)> = Vec::new();
        let mut pending: Option<(&str, String)> = None;
        let mut depth = 0;
        for i in 0..toks.len() {
            match &toks[i] {
                Tok::Punct('{') => {
                    depth += 1;
                    if let Some((kind, name)) = pending.take() {
                        blocks.push((kind, name, depth));
                    }
                }
                Tok::Punct('}') => {
                    if blocks.last().is_some_and(|b| b.2 == depth) {
                        blocks.pop();
                    }
                    depth -= 1;
                }
                Tok::Punct(';') => pending = None,
                Tok::Ident(word) => {
                    let next = ident(i + 1);
                    match (word.as_str(), next) {
                        ("struct" | "enum" | "trait" | "type" | "union", Some(name)) => {
                            self.types.insert(name.to_owned());
                            if word == "enum" {
                                pending = Some(("enum", name.to_owned()));
                            }
                        }
                        ("fn", Some(name)) => {
                            self.fns.insert(name.to_owned());
                            if let Some((_, ty, _)) = blocks.iter().rev().find(|b| b.0 == "impl") {
                                self.methods.insert((ty.clone(), name.to_owned()));
                            }
                        }
                        ("const" | "static", Some(name)) if name != "fn" => {
                            self.consts.insert(name.to_owned());
                        }
                        ("mod", Some(name)) => {
                            self.modules.insert(name.to_owned());
                        }
                        ("impl", _) => {
                            pending = impl_type(&toks[i + 1..]).map(|ty| ("impl", ty));
                        }
                        ("let" | "for", _) => {
                            for tok in &toks[i + 1..] {
                                match tok {
                                    Tok::Punct('=' | ':') => break,
                                    Tok::Ident(w) if w == "in" || w == "else" => break,
                                    Tok::Ident(w) if w.starts_with(char::is_lowercase) => {
                                        self.bindings.insert(w.clone());
                                    }
                                    _ => {}
                                }
                            }
                        }
                        _ => {}
                    }
                    // `name:` but not `name::`
                    if toks.get(i + 1) == Some(&Tok::Punct(':')) {
                        self.colon_names.insert(word.clone());
                    }
                    // A variant: a capitalised name directly inside an enum block,
                    // at the start of an item (after `{`, `,` or an attribute's `]`).
                    if let Some((kind, name, at)) = blocks.last()
                        && *kind == "enum"
                        && *at == depth
                        && word.starts_with(char::is_uppercase)
                        && matches!(
                            toks.get(i.wrapping_sub(1)),
                            Some(Tok::Punct('{' | ',' | ']'))
                        )
                    {
                        self.variants.insert((name.clone(), word.clone()));
                    }
                }
                _ => {}
            }
        }
    }

    fn variant_names(&self) -> HashSet<&str> {
        self.variants.iter().map(|(_, v)| v.as_str()).collect()
    }
}

/// The type an `impl` block is for: the last name outside generics, after
/// `for` if there is one (`impl<T> TimerWheel<T>`, `impl fmt::Display for ProtocolError`).
fn impl_type(toks: &[Tok]) -> Option<String> {
    let mut angle = 0;
    let mut last = None;
    for tok in toks {
        match tok {
            Tok::Punct('<') => angle += 1,
            Tok::Punct('>') => angle -= 1,
            Tok::Punct('{') => break,
            Tok::Ident(w) if angle == 0 && w == "where" => break,
            Tok::Ident(w) if angle == 0 && w == "for" => last = None,
            Tok::Ident(w) if angle == 0 => last = Some(w.clone()),
            _ => {}
        }
    }
    last
}

/// Inline code spans of a note (they may wrap across lines), plus the lines
/// of fenced blocks marked `text`. Err if the backticks between two fences
/// do not pair up: the spans could not be told apart from the prose.
fn code_spans(text: &str) -> Result<Vec<String>, String> {
    fn inline(prose: &str, spans: &mut Vec<String>) -> Result<(), String> {
        let parts: Vec<&str> = prose.split('`').collect();
        if parts.len().is_multiple_of(2) {
            let first = prose.lines().find(|l| l.contains('`')).unwrap_or("");
            return Err(format!(
                "unpaired backtick in the paragraphs starting {first:?}"
            ));
        }
        // Odd-numbered parts are between backticks.
        spans.extend(
            parts
                .iter()
                .skip(1)
                .step_by(2)
                .map(|s| s.replace('\n', " ")),
        );
        Ok(())
    }
    let mut spans = Vec::new();
    let mut prose = String::new();
    let mut fence: Option<String> = None;
    for line in text.lines() {
        if let Some(info) = line.trim_start().strip_prefix("```") {
            fence = match fence {
                Some(_) => None,
                None => {
                    inline(&std::mem::take(&mut prose), &mut spans)?;
                    Some(info.trim().to_owned())
                }
            };
            continue;
        }
        match fence.as_deref() {
            Some("text") => spans.push(line.to_owned()),
            Some(_) => {}
            None => {
                prose.push_str(line);
                prose.push('\n');
            }
        }
    }
    inline(&prose, &mut spans)?;
    Ok(spans)
}

fn is_camel(word: &str) -> bool {
    word.starts_with(|c: char| c.is_ascii_uppercase())
        && word.chars().any(|c| c.is_ascii_lowercase())
}

fn is_screaming(word: &str) -> bool {
    word.contains('_')
        && word
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

fn is_snake(word: &str) -> bool {
    word.contains('_')
        && word.starts_with(|c: char| c.is_ascii_lowercase())
        && word
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Why `word` (a name or a `::` path from a code span) is not ours and not
/// external, or `None` when it is fine.
/// Every `dir/file.rs::name` in a code span, as (file, name).
fn file_qualified_fns(span: &str) -> Vec<(String, String)> {
    span.split(|c: char| c.is_whitespace() || c == ',' || c == '`')
        .filter_map(|word| word.split_once(".rs::"))
        .filter(|(file, name)| file.contains('/') && !name.is_empty())
        .map(|(file, name)| {
            let name: String = name
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            (format!("{file}.rs"), name)
        })
        .collect()
}

fn check_name(word: &str, defs: &Definitions) -> Option<String> {
    let external = |w: &str| EXTERNAL.contains(&w);
    let mut segments: Vec<&str> = word.split("::").filter(|s| !s.is_empty()).collect();
    if segments.is_empty() || EXTERNAL_ROOTS.contains(&segments[0]) {
        return None;
    }
    if segments.len() > 1 {
        // miochat::server::Server::turn -> Server::turn
        while segments.len() > 1
            && (["miochat", "crate", "self", "super"].contains(&segments[0])
                || defs.modules.contains(segments[0]))
        {
            segments.remove(0);
        }
    }
    match segments.as_slice() {
        [ty, item, ..] if is_camel(ty) => {
            if external(ty) {
                None
            } else if !defs.types.contains(*ty) {
                Some(format!("no type {ty} in src/"))
            } else if defs.methods.contains(&(ty.to_string(), item.to_string()))
                || defs.variants.contains(&(ty.to_string(), item.to_string()))
            {
                None
            } else {
                Some(format!(
                    "no fn {item} in impl {ty}, and no variant {ty}::{item}"
                ))
            }
        }
        [first, ..] if segments.len() > 1 => Some(format!("unknown path root {first}")),
        [one] => check_single(one, defs),
        _ => None,
    }
}

fn check_single(word: &str, defs: &Definitions) -> Option<String> {
    if EXTERNAL.contains(&word) {
        return None;
    }
    if is_camel(word) {
        let ours = defs.types.contains(word) || defs.variant_names().contains(word);
        return (!ours).then(|| format!("no type or variant {word} in src/"));
    }
    if is_screaming(word) {
        let ours = defs.consts.contains(word) || defs.strings.contains(word);
        return (!ours).then(|| format!("no const {word} in src/"));
    }
    if is_snake(word) {
        let ours = defs.fns.contains(word)
            || defs.colon_names.contains(word)
            || defs.bindings.contains(word)
            || defs.consts.contains(word)
            || defs.strings.contains(word); // a cookie or header name the code uses
        return (!ours).then(|| format!("no fn, field or binding {word} in src/"));
    }
    None
}

/// The words of a code span: `::` paths and names, and `--flags`.
fn words(span: &str) -> Vec<String> {
    // A header line (`Host: example`) or an HTTP start line is not code.
    if let Some((name, _)) = span.split_once(": ")
        && !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Vec::new();
    }
    let first = span.split_whitespace().next().unwrap_or("");
    let second = span.split_whitespace().nth(1).unwrap_or("");
    if first.starts_with("HTTP/")
        || first.len() == 3 && first.chars().all(|c| c.is_ascii_digit())
        || first.chars().all(|c| c.is_ascii_uppercase()) && second.starts_with('/')
    {
        return Vec::new();
    }
    // Quoted text ("Hello") is data, and paths (notes/two_clients.py) are
    // checked as paths.
    let mut unquoted = String::new();
    for (i, part) in span.split('"').enumerate() {
        if i % 2 == 0 {
            unquoted.push_str(part);
            unquoted.push(' ');
        }
    }
    let unpathed: Vec<&str> = unquoted
        .split_whitespace()
        .filter(|w| !w.contains('/') || w.starts_with("--"))
        .filter(|w| {
            !FILE_TYPES
                .iter()
                .any(|t| w.trim_end_matches([',', ':']).ends_with(t))
        })
        .collect();
    unpathed
        .join(" ")
        .split(|c: char| !(c.is_ascii_alphanumeric() || "_:-$".contains(c)))
        .map(|w| w.trim_matches(':'))
        // `$bp_timer`, `$_caller_is`: gdb's variables and functions.
        .filter(|w| !w.is_empty() && !w.starts_with('$'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_name_in_the_notes_is_defined_in_src() {
    let defs = Definitions::of_src();
    // The lexer itself must find the names the course leans on.
    for (ty, item) in [
        ("Server", "turn"),
        ("Connection", "flush"),
        ("Session", "next_event"),
    ] {
        assert!(
            defs.methods.contains(&(ty.into(), item.into())),
            "lexer missed {ty}::{item}"
        );
    }
    assert!(defs.variants.contains(&("ConnState".into(), "Open".into())));
    assert!(defs.consts.contains("READS_PER_TURN"));
    let config = std::fs::read_to_string(root().join("src/config.rs")).unwrap();
    // The notes' own client scripts have flags too (`--port`, `--header`).
    let script = std::fs::read_to_string(root().join("notes/two_clients.py")).unwrap()
        + &std::fs::read_to_string(root().join("tools/wsraw.py")).unwrap();
    let mut problems = BTreeSet::new();
    for (note, text) in notes() {
        let spans = code_spans(&text).unwrap_or_else(|e| panic!("notes/{note}: {e}"));
        for span in &spans {
            // `tests/frames.rs::name`: that file must define `fn name`.
            for (file, name) in file_qualified_fns(span) {
                let defined = std::fs::read_to_string(root().join(&file))
                    .is_ok_and(|source| source.contains(&format!("fn {name}(")));
                if !defined {
                    problems.insert(format!(
                        "notes/{note}: `{file}::{name}`: no fn {name} in {file}"
                    ));
                }
            }
        }
        for span in spans {
            for word in words(&span) {
                if let Some(flag) = word.strip_prefix("--") {
                    let quoted = format!("\"--{flag}\"");
                    let known = config.contains(&quoted)
                        || script.contains(&quoted)
                        || EXTERNAL_FLAGS.contains(&word.as_str());
                    if !known && !flag.is_empty() {
                        problems.insert(format!(
                            "notes/{note}: `{word}`: no such flag in src/config.rs"
                        ));
                    }
                    continue;
                }
                if word.contains('-') || word.starts_with(|c: char| c.is_ascii_digit()) {
                    continue; // header names, file names, numbers
                }
                if let Some(why) = check_name(&word, &defs) {
                    problems.insert(format!("notes/{note}: `{word}`: {why}"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "names in the notes that src/ does not define (rename them in the note, or, for a \
         name that is not ours, add it to EXTERNAL in tests/notes.rs):\n{}",
        problems.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn the_name_checker_catches_stale_names() {
    let defs = Definitions::of_src();
    for stale in [
        "Server::no_such_step",
        "ConnState::Dancing",
        "NoSuchType",
        "NO_SUCH_LIMIT",
        "no_such_function",
        "miochat::server::Server::no_such_step",
    ] {
        assert!(
            check_name(stale, &defs).is_some(),
            "{stale} passed the checker"
        );
    }
    for fine in [
        "Server::turn",
        "miochat::server::Server::append_to_history",
        "ConnState::Lingering",
        "Interest::WRITABLE",
        "io::ErrorKind::WouldBlock",
        "TimerWheel::next_timeout",
        "MessageReader::decode",
        "read_buf",
        "MAX_HEAD_BYTES",
    ] {
        assert_eq!(check_name(fine, &defs), None, "{fine}");
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
