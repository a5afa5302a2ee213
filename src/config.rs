//! Command-line flags: what they are, their defaults, and how they are read.
//!
//! Interface: [`Config::from_args`] turns `std::env::args()` into a `Config`,
//! or into the text to print for `--help`/`--version`/a bad flag. Every limit
//! the server enforces is a field here, named as on the command line.

use std::net::SocketAddr;
use std::time::Duration;

/// Everything the server can be told at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `--addr`: where to listen; port 0 lets the kernel pick one.
    pub addr: SocketAddr,
    /// `--max-message-bytes`: the largest message accepted (§10.4); larger ones get close 1009.
    pub max_message_bytes: usize,
    /// `--max-buffered-bytes`: a client's own unsent output (pongs, echoes,
    /// notices) before it stops being read; chat messages are not counted
    /// here, they wait in the shared log.
    pub max_buffered_bytes: usize,
    /// `--history-bytes`: the shared log's size: every chat message is stored once, here.
    pub history_bytes: usize,
    /// `--history-messages`: the most messages the shared log holds.
    pub history_messages: usize,
    /// `--message-timeout-ms`: the longest a message may take from its first
    /// byte to its last (fragments included); then close 1008.
    pub message_timeout: Duration,
    /// `--max-input-bytes`: bytes of unfinished messages (fragments so far,
    /// frames partly received) held by all connections together; a
    /// connection whose unfinished message would go over gets close 1009.
    /// Whole frames waiting to be decoded are bounded per connection (one
    /// read) and are not counted: they cannot be held indefinitely.
    pub max_input_bytes: usize,
    /// `--max-output-bytes`: bytes of their own output (HTTP answers, `/echo`
    /// replies, pongs; not chat messages, which wait in the shared log)
    /// that all connections hold, unwritten, together. Past it, connections
    /// whose input would make more (a request, an echo) are not read until
    /// it drains to three quarters.
    pub max_output_bytes: usize,
    /// `--max-handshakes`: connections still sending their request head; a
    /// new connection past this cuts the oldest of them (408).
    pub max_handshakes: usize,
    /// `--stall-ms`: how long a reader may hold the full log (or its own
    /// output stay over `--max-buffered-bytes`) before it is dropped as a slow consumer.
    pub stall: Duration,
    /// `--max-connections`: TCP connections held at once; the next one gets 503.
    pub max_connections: usize,
    /// `--send-buffer-bytes`: each connection's kernel send buffer (`SO_SNDBUF`).
    /// Left alone, loopback send buffers grow to megabytes each, and N readers
    /// that do not read would hold N times that in the kernel.
    pub send_buffer_bytes: usize,
    /// `--heartbeat-ms`: how often each open connection is pinged (§5.5.2).
    pub heartbeat: Duration,
    /// `--handshake-timeout-ms`: how long a connection may take to finish its upgrade.
    pub handshake_timeout: Duration,
    /// `--close-timeout-ms`: how long to wait for the peer's Close once ours is sent.
    pub close_timeout: Duration,
    /// `--poll-timeout-ms`: how long a long poll waits for a message before
    /// it is answered with an empty batch.
    pub poll_timeout: Duration,
    /// `--token` or `MIOCHAT_TOKEN`: a secret every upgrade must present.
    pub token: Option<String>,
    /// `--allow-origin` (repeatable): origins accepted besides the server's own; `*` accepts all.
    pub allowed_origins: Vec<String>,
    /// `--reuse-port`: set `SO_REUSEPORT` on the listener, so several
    /// processes on one machine share its port (the kernel spreads connections).
    pub reuse_port: bool,
    /// `--redis redis://HOST:PORT[/DB]`: share one room with every process
    /// on that Redis (notes/10-redis.md); `None`: this process is the room.
    pub redis: Option<crate::cluster::RedisUrl>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_message_bytes: 1 << 20,
            max_buffered_bytes: 1 << 20,
            history_bytes: 16 << 20,
            history_messages: 10_000,
            stall: Duration::from_secs(5),
            message_timeout: Duration::from_secs(60),
            max_input_bytes: 64 << 20,
            max_output_bytes: 64 << 20,
            max_handshakes: 1000,
            max_connections: 10_000,
            send_buffer_bytes: 128 * 1024,
            heartbeat: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            poll_timeout: Duration::from_secs(25),
            token: None,
            allowed_origins: Vec::new(),
            reuse_port: false,
            redis: None,
        }
    }
}

