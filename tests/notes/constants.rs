//! Numbers the notes give for our constants and flags are the code's.
//!
//! A value is checked where the prose ties it to a name, in one of these
//! shapes (the name a const of `src/` or a flag of `miochat --help`):
//!
//! ```text
//! `MESSAGES_PER_TURN` (256)          `--heartbeat-ms` (30 s)
//! `READ_CHUNK`, 64 KiB               `READS_PER_TURN` reads (4 ...
//! 8 KiB (`MAX_HEAD_BYTES`)           10.24 s (`TICK` × `SLOTS`)
//! TICK = 10 ms, SLOTS = 1024         (in a drawing: a fenced `text` block)
//! ```
//!
//! A const's value is worked out from its definition (`64 * 1024`,
//! `Duration::from_millis(10)`, other consts); a flag's is the
//! `[default: N]` that `miochat --help` prints, in milliseconds for a
//! `-ms` flag and bytes for a `-bytes` one. Units in the note are converted
//! (`64 KiB` is 65536, `10 s` is 10000 ms). A number that names nothing is
//! not checked: tie it to its name to have it checked.

use std::collections::HashMap;
use std::process::Command;

use super::rust::{Tok, lex};
use super::{notes, sources};

/// A value in the code's base unit: nanoseconds for a duration.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value {
    Count(f64),
    Nanos(f64),
}

impl Value {
    fn times(self, other: Value) -> Option<Value> {
        match (self, other) {
            (Value::Count(a), Value::Count(b)) => Some(Value::Count(a * b)),
            (Value::Nanos(a), Value::Count(b)) | (Value::Count(b), Value::Nanos(a)) => {
                Some(Value::Nanos(a * b))
            }
            _ => None,
        }
    }
}

/// What a note says: a number and its unit, as written.
#[derive(Debug, Clone, PartialEq)]
struct Stated {
    text: String,
    number: f64,
    unit: String,
}

impl Stated {
    /// The stated value in the code's unit; `None` for a unit that cannot be
    /// one of `name`'s values.
    fn value(&self) -> Option<Value> {
        let n = self.number;
        Some(match self.unit.as_str() {
            "" | "bytes" | "B" => Value::Count(n),
            "KiB" => Value::Count(n * 1024.0),
            "MiB" => Value::Count(n * 1024.0 * 1024.0),
            "GiB" => Value::Count(n * 1024.0 * 1024.0 * 1024.0),
            "ns" => Value::Nanos(n),
            "µs" | "us" => Value::Nanos(n * 1e3),
            "ms" => Value::Nanos(n * 1e6),
            "s" => Value::Nanos(n * 1e9),
            "min" => Value::Nanos(n * 60e9),
            _ => return None,
        })
    }

    /// `value` written in this statement's unit, for the failure message.
    fn rewrite(&self, value: Value) -> String {
        let one = Stated {
            number: 1.0,
            ..self.clone()
        };
        let scale = match one.value() {
            Some(Value::Count(s) | Value::Nanos(s)) => s,
            None => 1.0,
        };
        let (Value::Count(v) | Value::Nanos(v)) = value;
        let number = v / scale;
        match self.unit.is_empty() {
            true => format!("{number}"),
            false => format!("{number} {}", self.unit),
        }
    }
}

const UNITS: &[&str] = &[
    "bytes", "KiB", "MiB", "GiB", "ns", "µs", "us", "ms", "min", "s", "B",
];

/// A number at the start of `text` (`10,000`, `10.24`), with its unit if one
/// follows (`64 KiB`, `10 ms`, `10.24s`).
fn stated_at(text: &str) -> Option<Stated> {
    let digits: String = text
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',' || *c == '.')
        .collect();
    let digits = digits.trim_end_matches([',', '.']);
    if digits.is_empty() || !digits.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let number: f64 = digits.replace(',', "").parse().ok()?;
    let rest = &text[digits.len()..];
    let after = rest.trim_start_matches(' ');
    let unit = UNITS
        .iter()
        .find(|u| {
            after.starts_with(*u) && !after[u.len()..].starts_with(|c: char| c.is_alphanumeric())
        })
        .copied()
        .unwrap_or("");
    let end = match unit {
        "" => digits.len(),
        _ => text.len() - after.len() + unit.len(),
    };
    // "4 reads", "(256)": a number with no unit must not run into letters.
    if unit.is_empty() && rest.starts_with(|c: char| c.is_alphanumeric()) {
        return None;
    }
    Some(Stated {
        text: text[..end].to_owned(),
        number,
        unit: unit.to_owned(),
    })
}

