//! `slow-reader`: S senders send numbered messages as fast as the server
//! takes them for D seconds, while one reader reads at most R bytes per
//! 10 ms tick. Does the slow reader lose anything (gaps, or dropped), how
//! fast do the senders get to go, and is anyone dropped? After D the slow
//! reader reads at full speed until it has every message (or nothing comes
//! for `--drain-s`), so "lost" counts what never arrived, not what was late.

use crate::common::{self, Base, HasBase, Hist, Json};
use crate::net::{Closed, Handler, Net};
use crate::watch::Watch;
use crate::ws;
use crate::{Ctx, Outcome};
use std::time::{Duration, Instant};

struct Slow {
    base: Base,
    s: usize,
    slow: usize,
    size: usize,
    t_base: Instant,
    /// receiver id * S + sender -> next expected sequence number
    expected: Vec<u32>,
    /// messages each connection received (not counting the welcome)
    received: Vec<u64>,
    gaps: Vec<u64>,
    dup: u64,
    bad: u64,
    hist: Hist,
    /// when the slow reader last received a message
    last_slow: Instant,
    /// the close of each connection, if the server ended it
    closed: Vec<Option<String>>,
}

impl Handler for Slow {
    fn on_message(&mut self, id: usize, opcode: u8, payload: &[u8], now: Instant) {
        if self.base.take_welcome(id, payload) {
            return;
        }
        let Some((j, seq, ts)) = common::read_header(payload).filter(|h| (h.0 as usize) < self.s)
        else {
            self.bad += 1;
            return;
        };
        let j = j as usize;
        if j == id || opcode != ws::OP_TEXT || payload.len() != self.size {
            self.bad += 1;
            return;
        }
        let e = &mut self.expected[id * self.s + j];
        if seq < *e {
            self.dup += 1;
            return;
        }
        self.gaps[id] += (seq - *e) as u64;
        *e = seq + 1;
        self.received[id] += 1;
        if id == self.slow {
            self.last_slow = now;
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

impl HasBase for Slow {
    fn base(&mut self) -> &mut Base {
        &mut self.base
    }
}

pub fn run(ctx: &Ctx, out: &mut Json) -> Outcome {
    let a = &ctx.args;
    let s: usize = a.num("senders", 2)?;
    let size: usize = a.num("bytes", 1024)?;
    let duration = Duration::from_secs_f64(a.num("duration", 10.0)?);
    let rate: usize = a.num("read-bytes", 65536)?;
    let tick = Duration::from_secs_f64(a.num("tick-ms", 10.0)? / 1e3);
    let window: usize = a.num("send-window", 256 * 1024)?;
    let drain = Duration::from_secs_f64(a.num("drain-s", 5.0)?);
    let mut watch = Watch::from_args(ctx)?;
    a.finish()?;
    if s == 0 || size < common::HEADER || rate == 0 || tick.is_zero() {
        return Err(format!(
            "need --senders >= 1, --bytes >= {}, --read-bytes >= 1, --tick-ms > 0",
            common::HEADER
        ));
    }
    // What the slow reader can take, in messages per second (server frames:
    // a 2-, 4- or 10-byte header and the payload).
    let frame = size
        + if size < 126 {
            2
        } else if size <= 0xFFFF {
            4
        } else {
            10
        };
    let pace = rate as f64 / tick.as_secs_f64() / frame as f64;
    out.int("senders", s as u64)
        .int("bytes", size as u64)
        .num("duration_target_s", duration.as_secs_f64());
    out.int("read_bytes_per_tick", rate as u64)
        .num("tick_ms", tick.as_secs_f64() * 1e3)
        .num("reader_pace_msgs_per_s", pace);

    let mut net =
        Net::new(&ctx.target, ctx.src_ips, size + (1 << 16)).map_err(|e| e.to_string())?;
    let slow = s;
    let mut h = Slow {
        base: Base::new(s + 1),
        s,
        slow,
        size,
        t_base: Instant::now(),
        expected: vec![0; (s + 1) * s],
        received: vec![0; s + 1],
        gaps: vec![0; s + 1],
        dup: 0,
        bad: 0,
        hist: Hist::default(),
        last_slow: Instant::now(),
        closed: vec![None; s + 1],
    };
    common::establish(&mut net, &mut h, s + 1, s + 1, ctx.timeout)?;
    net.set_budget(slow, Some(0));
    if let Some(c) = ctx.status_check(s as u64 + 1)? {
        out.int("status_connections", c);
    }

    let mut buf = vec![0u8; size];
    common::fill_pattern(&mut buf);
    let mut sent = vec![0u32; s];
    watch.start()?;
    let cpu0 = ctx.probe.cpu_ticks()?;
    let gen0 = crate::sys::self_cpu();
    let t0 = Instant::now();
    let t_end = t0 + duration;
    let mut next_tick = t0;
    let mut slow_bytes = 0u64;
    let mut error = None;
    // Phase 1: send for D, the slow reader capped.
    loop {
        let now = Instant::now();
        if now >= t_end {
            break;
        }
        for (j, n) in sent.iter_mut().enumerate() {
            if h.closed[j].is_some() {
                continue;
            }
            while net.pending(j) < window {
                let ts = h.t_base.elapsed().as_nanos() as u64;
                common::write_header(&mut buf, j as u32, *n, ts);
                net.queue(j, ws::OP_TEXT, &buf);
                *n += 1;
            }
            net.flush_now(j);
        }
        if now >= next_tick {
            slow_bytes += net.read_up_to(slow, Some(rate), &mut h) as u64;
            next_tick += tick;
            if next_tick < now {
                // Late (a busy generator): no catching up, the cap is per tick.
                next_tick = now + tick;
            }
        }
        let wait = next_tick
            .saturating_duration_since(Instant::now())
            .min(watch.interval());
        net.poll_once(&mut h, Some(wait))
            .map_err(|e| format!("poll: {e}"))?;
        if watch.check()? {
            break;
        }
    }
    // What the senders got the server to take: queued minus what still waits in
    // the generator (rounded down to whole frames).
    let taken: Vec<u64> = (0..s)
        .map(|j| {
            let waiting = net.pending(j).div_ceil(frame + 4) as u64;
            (sent[j] as u64).saturating_sub(waiting)
        })
        .collect();
    let total_taken: u64 = taken.iter().sum();
    let send_elapsed = t0.elapsed().as_secs_f64();
    let cpu1 = ctx.probe.cpu_ticks()?;
    let gen_cpu = (crate::sys::self_cpu() - gen0).as_secs_f64();
    let slow_rate = slow_bytes as f64 / send_elapsed;
    let received_in_window = h.received[slow];
    // Phase 2: the slow reader reads freely until it has everything.
    let t_drain = Instant::now();
    if watch.over.is_none() {
        net.set_budget(slow, None);
        net.read_up_to(slow, None, &mut h);
        let mut last_progress = (h.received.iter().sum::<u64>(), Instant::now());
        loop {
            let everyone_has_it = (0..=s).all(|id| {
                let want: u64 = (0..s).filter(|&j| j != id).map(|j| sent[j] as u64).sum();
                h.closed[id].is_some() || h.received[id] >= want
            });
            if everyone_has_it {
                break;
            }
            // Flush what the senders still had queued.
            for j in 0..s {
                net.flush_now(j);
            }
            net.poll_once(&mut h, Some(watch.interval()))
                .map_err(|e| format!("poll: {e}"))?;
            if watch.check()? {
                break;
            }
            let got: u64 = h.received.iter().sum();
            if got != last_progress.0 {
                last_progress = (got, Instant::now());
            } else if last_progress.1.elapsed() > drain {
                break;
            }
        }
    }
    let drain_s = h.last_slow.saturating_duration_since(t_drain).as_secs_f64();
    watch.report(out);
    drop(net);
    let server_cpu = ctx.probe.cpu_secs(cpu0, cpu1);

    let total_sent: u64 = sent.iter().map(|&n| n as u64).sum();
    out.int("sent", total_sent).int("taken", total_taken);
    out.num("send_elapsed_s", send_elapsed)
        .num("sent_per_s", total_taken as f64 / send_elapsed);
    out.num("slow_read_bytes_per_s", slow_rate)
        .int("slow_received_in_window", received_in_window)
        .int("slow_received", h.received[slow]);
    out.num("drain_s", drain_s);
    out.opt("server_cpu_s", server_cpu)
        .opt(
            "server_cpu_pct",
            server_cpu.map(|c| 100.0 * c / send_elapsed),
        )
        .num("gen_cpu_pct", 100.0 * gen_cpu / send_elapsed);
    out.num("slow_lat_p50_us", h.hist.quantile(0.5) as f64 / 1e3)
        .num("slow_lat_p99_us", h.hist.quantile(0.99) as f64 / 1e3)
        .num("slow_lat_max_us", h.hist.max as f64 / 1e3);
    let dropped = h.closed.iter().filter(|c| c.is_some()).count() as u64;
    out.int("dropped", dropped)
        .bool("slow_dropped", h.closed[slow].is_some());
    if let Some(why) = h.closed.iter().flatten().next() {
        out.str("first_drop", why);
    }
    if watch.over.is_none() {
        let want = |id: usize| -> u64 {
            (0..s)
                .filter(|&j| j != id)
                .map(|j| sent[j] as u64)
                .sum::<u64>()
        };
        out.int("slow_lost", want(slow).saturating_sub(h.received[slow]));
        let fast_lost: u64 = (0..s)
            .map(|id| want(id).saturating_sub(h.received[id]))
            .sum();
        out.int("senders_lost", fast_lost);
    }
    let gaps: u64 = h.gaps.iter().sum();
    out.int("gaps", gaps)
        .int("duplicates", h.dup)
        .int("bad", h.bad)
        .int("bad_welcome", h.base.bad_welcome);
    // A gap on a connection the server kept open is a silent loss: a failure.
    // A dropped connection's missing tail is reported ("slow_lost"), not failed.
    let silent: u64 = (0..=s)
        .filter(|&id| h.closed[id].is_none())
        .map(|id| h.gaps[id])
        .sum();
    let violations = silent + h.dup + h.bad + h.base.bad_welcome;
    out.int("violations", violations);
    if violations > 0 {
        error = Some(format!(
            "{silent} messages skipped on connections the server kept open, {} duplicate, {} corrupt or misrouted",
            h.dup, h.bad
        ));
    }
    match error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
