//! miochat-bench: a single-threaded mio load generator for WebSocket chat
//! servers on this machine (loopback only). Each scenario prints one JSON line.

mod args;
mod bigmsg;
mod common;
mod fanout;
mod flood;
mod handshake;
mod http_rx;
mod idle;
mod net;
mod report;
mod slow;
mod storm;
mod sys;
mod watch;
mod ws;

use std::time::Duration;

pub type Outcome = Result<(), String>;

pub struct Ctx {
    pub args: args::Args,
    pub target: net::Target,
    pub probe: sys::Probe,
    pub src_ips: u32,
    pub timeout: Duration,
    pub concurrency: usize,
    status: bool,
}

impl Ctx {
    /// GET /status must report at least `n` connections within 5 s (unless --no-status).
    pub fn status_check(&self, n: u64) -> Result<Option<u64>, String> {
        self.status_check_field("connections", n)
    }

    /// The same for another figure of miochat's /status: "sse" (open event
    /// streams) or "long_poll" (polls held).
    pub fn status_check_field(&self, field: &str, n: u64) -> Result<Option<u64>, String> {
        if !self.status {
            return Ok(None);
        }
        let got = common::wait_status(&self.target, field, n, Duration::from_secs(5))?;
        if got < n {
            return Err(format!(
                "GET /status reports {got} {field}, expected at least {n}"
            ));
        }
        Ok(Some(got))
    }
}

const USAGE: &str = "\
usage: miochat-bench SCENARIO --url ws://127.0.0.1:PORT/ [--pid SERVER_PID] [options]
       miochat-bench report --input RESULTS.jsonl [--md OUT.md] [--svg OUT.svg] [--title T] [--baseline NAME]

scenarios (each prints one JSON line; exit 1 on any failure or violation):
  fanout       --clients 1000 --senders 10 --messages 300 --bytes 64 --window 2
  fanout-w8    the same as fanout with --window 8 (its own name in reports)
  fanout-rate  --clients 1000 --senders 10 --rate 20000 (deliveries/s) --duration 10 --bytes 64
  idle         --conns 10000 --duration 10 --settle 2   (run the server with a short heartbeat)
  (these three take --transport websocket|websocket-v1|sse|long-poll: miochat's
   receivers upgrading (plain, or offering miochat.v1), on GET /events or on
   GET /poll; fanout then has --senders WebSocket senders beside --clients
   receivers and counts the receivers' bytes in and out)
  handshake    --concurrency 32 --duration 10
  bigmsg       --bytes 1048576 --messages 100 --window 2 [--binary]
  storm-2k     --stuck 2000 --mib 64 --bytes 65536: N clients never read, one sender, one healthy reader
  storm-10k    the same with --stuck 10000
  slow-reader  --senders 2 --bytes 1024 --duration 10 --read-bytes 65536 (per --tick-ms 10) --drain-s 5
  flood        --clients 2000 --readers 100 --duration 10 --interval-ms 20 --probe-ms 200 --drain-s 10
  (these three need --pid; they stop at --rss-ceiling-mib 3072 (server RSS) or
   --tcp-ceiling-mib (machine TCP memory; default min(3072, 90% of tcp_mem low))
   and say 'over the ceiling (stopped)'; --sample-ms 10, --stuck-rcvbuf 4096)
common: --label NAME  --timeout 120 (s)  --src-ips 32 (127.0.0.x sources)
        --connect-concurrency 64  --no-status (skip the GET /status check)
The target must be on loopback (127.0.0.0/8 or [::1]).";

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.is_empty() || argv[0] == "-h" || argv[0] == "--help" {
        println!("{USAGE}");
        return;
    }
    let parsed = match args::Args::parse(argv.into_iter()) {
        Ok(a) => a,
        Err(e) => fail_usage(&e),
    };
    if parsed.command == "report" {
        if let Err(e) = report::run(&parsed) {
            eprintln!("miochat-bench report: {e}");
            std::process::exit(1);
        }
        return;
    }
    let scenario = parsed.command.clone();
    // fanout-w8 is fanout under a deeper window (run.sh passes --window 8): its own
    // name, so the report keeps its rows apart from the window-2 runs.
    if ![
        "fanout",
        "fanout-w8",
        "fanout-rate",
        "idle",
        "handshake",
        "bigmsg",
        "storm-2k",
        "storm-10k",
        "slow-reader",
        "flood",
    ]
    .contains(&scenario.as_str())
    {
        fail_usage(&format!("unknown scenario {scenario:?}"));
    }
    let label = parsed.str("label", "server");
    let setup = || -> Result<Ctx, String> {
        let url = parsed.str_opt("url").ok_or("--url is required")?;
        let target = net::Target::parse(&url)?;
        let pid: u32 = parsed.num("pid", 0)?;
        let probe = sys::Probe {
            pid: (pid != 0).then_some(pid),
            clk_tck: sys::clk_tck(),
        };
        let timeout = Duration::from_secs_f64(parsed.num("timeout", 120.0)?);
        let src_ips = parsed.num("src-ips", 32)?;
        let concurrency = parsed.num("connect-concurrency", 64)?;
        let status = !parsed.flag("no-status");
        if let Some(p) = probe.pid {
            sys::proc_cpu_ticks(p).map_err(|e| format!("--pid {p}: {e}"))?;
        }
        Ok(Ctx {
            args: parsed,
            target,
            probe,
            src_ips,
            timeout,
            concurrency,
            status,
        })
    };
    let mut out = common::Json::default();
    out.str("scenario", &scenario).str("server", &label);
    let ctx = match setup() {
        Ok(c) => c,
        Err(e) => fail_usage(&e),
    };
    let nofile = sys::raise_nofile(65536);
    let res = match scenario.as_str() {
        "fanout" | "fanout-w8" => fanout::run(&ctx, false, &mut out),
        "fanout-rate" => fanout::run(&ctx, true, &mut out),
        "idle" => idle::run(&ctx, &mut out),
        "handshake" => handshake::run(&ctx, &mut out),
        "bigmsg" => bigmsg::run(&ctx, &mut out),
        "storm-2k" => storm::run(&ctx, 2000, &mut out),
        "storm-10k" => storm::run(&ctx, 10000, &mut out),
        "slow-reader" => slow::run(&ctx, &mut out),
        "flood" => flood::run(&ctx, &mut out),
        _ => unreachable!(),
    };
    if let Some(p) = ctx.probe.pid {
        out.int("server_pid", p as u64);
    }
    out.int("clk_tck", ctx.probe.clk_tck).int("nofile", nofile);
    out.bool("ok", res.is_ok());
    if let Err(e) = &res {
        out.str("error", e);
    }
    println!("{}", out.line());
    if let Err(e) = res {
        eprintln!("miochat-bench {scenario} [{label}]: FAILED: {e}");
        std::process::exit(1);
    }
}

fn fail_usage(msg: &str) -> ! {
    eprintln!("miochat-bench: {msg}\n\n{USAGE}");
    std::process::exit(2);
}