/// The names in a code span that could carry a value: one const or flag,
/// alone in the span.
fn as_name(span: &str) -> Option<&str> {
    let is_const = span.len() > 1
        && span
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && span.starts_with(|c: char| c.is_ascii_uppercase());
    let is_flag = span.starts_with("--") && !span.contains(' ');
    (is_const || is_flag).then_some(span)
}

/// (names, stated value, line) for every value a note ties to a name.
fn claims(text: &str) -> Vec<(Vec<String>, Stated, usize)> {
    let mut found = Vec::new();
    let mut in_fence: Option<String> = None;
    let mut prose: Vec<(usize, &str)> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (n, line) in lines.iter().enumerate() {
        if let Some(info) = line.trim_start().strip_prefix("```") {
            in_fence = match in_fence {
                Some(_) => None,
                None => Some(info.trim().to_owned()),
            };
            continue;
        }
        match in_fence.as_deref() {
            Some("text") => found.extend(drawing_claims(line, n + 1)),
            Some(_) => {}
            None => prose.push((n + 1, line)),
        }
    }
    // Paragraphs, joined, so that a claim may wrap; each claim reports the
    // line its name stands on.
    for paragraph in prose.split(|(_, l)| l.trim().is_empty()) {
        let mut joined = String::new();
        let mut starts = Vec::new();
        for (n, line) in paragraph {
            starts.push((joined.len(), *n));
            joined.push_str(line);
            joined.push(' ');
        }
        let line_at = |at: usize| {
            starts
                .iter()
                .rev()
                .find(|(start, _)| *start <= at)
                .map_or(0, |(_, n)| *n)
        };
        for (at, names, stated) in prose_claims(&joined) {
            found.push((names, stated, line_at(at)));
        }
    }
    found
}

/// `NAME = VALUE` in a drawing.
fn drawing_claims(line: &str, n: usize) -> Vec<(Vec<String>, Stated, usize)> {
    let mut found = Vec::new();
    for (at, _) in line.match_indices(" = ") {
        let name = line[..at]
            .rsplit(|c: char| !(c.is_alphanumeric() || c == '_'))
            .next()
            .unwrap_or("");
        if let (Some(name), Some(stated)) = (as_name(name), stated_at(&line[at + 3..])) {
            found.push((vec![name.to_owned()], stated, n));
        }
    }
    found
}

/// (byte offset, names, value) for each claim in a paragraph of prose.
fn prose_claims(text: &str) -> Vec<(usize, Vec<String>, Stated)> {
    let parts: Vec<&str> = text.split('`').collect();
    let offset = |i: usize| parts[..i].iter().map(|p| p.len() + 1).sum::<usize>();
    let mut found = Vec::new();
    // parts[i] is a span when i is odd.
    for i in (1..parts.len()).step_by(2) {
        let after = parts.get(i + 1).copied().unwrap_or("");
        // `NAME` (VALUE, `NAME`, VALUE, `NAME` = VALUE, `NAME` word (VALUE
        if let Some(name) = as_name(parts[i]) {
            let rest = after.trim_start();
            let word_skipped = rest.trim_start_matches(|c: char| c.is_ascii_lowercase());
            let candidates = [
                rest.strip_prefix('('),
                rest.strip_prefix(','),
                rest.strip_prefix('='),
                rest.strip_prefix(':'),
                rest.strip_prefix("is "),
                word_skipped.trim_start().strip_prefix('('),
            ];
            if let Some(stated) = candidates
                .into_iter()
                .flatten()
                .find_map(|c| stated_at(c.trim_start()))
            {
                found.push((offset(i), vec![name.to_owned()], stated));
            }
        }
        // VALUE [word] (`NAME`) and VALUE (`A` × `B`)
        let before = parts[i - 1];
        if let Some(open) = before.strip_suffix('(')
            && let Some(names) = product(&parts[i..])
        {
            let open = open.trim_end();
            // The value, and maybe one word after it: "8 KiB (", "1024 slots (".
            let without_word = open.trim_end_matches(|c: char| c.is_ascii_lowercase());
            for head in [open, without_word.trim_end()] {
                let start = head
                    .rfind(|c: char| !(c.is_ascii_alphanumeric() || ".,µ ".contains(c)))
                    .map_or(0, |s| s + 1);
                let words: Vec<&str> = head[start..].split_whitespace().collect();
                let value_text = match words.as_slice() {
                    [.., number, unit] if UNITS.contains(unit) => format!("{number} {unit}"),
                    [.., number] => number.to_string(),
                    [] => continue,
                };
                if let Some(stated) = stated_at(&value_text)
                    && stated.text == value_text
                {
                    found.push((offset(i), names, stated));
                    break;
                }
            }
        }
    }
    found
}

