//! Metrics through the `metrics` facade (the `metrics` feature): each incoming call counted by
//! method and outcome with its latency, and the statistics of servers and clients exported on
//! demand. Nothing is recorded unless the application installs a recorder (e.g.
//! `metrics-exporter-prometheus`).
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `wsp_calls_total` | counter | `method`, `outcome` (`ok`, `error` for a stream, an error code such as `UNAVAILABLE`, `panic`) |
//! | `wsp_call_seconds` | histogram, from arrival to the answer | `method` |
//! | `wsp_server_FIELD`, `wsp_client_FIELD` | counter (gauge for `*_open`, `*_in_flight`) | — |

use tokio::time::Instant;

use crate::stats::StatsSnapshot;

/// Records one finished incoming call.
pub(crate) fn call_done(method: &str, outcome: &'static str, received_at: Instant) {
    let seconds = received_at.elapsed().as_secs_f64();
    metrics::counter!("wsp_calls_total", "method" => method.to_owned(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("wsp_call_seconds", "method" => method.to_owned()).record(seconds);
}

/// Sets `wsp_<prefix>_<field>` for every counter of `stats`.
pub(crate) fn export(prefix: &str, stats: &StatsSnapshot) {
    for (field, value) in stats.fields() {
        let name = format!("wsp_{prefix}_{field}");
        if field.ends_with("_open") || field.ends_with("_in_flight") {
            metrics::gauge!(name).set(value as f64);
        } else {
            metrics::counter!(name).absolute(value);
        }
    }
}
