//! Pieces every scenario shares: the welcome bookkeeping, the connect phase,
//! a latency histogram, the JSON line, and GET /status.

use crate::net::{Closed, Net, Phase, Target};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// Tracks which connections have had their welcome message and which died.
pub struct Base {
    pub welcomed: Vec<bool>,
    pub n_welcomed: usize,
    pub n_closed: usize,
    pub first_close: Option<String>,
    pub bad_welcome: u64,
}

impl Base {
    pub fn new(n: usize) -> Base {
        Base {
            welcomed: vec![false; n],
            n_welcomed: 0,
            n_closed: 0,
            first_close: None,
            bad_welcome: 0,
        }
    }

    /// Returns true if this message was the connection's welcome (and is consumed).
    pub fn take_welcome(&mut self, id: usize, payload: &[u8]) -> bool {
        if id >= self.welcomed.len() {
            self.welcomed.resize(id + 1, false);
        }
        if self.welcomed[id] {
            return false;
        }
        self.welcomed[id] = true;
        self.n_welcomed += 1;
        if !contains(payload, b"\"welcome\"") {
            self.bad_welcome += 1;
        }
        true
    }

    pub fn closed(&mut self, id: usize, why: &Closed) {
        self.n_closed += 1;
        if self.first_close.is_none() {
            self.first_close = Some(format!("connection {id}: {why}"));
        }
    }
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

pub trait HasBase: crate::net::Handler {
    fn base(&mut self) -> &mut Base;
}

/// Opens `n` more connections (at most `concurrency` upgrading at once) and
/// waits until every one has had its welcome. Fails on any close or at `deadline`.
pub fn establish<H: HasBase>(
    net: &mut Net,
    h: &mut H,
    n: usize,
    concurrency: usize,
    deadline: Duration,
) -> Result<Duration, String> {
    let t0 = Instant::now();
    let first = net.conns.len();
    let welcomed0 = h.base().n_welcomed;
    let mut opened = 0;
    while h.base().n_welcomed - welcomed0 < n {
        let in_flight = opened - (h.base().n_welcomed - welcomed0);
        let mut budget = concurrency.saturating_sub(in_flight);
        while opened < n && budget > 0 {
            net.open();
            opened += 1;
            budget -= 1;
        }
        net.poll_once(h, Some(Duration::from_millis(50)))
            .map_err(|e| format!("poll: {e}"))?;
        let b = h.base();
        if b.n_closed > 0 {
            return Err(format!(
                "{} of {n} connections failed while connecting; first: {}",
                b.n_closed,
                b.first_close.clone().unwrap_or_default()
            ));
        }
        if t0.elapsed() > deadline {
            let upgraded = (first..net.conns.len())
                .filter(|&i| net.phase(i) == Phase::Open)
                .count();
            return Err(format!(
                "server did not answer in time: {} of {n} connections welcomed ({upgraded} upgraded) after {:.0} s",
                b.n_welcomed - welcomed0,
                deadline.as_secs_f64()
            ));
        }
    }
    Ok(t0.elapsed())
}

/// Polls (answering pings) for `d`; fails if any connection closes.
pub fn hold<H: HasBase>(net: &mut Net, h: &mut H, d: Duration) -> Result<(), String> {
    let end = Instant::now() + d;
    loop {
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        net.poll_once(h, Some((end - now).min(Duration::from_millis(100))))
            .map_err(|e| format!("poll: {e}"))?;
        let b = h.base();
        if b.n_closed > 0 {
            return Err(format!(
                "server closed {} connection(s); first: {}",
                b.n_closed,
                b.first_close.clone().unwrap_or_default()
            ));
        }
    }
}

/// Log-linear histogram of nanosecond values, about 3 % resolution.
pub struct Hist {
    buckets: Vec<u64>,
    pub count: u64,
    pub max: u64,
}

impl Default for Hist {
    fn default() -> Self {
        Hist {
            buckets: vec![0; 64 * 32],
            count: 0,
            max: 0,
        }
    }
}

impl Hist {
    fn index(v: u64) -> usize {
        if v < 64 {
            v as usize
        } else {
            let msb = 63 - v.leading_zeros();
            let shift = msb - 5;
            (shift as usize + 1) * 32 + ((v >> shift) as usize - 32)
        }
    }
    fn value(i: usize) -> u64 {
        if i < 64 {
            i as u64
        } else {
            let shift = (i / 32 - 1) as u32;
            let lo = ((i % 32 + 32) as u64) << shift;
            lo + (1u64 << shift) / 2
        }
    }
    pub fn record(&mut self, v: u64) {
        self.buckets[Self::index(v)] += 1;
        self.count += 1;
        self.max = self.max.max(v);
    }
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let target = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, &c) in self.buckets.iter().enumerate() {
            seen += c;
            if seen >= target {
                return Self::value(i).min(self.max);
            }
        }
        self.max
    }
}

/// One flat JSON object, written as a single line.
#[derive(Default)]
pub struct Json(Vec<String>);

