//! Names: every name of ours a note writes in code format is defined in `src/`.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use super::rust::{Tok, lex};
use super::{notes, root, sources, test_sources};

/// Names the notes may write in code format that are not defined in src/:
/// other crates, std, the RFC, the kernel, gdb, other runtimes.
const EXTERNAL: &[&str] = &[
    // HTTP words and tools named in notes/hostile-inputs.md
    "Bearer",
    // notes/10-redis.md: the socket option --reuse-port sets
    "SO_REUSEPORT",
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
    // curl's --write-out variable (notes/07-sse-or-polling.md, exercise 1)
    "num_connects",
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

/// Flags of other programs (cargo, gdb, curl) the notes may show.
const EXTERNAL_FLAGS: &[&str] = &[
    "--data-binary",
    "--args",
    "--release",
    "--test",
    "--nocapture",
    "--bin",
    "--batch",
    "--lib",
    "--max-time",
];

/// A word ending like this is a file name, not a name in the code.
const FILE_TYPES: &[&str] = &[
    ".rs", ".md", ".py", ".gdb", ".sh", ".json", ".js", ".toml", ".txt", ".html", ".css",
];

/// What the code defines, collected by a small lexer (`rust.rs`).
#[derive(Default)]
struct Definitions {
    types: HashSet<String>,
    fns: HashSet<String>,
    /// (type, fn) for every fn inside an `impl Type` block.
    methods: HashSet<(String, String)>,
    /// (enum, variant).
    variants: HashSet<(String, String)>,
    consts: HashSet<String>,
    /// Fields of structs and of enum variants.
    fields: HashSet<String>,
    /// Parameters of fns.
    params: HashSet<String>,
    /// Environment variables the code reads (`env::var("MIOCHAT_TOKEN")`).
    env_vars: HashSet<String>,
    /// Whole string literals that are one snake_case word: names on the wire
    /// the code matches exactly (the `miochat_token` cookie). A word inside a
    /// longer literal does not count.
    wire_names: HashSet<String>,
    modules: HashSet<String>,
}

impl Definitions {
    /// What `src/` defines outside its tests.
    fn of_src() -> Definitions {
        Self::of(false)
    }

    /// What `src/`, `tests/` and `fuzz/` define, tests included: the names a
    /// note may use where it says it names a test.
    fn with_tests() -> Definitions {
        Self::of(true)
    }

    fn of(tests_too: bool) -> Definitions {
        let mut defs = Definitions::default();
        let src = sources().into_iter().map(|file| (file, false));
        let tests = test_sources().into_iter().map(|file| (file, true));
        for ((path, text), test_file) in src.chain(tests) {
            // src/session/tests.rs is a test module too.
            let test_file = test_file || path.ends_with("/tests.rs");
            if test_file && !tests_too {
                continue;
            }
            let stem = Path::new(&path).file_stem().unwrap().to_string_lossy();
            defs.modules.insert(stem.into_owned());
            defs.scan(&lex(&text).0, tests_too);
        }
        defs
    }

    fn scan(&mut self, toks: &[Tok], tests_too: bool) {
        let ident = |i: usize| match toks.get(i) {
            Some(Tok::Ident(name)) => Some(name.as_str()),
            _ => None,
        };
        // (kind, name, depth at which its block opened)
        let mut blocks: Vec<(&str, String, usize)> = Vec::new();
        let mut pending: Option<(&str, String)> = None;
        let mut depth = 0;
        for i in 0..toks.len() {
            // An inline `mod tests { .. }` counts only with the tests.
            let in_tests = blocks.iter().any(|b| b.0 == "mod" && b.1 == "tests");
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
                _ if in_tests && !tests_too => {}
                Tok::Str(literal) if is_snake(literal) => {
                    self.wire_names.insert(literal.clone());
                }
                Tok::Ident(word) => {
                    let next = ident(i + 1);
                    match (word.as_str(), next) {
                        ("struct" | "enum" | "union", Some(name)) => {
                            self.types.insert(name.to_owned());
                            pending = Some((word.as_str(), name.to_owned()));
                        }
                        ("trait" | "type", Some(name)) => {
                            self.types.insert(name.to_owned());
                        }
                        ("fn", Some(name)) => {
                            self.fns.insert(name.to_owned());
                            if let Some((_, ty, _)) = blocks.iter().rev().find(|b| b.0 == "impl") {
                                self.methods.insert((ty.clone(), name.to_owned()));
                            }
                            self.params.extend(params(&toks[i + 2..]));
                        }
                        ("const" | "static", Some(name)) if name != "fn" => {
                            self.consts.insert(name.to_owned());
                        }
                        ("mod", Some(name)) => {
                            self.modules.insert(name.to_owned());
                            pending = Some(("mod", name.to_owned()));
                        }
                        ("impl", _) => {
                            pending = impl_type(&toks[i + 1..]).map(|ty| ("impl", ty));
                        }
                        ("var" | "var_os", _) => {
                            if let (Some(Tok::Punct('(')), Some(Tok::Str(name))) =
                                (toks.get(i + 1), toks.get(i + 2))
                            {
                                self.env_vars.insert(name.clone());
                            }
                        }
                        _ => {}
                    }
                    // A field: `name:` (not `name::`) in a struct's braces, or in
                    // the braces of an enum's variant.
                    if let Some((kind, _, at)) = blocks.last()
                        && toks.get(i + 1) == Some(&Tok::Punct(':'))
                        && (matches!(*kind, "struct" | "union") && *at == depth
                            || *kind == "enum" && *at + 1 == depth)
                    {
                        self.fields.insert(word.clone());
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

/// The parameters of the fn whose generics or `(` start `toks`: each
/// `name:` directly inside its parentheses.
fn params(toks: &[Tok]) -> Vec<String> {
    let Some(open) = toks.iter().position(|t| *t == Tok::Punct('(')) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut depth = 0;
    for (i, tok) in toks.iter().enumerate().skip(open) {
        match tok {
            Tok::Punct('(' | '[' | '<') => depth += 1,
            Tok::Punct(')' | ']' | '>') => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            Tok::Ident(name) if depth == 1 && toks.get(i + 1) == Some(&Tok::Punct(':')) => {
                found.push(name.clone());
            }
            _ => {}
        }
    }
    found
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

/// A code span of a note, and the paragraph (or drawing) it stands in.
struct Span {
    text: String,
    context: String,
}

/// Inline code spans of a note (they may wrap across lines), plus the lines
/// of fenced blocks marked `text`. Err if the backticks of a paragraph do
/// not pair up: the spans could not be told apart from the prose.
fn code_spans(text: &str) -> Result<Vec<Span>, String> {
    fn inline(prose: &str, spans: &mut Vec<Span>) -> Result<(), String> {
        let paragraphs: Vec<&str> = prose.split("\n\n").collect();
        for (i, paragraph) in paragraphs.iter().enumerate() {
            let parts: Vec<&str> = paragraph.split('`').collect();
            if parts.len().is_multiple_of(2) {
                let first = paragraph.lines().find(|l| l.contains('`')).unwrap_or("");
                return Err(format!("unpaired backtick in the paragraph {first:?}"));
            }
            // A table's or a list's subject is often said just before it.
            let context = match i {
                0 => paragraph.to_string(),
                _ => format!("{}\n\n{paragraph}", paragraphs[i - 1]),
            };
            // Odd-numbered parts are between backticks.
            spans.extend(parts.iter().skip(1).step_by(2).map(|s| Span {
                text: s.replace('\n', " "),
                context: context.clone(),
            }));
        }
        Ok(())
    }
    let mut spans = Vec::new();
    let mut prose = String::new();
    let mut fence: Option<String> = None;
    let mut drawing = Vec::new();
    for line in text.lines() {
        if let Some(info) = line.trim_start().strip_prefix("```") {
            fence = match fence {
                Some(_) => {
                    let context = drawing.join("\n");
                    spans.extend(drawing.drain(..).map(|text| Span {
                        text,
                        context: context.clone(),
                    }));
                    None
                }
                None => {
                    inline(&std::mem::take(&mut prose), &mut spans)?;
                    Some(info.trim().to_owned())
                }
            };
            continue;
        }
        match fence.as_deref() {
            Some("text") => drawing.push(line.to_owned()),
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

/// Every "`NAME` in `FILE.rs`" of a paragraph, as (name, file): the note
/// says where NAME is defined, and it must be there.
fn located_names(paragraph: &str) -> Vec<(String, String)> {
    let parts: Vec<&str> = paragraph.split('`').collect();
    let mut found = Vec::new();
    // parts[i] is a span when i is odd; parts[i + 1] is the prose after it.
    for i in (1..parts.len().saturating_sub(2)).step_by(2) {
        let (name, between, file) = (parts[i], parts[i + 1], parts[i + 2]);
        let file = file.split("::").next().unwrap_or(file);
        let simple = name.chars().all(|c| c.is_alphanumeric() || c == '_');
        if simple && between.replace('\n', " ") == " in " && file.ends_with(".rs") {
            found.push((name.to_owned(), file.to_owned()));
        }
    }
    found
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
        let ours = defs.consts.contains(word) || defs.env_vars.contains(word);
        return (!ours).then(|| format!("no const (or environment variable read) {word} in src/"));
    }
    if is_snake(word) {
        let ours = defs.fns.contains(word)
            || defs.fields.contains(word)
            || defs.params.contains(word)
            || defs.consts.contains(word)
            || defs.modules.contains(word)
            || defs.wire_names.contains(word);
        return (!ours).then(|| format!("no fn, field, parameter or module {word} in src/"));
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
    let with_tests = Definitions::with_tests();
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
            for (file, name) in file_qualified_fns(&span.text) {
                let defined = std::fs::read_to_string(root().join(&file))
                    .is_ok_and(|source| source.contains(&format!("fn {name}(")));
                if !defined {
                    problems.insert(format!(
                        "notes/{note}: `{file}::{name}`: no fn {name} in {file}"
                    ));
                }
            }
        }
        for paragraph in text.split("\n\n") {
            // "`the_rfc_key_gives_the_rfc_accept` in `src/handshake/tests.rs`"
            for (name, file) in located_names(paragraph) {
                let source = std::fs::read_to_string(root().join(&file)).unwrap_or_default();
                let mut defined = Definitions::default();
                defined.scan(&lex(&source).0, true);
                if check_single(&name, &defined).is_some() {
                    let at = grep_definition(&name);
                    problems.insert(format!(
                        "notes/{note}: `{name}` in `{file}`: {file} does not define it{at}"
                    ));
                }
            }
        }
        for span in spans {
            for word in words(&span.text) {
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
                let Some(why) = check_name(&word, &defs) else {
                    continue;
                };
                // A test's name passes where the note says it names a test.
                let says_test = span.context.to_lowercase().contains("test");
                if says_test && check_name(&word, &with_tests).is_none() {
                    continue;
                }
                let hint = match check_name(&word, &with_tests) {
                    None => format!(
                        " ({word} is a test: say so in its paragraph, or write it as `FILE.rs::{word}`)"
                    ),
                    Some(_) => grep_definition(&word),
                };
                problems.insert(format!("notes/{note}: `{word}`: {why}{hint}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "names in the notes that src/ does not define (rename them in the note, or, for a \
         name that is not ours, add it to EXTERNAL in tests/notes/names.rs):\n{}",
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
        // A local variable is not a definition (`let held_before` in src/server/incoming.rs).
        "held_before",
        // A test, outside a paragraph that says so.
        "the_rfc_key_gives_the_rfc_accept",
    ] {
        assert!(
            check_name(stale, &defs).is_some(),
            "{stale} passed the checker"
        );
    }
    // What counts as a definition, on a made-up source.
    let mut made_up = Definitions::default();
    made_up.scan(
        &lex(r#"struct S { field_a: u8 } fn f(param_b: u8) { let local_c = "in_literal d"; }"#).0,
        false,
    );
    for (word, defined) in [
        ("field_a", true),
        ("param_b", true),
        ("local_c", false),
        ("in_literal", false),
    ] {
        assert_eq!(check_single(word, &made_up).is_none(), defined, "{word}");
    }
    let with_tests = Definitions::with_tests();
    assert_eq!(
        check_name("the_rfc_key_gives_the_rfc_accept", &with_tests),
        None
    );
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
        // A parameter, an environment variable read, a cookie's name.
        "trust_short_reads",
        "MIOCHAT_TOKEN",
        "miochat_token",
    ] {
        assert_eq!(check_name(fine, &defs), None, "{fine}");
    }
}

/// ", defined in FILE" for the source files that define `name` as a fn,
/// type, const or field, to say where a name went; empty if none does.
fn grep_definition(name: &str) -> String {
    let files: Vec<String> = sources()
        .into_iter()
        .chain(test_sources())
        .filter(|(_, text)| {
            let mut defs = Definitions::default();
            defs.scan(&lex(text).0, true);
            check_single(name, &defs).is_none()
        })
        .map(|(path, _)| path)
        .collect();
    match files.is_empty() {
        true => String::new(),
        false => format!(" (defined in {})", files.join(", ")),
    }
}
