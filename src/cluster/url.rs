//! `--redis redis://HOST:PORT[/DB]`: where the room's Redis is.

/// A Redis address as the flag gives it. The host is resolved once, at
/// start-up, before the loop runs (name resolution blocks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisUrl {
    pub host: String,
    pub port: u16,
    /// The database `SELECT` chooses (0 by default).
    pub db: u32,
}

impl RedisUrl {
    /// Reads `redis://HOST:PORT` or `redis://HOST:PORT/DB` (the form of the
    /// Redis docs' URI scheme, without a password: none is sent).
    pub fn parse(text: &str) -> Result<RedisUrl, String> {
        let bad = |why: &str| format!("--redis {text:?}: {why} (expected redis://HOST:PORT[/DB])");
        let rest = text
            .strip_prefix("redis://")
            .ok_or_else(|| bad("no redis:// scheme"))?;
        let (address, db) = match rest.split_once('/') {
            Some((address, "")) => (address, 0),
            Some((address, db)) => (address, db.parse().map_err(|_| bad("bad database number"))?),
            None => (rest, 0),
        };
        let (host, port) = address.rsplit_once(':').ok_or_else(|| bad("no port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains('@') {
            return Err(bad("no host (and no password: none is sent)"));
        }
        match port.parse::<u16>() {
            Ok(port) if port > 0 => Ok(RedisUrl {
                host: host.to_owned(),
                port,
                db,
            }),
            _ => Err(bad("bad port")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_and_database_are_read() {
        let url = RedisUrl::parse("redis://127.0.0.1:6379").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.db),
            ("127.0.0.1", 6379, 0)
        );
        let url = RedisUrl::parse("redis://cache.local:7000/3").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.db),
            ("cache.local", 7000, 3)
        );
        let url = RedisUrl::parse("redis://[::1]:6379/").unwrap();
        assert_eq!((url.host.as_str(), url.db), ("::1", 0));
    }

    #[test]
    fn anything_else_says_what_is_wrong() {
        for (text, why) in [
            ("127.0.0.1:6379", "scheme"),
            ("redis://:6379", "no host"),
            ("redis://h", "no port"),
            ("redis://h:0", "bad port"),
            ("redis://h:99999", "bad port"),
            ("redis://h:1/x", "database"),
            ("redis://user:pw@h:1", "password"),
        ] {
            let error = RedisUrl::parse(text).unwrap_err();
            assert!(error.contains(why), "{text}: {error}");
        }
    }
}
