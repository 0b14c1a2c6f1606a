//! The bench's table says `—` where a workload measures nothing: a 0 there would read as a figure.

#[path = "../benches/table/mod.rs"]
mod table;

use table::Row;

#[test]
fn an_unmeasured_column_is_a_dash_and_a_measured_zero_a_zero() {
    let rows = [
        Row {
            workload: "stalled readers".into(),
            requests: 1000,
            failures: Some(0),
            rss_mb: [Some(12.0), Some(40.25), None],
            notes: "n".into(),
            ..Row::default()
        },
        Row {
            workload: "timed".into(),
            requests: 10,
            failures: Some(1),
            per_sec: Some(99.6),
            p50_ms: Some(0.5),
            p99_ms: Some(2.0),
            max_ms: Some(3.04),
            upstream: Some(0),
            rss_mb: [Some(1.0), Some(2.0), Some(1.5)],
            ..Row::default()
        },
    ];
    let text = table::markdown(&rows);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[2],
        "| stalled readers | 1000 | 0 | — | — | — | — | — | 12.0 / 40.2 / — | n |"
    );
    assert_eq!(
        lines[3],
        "| timed | 10 | 1 | 100 | 0.50 | 2.00 | 3.0 | 0 | 1.0 / 2.0 / 1.5 |  |"
    );
    let json = table::json(&rows);
    assert!(json[0]["p50Ms"].is_null() && json[0]["perSec"].is_null());
    assert!(json[0]["rssAfterMb"].is_null());
    assert_eq!(json[0]["failures"], 0);
    assert_eq!(json[1]["upstreamRequests"], 0);
}
