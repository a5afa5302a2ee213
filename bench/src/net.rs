//! The connection engine: one mio poll, a slab of client connections indexed
//! by token, upgrade and frame handling, pings answered with pongs. Scenarios
//! see open connections, whole messages and closes through `Handler`.

use crate::http_rx::{self, Kind};
use crate::sys;
use crate::ws::{self, Parsed, Rng};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// A `ws://` target on this machine. Anything off loopback is refused.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    pub path: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| format!("{url:?}: only ws:// URLs are supported"))?;
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
            let (h, p) = h.split_once(']').ok_or("bad IPv6 host")?;
            (h, p.strip_prefix(':').unwrap_or("80"))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, p),
                None => (hostport, "80"),
            }
        };
        let port: u16 = port.parse().map_err(|_| format!("bad port in {url:?}"))?;
        let ip: IpAddr = if host == "localhost" {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            host.parse()
                .map_err(|_| format!("{host:?}: give a literal loopback address"))?
        };
        let loopback = match ip {
            IpAddr::V4(v4) => v4.octets()[0] == 127,
            IpAddr::V6(v6) => v6.is_loopback(),
        };
        if !loopback {
            return Err(format!(
                "refusing {ip}: load is only ever sent to 127.0.0.0/8 or [::1]"
            ));
        }
        Ok(Target {
            addr: SocketAddr::new(ip, port),
            host: hostport.to_string(),
            path: path.to_string(),
        })
    }

    pub fn with_path(&self, path: &str) -> Target {
        Target {
            path: path.to_string(),
            ..self.clone()
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    Idle,
    Connecting,
    Upgrading,
    Open,
    Closed,
}

#[derive(Debug, Clone)]
pub enum Closed {
    /// We sent a close frame and the server answered with its own.
    Clean,
    /// The server sent a close frame first (answered, then dropped).
    ByServer(u16),
    /// The stream ended without a close frame.
    Eof,
    ConnectFailed(String),
    Io(String),
    Protocol(String),
}

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Closed::Clean => write!(f, "closed cleanly"),
            Closed::ByServer(code) => write!(f, "server sent close {code}"),
            Closed::Eof => write!(f, "server closed the stream without a close frame"),
            Closed::ConnectFailed(e) => write!(f, "connect failed: {e}"),
            Closed::Io(e) => write!(f, "i/o error: {e}"),
            Closed::Protocol(e) => write!(f, "protocol error: {e}"),
        }
    }
}

pub trait Handler {
    fn on_open(&mut self, _id: usize) {}
    /// A whole text or binary message (fragments already joined).
    fn on_message(&mut self, id: usize, opcode: u8, payload: &[u8], now: Instant);
    fn on_closed(&mut self, id: usize, why: Closed);
}

pub struct Conn {
    sock: Option<TcpStream>,
    pub phase: Phase,
    pub close_sent: bool,
    pub opened_at: Instant,
    key: [u8; 24],
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    wpos: usize,
    frag_op: u8,
    frag: Vec<u8>,
    /// Bytes this connection may still read: None reads whatever arrives;
    /// Some(0) stops reading (a stuck client); `Net::read_up_to` refills it.
    budget: Option<usize>,
    /// WebSocket, or one of the HTTP transports (`http_rx`).
    pub kind: Kind,
    /// Bytes read from and written to this socket, all of them (heads, framing).
    pub rx: u64,
    pub tx: u64,
}

impl Conn {
    fn new() -> Conn {
        Conn {
            sock: None,
            phase: Phase::Idle,
            close_sent: false,
            opened_at: Instant::now(),
            key: [0; 24],
            rbuf: Vec::new(),
            wbuf: Vec::new(),
            wpos: 0,
            frag_op: 0,
            frag: Vec::new(),
            budget: None,
            kind: Kind::Ws,
            rx: 0,
            tx: 0,
        }
    }
}

#[derive(Default, Debug)]
pub struct Stats {
    pub pings: u64,
    pub connects_started: u64,
    /// Long-poll answers read (each one a response, then a new request).
    pub poll_answers: u64,
}

pub struct Net {
    poll: Poll,
    events: Events,
    ready: Vec<(usize, bool, bool)>,
    pub conns: Vec<Conn>,
    scratch: Vec<u8>,
    rng: Rng,
    target: Target,
    srcs: Vec<IpAddr>,
    next_src: usize,
    max_frame: usize,
    dead: Vec<(usize, Closed)>,
    pub stats: Stats,
    /// SO_RCVBUF for the sockets opened from now on (None: the kernel's default).
    pub rcvbuf: Option<usize>,
    /// How the connections opened from now on read the chat.
    pub kind: Kind,
}

