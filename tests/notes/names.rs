//! Names: every name of ours a note writes in code format is defined in `src/`.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use super::{notes, root, sources, test_sources};

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
    // The notes' own client script has flags too (`--port`).
    let script = std::fs::read_to_string(root().join("notes/two_clients.py")).unwrap();
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
