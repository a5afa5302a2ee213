//! `flood`: one client sends empty text frames as fast as the server takes
//! them; C other clients are connected (R of them read everything, the rest
//! never read after the welcome); two more clients, A and B, each send a
//! numbered, timestamped message every I ms. What does the flood do to
//! everyone else? The latency of A's and B's messages to each other, and,
//! from a separate thread with blocking sockets, how long a new upgrade (to
//! the welcome) and `GET /status` take during the flood.

use crate::common::{self, Base, HasBase, Hist, Json};
use crate::net::{Closed, Handler, Net, Target};
use crate::watch::Watch;
use crate::ws::{self, Parsed, Rng};
use crate::{Ctx, Outcome};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PAIR_BYTES: usize = 64;

struct Flood {
    base: Base,
    /// connection ids of A and B
    pair: [usize; 2],
    t_base: Instant,
    /// per connection: next expected sequence number from A and from B
    expected: Vec<[u32; 2]>,
    gaps: Vec<u64>,
    dup: u64,
    bad: u64,
    /// messages A got from B and B got from A
    pair_received: [u64; 2],
    hist: Hist,
    empty: u64,
    closed: Vec<Option<String>>,
}

impl Handler for Flood {
    fn on_message(&mut self, id: usize, _opcode: u8, payload: &[u8], now: Instant) {
        if self.base.take_welcome(id, payload) {
            return;
        }
        if payload.is_empty() {
            self.empty += 1;
            return;
        }
        let Some((k, seq, ts)) = common::read_header(payload).filter(|h| h.0 < 2) else {
            self.bad += 1;
            return;
        };
        let k = k as usize;
        if payload.len() != PAIR_BYTES || self.pair[k] == id {
            self.bad += 1;
            return;
        }
        let e = &mut self.expected[id][k];
        if seq < *e {
            self.dup += 1;
            return;
        }
        self.gaps[id] += (seq - *e) as u64;
        *e = seq + 1;
        if id == self.pair[1 - k] {
            self.pair_received[1 - k] += 1;
            let sent = self.t_base + Duration::from_nanos(ts);
            self.hist
                .record(now.saturating_duration_since(sent).as_nanos() as u64);
        }
    }
    fn on_closed(&mut self, id: usize, why: Closed) {
        self.closed[id] = Some(why.to_string());
        self.base.closed(id, &why);
    }
}

impl HasBase for Flood {
    fn base(&mut self) -> &mut Base {
        &mut self.base
    }
}

#[derive(Default)]
struct Probes {
    status: Hist,
    upgrade: Hist,
    status_failed: u64,
    upgrade_failed: u64,
    first_failure: Option<String>,
}

/// GET /status on a fresh blocking connection, to the end of the body.
fn probe_status(target: &Target, limit: Duration) -> Result<(), String> {
    let mut s = std::net::TcpStream::connect_timeout(&target.addr, limit)
        .map_err(|e| format!("status connect: {e}"))?;
    let _ = s.set_read_timeout(Some(limit));
    let _ = s.set_write_timeout(Some(limit));
    write!(
        s,
        "GET /status HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        target.host
    )
    .map_err(|e| format!("status write: {e}"))?;
    // To the end of the body: Content-Length if the head has it, else EOF.
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    while data.len() < 64 * 1024 {
        if let Some(end) = ws::find_head_end(&data) {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let len = head
                .split("\r\n")
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if len.is_some_and(|len| data.len() >= end + len) {
                break;
            }
        }
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("status read: {e}")),
        }
    }
    if common::contains(&data, b"\"connections\"") {
        Ok(())
    } else {
        Err("status: no \"connections\" in the answer".into())
    }
}

