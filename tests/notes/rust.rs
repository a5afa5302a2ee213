//! A small lexer for Rust source: enough to find definitions (`names.rs`),
//! log calls (`logs.rs`) and the values of consts (`constants.rs`) without a
//! parser crate. Comments and lifetimes are dropped; strings and numbers are
//! kept, each token with its line.

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    Punct(char),
    PathSep,
    /// A string literal's value, escapes resolved (`"a\"b"` is `a"b`).
    Str(String),
    /// A number literal as written (`1_024`, `0x7f`, `10u64`).
    Num(String),
}

/// The tokens of `source`, and the line (from 1) each starts on.
pub fn lex(source: &str) -> (Vec<Tok>, Vec<usize>) {
    let chars: Vec<char> = source.chars().collect();
    let mut toks = Vec::new();
    let mut lines = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        let c = chars[i];
        let next = chars.get(i + 1).copied().unwrap_or('\0');
        let tok = if c == '/' && next == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            None
        } else if c == '/' && next == '*' {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
            None
        } else if c == 'r' && (next == '"' || next == '#') && !prev_is_ident(&chars, i) {
            raw_string(&chars, &mut i)
        } else if c == 'b' && next == '"' && !prev_is_ident(&chars, i) {
            i += 1;
            Some(Tok::Str(quoted_string(&chars, &mut i)))
        } else if c == '"' {
            Some(Tok::Str(quoted_string(&chars, &mut i)))
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
                while i < chars.len() && is_word(chars[i]) {
                    i += 1;
                }
            }
            None
        } else if c.is_alphabetic() || c == '_' {
            while i < chars.len() && is_word(chars[i]) {
                i += 1;
            }
            Some(Tok::Ident(chars[start..i].iter().collect()))
        } else if c.is_ascii_digit() {
            while i < chars.len() && is_word(chars[i]) {
                i += 1;
            }
            Some(Tok::Num(chars[start..i].iter().collect()))
        } else if c == ':' && next == ':' {
            i += 2;
            Some(Tok::PathSep)
        } else if c.is_whitespace() {
            i += 1;
            None
        } else {
            i += 1;
            Some(Tok::Punct(c))
        };
        if let Some(tok) = tok {
            toks.push(tok);
            lines.push(line);
        }
        line += chars[start..i.min(chars.len())]
            .iter()
            .filter(|&&c| c == '\n')
            .count();
    }
    (toks, lines)
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn prev_is_ident(chars: &[char], i: usize) -> bool {
    i > 0 && is_word(chars[i - 1])
}

/// `r"..."` or `r#"..."#` at `chars[*i]`; `None` (and one step) for a lone `r`.
fn raw_string(chars: &[char], i: &mut usize) -> Option<Tok> {
    let mut hashes = 0;
    let mut j = *i + 1;
    while chars.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    if chars.get(j) != Some(&'"') {
        *i += 1;
        return Some(Tok::Ident("r".into()));
    }
    j += 1;
    let start = j;
    while j < chars.len()
        && !(chars[j] == '"' && (0..hashes).all(|h| chars.get(j + 1 + h) == Some(&'#')))
    {
        j += 1;
    }
    *i = j + 1 + hashes;
    Some(Tok::Str(chars[start..j.min(chars.len())].iter().collect()))
}

/// A `"..."` literal at `chars[*i]`, with its escapes resolved.
fn quoted_string(chars: &[char], i: &mut usize) -> String {
    let mut value = String::new();
    let mut j = *i + 1;
    while j < chars.len() && chars[j] != '"' {
        if chars[j] != '\\' {
            value.push(chars[j]);
            j += 1;
            continue;
        }
        let escaped = chars.get(j + 1).copied().unwrap_or('\\');
        j += 2;
        match escaped {
            'n' => value.push('\n'),
            'r' => value.push('\r'),
            't' => value.push('\t'),
            '0' => value.push('\0'),
            // A line continuation: the newline and the next line's indent go.
            '\n' => {
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
            }
            'x' => {
                let digits: String = chars[j..(j + 2).min(chars.len())].iter().collect();
                j += 2;
                value.push(char::from(u8::from_str_radix(&digits, 16).unwrap_or(b'?')));
            }
            'u' => {
                // \u{1F600}
                let end = chars[j..]
                    .iter()
                    .position(|&c| c == '}')
                    .map_or(j, |e| j + e);
                let digits: String = chars[j..end]
                    .iter()
                    .filter(|c| c.is_ascii_hexdigit())
                    .collect();
                j = end + 1;
                let code = u32::from_str_radix(&digits, 16).unwrap_or(0xfffd);
                value.push(char::from_u32(code).unwrap_or('\u{fffd}'));
            }
            other => value.push(other),
        }
    }
    *i = j + 1;
    value
}
