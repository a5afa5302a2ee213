//! The shape of `src/` that the course promises, checked on the source text:
//! the protocol files do no IO (no socket, no `mio`, no clock), and no
//! function is too long to hold in your head.

use std::path::{Path, PathBuf};

/// Files that hold protocol only: bytes and time in, bytes and events out.
const PROTOCOL_FILES: [&str; 22] = [
    "src/handshake.rs",
    "src/http.rs",
    "src/framing.rs",
    "src/http_chat.rs",
    "src/sse.rs",
    "src/long_poll.rs",
    "src/client_key.rs",
    "src/frame.rs",
    "src/message.rs",
    "src/utf8.rs",
    "src/session.rs",
    "src/session/ending.rs",
    "src/session/requests.rs",
    "src/history.rs",
    "src/v1.rs",
    "src/timer.rs",
    "src/error.rs",
    "src/resp.rs",
    "src/cluster.rs",
    "src/cluster/commands.rs",
    "src/cluster/link.rs",
    "src/cluster/url.rs",
];

/// What a protocol file must not mention: sockets, the poller, the clock,
/// files, threads, and the `Read`/`Write` traits that sockets implement.
const IO_MARKERS: [&str; 15] = [
    "mio::",
    "use mio",
    "std::net",
    "TcpStream",
    "TcpListener",
    "UdpSocket",
    "io::Read",
    "io::Write",
    "Read, Write",
    "Instant::now",
    "SystemTime::now",
    "std::fs",
    "std::thread",
    ".shutdown(",
    "libc",
];

/// The longest function body allowed outside tests, in lines (signature to closing brace).
const MAX_FN_LINES: usize = 50;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file's text without its `#[cfg(test)]` module (tests may use sockets and clocks).
fn code_part(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    match text.find("#[cfg(test)]\nmod tests {") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// Lines of `code` (comments dropped) that mention an IO marker.
fn io_mentions(code: &str) -> Vec<String> {
    code.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .filter(|line| IO_MARKERS.iter().any(|marker| line.contains(marker)))
        .map(|line| line.trim().to_owned())
        .collect()
}

/// Every `fn` in `code` with its length in lines, by brace matching (strings
/// and comments with unbalanced braces would confuse it; `src/` has none).
fn function_lengths(code: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut found = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let is_fn = [
            "fn ",
            "pub fn ",
            "pub(super) fn ",
            "pub(crate) fn ",
            "const fn ",
        ]
        .iter()
        .any(|prefix| trimmed.starts_with(prefix));
        if !is_fn {
            continue;
        }
        let name = trimmed.split("fn ").nth(1).unwrap_or("");
        let name: String = name
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let mut depth = 0i32;
        let mut opened = false;
        for (end, body_line) in lines.iter().enumerate().skip(start) {
            let code = body_line.split("//").next().unwrap_or("");
            for c in code.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            // A signature without a body (a trait item) ends at `;`.
            if !opened && code.trim_end().ends_with(';') {
                break;
            }
            if opened && depth == 0 {
                found.push((name.clone(), end - start + 1));
                break;
            }
        }
    }
    found
}

/// Every `.rs` file under `src/`, tests excluded (`session/tests.rs`).
fn source_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![root().join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs")
                && path.file_name().is_some_and(|n| n != "tests.rs")
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn the_protocol_files_do_no_io() {
    let mut problems = Vec::new();
    for file in PROTOCOL_FILES {
        for line in io_mentions(&code_part(&root().join(file))) {
            problems.push(format!("{file}: {line}"));
        }
    }
    assert!(
        problems.is_empty(),
        "protocol files must not touch sockets, mio or the clock (the loop does):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_io_check_catches_a_socket_in_a_protocol_file() {
    let sneaky =
        "use std::io::Write;\nfn f(s: &mut mio::net::TcpStream) { let _ = s.write(b\"x\"); }\n";
    assert_eq!(io_mentions(sneaky).len(), 2);
    assert!(io_mentions("let now = Instant::now();").len() == 1);
    assert!(io_mentions("// a comment about mio\nfn pure() {}").is_empty());
}

#[test]
fn no_function_in_src_is_longer_than_fifty_lines() {
    let mut long = Vec::new();
    for file in source_files() {
        for (name, lines) in function_lengths(&code_part(&file)) {
            if lines > MAX_FN_LINES {
                let shown = file.strip_prefix(root()).unwrap().display().to_string();
                long.push(format!("{shown}: fn {name} is {lines} lines"));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines (split them by idea):\n{}",
        long.join("\n")
    );
}

#[test]
fn the_length_check_measures_a_function_from_signature_to_brace() {
    let code = "fn short() {\n    let x = 1;\n}\n\npub fn longer(a: u8)\n    -> u8\n{\n    if a > 1 {\n        a\n    } else { 0 }\n}\n";
    assert_eq!(
        function_lengths(code),
        [("short".to_owned(), 3), ("longer".to_owned(), 7)]
    );
}