/// What the command line asked for besides running the server.
#[derive(Debug, PartialEq, Eq)]
pub enum CliExit {
    /// `--help` or `--version`: print this and exit 0.
    Print(String),
    /// A bad flag or value: print this and exit 2.
    Usage(String),
}

pub fn usage() -> String {
    format!(
        "miochat {}: a WebSocket chat server on a single mio poll loop

Usage: miochat [FLAGS]

Flags:
{}

Logging: RUST_LOG=info (default), debug (messages) or trace (every readiness event).",
        env!("CARGO_PKG_VERSION"),
        flags_help()
    )
}

/// One line per flag, with its default.
fn flags_help() -> String {
    let d = Config::default();
    format!(
        "  --addr ADDR                  listen address [default: {addr}]
  --max-message-bytes N        largest message accepted; larger ones get close 1009 [default: {msg}]
  --max-buffered-bytes N       a client's own unsent output (pongs, echoes) before it is no longer read [default: {buf}]
  --send-buffer-bytes N        each connection's kernel send buffer (SO_SNDBUF) [default: {sndbuf}]
  --history-bytes N            size of the shared message log; replays come from it [default: {hbytes}]
  --history-messages N         most messages the shared log holds [default: {hmsgs}]
  --message-timeout-ms MS      a message (all its fragments) must arrive within this; then close 1008 [default: {msgto}]
  --max-input-bytes N          unfinished messages held for all clients; the one going over gets close 1009 [default: {input}]
  --max-output-bytes N         own output (HTTP answers, echoes) unwritten for all clients; past it, requests wait [default: {output}]
  --max-handshakes N           connections still sending their request; the next cuts the oldest (408) [default: {hs_cap}]
  --stall-ms MS                a reader that holds the full log (or its output) this long is dropped [default: {stall}]
  --max-connections N          connections held at once; the next one gets HTTP 503 [default: {conns}]
  --heartbeat-ms MS            ping interval; a client silent for one to two intervals is dropped [default: {hb}]
  --handshake-timeout-ms MS    time allowed for a request head, or a body; also how long an idle kept-alive connection stays [default: {hs}]
  --close-timeout-ms MS        time to wait for the peer's close frame [default: {close}]
  --poll-timeout-ms MS         a long poll (GET /poll) with nothing to say is answered empty after this [default: {poll}]
  --token SECRET               require this token on every upgrade, /events, /poll and /send (also MIOCHAT_TOKEN) [default: none]
  --allow-origin ORIGIN        accept upgrades from this Origin too; repeatable; '*' allows all [default: same origin]
  --reuse-port                 share the port with other processes (SO_REUSEPORT) [default: off]
  --redis URL                  redis://HOST:PORT[/DB]: one room for every process on that Redis [default: none]
  --help                       print this help
  --version                    print the version",
        addr = d.addr,
        msg = d.max_message_bytes,
        buf = d.max_buffered_bytes,
        hbytes = d.history_bytes,
        sndbuf = d.send_buffer_bytes,
        hmsgs = d.history_messages,
        stall = d.stall.as_millis(),
        msgto = d.message_timeout.as_millis(),
        input = d.max_input_bytes,
        output = d.max_output_bytes,
        hs_cap = d.max_handshakes,
        conns = d.max_connections,
        hb = d.heartbeat.as_millis(),
        hs = d.handshake_timeout.as_millis(),
        close = d.close_timeout.as_millis(),
        poll = d.poll_timeout.as_millis(),
    )
}

