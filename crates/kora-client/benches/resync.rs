//! Resync cost after missing 1,000 / 10,000 / 100,000 server changes (replay, and reset
//! after the change log was compacted), local cache read latency, and optimistic write
//! latency. A real server on the embedded store and a client behind a proxy that cuts it
//! off, all in this process.
//!
//! `cargo bench -p kora-client --bench resync` (`KORA_BENCH_MAX` caps the largest gap).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{cut_off, forget_log, server_in, Proxy, SYNC};
use kora_client::{Client, Mutation, Path, PathQuery};
use kora_server::Running;
use serde_json::json;

/// Leaves under the client's subscription before it goes offline.
const SUBSCRIBED_LEAVES: usize = 10_000;
/// One missed change in this many touches the subscription.
const TOUCHING_EVERY: usize = 100;
const WRITERS: usize = 32;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let max: usize = std::env::var("KORA_BENCH_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let running = Arc::new(server_in(dir.path(), |_| {}).await);
    let proxy = Proxy::start(running.addr).await;
    let c = common::client(&proxy, &dir.path().join("cache")).await;
    fill(&running, "mine", SUBSCRIBED_LEAVES).await;
    c.subscribe(PathQuery::new(Path::parse("mine").expect("path")))
        .await
        .expect("subscribe");
    c.synced(SYNC).await.expect("synced");

    println!("| missed changes | touching the subscription | resync by | time | bytes received |");
    println!("|---:|---:|---|---:|---:|");
    for missed in [1_000, 10_000, 100_000].into_iter().filter(|n| *n <= max) {
        for compacted in [false, true] {
            cut_off(&proxy, &c).await;
            write_missed(&running, missed).await;
            if compacted {
                forget_log(&running).await;
            }
            let before = c.stats();
            let started = Instant::now();
            proxy.restore();
            c.synced(SYNC).await.expect("synced");
            let took = started.elapsed();
            let after = c.stats();
            let how = if after.resets > before.resets {
                "reset"
            } else {
                "replay"
            };
            println!(
                "| {missed} | {} | {how} | {:.1} ms | {} |",
                missed / TOUCHING_EVERY,
                took.as_secs_f64() * 1e3,
                after.bytes_received - before.bytes_received
            );
        }
    }
    reads(&c).await;
    writes(&c).await;
    c.close().await;
}

async fn fill(running: &Running, top: &str, leaves: usize) {
    let ctx = running.kora.system_context();
    for chunk in 0..leaves.div_ceil(1_000) {
        let mut value = serde_json::Map::new();
        for i in chunk * 1_000..((chunk + 1) * 1_000).min(leaves) {
            value.insert(format!("k{i:06}"), json!({"n": i}));
        }
        let m = Mutation::merge(&Path::parse(top).expect("path"), value.into()).expect("merge");
        running.kora.mutate(&ctx, m, None).await.expect("fill");
    }
}

/// `missed` one-leaf commits, one in `TOUCHING_EVERY` under `mine`, from concurrent writers.
async fn write_missed(running: &Arc<Running>, missed: usize) {
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let running = running.clone();
        tasks.push(tokio::spawn(async move {
            let ctx = running.kora.system_context();
            for i in (w..missed).step_by(WRITERS) {
                let top = if i % TOUCHING_EVERY == 0 {
                    "mine"
                } else {
                    "theirs"
                };
                let path = format!("{top}/k{:06}/n", i % SUBSCRIBED_LEAVES);
                let m =
                    Mutation::merge(&Path::parse(&path).expect("path"), json!(i)).expect("merge");
                running.kora.mutate(&ctx, m, None).await.expect("write");
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
}

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e6;
    format!("p50 {:.0} µs, p99 {:.0} µs", at(0.5), at(0.99))
}

async fn reads(c: &Client) {
    let mut one = Vec::new();
    for i in 0..2_000 {
        let path = format!("mine/k{:06}", (i * 7) % SUBSCRIBED_LEAVES);
        let started = Instant::now();
        c.get(&path).await.expect("read");
        one.push(started.elapsed());
    }
    let mut page = Vec::new();
    for i in 0..500 {
        let query = PathQuery {
            min: Some(format!("k{:06}", (i * 13) % SUBSCRIBED_LEAVES)),
            limit: Some(20),
            ..PathQuery::new(Path::parse("mine").expect("path"))
        };
        let started = Instant::now();
        c.query(query).await.expect("read");
        page.push(started.elapsed());
    }
    println!(
        "\ncache read, one child of {SUBSCRIBED_LEAVES}: {}",
        percentiles(one)
    );
    println!("cache read, a page of 20 children: {}", percentiles(page));
}

async fn writes(c: &Client) {
    let mut samples = Vec::new();
    let mut answers = Vec::new();
    for i in 0..2_000 {
        let started = Instant::now();
        let written = c
            .merge(
                &format!("mine/k{:06}", i % SUBSCRIBED_LEAVES),
                json!({"w": i}),
            )
            .await
            .expect("write");
        samples.push(started.elapsed());
        answers.push(written);
    }
    for written in answers {
        written.acknowledged().await.expect("acknowledged");
    }
    println!(
        "optimistic write (applied locally and queued durably): {}",
        percentiles(samples)
    );
}
