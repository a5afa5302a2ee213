//! `idle`: hold C upgraded chat connections; report the server's RSS per
//! connection and its CPU over a window while it pings them (run the server
//! with a short heartbeat; the generator answers every ping).
//!
//! `--transport sse` holds event streams instead (the heartbeat is then a
//! `: keep-alive` comment), `--transport long-poll` held polls (each client
//! has had its welcome and asked again with `since`; a poll answered empty
//! after `--poll-timeout-ms` is asked again at once).

use crate::common::{self, Base, HasBase, Json};
use crate::http_rx::Kind;
use crate::net::{Closed, Handler, Net};
use crate::{Ctx, Outcome};
use std::time::{Duration, Instant};

struct Idle {
    base: Base,
    messages: u64,
}

impl Handler for Idle {
    fn on_message(&mut self, id: usize, _op: u8, payload: &[u8], _now: Instant) {
        if !self.base.take_welcome(id, payload) {
            self.messages += 1;
        }
    }
    fn on_closed(&mut self, id: usize, why: Closed) {
        self.base.closed(id, &why);
    }
}

impl HasBase for Idle {
    fn base(&mut self) -> &mut Base {
        &mut self.base
    }
}

pub fn run(ctx: &Ctx, out: &mut Json) -> Outcome {
    let a = &ctx.args;
    let c: usize = a.num("conns", 10000)?;
    let window = Duration::from_secs_f64(a.num("duration", 10.0)?);
    let settle = Duration::from_secs_f64(a.num("settle", 2.0)?);
    let transport = a
        .str_opt("transport")
        .map(|t| Kind::parse(&t))
        .transpose()?;
    a.finish()?;
    if let Some(kind) = transport {
        out.str("transport", kind.name());
    }
    out.int("conns", c as u64)
        .num("window_s", window.as_secs_f64());

    let mut net = Net::new(&ctx.target, ctx.src_ips, 1 << 20).map_err(|e| e.to_string())?;
    net.kind = transport.unwrap_or(Kind::Ws);
    let mut h = Idle {
        base: Base::new(c),
        messages: 0,
    };
    let rss0 = ctx.probe.rss()?;
    let connect = common::establish(&mut net, &mut h, c, ctx.concurrency, ctx.timeout)?;
    out.num("connect_s", connect.as_secs_f64());
    out.num("connects_per_s", c as f64 / connect.as_secs_f64().max(1e-9));
    common::hold(&mut net, &mut h, settle)?;
    let rss1 = ctx.probe.rss()?;
    let field = match net.kind {
        Kind::Ws | Kind::WsV1 => "connections",
        Kind::Sse => "sse",
        Kind::Poll => "long_poll",
    };
    if let Some(n) = ctx.status_check_field(field, c as u64)? {
        out.int("status_connections", n);
    }
    let (cpu0, pings0, gen0, t0) = (
        ctx.probe.cpu_ticks()?,
        net.stats.pings,
        crate::sys::self_cpu(),
        Instant::now(),
    );
    common::hold(&mut net, &mut h, window)?;
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu1 = ctx.probe.cpu_ticks()?;
    let gen_cpu = (crate::sys::self_cpu() - gen0).as_secs_f64();
    let rss2 = ctx.probe.rss()?;
    let pings = net.stats.pings - pings0;
    let server_cpu = ctx.probe.cpu_secs(cpu0, cpu1);

    let kib = |v: Option<u64>| v.map(|b| b as f64 / 1024.0);
    out.opt("rss_before_kib", kib(rss0))
        .opt("rss_after_kib", kib(rss1))
        .opt("rss_end_kib", kib(rss2));
    let per_conn = match (rss0, rss1) {
        (Some(b), Some(a)) => Some((a as f64 - b as f64) / c as f64 / 1024.0),
        _ => None,
    };
    out.opt("rss_per_conn_kib", per_conn);
    out.opt("server_cpu_s", server_cpu);
    out.opt("server_cpu_pct", server_cpu.map(|s| 100.0 * s / elapsed));
    out.int("pings", pings)
        .num("pings_per_s", pings as f64 / elapsed);
    out.num("gen_cpu_pct", 100.0 * gen_cpu / elapsed);
    out.int("unexpected_messages", h.messages)
        .int("bad_welcome", h.base.bad_welcome);
    if h.messages > 0 || h.base.bad_welcome > 0 {
        return Err(format!(
            "{} unexpected messages on idle connections",
            h.messages + h.base.bad_welcome
        ));
    }
    drop(net);
    Ok(())
}
