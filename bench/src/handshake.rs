//! `handshake`: K concurrent connect + upgrade + welcome + close cycles for D
//! seconds; cycles per second and per server CPU-second.

use crate::common::{Hist, Json};
use crate::net::{Closed, Handler, Net, Phase};
use crate::{Ctx, Outcome};
use std::time::{Duration, Instant};

struct Cycles {
    to_close: Vec<usize>,
    to_reopen: Vec<usize>,
    welcomed: Vec<bool>,
    done: u64,
    errors: u64,
    first_error: Option<String>,
    hist: Hist,
    started: Vec<Instant>,
}

impl Handler for Cycles {
    fn on_message(&mut self, id: usize, _op: u8, _payload: &[u8], _now: Instant) {
        if !self.welcomed[id] {
            self.welcomed[id] = true;
            self.to_close.push(id);
        }
    }
    fn on_closed(&mut self, id: usize, why: Closed) {
        match why {
            // The close handshake we started finished, or the server closed the
            // TCP stream right after its close frame: a complete cycle.
            Closed::Clean => {
                self.done += 1;
                self.hist
                    .record(self.started[id].elapsed().as_nanos() as u64);
            }
            Closed::Eof if self.welcomed[id] => {
                self.done += 1;
                self.hist
                    .record(self.started[id].elapsed().as_nanos() as u64);
            }
            other => {
                self.errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(other.to_string());
                }
            }
        }
        self.to_reopen.push(id);
    }
}

pub fn run(ctx: &Ctx, out: &mut Json) -> Outcome {
    let a = &ctx.args;
    let k: usize = a.num("concurrency", 32)?;
    let d = Duration::from_secs_f64(a.num("duration", 10.0)?);
    a.finish()?;
    out.int("concurrency", k as u64)
        .num("duration_target_s", d.as_secs_f64());
    let mut net = Net::new(&ctx.target, ctx.src_ips, 1 << 20).map_err(|e| e.to_string())?;
    let mut h = Cycles {
        to_close: Vec::new(),
        to_reopen: Vec::new(),
        welcomed: vec![false; k],
        done: 0,
        errors: 0,
        first_error: None,
        hist: Hist::default(),
        started: vec![Instant::now(); k],
    };
    let cpu0 = ctx.probe.cpu_ticks()?;
    let gen0 = crate::sys::self_cpu();
    let t0 = Instant::now();
    let stop_at = t0 + d;
    for i in 0..k {
        h.started[i] = Instant::now();
        net.open();
    }
    let mut last_done = (0, Instant::now());
    // After the duration, in-flight cycles get up to 5 s to finish.
    let hard_stop = stop_at + Duration::from_secs(5);
    loop {
        let now = Instant::now();
        let live = (0..k)
            .filter(|&i| !matches!(net.phase(i), Phase::Closed | Phase::Idle))
            .count();
        if now >= stop_at && live == 0 && h.to_reopen.is_empty() {
            break;
        }
        if now >= hard_stop {
            h.errors += live as u64;
            h.first_error
                .get_or_insert_with(|| format!("{live} cycles unfinished 5 s after the end"));
            break;
        }
        net.poll_once(&mut h, Some(Duration::from_millis(50)))
            .map_err(|e| format!("poll: {e}"))?;
        for id in std::mem::take(&mut h.to_close) {
            net.close(id);
        }
        let reopen = std::mem::take(&mut h.to_reopen);
        for id in reopen {
            net.drop_conn(id);
            if Instant::now() < stop_at {
                h.welcomed[id] = false;
                h.started[id] = Instant::now();
                net.open_at(id);
            }
        }
        if h.done != last_done.0 {
            last_done = (h.done, now);
        } else if now.duration_since(last_done.1) > Duration::from_secs(10) {
            return Err(format!(
                "server did not answer: no cycle completed for 10 s ({} done)",
                h.done
            ));
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu1 = ctx.probe.cpu_ticks()?;
    let gen_cpu = (crate::sys::self_cpu() - gen0).as_secs_f64();
    let server_cpu = ctx.probe.cpu_secs(cpu0, cpu1);
    out.int("cycles", h.done)
        .int("errors", h.errors)
        .num("elapsed_s", elapsed);
    out.num("cycles_per_s", h.done as f64 / elapsed);
    out.opt("server_cpu_s", server_cpu);
    out.opt(
        "cycles_per_server_cpu_s",
        server_cpu.filter(|&c| c > 0.0).map(|c| h.done as f64 / c),
    );
    out.opt("server_cpu_pct", server_cpu.map(|c| 100.0 * c / elapsed));
    out.num("gen_cpu_pct", 100.0 * gen_cpu / elapsed);
    out.num("cycle_p50_us", h.hist.quantile(0.5) as f64 / 1e3);
    out.num("cycle_p99_us", h.hist.quantile(0.99) as f64 / 1e3);
    if h.done == 0 {
        return Err("no handshake cycle completed: is the server answering?".into());
    }
    if h.errors > 0 {
        return Err(format!(
            "{} failed cycles; first: {}",
            h.errors,
            h.first_error.unwrap_or_default()
        ));
    }
    Ok(())
}