impl Config {
    /// Reads flags (without the program name) and the `MIOCHAT_TOKEN` value.
    pub fn from_args(
        args: impl IntoIterator<Item = String>,
        env_token: Option<String>,
    ) -> Result<Config, CliExit> {
        let mut config = Config {
            token: env_token.filter(|t| !t.is_empty()),
            ..Config::default()
        };
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            match flag.as_str() {
                "--help" | "-h" => return Err(CliExit::Print(usage())),
                "--version" | "-V" => {
                    return Err(CliExit::Print(format!(
                        "miochat {}",
                        env!("CARGO_PKG_VERSION")
                    )));
                }
                // The one flag without a value.
                "--reuse-port" => {
                    config.reuse_port = true;
                    continue;
                }
                _ => {}
            }
            let Some(value) = args.next() else {
                return Err(bad(format!(
                    "{flag} needs a value (or unknown flag); see --help"
                )));
            };
            config.set(&flag, value)?;
        }
        Ok(config)
    }
}

impl Config {
    /// Sets the field a flag names, from its value.
    fn set(&mut self, flag: &str, value: String) -> Result<(), CliExit> {
        match flag {
            "--addr" => self.addr = parse(flag, &value)?,
            "--max-message-bytes" => self.max_message_bytes = parse_positive(flag, &value)?,
            "--max-buffered-bytes" => self.max_buffered_bytes = parse_positive(flag, &value)?,
            "--max-connections" => self.max_connections = parse_positive(flag, &value)?,
            "--history-bytes" => self.history_bytes = parse_positive(flag, &value)?,
            "--send-buffer-bytes" => self.send_buffer_bytes = parse_at_least(flag, &value, 4096)?,
            "--history-messages" => self.history_messages = parse_positive(flag, &value)?,
            "--stall-ms" => self.stall = millis(flag, &value)?,
            "--message-timeout-ms" => self.message_timeout = millis(flag, &value)?,
            "--max-input-bytes" => self.max_input_bytes = parse_positive(flag, &value)?,
            "--max-output-bytes" => self.max_output_bytes = parse_positive(flag, &value)?,
            "--max-handshakes" => self.max_handshakes = parse_positive(flag, &value)?,
            "--heartbeat-ms" => self.heartbeat = millis(flag, &value)?,
            "--handshake-timeout-ms" => self.handshake_timeout = millis(flag, &value)?,
            "--close-timeout-ms" => self.close_timeout = millis(flag, &value)?,
            "--poll-timeout-ms" => self.poll_timeout = millis(flag, &value)?,
            "--token" if value.is_empty() => return Err(bad("--token must not be empty".into())),
            "--token" => self.token = Some(value),
            "--allow-origin" => self.allowed_origins.push(value),
            "--redis" => self.redis = Some(crate::cluster::RedisUrl::parse(&value).map_err(bad)?),
            _ => return Err(bad(format!("unknown flag {flag}; see --help"))),
        }
        Ok(())
    }
}

fn bad(message: String) -> CliExit {
    CliExit::Usage(format!("miochat: {message}"))
}

fn parse<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, CliExit> {
    value
        .parse()
        .map_err(|_| bad(format!("invalid value {value:?} for {flag}")))
}

fn parse_positive(flag: &str, value: &str) -> Result<usize, CliExit> {
    match parse(flag, value)? {
        0 => Err(bad(format!("{flag} must be at least 1"))),
        n => Ok(n),
    }
}

/// A size below which a setting stops making sense (a send buffer smaller than
/// a page moves a few bytes per wake-up: throughput collapses).
fn parse_at_least(flag: &str, value: &str, least: usize) -> Result<usize, CliExit> {
    match parse(flag, value)? {
        n if n < least => Err(bad(format!("{flag} must be at least {least}"))),
        n => Ok(n),
    }
}

fn millis(flag: &str, value: &str) -> Result<Duration, CliExit> {
    parse_positive(flag, value).map(|ms| Duration::from_millis(ms as u64))
}

#[cfg(test)]
mod tests;
