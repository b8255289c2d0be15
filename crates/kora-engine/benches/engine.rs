//! Engine benchmarks: `cargo bench -p kora-engine --bench engine [-- --quick]`.
//!
//! 1. Committed mutations/s through the whole pipeline with 5 interceptors, on the embedded
//!    store, with 64 concurrent writers.
//! 2. Fan-out: deliveries/s to 10,000 subscribers of one path, and to subscribers of 100,000
//!    distinct paths; time from a durable commit to its delivery into the last session queue.
//! 3. Subscriber lookup: the fan-out's cost for a change with one subscriber, as the total
//!    number of subscriptions grows (it should not grow with them).
//!
//! Figures are recorded in docs/benchmarks.md.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use kora_core::{Mutation, Path, PathQuery};
use kora_engine::{Config, Context, Error, Interceptor, Kora, Session, WriteLayer};
use serde_json::json;

fn p(text: &str) -> Path {
    Path::parse(text).expect("valid path")
}

/// An interceptor that reads its layer and passes: the cost of matching and calling.
struct Pass;

#[async_trait]
impl Interceptor for Pass {
    async fn before_mutation(
        &self,
        layer: &WriteLayer<'_>,
        _ctx: &Context,
    ) -> Result<Option<Mutation>, Error> {
        std::hint::black_box(layer.path.depth());
        Ok(None)
    }
}

fn quick() -> bool {
    std::env::args().any(|a| a == "--quick")
}

async fn pipeline(store_url: &str, writers: usize, per_writer: usize) -> (f64, Duration) {
    let store = kora_store::open(store_url).await.expect("store");
    let kora = Kora::builder()
        .store(store)
        .interceptor("todos/$id", Pass)
        .interceptor("todos/$id/*", Pass)
        .interceptor("todos", Pass)
        .interceptor("**", Pass)
        .interceptor("users/$id", Pass)
        .build()
        .await
        .expect("engine");
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let kora = kora.clone();
            tokio::spawn(async move {
                let ctx = Context::new(w as u64);
                let mut slowest = Duration::ZERO;
                for i in 0..per_writer {
                    let m = Mutation::merge(
                        &p(&format!("todos/w{w}-{i}")),
                        json!({"text": "x", "done": false}),
                    )
                    .expect("valid");
                    let t = Instant::now();
                    kora.mutate(&ctx, m, None).await.expect("commit");
                    slowest = slowest.max(t.elapsed());
                }
                slowest
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for task in tasks {
        slowest = slowest.max(task.await.expect("writer"));
    }
    let rate = (writers * per_writer) as f64 / started.elapsed().as_secs_f64();
    kora.shutdown().await;
    (rate, slowest)
}

/// Commits `commits` changes under `path_of(i)` with `sessions` already subscribed, and
/// measures deliveries/s into the session queues (not drained while measuring).
async fn fan_out(
    sessions: Vec<(String, PathQuery)>,
    commits: usize,
    path_of: impl Fn(usize) -> String,
) -> (f64, u64, Duration) {
    let config = Config {
        session_queue: commits + 16,
        ..Config::default()
    };
    let kora = Kora::builder()
        .config(config)
        .build()
        .await
        .expect("engine");
    let mut held: Vec<Session> = Vec::with_capacity(sessions.len());
    for (i, (id, query)) in sessions.into_iter().enumerate() {
        let mut session = kora.session(Context::new(i as u64));
        session
            .subscribe(&id, query, None)
            .await
            .expect("subscribe");
        held.push(session);
    }
    let writer = Context::new(u64::MAX);
    let before = kora.metrics().deliveries.get();
    let started = Instant::now();
    let mut last = 0;
    for i in 0..commits {
        let m = Mutation::merge(&p(&path_of(i)), json!(i)).expect("valid");
        last = kora.mutate(&writer, m, None).await.expect("commit").seq;
    }
    kora.wait_delivered(last).await;
    let elapsed = started.elapsed();
    let delivered = kora.metrics().deliveries.get() - before;
    let (buckets, count, _) = kora.metrics().fanout_latency.snapshot();
    let p99 = buckets
        .iter()
        .find(|(_, n)| *n as f64 >= 0.99 * count as f64)
        .map(|(le, _)| Duration::from_secs_f64(*le))
        .unwrap_or_default();
    drop(held);
    kora.shutdown().await;
    (delivered as f64 / elapsed.as_secs_f64(), delivered, p99)
}

/// The fan-out's cost of one change with one subscriber, among `total` subscriptions on
/// distinct paths.
async fn lookup(total: usize, commits: usize) -> Duration {
    let kora = Kora::builder().build().await.expect("engine");
    let mut held = Vec::new();
    for chunk in 0..total.div_ceil(1000) {
        let mut session = kora.session(Context::new(chunk as u64));
        for i in chunk * 1000..((chunk + 1) * 1000).min(total) {
            let query = PathQuery::new(p(&format!("items/{i}")));
            session
                .subscribe(&format!("s{i}"), query, None)
                .await
                .expect("subscribe");
        }
        held.push(session);
    }
    let writer = Context::new(u64::MAX);
    let mut spent = Duration::ZERO;
    for i in 0..commits {
        let m = Mutation::merge(&p(&format!("items/{}", i % total)), json!(i)).expect("valid");
        let seq = kora.mutate(&writer, m, None).await.expect("commit").seq;
        let t = Instant::now();
        kora.wait_delivered(seq).await;
        spent += t.elapsed();
    }
    drop(held);
    kora.shutdown().await;
    spent / commits as u32
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let scale = if quick() { 10 } else { 1 };
    rt.block_on(async {
        let dir = std::env::temp_dir().join(format!("kora-engine-bench-{}", std::process::id()));
        let url = format!("embedded:{}", dir.display());
        let (rate, slowest) = pipeline(&url, 64, 2_000 / scale).await;
        println!("pipeline, 5 interceptors, embedded store, 64 writers: {rate:.0} mutations/s (slowest {slowest:?})");
        let _ = std::fs::remove_dir_all(&dir);
        let (rate, _) = pipeline("memory:", 64, 2_000 / scale).await;
        println!("pipeline, 5 interceptors, memory store, 64 writers: {rate:.0} mutations/s");

        let one_path: Vec<(String, PathQuery)> = (0..10_000)
            .map(|i| (format!("s{i}"), PathQuery::new(p("room"))))
            .collect();
        let (rate, delivered, p99) = fan_out(one_path, 200 / scale, |i| format!("room/m{i}")).await;
        println!("fan-out, 10,000 subscribers of one path: {rate:.0} deliveries/s ({delivered} delivered), commit→last queue p99 ≤ {p99:?}");

        let distinct: Vec<(String, PathQuery)> = (0..100_000)
            .map(|i| (format!("s{i}"), PathQuery::new(p(&format!("users/u{i}")))))
            .collect();
        let (rate, delivered, p99) = fan_out(distinct, 100_000 / scale, |i| format!("users/u{i}/seen")).await;
        println!("fan-out, 100,000 subscribers of distinct paths: {rate:.0} deliveries/s ({delivered} delivered), commit→delivery p99 ≤ {p99:?}");

        for total in [1_000, 10_000, 100_000] {
            let cost = lookup(total, 2_000 / scale).await;
            println!("lookup, 1 subscriber of {total} subscriptions: {cost:?} per change (commit→queued)");
        }
    });
}
