//! `report`: reads the JSON lines of one or more runs, takes the median of
//! each metric per server, and writes a markdown table (with ratios to a
//! baseline server) and a hand-written SVG bar chart.

use crate::args::Args;
use std::collections::BTreeMap;
use std::fmt::Write as _;

#[derive(Clone, Debug, PartialEq)]
enum Val {
    Num(f64),
    Str(String),
    Bool(bool),
    Null,
}

type Row = BTreeMap<String, Val>;

/// Parses one flat JSON object (string, number, bool and null values only).
fn parse_line(line: &str) -> Result<Row, String> {
    let b = line.trim().as_bytes();
    let mut i = 0;
    let ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    let string = |i: &mut usize| -> Result<String, String> {
        if b.get(*i) != Some(&b'"') {
            return Err(format!("expected a string at byte {i}"));
        }
        *i += 1;
        let mut s = Vec::new();
        while *i < b.len() && b[*i] != b'"' {
            if b[*i] == b'\\' && *i + 1 < b.len() {
                *i += 1;
                s.push(match b[*i] {
                    b'n' => b'\n',
                    b't' => b'\t',
                    c => c,
                });
            } else {
                s.push(b[*i]);
            }
            *i += 1;
        }
        *i += 1;
        Ok(String::from_utf8_lossy(&s).into_owned())
    };
    let mut row = Row::new();
    ws(&mut i);
    if b.get(i) != Some(&b'{') {
        return Err("not a JSON object".into());
    }
    i += 1;
    loop {
        ws(&mut i);
        match b.get(i) {
            Some(b'}') => break,
            Some(b',') => {
                i += 1;
                continue;
            }
            None => return Err("unterminated object".into()),
            _ => {}
        }
        let key = string(&mut i)?;
        ws(&mut i);
        if b.get(i) != Some(&b':') {
            return Err(format!("expected ':' after {key:?}"));
        }
        i += 1;
        ws(&mut i);
        let val = match b.get(i) {
            Some(b'"') => Val::Str(string(&mut i)?),
            Some(b't') if b[i..].starts_with(b"true") => {
                i += 4;
                Val::Bool(true)
            }
            Some(b'f') if b[i..].starts_with(b"false") => {
                i += 5;
                Val::Bool(false)
            }
            Some(b'n') if b[i..].starts_with(b"null") => {
                i += 4;
                Val::Null
            }
            _ => {
                let start = i;
                while i < b.len() && matches!(b[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                let t = std::str::from_utf8(&b[start..i]).unwrap_or("");
                Val::Num(t.parse().map_err(|_| format!("bad value for {key:?}"))?)
            }
        };
        row.insert(key, val);
    }
    Ok(row)
}

struct Metric {
    scenario: &'static str,
    key: &'static str,
    name: &'static str,
    higher_better: bool,
    /// Neither higher nor lower is better (a pace to compare, not to win).
    neutral: bool,
    chart: bool,
}

const fn m(
    scenario: &'static str,
    key: &'static str,
    name: &'static str,
    higher_better: bool,
    chart: bool,
) -> Metric {
    Metric {
        scenario,
        key,
        name,
        higher_better,
        neutral: false,
        chart,
    }
}

/// A metric with no better direction.
const fn neutral(scenario: &'static str, key: &'static str, name: &'static str) -> Metric {
    Metric {
        scenario,
        key,
        name,
        higher_better: true,
        neutral: true,
        chart: false,
    }
}

const METRICS: &[Metric] = &[
    m("fanout", "deliveries_per_s", "deliveries/s", true, true),
    m(
        "fanout",
        "deliveries_per_server_cpu_s",
        "deliveries per server CPU-s",
        true,
        true,
    ),
    m("fanout", "lat_p50_us", "latency p50 (µs)", false, false),
    m("fanout", "lat_p99_us", "latency p99 (µs)", false, true),
    m("fanout", "server_cpu_pct", "server CPU %", false, false),
    m(
        "fanout",
        "gen_cpu_pct",
        "load generator CPU %",
        false,
        false,
    ),
    m(
        "fanout",
        "wire_bytes_per_delivery",
        "receiver bytes per delivery (in + out)",
        false,
        true,
    ),
    m(
        "fanout",
        "tx_bytes_per_delivery",
        "receiver request bytes per delivery (out)",
        false,
        false,
    ),
    neutral(
        "fanout",
        "deliveries_per_poll_answer",
        "deliveries per poll answer",
    ),
    m("fanout-w8", "deliveries_per_s", "deliveries/s", true, false),
    m(
        "fanout-w8",
        "deliveries_per_server_cpu_s",
        "deliveries per server CPU-s",
        true,
        true,
    ),
    m("fanout-w8", "lat_p99_us", "latency p99 (µs)", false, false),
    m(
        "fanout-w8",
        "gen_cpu_pct",
        "load generator CPU %",
        false,
        false,
    ),
    m(
        "fanout-rate",
        "deliveries_per_s",
        "deliveries/s (fixed rate)",
        true,
        false,
    ),
    m("fanout-rate", "server_cpu_pct", "server CPU %", false, true),
    m(
        "fanout-rate",
        "lat_p50_us",
        "latency p50 (µs)",
        false,
        false,
    ),
    m("fanout-rate", "lat_p99_us", "latency p99 (µs)", false, true),
    m(
        "fanout-rate",
        "wire_bytes_per_delivery",
        "receiver bytes per delivery (in + out)",
        false,
        false,
    ),
    m(
        "fanout-rate",
        "tx_bytes_per_delivery",
        "receiver request bytes per delivery (out)",
        false,
        false,
    ),
    neutral(
        "fanout-rate",
        "deliveries_per_poll_answer",
        "deliveries per poll answer",
    ),
    m(
        "idle",
        "rss_per_conn_kib",
        "RSS per connection (KiB)",
        false,
        true,
    ),
    m(
        "idle",
        "server_cpu_pct",
        "server CPU % (heartbeat)",
        false,
        true,
    ),
    m("idle", "connects_per_s", "connects/s (setup)", true, false),
    m("handshake", "cycles_per_s", "cycles/s", true, false),
    m(
        "handshake",
        "cycles_per_server_cpu_s",
        "cycles per server CPU-s",
        true,
        true,
    ),
    m("handshake", "cycle_p99_us", "cycle p99 (µs)", false, false),
    m("bigmsg", "mib_per_s", "MiB/s", true, false),
    m(
        "bigmsg",
        "mib_per_server_cpu_s",
        "MiB per server CPU-s",
        true,
        true,
    ),
    m(
        "bigmsg",
        "lat_p99_us",
        "1 MiB latency p99 (µs)",
        false,
        false,
    ),
    m(
        "storm-2k",
        "rss_growth_mib",
        "server RSS growth (MiB)",
        false,
        true,
    ),
    m(
        "storm-2k",
        "tcp_mem_growth_mib",
        "kernel TCP memory growth (MiB)",
        false,
        false,
    ),
    m("storm-2k", "elapsed_s", "time to deliver (s)", false, false),
    m(
        "storm-2k",
        "lost",
        "lost by the healthy reader",
        false,
        false,
    ),
    neutral("storm-2k", "stuck_dropped", "stuck clients dropped"),
    m(
        "storm-10k",
        "rss_growth_mib",
        "server RSS growth (MiB)",
        false,
        true,
    ),
    m(
        "storm-10k",
        "tcp_mem_growth_mib",
        "kernel TCP memory growth (MiB)",
        false,
        false,
    ),
    m(
        "storm-10k",
        "elapsed_s",
        "time to deliver (s)",
        false,
        false,
    ),
    m(
        "storm-10k",
        "lost",
        "lost by the healthy reader",
        false,
        false,
    ),
    neutral("storm-10k", "stuck_dropped", "stuck clients dropped"),
    m(
        "slow-reader",
        "slow_lost",
        "lost by the slow reader",
        false,
        false,
    ),
    m(
        "slow-reader",
        "dropped",
        "connections dropped",
        false,
        false,
    ),
    neutral("slow-reader", "sent_per_s", "senders' messages/s"),
    neutral(
        "slow-reader",
        "reader_pace_msgs_per_s",
        "slow reader's pace (messages/s)",
    ),
    m(
        "slow-reader",
        "rss_growth_mib",
        "server RSS growth (MiB)",
        false,
        true,
    ),
    m(
        "flood",
        "pair_lat_p50_us",
        "pair latency p50 (µs)",
        false,
        false,
    ),
    m(
        "flood",
        "pair_lat_p99_us",
        "pair latency p99 (µs)",
        false,
        true,
    ),
    m(
        "flood",
        "pair_undelivered",
        "pair messages undelivered",
        false,
        false,
    ),
    m(
        "flood",
        "upgrade_p50_us",
        "new upgrade p50 (µs)",
        false,
        false,
    ),
    m(
        "flood",
        "upgrade_p99_us",
        "new upgrade p99 (µs)",
        false,
        true,
    ),
    m(
        "flood",
        "status_p50_us",
        "GET /status p50 (µs)",
        false,
        false,
    ),
    m(
        "flood",
        "status_p99_us",
        "GET /status p99 (µs)",
        false,
        false,
    ),
    m(
        "flood",
        "upgrade_failed",
        "upgrades failed or over 5 s",
        false,
        false,
    ),
    m(
        "flood",
        "status_failed",
        "GET /status failed or over 5 s",
        false,
        false,
    ),
    m(
        "flood",
        "flood_delivered_per_reader_per_s",
        "flood frames/s to a reading client",
        true,
        false,
    ),
    m(
        "flood",
        "rss_growth_mib",
        "server RSS growth (MiB)",
        false,
        false,
    ),
];

/// What a run stopped at a memory ceiling shows instead of its figures.
const OVER: &str = "over the ceiling (stopped)";

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Half the min–max range, in % of the median (None for fewer than two runs).
fn spread(v: &[f64]) -> Option<f64> {
    if v.len() < 2 {
        return None;
    }
    let (lo, hi) = v
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    let m = median(v.to_vec())?;
    (m != 0.0).then(|| 50.0 * (hi - lo) / m.abs())
}

fn fmt(v: f64) -> String {
    if v.abs() >= 100.0 {
        let s = format!("{:.0}", v.abs());
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        if v < 0.0 { format!("-{out}") } else { out }
    } else if v.fract() == 0.0 {
        // Counts (lost, dropped): no decimals.
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn num(row: &Row, key: &str) -> Option<f64> {
    match row.get(key) {
        Some(Val::Num(v)) => Some(*v),
        _ => None,
    }
}

fn text(row: &Row, key: &str) -> String {
    match row.get(key) {
        Some(Val::Str(s)) => s.clone(),
        Some(Val::Num(v)) => fmt(*v),
        Some(Val::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

pub fn run(a: &Args) -> Result<(), String> {
    let input = a.str_opt("input").ok_or("--input is required")?;
    let md_out = a.str_opt("md");
    let svg_out = a.str_opt("svg");
    let title = a.str("title", "miochat benchmarks");
    let baseline = a.str("baseline", "miochat");
    a.finish()?;
    let data = std::fs::read_to_string(&input).map_err(|e| format!("{input}: {e}"))?;
    let mut rows = Vec::new();
    for (n, line) in data.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        rows.push(parse_line(line).map_err(|e| format!("{input}:{}: {e}", n + 1))?);
    }
    // Servers in order of appearance, the baseline first.
    let mut servers: Vec<String> = Vec::new();
    for r in &rows {
        let s = text(r, "server");
        if !servers.contains(&s) {
            servers.push(s);
        }
    }
    if let Some(p) = servers.iter().position(|s| *s == baseline) {
        let b = servers.remove(p);
        servers.insert(0, b);
    }
    let has_base = servers.first() == Some(&baseline) && servers.len() > 1;
    let ok = |r: &Row| r.get("ok") == Some(&Val::Bool(true));
    // A run stopped at a memory ceiling succeeded, but its figures describe
    // an unfinished run: they stay out of the medians.
    let over = |r: &Row| r.get("over_ceiling") == Some(&Val::Bool(true));
    let measured = |r: &Row| ok(r) && !over(r);
    // (scenario, server) -> (runs stopped at a ceiling, runs that finished)
    let mut stopped: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
    for r in rows.iter().filter(|r| ok(r)) {
        let e = stopped
            .entry((text(r, "scenario"), text(r, "server")))
            .or_default();
        if over(r) { e.0 += 1 } else { e.1 += 1 }
    }
    let stopped_of = |sc: &str, sv: &str| {
        stopped
            .get(&(sc.to_string(), sv.to_string()))
            .copied()
            .unwrap_or_default()
    };

    // medians[metric index][server index], and each cell's spread
    let mut medians: Vec<Vec<Option<f64>>> = Vec::new();
    let mut spreads: Vec<Vec<Option<f64>>> = Vec::new();
    let mut counts: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
    for r in &rows {
        let e = counts
            .entry((text(r, "scenario"), text(r, "server")))
            .or_default();
        if ok(r) { e.0 += 1 } else { e.1 += 1 }
    }
    for met in METRICS {
        let values: Vec<Vec<f64>> = servers
            .iter()
            .map(|s| {
                rows.iter()
                    .filter(|r| {
                        measured(r)
                            && text(r, "scenario") == met.scenario
                            && text(r, "server") == *s
                    })
                    .filter_map(|r| num(r, met.key))
                    .collect()
            })
            .collect();
        medians.push(values.iter().map(|v| median(v.clone())).collect());
        spreads.push(values.iter().map(|v| spread(v)).collect());
    }

    let mut md = String::new();
    let _ = writeln!(
        md,
        "Medians over the successful runs of each scenario; ±N% is half the min–max range \
         of the runs, in % of the median. Ratios divide the medians.\n"
    );
    let _ = write!(md, "| scenario | metric | better |");
    for s in &servers {
        let _ = write!(md, " {s} |");
    }
    if has_base {
        for s in &servers[1..] {
            let _ = write!(md, " {baseline}/{s} |");
        }
    }
    let _ = write!(md, "\n|---|---|---|");
    for _ in 0..servers.len() + if has_base { servers.len() - 1 } else { 0 } {
        let _ = write!(md, "---:|");
    }
    md.push('\n');
    for (mi, met) in METRICS.iter().enumerate() {
        let any_stopped = servers.iter().any(|s| stopped_of(met.scenario, s).0 > 0);
        if medians[mi].iter().all(Option::is_none) && !any_stopped {
            continue;
        }
        let better = if met.neutral {
            "–"
        } else if met.higher_better {
            "higher"
        } else {
            "lower"
        };
        let _ = write!(md, "| {} | {} | {better} |", met.scenario, met.name);
        for (si, (v, sp)) in medians[mi].iter().zip(&spreads[mi]).enumerate() {
            let (n_over, n_done) = stopped_of(met.scenario, &servers[si]);
            let mut cell = match (v, sp) {
                (Some(v), Some(sp)) => format!("{} ±{sp:.0}%", fmt(*v)),
                (Some(v), None) => fmt(*v),
                _ if n_over > 0 => OVER.into(),
                _ => "–".into(),
            };
            if n_over > 0 && n_done > 0 {
                let _ = write!(cell, " ({n_over} of {} runs {OVER})", n_over + n_done);
            }
            let _ = write!(md, " {cell} |");
        }
        if has_base {
            for v in &medians[mi][1..] {
                let r = match (medians[mi][0], v) {
                    (Some(b), Some(p)) if *p != 0.0 => format!("{:.2}×", b / p),
                    _ => "–".into(),
                };
                let _ = write!(md, " {r} |");
            }
        }
        md.push('\n');
    }

    let _ = writeln!(md, "\n### Raw runs\n");
    let _ = writeln!(
        md,
        "| scenario | server | ok | key figures |\n|---|---|---|---|"
    );
    for r in &rows {
        let sc = text(r, "scenario");
        let figs: Vec<String> = METRICS
            .iter()
            .filter(|m| m.scenario == sc)
            .filter_map(|m| num(r, m.key).map(|v| format!("{}={}", m.key, fmt(v))))
            .collect();
        let mut f = figs.join(", ");
        if !ok(r) {
            f = format!("**{}**", text(r, "error"));
        } else if over(r) {
            f = format!("**{}**", text(r, "stopped"));
        }
        let _ = writeln!(
            md,
            "| {sc} | {} | {} | {f} |",
            text(r, "server"),
            if ok(r) { "yes" } else { "NO" }
        );
    }
    let failed: usize = counts.values().map(|c| c.1).sum();
    if failed > 0 {
        let _ = writeln!(
            md,
            "\n**{failed} run(s) failed**; they are left out of the medians."
        );
    }
    let n_stopped: usize = stopped.values().map(|c| c.0).sum();
    if n_stopped > 0 {
        let _ = writeln!(
            md,
            "\n{n_stopped} run(s) were stopped at a memory ceiling (server RSS or the \
             machine's TCP memory; see `rss_ceiling_mib`, `tcp_ceiling_mib` in the raw \
             lines): their cells say \"{OVER}\" and they are left out of the medians."
        );
    }

    match &md_out {
        Some(p) => std::fs::write(p, &md).map_err(|e| format!("{p}: {e}"))?,
        None => print!("{md}"),
    }
    if let Some(p) = &svg_out {
        let all_stopped: Vec<Vec<bool>> = METRICS
            .iter()
            .map(|met| {
                servers
                    .iter()
                    .map(|s| {
                        let (o, d) = stopped_of(met.scenario, s);
                        o > 0 && d == 0
                    })
                    .collect()
            })
            .collect();
        std::fs::write(p, svg(&title, &servers, &medians, &all_stopped))
            .map_err(|e| format!("{p}: {e}"))?;
    }
    Ok(())
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One small horizontal bar panel per charted metric, two panels a row.
fn svg(
    title: &str,
    servers: &[String],
    medians: &[Vec<Option<f64>>],
    all_stopped: &[Vec<bool>],
) -> String {
    const COLORS: [&str; 6] = [
        "#d9480f", "#1c7ed6", "#2b8a3e", "#7048e8", "#868e96", "#e67700",
    ];
    let charted: Vec<usize> = (0..METRICS.len())
        .filter(|&i| {
            METRICS[i].chart
                && (medians[i].iter().any(Option::is_some) || all_stopped[i].contains(&true))
        })
        .collect();
    let (pw, bar_h, gap) = (470.0, 18.0, 4.0);
    let ph = 34.0 + servers.len() as f64 * (bar_h + gap) + 10.0;
    let cols = 2;
    let rows = charted.len().div_ceil(cols);
    let width = pw * cols as f64 + 20.0;
    let height = 60.0 + rows as f64 * ph + 20.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="24" font-size="16" font-weight="bold">{}</text>"#,
        esc(title)
    );
    // Legend.
    let mut lx = 10.0;
    for (i, name) in servers.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let _ = writeln!(
            s,
            r#"<rect x="{lx}" y="36" width="12" height="12" fill="{c}"/>"#
        );
        let _ = writeln!(s, r#"<text x="{}" y="46">{}</text>"#, lx + 16.0, esc(name));
        lx += 30.0 + 7.0 * name.len() as f64;
    }
    for (k, &mi) in charted.iter().enumerate() {
        let met = &METRICS[mi];
        let x0 = 10.0 + (k % cols) as f64 * pw;
        let y0 = 60.0 + (k / cols) as f64 * ph;
        let better = if met.neutral {
            "a pace, not a score"
        } else if met.higher_better {
            "higher is better"
        } else {
            "lower is better"
        };
        let _ = writeln!(
            s,
            r##"<text x="{x0}" y="{}" font-weight="bold">{}: {} <tspan font-weight="normal" fill="#666">({better})</tspan></text>"##,
            y0 + 16.0,
            met.scenario,
            esc(met.name)
        );
        let max = medians[mi].iter().flatten().fold(0.0f64, |a, &b| a.max(b));
        let (label_w, bar_w) = (90.0, pw - 90.0 - 90.0);
        for (si, v) in medians[mi].iter().enumerate() {
            let y = y0 + 26.0 + si as f64 * (bar_h + gap);
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
                x0 + label_w - 6.0,
                y + 13.0,
                esc(&servers[si])
            );
            let Some(v) = v else {
                if all_stopped[mi][si] {
                    let _ = writeln!(
                        s,
                        r##"<text x="{}" y="{}" fill="#c92a2a">{OVER}</text>"##,
                        x0 + label_w + 4.0,
                        y + 13.0
                    );
                }
                continue;
            };
            let w = if max > 0.0 {
                (v / max * bar_w).max(1.0)
            } else {
                1.0
            };
            let c = COLORS[si % COLORS.len()];
            let _ = writeln!(
                s,
                r#"<rect x="{}" y="{y}" width="{w:.1}" height="{bar_h}" fill="{c}"/>"#,
                x0 + label_w
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{}">{}</text>"#,
                x0 + label_w + w + 4.0,
                y + 13.0,
                fmt(*v)
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flat_objects() {
        let r =
            parse_line(r#"{"scenario":"fanout","server":"a \"b\"","x":1.5e3,"ok":true,"n":null}"#)
                .unwrap();
        assert_eq!(r["server"], Val::Str("a \"b\"".into()));
        assert_eq!(r["x"], Val::Num(1500.0));
        assert_eq!(r["ok"], Val::Bool(true));
        assert_eq!(r["n"], Val::Null);
    }

    #[test]
    fn runs_over_the_ceiling_show_instead_of_figures() {
        let dir = std::env::temp_dir().join(format!("miochat-bench-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("in.jsonl");
        let md = dir.join("out.md");
        std::fs::write(
            &input,
            concat!(
                r#"{"scenario":"storm-2k","server":"miochat","rss_growth_mib":16.4,"lost":0,"over_ceiling":false,"ok":true}"#,
                "\n",
                r#"{"scenario":"storm-2k","server":"node-ws","rss_growth_mib":2900,"over_ceiling":true,"stopped":"over the ceiling (stopped): server RSS","ok":true}"#,
                "\n",
            ),
        )
        .unwrap();
        let args = Args::parse(
            [
                "report",
                "--input",
                input.to_str().unwrap(),
                "--md",
                md.to_str().unwrap(),
            ]
            .into_iter()
            .map(String::from),
        )
        .unwrap();
        run(&args).unwrap();
        let out = std::fs::read_to_string(&md).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let row = out
            .lines()
            .find(|l| l.starts_with("| storm-2k | server RSS growth"))
            .unwrap();
        assert!(
            row.contains("| 16.4 | over the ceiling (stopped) | – |"),
            "{row}"
        );
        assert!(out.contains("1 run(s) were stopped at a memory ceiling"));
    }

    #[test]
    fn formats() {
        assert_eq!(fmt(1234567.0), "1,234,567");
        assert_eq!(fmt(123.4), "123");
        assert_eq!(fmt(12.34), "12.3");
        assert_eq!(fmt(1.234), "1.23");
        assert_eq!(fmt(0.0), "0");
        assert_eq!(fmt(12.0), "12");
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
    }
}