/// `` `A`) `` or `` `A` × `B`) `` (or `*`), from a span on: the names multiplied.
fn product(parts: &[&str]) -> Option<Vec<String>> {
    let mut names = Vec::new();
    let mut i = 0;
    loop {
        names.push(as_name(parts.get(i)?)?.to_owned());
        let between = parts.get(i + 1)?.trim();
        if between.starts_with(')') || between.starts_with(',') {
            return Some(names);
        }
        if between != "×" && between != "*" {
            return None;
        }
        i += 2;
    }
}

/// The value of every const in `src/` that can be worked out.
fn const_values() -> HashMap<String, Value> {
    let mut definitions: HashMap<String, Vec<Tok>> = HashMap::new();
    for (path, text) in sources() {
        if path.ends_with("/tests.rs") {
            continue;
        }
        let toks = lex(&text).0;
        for (i, tok) in toks.iter().enumerate() {
            if *tok != Tok::Ident("const".into()) {
                continue;
            }
            let Some(Tok::Ident(name)) = toks.get(i + 1) else {
                continue;
            };
            let Some(eq) = toks[i..].iter().position(|t| *t == Tok::Punct('=')) else {
                continue;
            };
            let Some(end) = toks[i..].iter().position(|t| *t == Tok::Punct(';')) else {
                continue;
            };
            if eq < end {
                definitions
                    .entry(name.clone())
                    .or_insert_with(|| toks[i + eq + 1..i + end].to_vec());
            }
        }
    }
    let mut values = HashMap::new();
    for name in definitions.keys() {
        if let Some(value) = evaluate(name, &definitions, 0) {
            values.insert(name.clone(), value);
        }
    }
    values
}

fn evaluate(name: &str, definitions: &HashMap<String, Vec<Tok>>, depth: usize) -> Option<Value> {
    let toks = definitions.get(name)?;
    if depth > 8 {
        return None;
    }
    let mut parser = Expr {
        toks,
        at: 0,
        definitions,
        depth,
    };
    let value = parser.sum()?;
    (parser.at == toks.len()).then_some(value)
}

/// A const's expression: numbers, other consts, `+ - * /`, `<<`, `( )`,
/// `as TYPE`, and `Duration::from_secs/millis/micros/nanos(..)`.
struct Expr<'a> {
    toks: &'a [Tok],
    at: usize,
    definitions: &'a HashMap<String, Vec<Tok>>,
    depth: usize,
}

