//! `fanout` and `fanout-rate`: N chat clients, S of them senders. Every
//! message must reach the N-1 other clients exactly once, in order, and never
//! its sender. `fanout` is closed-loop (a window of W undelivered messages per
//! sender); `fanout-rate` sends on a fixed schedule.
//!
//! With `--transport websocket|sse|long-poll` the room is S WebSocket
//! senders that only send (what reaches them is read and not counted) and N
//! receivers on that transport that only receive: every message must reach
//! the N receivers, and the receivers' bytes in and out are counted
//! (`wire_bytes_per_delivery`: HTTP heads, SSE fields, poll requests, frame
//! headers, all of it).

use crate::common::{self, Base, HasBase, Hist, Json};
use crate::http_rx::Kind;
use crate::net::{Closed, Handler, Net};
use crate::ws;
use crate::{Ctx, Outcome};
use std::time::{Duration, Instant};

struct Fanout {
    base: Base,
    /// Receivers per message: N-1 (everyone but the sender), or N with
    /// dedicated senders (`--transport`).
    per_msg: usize,
    /// Dedicated senders: connections below `s` send and are not checked.
    dedicated: bool,
    sender_rx: u64,
    s: usize,
    w: usize,
    t_base: Instant,
    /// sender index -> connection id
    sender_conn: Vec<usize>,
    /// receiver id * S + sender index -> next expected sequence number
    expected: Vec<u32>,
    /// sender index * W + seq % W -> receivers that have it
    ring: Vec<u32>,
    done: Vec<u32>,
    /// Senders whose window opened while handling events.
    ready: Vec<usize>,
    windowed: bool,
    delivered: u64,
    echo: u64,
    dup: u64,
    gap: u64,
    foreign: u64,
    bad_size: u64,
    size: usize,
    hist: Hist,
    last_delivery: Instant,
}

impl Handler for Fanout {
    fn on_message(&mut self, id: usize, opcode: u8, payload: &[u8], now: Instant) {
        if self.base.take_welcome(id, payload) {
            return;
        }
        if self.dedicated && id < self.s {
            self.sender_rx += 1;
            return;
        }
        let Some((j, seq, ts)) = common::read_header(payload).filter(|h| (h.0 as usize) < self.s)
        else {
            self.foreign += 1;
            return;
        };
        let j = j as usize;
        if self.sender_conn[j] == id {
            self.echo += 1;
            return;
        }
        if opcode != ws::OP_TEXT || payload.len() != self.size {
            self.bad_size += 1;
        }
        let e = &mut self.expected[id * self.s + j];
        if seq < *e {
            self.dup += 1;
            return;
        }
        if seq > *e {
            self.gap += (seq - *e) as u64;
        }
        *e = seq + 1;
        self.delivered += 1;
        self.last_delivery = now;
        let sent_ns = self.t_base + Duration::from_nanos(ts);
        self.hist
            .record(now.saturating_duration_since(sent_ns).as_nanos() as u64);
        if self.windowed {
            let w = self.w as u32;
            if seq >= self.done[j] && seq < self.done[j] + w {
                let slot = j * self.w + (seq % w) as usize;
                self.ring[slot] += 1;
                loop {
                    let slot = j * self.w + (self.done[j] % w) as usize;
                    if self.ring[slot] < self.per_msg as u32 {
                        break;
                    }
                    self.ring[slot] = 0;
                    self.done[j] += 1;
                    self.ready.push(j);
                }
            }
        }
    }

    fn on_closed(&mut self, id: usize, why: Closed) {
        self.base.closed(id, &why);
    }
}

impl HasBase for Fanout {
    fn base(&mut self) -> &mut Base {
        &mut self.base
    }
}

