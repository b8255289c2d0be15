//! `GET /metrics`: the engine's counters in Prometheus' text format.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use kora_engine::metrics::Histogram;

use crate::state::AppState;

fn line(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

fn histogram(out: &mut String, name: &str, help: &str, histogram: &Histogram) {
    let (buckets, count, sum) = histogram.snapshot();
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    for (le, n) in buckets {
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
}

/// The metrics as Prometheus text.
pub fn render(state: &AppState) -> String {
    let m = state.kora.metrics();
    let mut out = String::new();
    let gauge = "gauge";
    let counter = "counter";
    line(
        &mut out,
        "kora_connections",
        gauge,
        "Open WebSocket and event-stream connections.",
        state.connections() as u64,
    );
    line(
        &mut out,
        "kora_sessions",
        gauge,
        "Open sessions.",
        m.sessions.get(),
    );
    line(
        &mut out,
        "kora_subscriptions",
        gauge,
        "Active subscriptions.",
        m.subscriptions.get(),
    );
    line(
        &mut out,
        "kora_mutations_total",
        counter,
        "Committed mutations.",
        m.mutations.get(),
    );
    line(
        &mut out,
        "kora_mutations_refused_total",
        counter,
        "Mutations refused by interceptors or rules.",
        m.mutations_refused.get(),
    );
    line(
        &mut out,
        "kora_queries_total",
        counter,
        "Queries answered.",
        m.queries.get(),
    );
    line(
        &mut out,
        "kora_deliveries_total",
        counter,
        "Changes queued for sessions.",
        m.deliveries.get(),
    );
    line(
        &mut out,
        "kora_queue_drops_total",
        counter,
        "Session queues that overflowed and were reset.",
        m.queue_overflows.get(),
    );
    line(
        &mut out,
        "kora_effects_run_total",
        counter,
        "Effects that ran successfully.",
        m.effects_run.get(),
    );
    line(
        &mut out,
        "kora_effects_failed_total",
        counter,
        "Effect tries that failed and will be retried.",
        m.effects_failed.get(),
    );
    line(
        &mut out,
        "kora_effects_dead_total",
        counter,
        "Effects moved to the dead letters.",
        m.effects_dead.get(),
    );
    line(
        &mut out,
        "kora_gap_fills_total",
        counter,
        "Changes read from the log to fill gaps in the feed.",
        m.gap_fills.get(),
    );
    line(
        &mut out,
        "kora_cluster_published_total",
        counter,
        "Commits this node published on the cluster bus.",
        m.cluster_published.get(),
    );
    line(
        &mut out,
        "kora_cluster_received_total",
        counter,
        "Commits of other nodes received from the cluster bus.",
        m.cluster_received.get(),
    );
    line(
        &mut out,
        "kora_delivered_seq",
        gauge,
        "Last sequence delivered to every session.",
        state.kora.delivered_seq(),
    );
    histogram(
        &mut out,
        "kora_mutation_seconds",
        "From a write's arrival to its durable commit.",
        &m.mutation_latency,
    );
    histogram(
        &mut out,
        "kora_store_commit_seconds",
        "The store's commit of one write (group commit included).",
        &m.store_commit_latency,
    );
    histogram(
        &mut out,
        "kora_store_read_seconds",
        "The store's reads for queries.",
        &m.store_read_latency,
    );
    histogram(
        &mut out,
        "kora_fanout_seconds",
        "From a durable commit to the last session queue.",
        &m.fanout_latency,
    );
    out
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render(&state),
    )
        .into_response()
}