/// A new chat connection: connect, upgrade, wait for the welcome; then close.
fn probe_upgrade(target: &Target, rng: &mut Rng, limit: Duration) -> Result<(), String> {
    let mut s = std::net::TcpStream::connect_timeout(&target.addr, limit)
        .map_err(|e| format!("upgrade connect: {e}"))?;
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(limit));
    let _ = s.set_write_timeout(Some(limit));
    let key = ws::new_key(rng);
    let mut req = Vec::new();
    ws::upgrade_request(&mut req, &target.host, &target.path, &key);
    s.write_all(&req)
        .map_err(|e| format!("upgrade write: {e}"))?;
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let mut head_end = None;
    loop {
        let n = s.read(&mut buf).map_err(|e| format!("upgrade read: {e}"))?;
        if n == 0 {
            return Err("upgrade: the server closed the connection".into());
        }
        data.extend_from_slice(&buf[..n]);
        if head_end.is_none() {
            head_end = ws::find_head_end(&data);
            if let Some(end) = head_end {
                ws::check_upgrade_response(&data[..end], &key)?;
            } else if data.len() > 16 * 1024 {
                return Err("upgrade: response head over 16 KiB".into());
            }
        }
        if let Some(end) = head_end {
            match ws::parse_frame(&data[end..], 1 << 20) {
                Parsed::Frame { header, len, .. } => {
                    if !common::contains(&data[end + header..end + header + len], b"\"welcome\"") {
                        return Err("upgrade: the first message was not the welcome".into());
                    }
                    break;
                }
                Parsed::Incomplete => {}
                Parsed::Error(e) => return Err(format!("upgrade: {e}")),
            }
        }
    }
    let mut close = Vec::new();
    ws::encode_frame(
        &mut close,
        ws::OP_CLOSE,
        &1000u16.to_be_bytes(),
        [1, 2, 3, 4],
    );
    let _ = s.write_all(&close);
    Ok(())
}

/// One probe thread: every `every`, a new upgrade (or a GET /status), timed
/// from connect to the welcome (or the end of the body). Blocking sockets on
/// their own thread, so the figure is the server's answer time, not the main
/// loop's. A probe that fails or times out (5 s) counts at the time it took.
fn prober(
    target: Target,
    upgrade: bool,
    every: Duration,
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Probes>>,
) {
    let limit = Duration::from_secs(5);
    let mut rng = Rng::new(0x5eed ^ std::process::id() as u64);
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(every);
        let t = Instant::now();
        let r = if upgrade {
            probe_upgrade(&target, &mut rng, limit)
        } else {
            probe_status(&target, limit)
        };
        let ns = t.elapsed().as_nanos() as u64;
        let mut p = out.lock().unwrap();
        if upgrade {
            p.upgrade.record(ns);
        } else {
            p.status.record(ns);
        }
        if let Err(e) = r {
            if upgrade {
                p.upgrade_failed += 1;
            } else {
                p.status_failed += 1;
            }
            p.first_failure.get_or_insert(e);
        }
    }
}

