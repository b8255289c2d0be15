//! `kora bench --increments`: writers incrementing one counter by transactions, through
//! Kora's own client (`kora_client::Client::transaction`: read, write on condition, retry on
//! `conflict`). Measures committed increments per second, their latency, and how many
//! attempts each took; checks that the counter ends at exactly the increments committed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use hdrhistogram::Histogram;
use kora_client::{Client, Options, Value};
use serde_json::json;
use tokio::sync::Mutex;

use super::BenchArgs;

pub async fn run(args: &BenchArgs) -> Result<()> {
    let counter = format!("{}/counter", args.path.trim_matches('/'));
    let mut urls = vec![args.url.clone()];
    urls.extend(args.other_url.clone());
    let latency = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let before = read_counter(&urls[0], &counter).await?;
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    eprintln!(
        "kora bench: {} writers incrementing {counter} through {}",
        args.writers,
        urls.join(" and ")
    );
    let mut tasks = Vec::new();
    for w in 0..args.writers.max(1) {
        let url = urls[w % urls.len()].clone();
        let (counter, latency) = (counter.clone(), latency.clone());
        tasks.push(tokio::spawn(async move {
            let client = Client::connect(&url, Options::default()).await?;
            let (mut committed, mut attempts, mut gave_up) = (0u64, 0u64, 0u64);
            while Instant::now() < deadline {
                let started = Instant::now();
                let done = client
                    .transaction(&counter, |n| {
                        Some(json!(n.and_then(Value::as_u64).unwrap_or(0) + 1))
                    })
                    .await;
                match done {
                    Ok(done) => {
                        committed += 1;
                        attempts += u64::from(done.attempts);
                        let us = started.elapsed().as_micros() as u64;
                        latency.lock().await.record(us.max(1))?;
                    }
                    Err(error) if error.code() == Some("conflict") => gave_up += 1,
                    Err(error) => return Err(anyhow::Error::from(error)),
                }
            }
            client.close().await;
            Ok::<_, anyhow::Error>((committed, attempts, gave_up))
        }));
    }
    let started = Instant::now();
    let (mut committed, mut attempts, mut gave_up) = (0, 0, 0);
    for task in tasks {
        let (c, a, g) = task.await??;
        committed += c;
        attempts += a;
        gave_up += g;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = read_counter(&urls[0], &counter).await?;
    let latency = latency.lock().await;
    println!(
        "increments: {committed} committed in {elapsed:.1} s = {:.0}/s by {} writers on {} node(s); \
         latency p50 {:.2} ms, p99 {:.2} ms; {:.2} attempts each; {gave_up} gave up",
        committed as f64 / elapsed,
        args.writers.max(1),
        urls.len(),
        latency.value_at_quantile(0.5) as f64 / 1000.0,
        latency.value_at_quantile(0.99) as f64 / 1000.0,
        attempts as f64 / committed.max(1) as f64,
    );
    if after - before != committed {
        bail!(
            "the counter went from {before} to {after}: not the {committed} increments committed"
        );
    }
    println!("counter: {before} -> {after}, exactly the increments committed");
    Ok(())
}

async fn read_counter(url: &str, counter: &str) -> Result<u64> {
    let reader = Client::connect(url, Options::default()).await?;
    let value = reader.get(counter).await?;
    reader.close().await;
    Ok(value.as_ref().and_then(Value::as_u64).unwrap_or(0))
}
