//! The watch every memory-heavy scenario keeps (`storm-*`, `slow-reader`,
//! `flood`): the server's RSS and the machine's TCP memory, sampled every few
//! milliseconds, against two ceilings. A server that buffers without bound
//! (the peers do) is stopped there instead of being let eat the machine: the
//! run ends cleanly, its line says `"over_ceiling":true`, and the report
//! shows "over the ceiling (stopped)" instead of its figures.

use crate::Ctx;
use crate::common::Json;
use crate::sys;
use std::time::{Duration, Instant};

const MIB: f64 = (1u64 << 20) as f64;

pub struct Watch {
    pid: u32,
    rss_ceiling: u64,
    tcp_ceiling: u64,
    page: u64,
    every: Duration,
    last: Option<Instant>,
    rss_before: u64,
    tcp_before: u64,
    rss_peak: u64,
    tcp_peak: u64,
    orphans_peak: u64,
    samples: u64,
    /// Why the run was stopped, once a ceiling is reached.
    pub over: Option<String>,
}

impl Watch {
    /// Reads `--rss-ceiling-mib` (3072), `--tcp-ceiling-mib` (the smaller of
    /// 3072 and 90 % of the kernel's tcp_mem "low" mark, below which it does
    /// not throttle any socket on the machine) and `--sample-ms` (10). Needs `--pid`.
    pub fn from_args(ctx: &Ctx) -> Result<Watch, String> {
        let a = &ctx.args;
        let page = sys::page_size();
        let low = sys::tcp_mem_limits().map(|l| (l[0] * page * 9 / 10) >> 20);
        let default_tcp = low.map_or(3072, |l| l.min(3072));
        let rss_mib: u64 = a.num("rss-ceiling-mib", 3072)?;
        let tcp_mib: u64 = a.num("tcp-ceiling-mib", default_tcp)?;
        let every = Duration::from_secs_f64(a.num("sample-ms", 10.0)? / 1e3);
        let pid = ctx.probe.pid.ok_or(
            "this scenario needs --pid SERVER_PID: it watches the server's RSS against a ceiling",
        )?;
        Ok(Watch {
            pid,
            rss_ceiling: rss_mib << 20,
            tcp_ceiling: tcp_mib << 20,
            page,
            every,
            last: None,
            rss_before: 0,
            tcp_before: 0,
            rss_peak: 0,
            tcp_peak: 0,
            orphans_peak: 0,
            samples: 0,
            over: None,
        })
    }

    fn read(&self) -> Result<(u64, u64, u64), String> {
        let rss = sys::proc_rss_bytes(self.pid)
            .map_err(|e| format!("server pid {}: {e} (did the server exit?)", self.pid))?;
        let (pages, orphans) = sys::sockstat_tcp().map_err(|e| e.to_string())?;
        Ok((rss, pages * self.page, orphans))
    }

    /// The baseline: call just before the load starts. Refuses to start a
    /// run on a machine already over a ceiling.
    pub fn start(&mut self) -> Result<(), String> {
        let (rss, tcp, orphans) = self.read()?;
        self.rss_before = rss;
        self.tcp_before = tcp;
        self.rss_peak = rss;
        self.tcp_peak = tcp;
        self.orphans_peak = orphans;
        self.last = Some(Instant::now());
        if tcp >= self.tcp_ceiling {
            return Err(format!(
                "the machine's TCP memory is already {:.0} MiB, over the {:.0} MiB ceiling: not starting",
                tcp as f64 / MIB,
                self.tcp_ceiling as f64 / MIB
            ));
        }
        Ok(())
    }

    /// Samples if the interval has passed; returns true once a ceiling is reached.
    pub fn check(&mut self) -> Result<bool, String> {
        let now = Instant::now();
        if self.over.is_some() {
            return Ok(true);
        }
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < self.every)
        {
            return Ok(false);
        }
        self.last = Some(now);
        self.sample()
    }

    /// Samples now.
    pub fn sample(&mut self) -> Result<bool, String> {
        let (rss, tcp, orphans) = self.read()?;
        self.samples += 1;
        self.rss_peak = self.rss_peak.max(rss);
        self.tcp_peak = self.tcp_peak.max(tcp);
        self.orphans_peak = self.orphans_peak.max(orphans);
        if self.over.is_none() {
            if rss >= self.rss_ceiling {
                self.over = Some(format!(
                    "over the ceiling (stopped): server RSS {:.0} MiB >= {:.0} MiB",
                    rss as f64 / MIB,
                    self.rss_ceiling as f64 / MIB
                ));
            } else if tcp >= self.tcp_ceiling {
                self.over = Some(format!(
                    "over the ceiling (stopped): kernel TCP memory {:.0} MiB >= {:.0} MiB",
                    tcp as f64 / MIB,
                    self.tcp_ceiling as f64 / MIB
                ));
            }
        }
        Ok(self.over.is_some())
    }

    /// A poll timeout that keeps the sampling interval.
    pub fn interval(&self) -> Duration {
        self.every
    }

    /// Writes the figures: RSS before, peak (the larger of the sampled peak
    /// and VmHWM, which also catches a peak between samples) and growth; TCP
    /// memory before, peak and growth (machine-wide); orphans; the ceilings.
    pub fn report(&mut self, out: &mut Json) {
        let _ = self.sample();
        let hwm = sys::proc_status_kib_field(self.pid, "VmHWM").unwrap_or(0);
        let peak = self.rss_peak.max(hwm);
        let mib = |b: u64| b as f64 / MIB;
        out.num("rss_before_mib", mib(self.rss_before))
            .num("rss_peak_mib", mib(peak))
            .num("rss_growth_mib", mib(peak.saturating_sub(self.rss_before)));
        out.num("rss_sampled_peak_mib", mib(self.rss_peak))
            .num("rss_hwm_mib", mib(hwm));
        out.num("tcp_mem_before_mib", mib(self.tcp_before))
            .num("tcp_mem_peak_mib", mib(self.tcp_peak))
            .num(
                "tcp_mem_growth_mib",
                mib(self.tcp_peak.saturating_sub(self.tcp_before)),
            );
        out.int("tcp_orphans_peak", self.orphans_peak)
            .int("watch_samples", self.samples);
        out.num("rss_ceiling_mib", mib(self.rss_ceiling))
            .num("tcp_ceiling_mib", mib(self.tcp_ceiling));
        out.bool("over_ceiling", self.over.is_some());
        if let Some(why) = &self.over {
            out.str("stopped", why);
        }
    }
}
