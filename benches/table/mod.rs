//! A bench run's rows: the table `make bench` prints, where a column a workload does not measure
//! says `—` (never a 0 that reads as a figure), and the same rows as JSON, stamped with the date,
//! the commit and the machine they were measured on (`stamp`).

use serde_json::{json, Value};

/// What one workload measured; `None` where it measures nothing.
#[derive(Debug, Default)]
pub struct Row {
    pub workload: String,
    pub requests: u64,
    pub failures: Option<u64>,
    pub per_sec: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub upstream: Option<u64>,
    /// Resident memory before the workload, at its peak (sampled while it ran) and after.
    pub rss_mb: [Option<f64>; 3],
    /// Promises of the README this run broke, each said in a sentence.
    pub broken: Vec<String>,
    pub notes: String,
}

fn cell<T>(value: Option<T>, show: impl Fn(T) -> String) -> String {
    value.map_or_else(|| "—".to_string(), show)
}

/// The rows as a Markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| workload | requests | failed | req/s | p50 ms | p99 ms | max ms | upstream | RSS before/peak/after MB | notes |\n|---|---:|---:|---:|---:|---:|---:|---:|---|---|\n",
    );
    for r in rows {
        let rss = r
            .rss_mb
            .iter()
            .map(|m| cell(*m, |v| format!("{v:.1}")))
            .collect::<Vec<_>>()
            .join(" / ");
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.workload,
            r.requests,
            cell(r.failures, |v| v.to_string()),
            cell(r.per_sec, |v| format!("{v:.0}")),
            cell(r.p50_ms, |v| format!("{v:.2}")),
            cell(r.p99_ms, |v| format!("{v:.2}")),
            cell(r.max_ms, |v| format!("{v:.1}")),
            cell(r.upstream, |v| v.to_string()),
            rss,
            r.notes
        ));
    }
    out
}

/// The rows as JSON, `null` where nothing was measured.
pub fn json(rows: &[Row]) -> Value {
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "workload": r.workload, "requests": r.requests, "failures": r.failures,
                "perSec": r.per_sec, "p50Ms": r.p50_ms, "p99Ms": r.p99_ms, "maxMs": r.max_ms,
                "upstreamRequests": r.upstream, "rssBeforeMb": r.rss_mb[0],
                "rssPeakMb": r.rss_mb[1], "rssAfterMb": r.rss_mb[2], "notes": r.notes,
                "broken": r.broken,
            })
        })
        .collect();
    Value::Array(rows)
}
