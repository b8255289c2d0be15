//! `GET /metrics`: the engine's counters in Prometheus' (OpenMetrics) text format, encoded by
//! `prometheus-client`. The engine keeps its own lock-free counters (it knows nothing of
//! Prometheus); each scrape reads them through `EngineMetrics`, a collector.
//!
//! Families with several outcomes carry a label instead of one name each:
//! `kora_writes_total{outcome}`, `kora_effects_total{outcome}`, `kora_cluster_commits_total{direction}`,
//! and the gauge `kora_outbox_effects{state}` (pending, dead) read from the store at each scrape.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use kora_engine::metrics::{Histogram, BUCKETS_US};
use kora_engine::Kora;
use kora_store::EffectCounts;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use kora_transport::state::AppState;

/// Reads the engine's metrics (and the server's connection count) at each scrape.
struct EngineMetrics {
    kora: Kora,
    connections: u64,
    /// The store's outbox by state, read before encoding (absent when the store failed).
    outbox: Option<EffectCounts>,
}

impl std::fmt::Debug for EngineMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineMetrics").finish_non_exhaustive()
    }
}

impl Collector for EngineMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = self.kora.metrics();
        let gauges = [
            (
                "kora_connections",
                "Open WebSocket and event-stream connections.",
                self.connections,
            ),
            ("kora_sessions", "Open sessions.", m.sessions.get()),
            (
                "kora_subscriptions",
                "Active subscriptions.",
                m.subscriptions.get(),
            ),
            (
                "kora_delivered_seq",
                "Last sequence delivered to every session.",
                self.kora.delivered_seq(),
            ),
        ];
        for (name, help, value) in gauges {
            let metric = ConstGauge::new(value as i64);
            metric.encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)?;
        }
        if let Some(outbox) = self.outbox {
            let mut family = encoder.encode_descriptor(
                "kora_outbox_effects",
                "Effects in the store's outbox by state: pending (to run or be retried), dead (out of tries, see /v1/effects/dead).",
                None,
                MetricType::Gauge,
            )?;
            for (state, count) in [("pending", outbox.pending), ("dead", outbox.dead)] {
                let labels = [("state", state)];
                let metric = family.encode_family(&labels)?;
                ConstGauge::new(count as i64).encode(metric)?;
            }
        }
        counters(
            &mut encoder,
            "kora_writes",
            "Writes by outcome: committed, refused (by interceptors or rules), conflict (their conditions failed, or retries ran out), retried (run again on changed data).",
            "outcome",
            &[
                ("committed", m.mutations.get()),
                ("refused", m.mutations_refused.get()),
                ("conflict", m.write_conflicts.get()),
                ("retried", m.write_retries.get()),
            ],
        )?;
        counters(
            &mut encoder,
            "kora_effects",
            "Effect tries by outcome: run, failed (to be retried), dead (moved to the dead letters).",
            "outcome",
            &[
                ("run", m.effects_run.get()),
                ("failed", m.effects_failed.get()),
                ("dead", m.effects_dead.get()),
            ],
        )?;
        counters(
            &mut encoder,
            "kora_cluster_commits",
            "Commits this node published on the cluster bus, and other nodes' commits it received.",
            "direction",
            &[
                ("published", m.cluster_published.get()),
                ("received", m.cluster_received.get()),
            ],
        )?;
        let plain = [
            ("kora_queries", "Queries answered.", m.queries.get()),
            (
                "kora_deliveries",
                "Changes queued for sessions.",
                m.deliveries.get(),
            ),
            (
                "kora_queue_drops",
                "Session queues that overflowed and were reset.",
                m.queue_overflows.get(),
            ),
            (
                "kora_gap_fills",
                "Changes read from the log to fill gaps in the feed.",
                m.gap_fills.get(),
            ),
        ];
        for (name, help, value) in plain {
            let metric = ConstCounter::new(value);
            metric.encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)?;
        }
        let histograms = [
            (
                "kora_mutation_seconds",
                "From a write's arrival to its durable commit.",
                &m.mutation_latency,
            ),
            (
                "kora_store_commit_seconds",
                "The store's commit of one write (group commit included).",
                &m.store_commit_latency,
            ),
            (
                "kora_store_read_seconds",
                "The store's reads for queries.",
                &m.store_read_latency,
            ),
            (
                "kora_fanout_seconds",
                "From a durable commit to the last session queue.",
                &m.fanout_latency,
            ),
        ];
        for (name, help, histogram) in histograms {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
            encode_histogram(metric, histogram)?;
        }
        Ok(())
    }
}

/// One counter family with a label of `label` per value.
fn counters(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: &[(&str, u64)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, count) in values {
        let labels = [(label, *value)];
        let metric = family.encode_family(&labels)?;
        ConstCounter::new(*count).encode(metric)?;
    }
    Ok(())
}

/// The engine's histogram (cumulative buckets in microseconds) as Prometheus buckets in
/// seconds (the encoder accumulates per-bucket counts, and wants the `+Inf` bucket last).
fn encode_histogram(
    mut metric: prometheus_client::encoding::MetricEncoder,
    histogram: &Histogram,
) -> Result<(), std::fmt::Error> {
    let (cumulative, count, sum) = histogram.snapshot();
    let mut buckets = Vec::with_capacity(BUCKETS_US.len() + 1);
    let mut below = 0;
    for (le, total) in cumulative {
        buckets.push((le, total - below));
        below = total;
    }
    buckets.push((f64::MAX, count - below));
    metric.encode_histogram::<prometheus_client::encoding::NoLabelSet>(sum, count, &buckets, None)
}

/// How long a scrape waits for the store's outbox counts: a store that is down is retried
/// for `kora_store::CONNECT_RETRY_FOR`, and a scrape must answer well inside a scraper's
/// timeout precisely then. Past it the counts are left out.
pub const OUTBOX_COUNT_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The metrics as Prometheus text.
pub async fn render(state: &AppState) -> String {
    let counted = tokio::time::timeout(OUTBOX_COUNT_WAIT, state.kora.store().effect_counts());
    let outbox = match counted.await {
        Ok(Ok(counts)) => Some(counts),
        Ok(Err(error)) => {
            tracing::warn!(%error, "outbox not counted for /metrics");
            None
        }
        Err(_) => {
            tracing::warn!("outbox not counted for /metrics: the store did not answer in time");
            None
        }
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Arc::new(EngineMetrics {
        kora: state.kora.clone(),
        connections: state.connections() as u64,
        outbox,
    })));
    let mut text = String::new();
    if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &registry) {
        tracing::warn!(%error, "metrics not encoded");
    }
    text
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        render(&state).await,
    )
        .into_response()
}