impl Expr<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn sum(&mut self) -> Option<Value> {
        let mut value = self.product()?;
        loop {
            let sign = match self.peek() {
                Some(Tok::Punct('+')) => 1.0,
                Some(Tok::Punct('-')) => -1.0,
                Some(Tok::Punct('<')) if self.toks.get(self.at + 1) == Some(&Tok::Punct('<')) => {
                    self.at += 2;
                    let Value::Count(shift) = self.product()? else {
                        return None;
                    };
                    value = value.times(Value::Count(2f64.powf(shift)))?;
                    continue;
                }
                _ => return Some(value),
            };
            self.at += 1;
            value = match (value, self.product()?) {
                (Value::Count(a), Value::Count(b)) => Value::Count(a + sign * b),
                (Value::Nanos(a), Value::Nanos(b)) => Value::Nanos(a + sign * b),
                _ => return None,
            };
        }
    }

    fn product(&mut self) -> Option<Value> {
        let mut value = self.atom()?;
        loop {
            match self.peek() {
                Some(Tok::Punct('*')) => {
                    self.at += 1;
                    value = value.times(self.atom()?)?;
                }
                Some(Tok::Punct('/')) => {
                    self.at += 1;
                    let Value::Count(d) = self.atom()? else {
                        return None;
                    };
                    value = value.times(Value::Count(1.0 / d))?;
                }
                _ => return Some(value),
            }
        }
    }

    fn atom(&mut self) -> Option<Value> {
        let tok = self.peek()?.clone();
        self.at += 1;
        let value = match tok {
            Tok::Num(text) => {
                let digits: String = text
                    .replace('_', "")
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.')
                    .collect();
                Value::Count(digits.parse().ok()?)
            }
            Tok::Punct('(') => {
                let value = self.sum()?;
                (self.peek() == Some(&Tok::Punct(')'))).then_some(())?;
                self.at += 1;
                value
            }
            Tok::Ident(ty) if ty == "Duration" => {
                (self.peek() == Some(&Tok::PathSep)).then_some(())?;
                let Some(Tok::Ident(unit)) = self.toks.get(self.at + 1).cloned() else {
                    return None;
                };
                self.at += 2;
                let scale = match unit.as_str() {
                    "from_secs" => 1e9,
                    "from_millis" => 1e6,
                    "from_micros" => 1e3,
                    "from_nanos" => 1.0,
                    _ => return None,
                };
                let Value::Count(n) = self.atom()? else {
                    return None;
                };
                Value::Nanos(n * scale)
            }
            Tok::Ident(name) => evaluate(&name, self.definitions, self.depth + 1)?,
            _ => return None,
        };
        // `as usize` changes nothing here.
        if self.peek() == Some(&Tok::Ident("as".into())) {
            self.at += 2;
        }
        Some(value)
    }
}

/// Every flag's default, from `miochat --help` (`[default: 30000]`), in the
/// code's unit: nanoseconds for a `-ms` flag.
fn flag_defaults() -> HashMap<String, Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_miochat"))
        .arg("--help")
        .output()
        .expect("miochat --help runs");
    let help = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut defaults = HashMap::new();
    for line in help.lines() {
        let Some(flag) = line
            .split_whitespace()
            .next()
            .filter(|f| f.starts_with("--"))
        else {
            continue;
        };
        let Some(default) = line.split("[default: ").nth(1) else {
            continue;
        };
        let Ok(number) = default.trim_end_matches(']').parse::<f64>() else {
            continue; // `none`, an address
        };
        let value = match flag.ends_with("-ms") {
            true => Value::Nanos(number * 1e6),
            false => Value::Count(number),
        };
        defaults.insert(flag.to_owned(), value);
    }
    defaults
}

/// Why a claim is wrong, or `None`.
fn check_claim(
    names: &[String],
    stated: &Stated,
    consts: &HashMap<String, Value>,
    flags: &HashMap<String, Value>,
) -> Option<String> {
    let mut value = Value::Count(1.0);
    let mut sources = Vec::new();
    for name in names {
        let (one, source) = match (consts.get(name), flags.get(name)) {
            (Some(v), _) => (*v, format!("{name} = {}", show(*v))),
            (None, Some(v)) => (
                *v,
                format!("{name} defaults to {} (miochat --help)", show(*v)),
            ),
            // A const whose value this checker cannot work out (a Token, a
            // string), a flag with no number for a default or another
            // program's flag (`--port` of two_clients.py): nothing to compare.
            // That the name exists is the name checker's business.
            (None, None) => return None,
        };
        value = value.times(one)?;
        sources.push(source);
    }
    // A flag in milliseconds quoted without a unit is in milliseconds.
    let flag_ms = names.len() == 1 && names[0].ends_with("-ms") && stated.unit.is_empty();
    let stated_value = match flag_ms {
        true => Value::Nanos(stated.number * 1e6),
        false => stated.value()?,
    };
    let close = match (stated_value, value) {
        (Value::Count(a), Value::Count(b)) | (Value::Nanos(a), Value::Nanos(b)) => {
            (a - b).abs() <= 1e-9 * b.abs().max(1.0)
        }
        _ => false,
    };
    if close {
        return None;
    }
    let fix = match std::mem::discriminant(&stated_value) == std::mem::discriminant(&value) {
        true => format!("write {}", stated.rewrite(value)),
        false => format!("give it as {}", show(value)),
    };
    Some(format!(
        "the note says {} for `{}`, but {}: {fix}",
        stated.text,
        names.join("` × `"),
        sources.join(", ")
    ))
}