impl Json {
    pub fn str(&mut self, k: &str, v: &str) -> &mut Self {
        let esc: String = v
            .chars()
            .flat_map(|c| match c {
                '"' => vec!['\\', '"'],
                '\\' => vec!['\\', '\\'],
                c if (c as u32) < 0x20 => vec![' '],
                c => vec![c],
            })
            .collect();
        self.0.push(format!("\"{k}\":\"{esc}\""));
        self
    }
    pub fn int(&mut self, k: &str, v: u64) -> &mut Self {
        self.0.push(format!("\"{k}\":{v}"));
        self
    }
    pub fn num(&mut self, k: &str, v: f64) -> &mut Self {
        if v.is_finite() {
            let s = if v.abs() >= 1000.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.3}")
            };
            self.0.push(format!("\"{k}\":{s}"));
        } else {
            self.0.push(format!("\"{k}\":null"));
        }
        self
    }
    pub fn opt(&mut self, k: &str, v: Option<f64>) -> &mut Self {
        match v {
            Some(v) => self.num(k, v),
            None => {
                self.0.push(format!("\"{k}\":null"));
                self
            }
        }
    }
    pub fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.0.push(format!("\"{k}\":{v}"));
        self
    }
    pub fn line(&self) -> String {
        format!("{{{}}}", self.0.join(","))
    }
}

/// GET /status on the target's host and port; returns the "connections" figure.
pub fn status_connections(target: &Target) -> Result<u64, String> {
    status_field(target, "connections")
}

/// GET /status on the target's host and port; returns the figure `field`
/// ("connections"; miochat also has "sse" and "long_poll").
pub fn status_field(target: &Target, field: &str) -> Result<u64, String> {
    let mut s = std::net::TcpStream::connect_timeout(&target.addr, Duration::from_secs(2))
        .map_err(|e| format!("GET /status: {e}"))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    write!(
        s,
        "GET /status HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        target.host
    )
    .map_err(|e| format!("GET /status: {e}"))?;
    let mut body = Vec::new();
    let mut buf = [0u8; 4096];
    // Bounded: at most 64 KiB or the 2 s timeout, whichever first.
    while body.len() < 64 * 1024 {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                body.extend_from_slice(&buf[..n]);
                if let Some(v) = parse_field(&body, field) {
                    return Ok(v);
                }
            }
            Err(_) => break,
        }
    }
    parse_field(&body, field).ok_or_else(|| {
        format!(
            "GET /status: no \"{field}\" in {:?}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )
    })
}

#[cfg(test)]
fn parse_connections(resp: &[u8]) -> Option<u64> {
    parse_field(resp, "connections")
}

fn parse_field(resp: &[u8], field: &str) -> Option<u64> {
    let text = String::from_utf8_lossy(resp);
    let (_, body) = text.split_once("\r\n\r\n")?;
    let after = body.split_once(&format!("\"{field}\""))?.1;
    let digits: String = after
        .trim_start_matches([':', ' '])
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    // Only trust a number followed by something (a comma or a brace), not a cut-off read.
    let rest = after.trim_start_matches([':', ' ']).get(digits.len()..)?;
    if digits.is_empty() || rest.is_empty() {
        return None;
    }
    digits.parse().ok()
}

/// Waits (bounded) until /status reports at least `n` of `field`.
pub fn wait_status(target: &Target, field: &str, n: u64, within: Duration) -> Result<u64, String> {
    let t0 = Instant::now();
    loop {
        let got = status_field(target, field)?;
        if got >= n || t0.elapsed() > within {
            return Ok(got);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Fixed-width message header: sender (8 hex), sequence (8 hex), send time in ns (16 hex).
pub const HEADER: usize = 32;

pub fn write_header(buf: &mut [u8], sender: u32, seq: u32, ts_ns: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in 0..8 {
        buf[i] = HEX[(sender >> (28 - 4 * i) & 15) as usize];
        buf[8 + i] = HEX[(seq >> (28 - 4 * i) & 15) as usize];
    }
    for i in 0..16 {
        buf[16 + i] = HEX[(ts_ns >> (60 - 4 * i) & 15) as usize];
    }
}

pub fn read_header(buf: &[u8]) -> Option<(u32, u32, u64)> {
    if buf.len() < HEADER {
        return None;
    }
    let mut v = [0u64; 3];
    for (k, range) in [(0, 0..8), (1, 8..16), (2, 16..32)] {
        for &b in &buf[range] {
            let d = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                _ => return None,
            };
            v[k] = v[k] << 4 | d as u64;
        }
    }
    Some((v[0] as u32, v[1] as u32, v[2]))
}

/// Fills `buf[HEADER..]` with a fixed printable pattern.
pub fn fill_pattern(buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate().skip(HEADER) {
        *b = b'A' + (i % 26) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_roundtrip() {
        let mut b = [0u8; 40];
        write_header(&mut b, 7, 123456, 0xdead_beef_0123);
        assert_eq!(read_header(&b), Some((7, 123456, 0xdead_beef_0123)));
    }

    #[test]
    fn hist_quantiles() {
        let mut h = Hist::default();
        for v in 1..=100_000u64 {
            h.record(v * 1000);
        }
        let p50 = h.quantile(0.5) as f64;
        assert!((p50 / 50_000_000.0 - 1.0).abs() < 0.04, "{p50}");
        assert_eq!(h.max, 100_000_000);
    }

    #[test]
    fn status_parse() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"connections\": 42}";
        assert_eq!(parse_connections(r), Some(42));
        assert_eq!(
            parse_connections(b"HTTP/1.1 200 OK\r\n\r\n{\"connections\": 4"),
            None
        );
        // miochat's /status since the shared log: more fields after "connections".
        let r = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"connections\": 3, \"last_id\": 12, \"history\": {\"messages\": 5, \"bytes\": 300}}\n";
        assert_eq!(parse_connections(r), Some(3));
        // The peers' compact form.
        assert_eq!(
            parse_connections(b"HTTP/1.1 200 OK\r\n\r\n{\"connections\":10002}"),
            Some(10002)
        );
    }
}
