//! Counters and latency histograms the server exposes (Prometheus text at `/metrics`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn dec(&self) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(1))
            });
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Upper bounds of the latency buckets, in microseconds (Prometheus `le`).
pub const BUCKETS_US: [u64; 14] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000,
];

/// A latency histogram with fixed buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS_US.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        let us = elapsed.as_micros() as u64;
        if let Some(i) = BUCKETS_US.iter().position(|le| us <= *le) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Cumulative counts per bucket, the total count and the sum in seconds.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let mut cumulative = 0;
        let buckets = BUCKETS_US
            .iter()
            .zip(&self.buckets)
            .map(|(le, n)| {
                cumulative += n.load(Ordering::Relaxed);
                (*le as f64 / 1e6, cumulative)
            })
            .collect();
        (
            buckets,
            self.count.load(Ordering::Relaxed),
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6,
        )
    }
}

/// Everything the engine counts.
#[derive(Debug, Default)]
pub struct Metrics {
    pub sessions: Gauge,
    pub subscriptions: Gauge,
    pub mutations: Counter,
    pub mutations_refused: Counter,
    /// Writes run again because data their interceptors or rules read changed before commit.
    pub write_retries: Counter,
    /// Writes refused with `conflict`: their own conditions failed, or retries ran out.
    pub write_conflicts: Counter,
    pub queries: Counter,
    pub deliveries: Counter,
    pub queue_overflows: Counter,
    pub effects_run: Counter,
    pub effects_failed: Counter,
    pub effects_dead: Counter,
    pub gap_fills: Counter,
    /// Commits this node published on the cluster bus.
    pub cluster_published: Counter,
    /// Commits of other nodes received from the cluster bus.
    pub cluster_received: Counter,
    /// From a write's arrival to its durable commit (interceptors included).
    pub mutation_latency: Histogram,
    /// The store's commit alone.
    pub store_commit_latency: Histogram,
    /// The store's reads.
    pub store_read_latency: Histogram,
    /// From a durable commit to its delivery to the last matching session queue.
    pub fanout_latency: Histogram,
}