fn show(value: Value) -> String {
    match value {
        Value::Count(n) => format!("{n}"),
        Value::Nanos(n) if n >= 1e9 => format!("{} s", n / 1e9),
        Value::Nanos(n) => format!("{} ms", n / 1e6),
    }
}

#[test]
fn numbers_the_notes_tie_to_a_const_or_a_flag_are_the_code_s() {
    let consts = const_values();
    let flags = flag_defaults();
    assert_eq!(
        consts.get("TICK"),
        Some(&Value::Nanos(10e6)),
        "const reader"
    );
    assert_eq!(
        flags.get("--heartbeat-ms"),
        Some(&Value::Nanos(30e9)),
        "--help reader"
    );
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (note, text) in notes() {
        for (names, stated, line) in claims(&text) {
            checked += 1;
            if let Some(why) = check_claim(&names, &stated, &consts, &flags) {
                wrong.push(format!("notes/{note}:{line}: {why}"));
            }
        }
    }
    assert!(
        checked > 10,
        "only {checked} values found: the reader is broken"
    );
    eprintln!("{checked} values checked");
    assert!(
        wrong.is_empty(),
        "values in the notes that the code does not have (fix the number, or the name it is \
         tied to):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_value_checker_reads_each_shape_and_catches_a_wrong_number() {
    let consts = const_values();
    let flags = flag_defaults();
    let check = |text: &str| -> Vec<Option<String>> {
        claims(text)
            .into_iter()
            .map(|(names, stated, _)| check_claim(&names, &stated, &consts, &flags))
            .collect()
    };
    for fine in [
        "`MESSAGES_PER_TURN` (256) and more",
        "`READ_CHUNK`, 64 KiB, shared",
        "`READS_PER_TURN` reads (4 reads of up to 64 KiB)",
        "not within 8 KiB (`MAX_HEAD_BYTES`).",
        "one revolution, 10.24 s (`TICK` × `SLOTS`).",
        "answers \"one revolution from\n`next_tick`\", 10.24 s (`TICK` × `SLOTS`), and",
        "`--heartbeat-ms` (30 s)",
        "`--history-messages` (10,000)",
        "```text\n TICK = 10 ms, SLOTS = 1024: one revolution\n```",
    ] {
        let found = check(fine);
        assert!(
            !found.is_empty() && found.iter().all(Option::is_none),
            "{fine}: {found:?}"
        );
    }
    for wrong in [
        "`MESSAGES_PER_TURN` (255)",
        "`READ_CHUNK`, 32 KiB",
        "not within 4 KiB (`MAX_HEAD_BYTES`).",
        "one revolution, 10.25 s (`TICK` × `SLOTS`).",
        "answers \"one revolution from\n`next_tick`\", 10.25 s (`TICK` × `SLOTS`), and",
        "`--heartbeat-ms` (20 s)",
        "```text\n TICK = 1 ms\n```",
    ] {
        let found = check(wrong);
        assert!(found.len() == 1 && found[0].is_some(), "{wrong}: {found:?}");
    }
    // Not claims: a number tied to nothing, a flag with a value of its own.
    for nothing in [
        "about 2.4 GB/s",
        "`--heartbeat-ms 2000` (2 s)",
        "`SIGNALS` took 0",
    ] {
        assert_eq!(check(nothing), [], "{nothing}");
    }
}
