//! A tiny `--key value` / `--flag` parser: the generator has no other
//! command-line needs, and clap would triple its compile time.

use std::collections::HashMap;

pub struct Args {
    pub command: String,
    opts: HashMap<String, Option<String>>,
    used: std::cell::RefCell<Vec<String>>,
}

impl Args {
    pub fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
        let command = argv.next().ok_or("missing scenario")?;
        let mut opts = HashMap::new();
        let rest: Vec<String> = argv.collect();
        let mut i = 0;
        while i < rest.len() {
            let a = &rest[i];
            let key = a
                .strip_prefix("--")
                .ok_or_else(|| format!("unexpected argument {a:?}"))?;
            if let Some((k, v)) = key.split_once('=') {
                opts.insert(k.to_string(), Some(v.to_string()));
            } else if i + 1 < rest.len() && !rest[i + 1].starts_with("--") {
                opts.insert(key.to_string(), Some(rest[i + 1].clone()));
                i += 1;
            } else {
                opts.insert(key.to_string(), None);
            }
            i += 1;
        }
        Ok(Args {
            command,
            opts,
            used: Default::default(),
        })
    }

    fn raw(&self, key: &str) -> Option<&Option<String>> {
        self.used.borrow_mut().push(key.to_string());
        self.opts.get(key)
    }

    pub fn str_opt(&self, key: &str) -> Option<String> {
        self.raw(key).and_then(|v| v.clone())
    }

    pub fn str(&self, key: &str, default: &str) -> String {
        self.str_opt(key).unwrap_or_else(|| default.to_string())
    }

    pub fn num<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, String> {
        match self.raw(key) {
            None => Ok(default),
            Some(None) => Err(format!("--{key} needs a value")),
            Some(Some(v)) => v
                .parse()
                .map_err(|_| format!("--{key}: cannot parse {v:?}")),
        }
    }

    pub fn flag(&self, key: &str) -> bool {
        self.raw(key).is_some()
    }

    /// Fails on any option that no scenario asked for (typos must not pass silently).
    pub fn finish(&self) -> Result<(), String> {
        let used = self.used.borrow();
        let mut unknown: Vec<&String> = self.opts.keys().filter(|k| !used.contains(k)).collect();
        unknown.sort();
        match unknown.first() {
            Some(k) => Err(format!("unknown option --{k} for {}", self.command)),
            None => Ok(()),
        }
    }
}