const READ_CHUNK: usize = 256 * 1024;

impl Net {
    /// `src_ips`: how many 127.0.0.x source addresses to spread connections over.
    pub fn new(target: &Target, src_ips: u32, max_frame: usize) -> io::Result<Net> {
        let srcs = match target.addr {
            SocketAddr::V4(_) if src_ips > 0 => (1..=src_ips.min(254))
                .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i as u8)))
                .collect(),
            _ => Vec::new(),
        };
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(42)
            ^ std::process::id() as u64;
        Ok(Net {
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            ready: Vec::with_capacity(1024),
            conns: Vec::new(),
            scratch: vec![0; READ_CHUNK],
            rng: Rng::new(seed),
            target: target.clone(),
            srcs,
            next_src: 0,
            max_frame,
            dead: Vec::new(),
            stats: Stats::default(),
            rcvbuf: None,
            kind: Kind::Ws,
        })
    }

    /// Adds a connection slot and starts connecting it; returns its id.
    pub fn open(&mut self) -> usize {
        let id = self.conns.len();
        self.conns.push(Conn::new());
        self.open_at(id);
        id
    }

    /// (Re)starts a connection in slot `id`, which must not be live.
    pub fn open_at(&mut self, id: usize) {
        debug_assert!(self.conns[id].sock.is_none());
        let src = if self.srcs.is_empty() {
            None
        } else {
            self.next_src = (self.next_src + 1) % self.srcs.len();
            Some(self.srcs[self.next_src])
        };
        let key = ws::new_key(&mut self.rng);
        let c = &mut self.conns[id];
        c.phase = Phase::Connecting;
        c.close_sent = false;
        c.opened_at = Instant::now();
        c.key = key;
        c.rbuf.clear();
        c.wbuf.clear();
        c.wpos = 0;
        c.frag_op = 0;
        c.frag.clear();
        c.budget = None;
        c.kind = self.kind;
        self.stats.connects_started += 1;
        let res = sys::connect_from(self.target.addr, src, self.rcvbuf).and_then(|mut s| {
            self.poll.registry().register(
                &mut s,
                Token(id),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            Ok(s)
        });
        match res {
            Ok(s) => self.conns[id].sock = Some(s),
            Err(e) => {
                self.conns[id].phase = Phase::Closed;
                self.dead.push((id, Closed::ConnectFailed(e.to_string())));
            }
        }
    }

    pub fn phase(&self, id: usize) -> Phase {
        self.conns[id].phase
    }

    /// Queues one masked frame and writes as much as the socket takes.
    pub fn send(&mut self, id: usize, opcode: u8, payload: &[u8]) {
        self.queue(id, opcode, payload);
        self.flush(id);
    }

    /// Queues one masked frame without writing: many small frames, then one `flush_now`.
    pub fn queue(&mut self, id: usize, opcode: u8, payload: &[u8]) {
        let c = &mut self.conns[id];
        if c.phase != Phase::Open {
            return;
        }
        let mask = (self.rng.next_u64() as u32).to_ne_bytes();
        if c.wpos == c.wbuf.len() {
            c.wbuf.clear();
            c.wpos = 0;
        }
        ws::encode_frame(&mut c.wbuf, opcode, payload, mask);
    }

    /// Writes what `queue` left, as much as the socket takes now.
    pub fn flush_now(&mut self, id: usize) {
        self.flush(id);
    }

    /// Bytes queued for this connection that the socket has not taken yet.
    pub fn pending(&self, id: usize) -> usize {
        let c = &self.conns[id];
        c.wbuf.len() - c.wpos
    }

    /// Caps what this connection reads: Some(0) never reads again (a stuck
    /// client: the server's bytes pile up in the kernel), None reads freely.
    pub fn set_budget(&mut self, id: usize, budget: Option<usize>) {
        self.conns[id].budget = budget;
    }

    /// Gives the connection `budget` bytes to read (replacing what was left;
    /// None: no cap from now on) and reads now, up to that many: a reader
    /// capped at a fixed byte rate calls this once per tick. Returns the bytes read.
    pub fn read_up_to<H: Handler>(&mut self, id: usize, budget: Option<usize>, h: &mut H) -> usize {
        if self.conns[id].sock.is_none() {
            return 0;
        }
        self.conns[id].budget = budget;
        let n = self.read_ready(id, h);
        self.report_dead(h);
        n
    }

    /// Starts the closing handshake (status 1000).
    pub fn close(&mut self, id: usize) {
        if self.conns[id].phase == Phase::Open && !self.conns[id].close_sent {
            self.send(id, ws::OP_CLOSE, &1000u16.to_be_bytes());
            self.conns[id].close_sent = true;
        }
    }

    /// Drops the socket at once (no handler call).
    pub fn drop_conn(&mut self, id: usize) {
        let c = &mut self.conns[id];
        // Closing the descriptor also takes it out of the epoll set (Linux), so no
        // deregister call: that is one system call less per handshake cycle.
        c.sock = None;
        c.phase = Phase::Closed;
        c.rbuf = Vec::new();
        c.wbuf = Vec::new();
        c.wpos = 0;
        c.frag = Vec::new();
    }

    fn kill(&mut self, id: usize, why: Closed) {
        if self.conns[id].phase != Phase::Closed {
            self.drop_conn(id);
            self.dead.push((id, why));
        }
    }

    fn flush(&mut self, id: usize) {
        let c = &mut self.conns[id];
        let Some(sock) = c.sock.as_mut() else { return };
        while c.wpos < c.wbuf.len() {
            match sock.write(&c.wbuf[c.wpos..]) {
                Ok(0) => {
                    self.kill(id, Closed::Io("write returned 0".into()));
                    return;
                }
                Ok(n) => {
                    c.wpos += n;
                    c.tx += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.kill(id, Closed::Io(e.to_string()));
                    return;
                }
            }
        }
        if c.wpos == c.wbuf.len() {
            c.wbuf.clear();
            c.wpos = 0;
        } else if c.wpos > 1 << 16 && c.wpos * 2 > c.wbuf.len() {
            c.wbuf.drain(..c.wpos);
            c.wpos = 0;
        }
    }

    /// Waits for readiness once (at most `timeout`) and handles every event.
    pub fn poll_once<H: Handler>(
        &mut self,
        h: &mut H,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        self.report_dead(h);
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        self.ready.clear();
        for ev in self.events.iter() {
            let failed = ev.is_error() || ev.is_write_closed() && ev.is_read_closed();
            self.ready.push((
                ev.token().0,
                ev.is_readable() || ev.is_read_closed(),
                ev.is_writable() || failed,
            ));
        }
        let ready = std::mem::take(&mut self.ready);
        for &(id, readable, writable) in &ready {
            if id >= self.conns.len() || self.conns[id].sock.is_none() {
                continue;
            }
            if self.conns[id].phase == Phase::Connecting {
                if !writable && !readable {
                    continue;
                }
                let sock = self.conns[id].sock.as_ref().unwrap();
                match sock.take_error() {
                    Ok(None) => {}
                    Ok(Some(e)) | Err(e) => {
                        self.kill(id, Closed::ConnectFailed(e.to_string()));
                        continue;
                    }
                }
                match sock.peer_addr() {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => continue,
                    Err(e) => {
                        self.kill(id, Closed::ConnectFailed(e.to_string()));
                        continue;
                    }
                }
                let c = &mut self.conns[id];
                c.phase = Phase::Upgrading;
                let key = c.key;
                match c.kind {
                    Kind::Ws => {
                        ws::upgrade_request(&mut c.wbuf, &self.target.host, &self.target.path, &key)
                    }
                    Kind::WsV1 => ws::upgrade_request_with(
                        &mut c.wbuf,
                        &self.target.host,
                        &self.target.path,
                        &key,
                        "Sec-WebSocket-Protocol: miochat.v1\r\n",
                    ),
                    kind => http_rx::request(&mut c.wbuf, kind, &self.target.host, None),
                }
            }
            if writable {
                self.flush(id);
            }
            if readable {
                self.read_ready(id, h);
            }
        }
        self.ready = ready;
        self.report_dead(h);
        Ok(())
    }

    fn report_dead<H: Handler>(&mut self, h: &mut H) {
        for (id, why) in std::mem::take(&mut self.dead) {
            h.on_closed(id, why);
        }
    }

    fn read_ready<H: Handler>(&mut self, id: usize, h: &mut H) -> usize {
        let mut scratch = std::mem::take(&mut self.scratch);
        let now = Instant::now();
        let mut total = 0;
        loop {
            let c = &mut self.conns[id];
            let Some(sock) = c.sock.as_mut() else { break };
            // A capped reader reads at most its budget; at zero it leaves the
            // bytes in the kernel (edge-triggered: `read_up_to` comes back for them).
            let cap = c.budget.map_or(scratch.len(), |b| b.min(scratch.len()));
            if cap == 0 {
                break;
            }
            let n = match sock.read(&mut scratch[..cap]) {
                Ok(0) => {
                    self.kill(id, Closed::Eof);
                    break;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.kill(id, Closed::Io(e.to_string()));
                    break;
                }
            };
            total += n;
            c.rx += n as u64;
            if let Some(b) = c.budget.as_mut() {
                *b -= n;
            }
            if c.rbuf.is_empty() {
                let used = self.process(id, &scratch[..n], h, now);
                if self.conns[id].phase != Phase::Closed && used < n {
                    self.conns[id].rbuf.extend_from_slice(&scratch[used..n]);
                }
            } else {
                c.rbuf.extend_from_slice(&scratch[..n]);
                let rbuf = std::mem::take(&mut c.rbuf);
                let used = self.process(id, &rbuf, h, now);
                let c = &mut self.conns[id];
                if c.phase != Phase::Closed {
                    c.rbuf = rbuf;
                    c.rbuf.drain(..used);
                }
            }
            // A short read drained the socket: on a stream socket the edge-triggered
            // poll reports any later data as a new event (epoll(7)), so the extra
            // read that would only return WouldBlock is skipped.
            if n < cap {
                break;
            }
        }
        self.scratch = scratch;
        total
    }

    /// Consumes complete frames from `data`; returns how many bytes were used.
    fn process<H: Handler>(&mut self, id: usize, data: &[u8], h: &mut H, now: Instant) -> usize {
        if !self.conns[id].kind.is_ws() {
            return self.process_http(id, data, h, now);
        }
        let mut pos = 0;
        if self.conns[id].phase == Phase::Upgrading {
            let Some(end) = ws::find_head_end(data) else {
                if data.len() > 16 * 1024 {
                    self.kill(
                        id,
                        Closed::Protocol("upgrade response head over 16 KiB".into()),
                    );
                }
                return 0;
            };
            if let Err(e) = ws::check_upgrade_response(&data[..end], &self.conns[id].key) {
                self.kill(id, Closed::Protocol(e));
                return data.len();
            }
            if self.conns[id].kind == Kind::WsV1
                && !data[..end].windows(10).any(|w| w == b"miochat.v1")
            {
                self.kill(id, Closed::Protocol("miochat.v1 not accepted".into()));
                return data.len();
            }
            self.conns[id].phase = Phase::Open;
            h.on_open(id);
            pos = end;
        }
        while self.conns[id].phase == Phase::Open {
            let (fin, opcode, header, len) = match ws::parse_frame(&data[pos..], self.max_frame) {
                Parsed::Incomplete => break,
                Parsed::Error(e) => {
                    self.kill(id, Closed::Protocol(e));
                    return data.len();
                }
                Parsed::Frame {
                    fin,
                    opcode,
                    header,
                    len,
                } => (fin, opcode, header, len),
            };
            let payload = &data[pos + header..pos + header + len];
            pos += header + len;
            match opcode {
                ws::OP_PING => {
                    self.stats.pings += 1;
                    self.send(id, ws::OP_PONG, payload);
                }
                ws::OP_PONG => {}
                ws::OP_CLOSE => {
                    let code = if len >= 2 {
                        u16::from_be_bytes([payload[0], payload[1]])
                    } else {
                        1005
                    };
                    let clean = self.conns[id].close_sent;
                    if !clean {
                        // Echo the status code back, then hang up.
                        self.send(id, ws::OP_CLOSE, &payload[..len.min(2)]);
                    }
                    self.kill(
                        id,
                        if clean {
                            Closed::Clean
                        } else {
                            Closed::ByServer(code)
                        },
                    );
                    return data.len();
                }
                ws::OP_TEXT | ws::OP_BINARY if fin && self.conns[id].frag_op == 0 => {
                    let payload = match self.conns[id].kind {
                        Kind::WsV1 => http_rx::chat_payload(payload),
                        _ => payload,
                    };
                    h.on_message(id, opcode, payload, now);
                }
                ws::OP_TEXT | ws::OP_BINARY if self.conns[id].frag_op == 0 => {
                    let c = &mut self.conns[id];
                    c.frag_op = opcode;
                    c.frag.clear();
                    c.frag.extend_from_slice(payload);
                }
                ws::OP_CONT if self.conns[id].frag_op != 0 => {
                    let c = &mut self.conns[id];
                    c.frag.extend_from_slice(payload);
                    if c.frag.len() > self.max_frame {
                        self.kill(
                            id,
                            Closed::Protocol("fragmented message over the limit".into()),
                        );
                        return data.len();
                    }
                    if fin {
                        let op = std::mem::replace(&mut c.frag_op, 0);
                        let msg = std::mem::take(&mut c.frag);
                        h.on_message(id, op, &msg, now);
                        self.conns[id].frag = msg;
                    }
                }
                other => {
                    self.kill(
                        id,
                        Closed::Protocol(format!("unexpected opcode {other:#x}")),
                    );
                    return data.len();
                }
            }
        }
        pos
    }

    /// The HTTP transports: an event stream's blocks, or long-poll answers
    /// (each followed at once by the next poll, with its `last_id`). Chat
    /// messages reach the handler as their `text`, like a plain WebSocket
    /// client's frames; welcomes and other objects whole.
    fn process_http<H: Handler>(
        &mut self,
        id: usize,
        data: &[u8],
        h: &mut H,
        now: Instant,
    ) -> usize {
        let kind = self.conns[id].kind;
        let mut pos = 0;
        loop {
            if kind == Kind::Poll || self.conns[id].phase == Phase::Upgrading {
                let Some(end) = ws::find_head_end(&data[pos..]) else {
                    if data.len() - pos > 16 * 1024 {
                        self.kill(id, Closed::Protocol("response head over 16 KiB".into()));
                        return data.len();
                    }
                    return pos;
                };
                let head = match http_rx::parse_head(&data[pos..pos + end]) {
                    Ok(head) => head,
                    Err(e) => {
                        self.kill(id, Closed::Protocol(e));
                        return data.len();
                    }
                };
                if kind == Kind::Sse {
                    if !head.event_stream || head.content_length.is_some() {
                        self.kill(id, Closed::Protocol("not an endless event stream".into()));
                        return data.len();
                    }
                    pos += end;
                    self.conns[id].phase = Phase::Open;
                    h.on_open(id);
                    continue;
                }
                let Some(len) = head.content_length else {
                    self.kill(
                        id,
                        Closed::Protocol("poll answer without Content-Length".into()),
                    );
                    return data.len();
                };
                if data.len() - pos < end + len {
                    return pos;
                }
                let body = &data[pos + end..pos + end + len];
                pos += end + len;
                let (objects, last_id) = match http_rx::poll_batch(body) {
                    Ok(batch) => batch,
                    Err(e) => {
                        self.kill(id, Closed::Protocol(e));
                        return data.len();
                    }
                };
                self.stats.poll_answers += 1;
                if self.conns[id].phase == Phase::Upgrading {
                    self.conns[id].phase = Phase::Open;
                    h.on_open(id);
                }
                for object in objects {
                    h.on_message(id, ws::OP_TEXT, http_rx::chat_payload(object), now);
                }
                if head.close {
                    // It said it would close: the Eof that follows is reported.
                    continue;
                }
                let c = &mut self.conns[id];
                if c.phase != Phase::Open {
                    return data.len();
                }
                if c.wpos == c.wbuf.len() {
                    c.wbuf.clear();
                    c.wpos = 0;
                }
                http_rx::request(&mut c.wbuf, kind, &self.target.host, Some(last_id));
                self.flush(id);
                if self.conns[id].phase != Phase::Open {
                    return data.len();
                }
            } else {
                let Some((field, used)) = http_rx::next_event(&data[pos..]) else {
                    return pos;
                };
                if let Some(object) = field {
                    h.on_message(id, ws::OP_TEXT, http_rx::chat_payload(object), now);
                }
                pos += used;
                if self.conns[id].phase != Phase::Open {
                    return data.len();
                }
            }
        }
    }

    /// Bytes read and written by the connections in `ids`, so far.
    pub fn io_bytes(&self, ids: std::ops::Range<usize>) -> (u64, u64) {
        self.conns[ids]
            .iter()
            .fold((0, 0), |(r, t), c| (r + c.rx, t + c.tx))
    }
}
