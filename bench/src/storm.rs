//! `storm-2k`, `storm-10k`: N stuck clients (upgraded, welcome read, never
//! read again) while one sender broadcasts 64 MiB as fast as the server takes
//! it and one healthy reader reads everything. What does the server keep for
//! readers that never read? Server RSS growth, the machine's TCP memory
//! growth, time until the healthy reader has it all, and what it lost.

use crate::common::{self, Base, HasBase, Json};
use crate::net::{Closed, Handler, Net};
use crate::watch::Watch;
use crate::ws;
use crate::{Ctx, Outcome};
use std::time::{Duration, Instant};

struct Storm {
    base: Base,
    reader: usize,
    size: usize,
    expected: u32,
    received: u64,
    gaps: u64,
    dup: u64,
    bad: u64,
    /// Messages on any connection but the healthy reader (the sender gets
    /// none back, stuck clients read none).
    stray: u64,
    last: Instant,
}

impl Handler for Storm {
    fn on_message(&mut self, id: usize, opcode: u8, payload: &[u8], now: Instant) {
        if self.base.take_welcome(id, payload) {
            return;
        }
        if id != self.reader {
            self.stray += 1;
            return;
        }
        let Some((0, seq, _)) = common::read_header(payload) else {
            self.bad += 1;
            return;
        };
        if opcode != ws::OP_TEXT || payload.len() != self.size {
            self.bad += 1;
        }
        if seq < self.expected {
            self.dup += 1;
            return;
        }
        self.gaps += (seq - self.expected) as u64;
        self.expected = seq + 1;
        self.received += 1;
        self.last = now;
    }
    fn on_closed(&mut self, id: usize, why: Closed) {
        self.base.closed(id, &why);
    }
}

impl HasBase for Storm {
    fn base(&mut self) -> &mut Base {
        &mut self.base
    }
}

/// `default_stuck`: 2000 for `storm-2k`, 10000 for `storm-10k` (`--stuck` overrides).
pub fn run(ctx: &Ctx, default_stuck: usize, out: &mut Json) -> Outcome {
    let a = &ctx.args;
    let n: usize = a.num("stuck", default_stuck)?;
    let size: usize = a.num("bytes", 65536)?;
    let total_mib: u64 = a.num("mib", 64)?;
    let stuck_rcvbuf: usize = a.num("stuck-rcvbuf", 4096)?;
    let window: usize = a.num("send-window", 1 << 20)?;
    let stall = Duration::from_secs_f64(a.num("stall-s", 15.0)?);
    let mut watch = Watch::from_args(ctx)?;
    a.finish()?;
    if size < common::HEADER || total_mib == 0 {
        return Err(format!("need --bytes >= {} and --mib >= 1", common::HEADER));
    }
    let m = ((total_mib << 20) as usize).div_ceil(size) as u32;
    out.int("stuck", n as u64)
        .int("bytes", size as u64)
        .int("messages", m as u64);
    out.num("sent_mib", m as f64 * size as f64 / (1u64 << 20) as f64)
        .int("stuck_rcvbuf", stuck_rcvbuf as u64);

    let mut net =
        Net::new(&ctx.target, ctx.src_ips, size + (1 << 16)).map_err(|e| e.to_string())?;
    let (sender, reader) = (n, n + 1);
    let mut h = Storm {
        base: Base::new(n + 2),
        reader,
        size,
        expected: 0,
        received: 0,
        gaps: 0,
        dup: 0,
        bad: 0,
        stray: 0,
        last: Instant::now(),
    };
    // The stuck clients: a small receive buffer (so the kernel figure is
    // mostly what the server keeps, not the generator), and after the
    // welcome they never read again.
    net.rcvbuf = (stuck_rcvbuf > 0).then_some(stuck_rcvbuf);
    let connect = common::establish(&mut net, &mut h, n, ctx.concurrency, ctx.timeout)?;
    for id in 0..n {
        net.set_budget(id, Some(0));
    }
    net.rcvbuf = None;
    common::establish(&mut net, &mut h, 2, 2, ctx.timeout)?;
    out.num("connect_s", connect.as_secs_f64());
    if let Some(c) = ctx.status_check(n as u64 + 2)? {
        out.int("status_connections", c);
    }

    let mut buf = vec![0u8; size];
    common::fill_pattern(&mut buf);
    watch.start()?;
    let cpu0 = ctx.probe.cpu_ticks()?;
    let t0 = Instant::now();
    h.last = t0;
    let mut sent = 0u32;
    let mut error = None;
    while h.received < m as u64 {
        while sent < m && net.pending(sender) < window {
            common::write_header(&mut buf, 0, sent, t0.elapsed().as_nanos() as u64);
            net.queue(sender, ws::OP_TEXT, &buf);
            sent += 1;
        }
        net.flush_now(sender);
        if let Err(e) = net.poll_once(&mut h, Some(watch.interval())) {
            error = Some(format!("poll: {e}"));
            break;
        }
        if watch.check()? {
            break;
        }
        if h.base.n_closed > 0 {
            error = Some(format!(
                "the server closed the sender or the healthy reader: {}",
                h.base.first_close.clone().unwrap_or_default()
            ));
            break;
        }
        let now = Instant::now();
        if now.duration_since(h.last) > stall {
            error = Some(format!(
                "the healthy reader got nothing for {:.0} s: {} of {m} received, {sent} sent",
                stall.as_secs_f64(),
                h.received
            ));
            break;
        }
        if now.duration_since(t0) > ctx.timeout {
            error = Some(format!(
                "timed out: {} of {m} received, {sent} sent",
                h.received
            ));
            break;
        }
    }
    let elapsed = h.last.saturating_duration_since(t0).as_secs_f64();
    let cpu1 = ctx.probe.cpu_ticks()?;
    watch.report(out);
    // Who is still connected: the stuck clients never read, so only the
    // server's count tells whether it dropped them.
    let status = if watch.over.is_none() {
        common::status_connections(&ctx.target).ok()
    } else {
        None
    };
    // Stop cleanly: every socket closed now (unread data: the kernel resets
    // them, and the server's side frees its buffers).
    drop(net);
    let server_cpu = ctx.probe.cpu_secs(cpu0, cpu1);
    out.int("sent", sent as u64).int("received", h.received);
    out.num("elapsed_s", elapsed);
    out.opt("server_cpu_s", server_cpu);
    // Stopped at a ceiling, "lost" means nothing: the run did not finish.
    if watch.over.is_none() {
        out.int("lost", (m as u64).saturating_sub(h.received));
    }
    out.int("gaps", h.gaps)
        .int("duplicates", h.dup)
        .int("bad", h.bad)
        .int("stray", h.stray);
    if let Some(c) = status {
        out.int("status_connections_end", c)
            .int("stuck_dropped", (n as u64 + 2).saturating_sub(c));
    }
    let violations = h.gaps + h.dup + h.bad + h.stray + h.base.bad_welcome;
    out.int("violations", violations);
    if violations > 0 {
        let v = format!(
            "the healthy reader saw {} skipped (lost), {} duplicate, {} corrupt; {} stray messages",
            h.gaps, h.dup, h.bad, h.stray
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
