//! `bigmsg`: one sender, one receiver, M messages of B bytes (1 MiB) with a
//! window of W undelivered; MiB per second and per server CPU-second.

use crate::common::{self, Base, HasBase, Hist, Json};
use crate::net::{Closed, Handler, Net};
use crate::ws;
use crate::{Ctx, Outcome};
use std::time::{Duration, Instant};

struct Big {
    base: Base,
    receiver: usize,
    opcode: u8,
    pattern: Vec<u8>,
    expected: u32,
    received: u64,
    bad: u64,
    ready: usize,
    hist: Hist,
    t_base: Instant,
    last: Instant,
}

impl Handler for Big {
    fn on_message(&mut self, id: usize, opcode: u8, payload: &[u8], now: Instant) {
        if self.base.take_welcome(id, payload) {
            return;
        }
        let hdr = common::read_header(payload);
        let ok = id == self.receiver
            && opcode == self.opcode
            && payload.len() == self.pattern.len()
            && payload[common::HEADER..] == self.pattern[common::HEADER..]
            && hdr.is_some_and(|(j, seq, _)| j == 0 && seq == self.expected);
        if !ok {
            self.bad += 1;
            return;
        }
        let ts = hdr.unwrap().2;
        self.hist.record(
            now.saturating_duration_since(self.t_base + Duration::from_nanos(ts))
                .as_nanos() as u64,
        );
        self.expected += 1;
        self.received += 1;
        self.ready += 1;
        self.last = now;
    }
    fn on_closed(&mut self, id: usize, why: Closed) {
        self.base.closed(id, &why);
    }
}

impl HasBase for Big {
    fn base(&mut self) -> &mut Base {
        &mut self.base
    }
}

pub fn run(ctx: &Ctx, out: &mut Json) -> Outcome {
    let a = &ctx.args;
    let size: usize = a.num("bytes", 1 << 20)?;
    let m: u32 = a.num("messages", 100)?;
    let w: u32 = a.num("window", 2)?;
    let binary = a.flag("binary");
    let stall = Duration::from_secs_f64(a.num("stall-s", 10.0)?);
    a.finish()?;
    if size < common::HEADER || m == 0 || w == 0 {
        return Err(format!(
            "need --bytes >= {}, --messages >= 1, --window >= 1",
            common::HEADER
        ));
    }
    out.int("bytes", size as u64)
        .int("messages", m as u64)
        .int("window", w as u64)
        .bool("binary", binary);
    let mut net =
        Net::new(&ctx.target, ctx.src_ips, size + (1 << 16)).map_err(|e| e.to_string())?;
    let mut pattern = vec![0u8; size];
    common::fill_pattern(&mut pattern);
    let opcode = if binary { ws::OP_BINARY } else { ws::OP_TEXT };
    let mut h = Big {
        base: Base::new(2),
        receiver: 1,
        opcode,
        pattern: pattern.clone(),
        expected: 0,
        received: 0,
        bad: 0,
        ready: 0,
        hist: Hist::default(),
        t_base: Instant::now(),
        last: Instant::now(),
    };
    common::establish(&mut net, &mut h, 2, 2, ctx.timeout)?;
    if let Some(c) = ctx.status_check(2)? {
        out.int("status_connections", c);
    }
    let cpu0 = ctx.probe.cpu_ticks()?;
    let gen0 = crate::sys::self_cpu();
    let t0 = Instant::now();
    h.last = t0;
    let mut sent = 0u32;
    let t_base = h.t_base;
    let mut send = |net: &mut Net, sent: &mut u32| {
        common::write_header(&mut pattern, 0, *sent, t_base.elapsed().as_nanos() as u64);
        net.send(0, opcode, &pattern);
        *sent += 1;
    };
    while sent < w.min(m) {
        send(&mut net, &mut sent);
    }
    let mut error = None;
    while h.received < m as u64 {
        net.poll_once(&mut h, Some(Duration::from_millis(100)))
            .map_err(|e| format!("poll: {e}"))?;
        while h.ready > 0 {
            h.ready -= 1;
            if sent < m {
                send(&mut net, &mut sent);
            }
        }
        if h.base.n_closed > 0 {
            error = Some(format!(
                "server closed a connection: {}",
                h.base.first_close.clone().unwrap_or_default()
            ));
            break;
        }
        if h.bad > 0 {
            error = Some(format!(
                "{} corrupt, misordered or misrouted messages",
                h.bad
            ));
            break;
        }
        let now = Instant::now();
        if now.duration_since(h.last) > stall {
            error = Some(format!(
                "no message for {:.0} s: {} of {m} received",
                stall.as_secs_f64(),
                h.received
            ));
            break;
        }
        if now.duration_since(t0) > ctx.timeout {
            error = Some(format!("timed out: {} of {m} received", h.received));
            break;
        }
    }
    let elapsed = h.last.saturating_duration_since(t0).as_secs_f64().max(1e-9);
    let cpu1 = ctx.probe.cpu_ticks()?;
    let gen_cpu = (crate::sys::self_cpu() - gen0).as_secs_f64();
    let server_cpu = ctx.probe.cpu_secs(cpu0, cpu1);
    let mib = h.received as f64 * size as f64 / (1u64 << 20) as f64;
    out.int("received", h.received).num("elapsed_s", elapsed);
    out.num("mib_per_s", mib / elapsed);
    out.opt("server_cpu_s", server_cpu);
    out.opt(
        "mib_per_server_cpu_s",
        server_cpu.filter(|&c| c > 0.0).map(|c| mib / c),
    );
    out.opt("server_cpu_pct", server_cpu.map(|c| 100.0 * c / elapsed));
    out.num("gen_cpu_pct", 100.0 * gen_cpu / elapsed);
    out.num("lat_p50_us", h.hist.quantile(0.5) as f64 / 1e3);
    out.num("lat_p99_us", h.hist.quantile(0.99) as f64 / 1e3);
    out.num("lat_max_us", h.hist.max as f64 / 1e3);
    out.int("violations", h.bad + h.base.bad_welcome);
    match error {
        Some(e) => Err(e),
        None if h.base.bad_welcome > 0 => Err("first message was not the welcome".into()),
        None => Ok(()),
    }
}