pub fn run(ctx: &Ctx, rate_mode: bool, out: &mut Json) -> Outcome {
    let a = &ctx.args;
    let n: usize = a.num("clients", 1000)?;
    let s: usize = a.num("senders", 10)?;
    let size: usize = a.num("bytes", 64)?;
    let w: usize = a.num("window", 2)?;
    let transport = a
        .str_opt("transport")
        .map(|t| Kind::parse(&t))
        .transpose()?;
    let dedicated = transport.is_some();
    // Receivers per message, and connections in all.
    let (per_msg, conns) = match dedicated {
        true => (n, s + n),
        false => (n.max(2) - 1, n),
    };
    let (m, rate, duration) = if rate_mode {
        let rate: f64 = a.num("rate", 20000.0)?;
        let duration: f64 = a.num("duration", 10.0)?;
        let m = ((rate * duration / per_msg as f64 / s.max(1) as f64).round() as usize).max(1);
        (m, rate, duration)
    } else {
        (a.num("messages", 300)?, 0.0, 0.0)
    };
    let stall = Duration::from_secs_f64(a.num("stall-s", 10.0)?);
    a.finish()?;
    if n < 2 || s == 0 || (s > n && !dedicated) || w == 0 || m == 0 {
        return Err(
            "need clients >= 2, 1 <= senders <= clients, window >= 1, messages >= 1".into(),
        );
    }
    if size < common::HEADER {
        return Err(format!("--bytes must be at least {}", common::HEADER));
    }
    let total = (s * m * per_msg) as u64;
    if let Some(kind) = transport {
        out.str("transport", kind.name()).int("receivers", n as u64);
    }
    out.int("clients", conns as u64)
        .int("senders", s as u64)
        .int("messages", m as u64);
    out.int("bytes", size as u64)
        .int("window", w as u64)
        .int("expected", total);
    if rate_mode {
        out.num("rate_target", rate)
            .num("duration_target_s", duration);
    }

    let mut net = Net::new(&ctx.target, ctx.src_ips, 1 << 20).map_err(|e| e.to_string())?;
    let sender_conn: Vec<usize> = match dedicated {
        true => (0..s).collect(),
        false => (0..s).map(|j| j * n / s).collect(),
    };
    let mut h = Fanout {
        base: Base::new(conns),
        per_msg,
        dedicated,
        sender_rx: 0,
        s,
        w,
        t_base: Instant::now(),
        sender_conn: sender_conn.clone(),
        expected: vec![0; conns * s],
        ring: vec![0; s * w],
        done: vec![0; s],
        ready: Vec::new(),
        windowed: !rate_mode,
        delivered: 0,
        echo: 0,
        dup: 0,
        gap: 0,
        foreign: 0,
        bad_size: 0,
        size,
        hist: Hist::default(),
        last_delivery: Instant::now(),
    };
    let connect = match transport {
        None => common::establish(&mut net, &mut h, n, ctx.concurrency, ctx.timeout)?,
        Some(kind) => {
            let t = common::establish(&mut net, &mut h, s, ctx.concurrency, ctx.timeout)?;
            net.kind = kind;
            t + common::establish(&mut net, &mut h, n, ctx.concurrency, ctx.timeout)?
        }
    };
    out.num("connect_s", connect.as_secs_f64());
    // No message before every receiver has joined: streams open, polls held.
    let (field, joined) = match transport {
        None | Some(Kind::Ws | Kind::WsV1) => ("connections", conns),
        Some(Kind::Sse) => ("sse", n),
        Some(Kind::Poll) => ("long_poll", n),
    };
    if let Some(c) = ctx.status_check_field(field, joined as u64)? {
        out.int("status_connections", c);
    }
    let receivers = if dedicated { s..conns } else { 0..conns };
    let (rx0, tx0) = net.io_bytes(receivers.clone());
    let answers0 = net.stats.poll_answers;

    let mut buf = vec![0u8; size];
    common::fill_pattern(&mut buf);
    let mut sent = vec![0u32; s];
    let send = |net: &mut Net, buf: &mut [u8], sent: &mut [u32], j: usize, t_base: Instant| {
        common::write_header(buf, j as u32, sent[j], t_base.elapsed().as_nanos() as u64);
        net.send(sender_conn[j], ws::OP_TEXT, buf);
        sent[j] += 1;
    };

    let cpu0 = ctx.probe.cpu_ticks()?;
    let gen0 = crate::sys::self_cpu();
    let t0 = Instant::now();
    h.last_delivery = t0;
    let deadline = t0 + ctx.timeout;
    let msg_interval = if rate_mode {
        per_msg as f64 / rate
    } else {
        0.0
    };
    let total_msgs = s * m;
    let mut next_k = 0usize;
    if !rate_mode {
        for _ in 0..w.min(m) {
            for j in 0..s {
                send(&mut net, &mut buf, &mut sent, j, h.t_base);
            }
        }
        next_k = total_msgs; // the schedule is unused
    }
    let mut error = None;
    while h.delivered < total {
        let mut timeout = Duration::from_millis(100);
        if rate_mode {
            let now = t0.elapsed().as_secs_f64();
            while next_k < total_msgs && next_k as f64 * msg_interval <= now {
                send(&mut net, &mut buf, &mut sent, next_k % s, h.t_base);
                next_k += 1;
            }
            if next_k < total_msgs {
                let due = next_k as f64 * msg_interval - now;
                timeout = timeout.min(Duration::from_secs_f64(due.max(0.0)));
            }
        }
        if let Err(e) = net.poll_once(&mut h, Some(timeout)) {
            error = Some(format!("poll: {e}"));
            break;
        }
        let ready = std::mem::take(&mut h.ready);
        for &j in &ready {
            if (sent[j] as usize) < m {
                send(&mut net, &mut buf, &mut sent, j, h.t_base);
            }
        }
        h.ready = ready;
        h.ready.clear();
        if h.base.n_closed > 0 {
            error = Some(format!(
                "server closed {} connection(s) during the run; first: {}",
                h.base.n_closed,
                h.base.first_close.clone().unwrap_or_default()
            ));
            break;
        }
        let now = Instant::now();
        if next_k >= total_msgs && now.duration_since(h.last_delivery) > stall {
            error = Some(format!(
                "no delivery for {:.0} s: {} of {total} delivered (lost messages or a stalled server)",
                stall.as_secs_f64(),
                h.delivered
            ));
            break;
        }
        if now > deadline {
            error = Some(format!(
                "timed out after {:.0} s: {} of {total} delivered",
                ctx.timeout.as_secs_f64(),
                h.delivered
            ));
            break;
        }
    }
    let elapsed = h
        .last_delivery
        .saturating_duration_since(t0)
        .as_secs_f64()
        .max(1e-9);
    let cpu1 = ctx.probe.cpu_ticks()?;
    let (rx1, tx1) = net.io_bytes(receivers);
    let gen_cpu = (crate::sys::self_cpu() - gen0).as_secs_f64();
    let server_cpu = ctx.probe.cpu_secs(cpu0, cpu1);

    out.int("delivered", h.delivered);
    out.num("elapsed_s", elapsed);
    out.num("deliveries_per_s", h.delivered as f64 / elapsed);
    out.opt("server_cpu_s", server_cpu);
    out.opt(
        "deliveries_per_server_cpu_s",
        server_cpu
            .filter(|&c| c > 0.0)
            .map(|c| h.delivered as f64 / c),
    );
    out.opt("server_cpu_pct", server_cpu.map(|c| 100.0 * c / elapsed));
    out.num("gen_cpu_pct", 100.0 * gen_cpu / elapsed);
    out.num("lat_p50_us", h.hist.quantile(0.5) as f64 / 1e3);
    out.num("lat_p99_us", h.hist.quantile(0.99) as f64 / 1e3);
    out.num("lat_max_us", h.hist.max as f64 / 1e3);
    if dedicated {
        let (rx, tx) = (rx1 - rx0, tx1 - tx0);
        let per = |b: u64| b as f64 / h.delivered.max(1) as f64;
        out.int("rx_bytes", rx).int("tx_bytes", tx);
        out.num("rx_bytes_per_delivery", per(rx))
            .num("tx_bytes_per_delivery", per(tx))
            .num("wire_bytes_per_delivery", per(rx + tx));
        let answers = net.stats.poll_answers - answers0;
        if answers > 0 {
            out.int("poll_answers", answers).num(
                "deliveries_per_poll_answer",
                h.delivered as f64 / answers as f64,
            );
        }
        out.int("sender_rx", h.sender_rx);
    }
    out.int("lost", total.saturating_sub(h.delivered));
    out.int("duplicates", h.dup)
        .int("gaps", h.gap)
        .int("echoes", h.echo);
    out.int("foreign", h.foreign)
        .int("bad_size", h.bad_size)
        .int("bad_welcome", h.base.bad_welcome);
    let violations = h.dup + h.gap + h.echo + h.foreign + h.bad_size + h.base.bad_welcome;
    out.int("violations", violations);
    if violations > 0 {
        let v = format!(
            "{violations} delivery violations: {} duplicate/late, {} skipped (loss or reorder), {} echoed to sender, {} foreign, {} wrong size/type",
            h.dup, h.gap, h.echo, h.foreign, h.bad_size
        );
        error = Some(match error {
            Some(e) => format!("{v}; and {e}"),
            None => v,
        });
    }
    match error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