pub fn run(ctx: &Ctx, out: &mut Json) -> Outcome {
    let a = &ctx.args;
    let c: usize = a.num("clients", 2000)?;
    let readers: usize = a.num("readers", 100)?;
    let duration = Duration::from_secs_f64(a.num("duration", 10.0)?);
    let interval = Duration::from_secs_f64(a.num("interval-ms", 20.0)? / 1e3);
    let probe_every = Duration::from_secs_f64(a.num("probe-ms", 200.0)? / 1e3);
    let stuck_rcvbuf: usize = a.num("stuck-rcvbuf", 4096)?;
    let window: usize = a.num("send-window", 64 * 1024)?;
    let drain = Duration::from_secs_f64(a.num("drain-s", 10.0)?);
    let mut watch = Watch::from_args(ctx)?;
    a.finish()?;
    if readers > c || interval.is_zero() || probe_every.is_zero() {
        return Err("need --readers <= --clients, --interval-ms > 0, --probe-ms > 0".into());
    }
    let stuck = c - readers;
    out.int("clients", c as u64)
        .int("readers", readers as u64)
        .int("stuck", stuck as u64);
    out.num("duration_target_s", duration.as_secs_f64())
        .num("interval_ms", interval.as_secs_f64() * 1e3)
        .num("probe_ms", probe_every.as_secs_f64() * 1e3);

    // ids: stuck 0..stuck, readers stuck..c, then the flooder, A and B.
    let (flooder, pa, pb) = (c, c + 1, c + 2);
    let total = c + 3;
    let mut net = Net::new(&ctx.target, ctx.src_ips, 1 << 20).map_err(|e| e.to_string())?;
    let mut h = Flood {
        base: Base::new(total),
        pair: [pa, pb],
        t_base: Instant::now(),
        expected: vec![[0; 2]; total],
        gaps: vec![0; total],
        dup: 0,
        bad: 0,
        pair_received: [0; 2],
        hist: Hist::default(),
        empty: 0,
        closed: vec![None; total],
    };
    net.rcvbuf = (stuck_rcvbuf > 0).then_some(stuck_rcvbuf);
    let connect = common::establish(&mut net, &mut h, stuck, ctx.concurrency, ctx.timeout)?;
    for id in 0..stuck {
        net.set_budget(id, Some(0));
    }
    net.rcvbuf = None;
    common::establish(&mut net, &mut h, readers + 3, ctx.concurrency, ctx.timeout)?;
    out.num("connect_s", connect.as_secs_f64());
    if let Some(n) = ctx.status_check(total as u64)? {
        out.int("status_connections", n);
    }

    let probes = Arc::new(Mutex::new(Probes::default()));
    let stop = Arc::new(AtomicBool::new(false));
    watch.start()?;
    let cpu0 = ctx.probe.cpu_ticks()?;
    let gen0 = crate::sys::self_cpu();
    let t0 = Instant::now();
    let t_end = t0 + duration;
    let threads: Vec<_> = [false, true]
        .into_iter()
        .map(|upgrade| {
            let (target, stop, probes) = (ctx.target.clone(), stop.clone(), probes.clone());
            std::thread::spawn(move || prober(target, upgrade, probe_every, stop, probes))
        })
        .collect();
    let mut flood_queued = 0u64;
    let mut pair_sent = [0u32; 2];
    let mut pair_sent_ns: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    let mut next_pair = t0;
    let mut msg = [0u8; PAIR_BYTES];
    common::fill_pattern(&mut msg);
    // Phase 1: the flood, for D.
    loop {
        let now = Instant::now();
        if now >= t_end {
            break;
        }
        if h.closed[flooder].is_none() {
            while net.pending(flooder) < window {
                for _ in 0..1024 {
                    net.queue(flooder, ws::OP_TEXT, b"");
                }
                flood_queued += 1024;
            }
            net.flush_now(flooder);
        }
        if now >= next_pair {
            for k in 0..2 {
                let ts = h.t_base.elapsed().as_nanos() as u64;
                common::write_header(&mut msg, k as u32, pair_sent[k], ts);
                net.send(h.pair[k], ws::OP_TEXT, &msg);
                pair_sent_ns[k].push(ts);
                pair_sent[k] += 1;
            }
            next_pair += interval;
            if next_pair < now {
                next_pair = now + interval;
            }
        }
        let wait = next_pair
            .saturating_duration_since(Instant::now())
            .min(watch.interval());
        net.poll_once(&mut h, Some(wait))
            .map_err(|e| format!("poll: {e}"))?;
        if watch.check()? {
            break;
        }
    }
    // Empty frames from a client are 6 bytes (header and mask).
    let flood_sent = flood_queued.saturating_sub(net.pending(flooder) as u64 / 6);
    let flood_elapsed = t0.elapsed().as_secs_f64();
    let empty_in_window = h.empty;
    let cpu1 = ctx.probe.cpu_ticks()?;
    let gen_cpu = (crate::sys::self_cpu() - gen0).as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    // Phase 2: no more flood; A and B wait for each other's last messages.
    if watch.over.is_none() {
        let t_drain = Instant::now();
        while h.pair_received[0] < pair_sent[1] as u64 || h.pair_received[1] < pair_sent[0] as u64 {
            if h.closed[pa].is_some() || h.closed[pb].is_some() || t_drain.elapsed() > drain {
                break;
            }
            net.flush_now(pa);
            net.flush_now(pb);
            net.poll_once(&mut h, Some(watch.interval()))
                .map_err(|e| format!("poll: {e}"))?;
            if watch.check()? {
                break;
            }
        }
    }
    // What A and B never got counts in their latency at its age now (a lower
    // bound), so a server that holds them back does not look fast.
    let now_ns = h.t_base.elapsed().as_nanos() as u64;
    let mut undelivered = 0u64;
    for k in 0..2 {
        let got = h.expected[h.pair[1 - k]][k];
        for seq in got..pair_sent[k] {
            let age = now_ns.saturating_sub(pair_sent_ns[k][seq as usize]);
            h.hist.record(age);
            undelivered += 1;
        }
    }
    watch.report(out);
    let status_end = if watch.over.is_none() {
        common::status_connections(&ctx.target).ok()
    } else {
        None
    };
    drop(net);
    for t in threads {
        let _ = t.join();
    }
    let p = probes.lock().unwrap();
    let server_cpu = ctx.probe.cpu_secs(cpu0, cpu1);

    let us = |v: u64| v as f64 / 1e3;
    out.int("flood_sent", flood_sent)
        .num("flood_elapsed_s", flood_elapsed)
        .num("flood_per_s", flood_sent as f64 / flood_elapsed);
    out.num(
        "flood_delivered_per_reader_per_s",
        empty_in_window as f64 / (readers + 2).max(1) as f64 / flood_elapsed,
    );
    out.int("pair_sent", (pair_sent[0] + pair_sent[1]) as u64)
        .int("pair_received", h.pair_received[0] + h.pair_received[1]);
    // Not delivered by the end of the drain: lost or very late, the two cannot
    // be told apart (they are in the latency figures at their age).
    out.int("pair_undelivered", undelivered);
    out.num("pair_lat_p50_us", us(h.hist.quantile(0.5)))
        .num("pair_lat_p99_us", us(h.hist.quantile(0.99)))
        .num("pair_lat_max_us", us(h.hist.max));
    out.int("upgrades", p.upgrade.count)
        .int("upgrade_failed", p.upgrade_failed)
        .num("upgrade_p50_us", us(p.upgrade.quantile(0.5)))
        .num("upgrade_p99_us", us(p.upgrade.quantile(0.99)))
        .num("upgrade_max_us", us(p.upgrade.max));
    out.int("statuses", p.status.count)
        .int("status_failed", p.status_failed)
        .num("status_p50_us", us(p.status.quantile(0.5)))
        .num("status_p99_us", us(p.status.quantile(0.99)))
        .num("status_max_us", us(p.status.max));
    if let Some(e) = &p.first_failure {
        out.str("first_probe_failure", e);
    }
    out.opt("server_cpu_s", server_cpu)
        .opt(
            "server_cpu_pct",
            server_cpu.map(|s| 100.0 * s / flood_elapsed),
        )
        .num("gen_cpu_pct", 100.0 * gen_cpu / flood_elapsed);
    // Who the server dropped: the reading ones we see close; the stuck ones
    // only through /status.
    let healthy_dropped = h.closed.iter().filter(|c| c.is_some()).count() as u64;
    out.int("healthy_dropped", healthy_dropped);
    if let Some(why) = h.closed.iter().flatten().next() {
        out.str("first_drop", why);
    }
    if let Some(n) = status_end {
        out.int("status_connections_end", n)
            .int("dropped", (total as u64).saturating_sub(n));
    }
    let silent: u64 = (0..total)
        .filter(|&id| h.closed[id].is_none())
        .map(|id| h.gaps[id])
        .sum();
    let violations = silent + h.dup + h.bad + h.base.bad_welcome;
    out.int("violations", violations);
    if violations > 0 {
        return Err(format!(
            "{silent} pair messages skipped on connections the server kept open, {} duplicate, {} corrupt",
            h.dup, h.bad
        ));
    }
    Ok(())
}
