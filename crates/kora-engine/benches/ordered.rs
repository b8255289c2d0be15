//! Windows ordered by a child value, beside key order:
//! `cargo bench -p kora-engine --bench ordered [-- CHILDREN]` (default 100,000).
//!
//! For a collection of CHILDREN children (memory store, so the store's speed does not hide
//! the query's cost), each case prints the p50 of a one-time read of a 10-child window, and
//! the p50 cost one change to a child outside the window puts on a subscribed window (the
//! session processing the change: re-reading its window):
//!
//! - key order: `limit: 10, reverse: true`;
//! - by child value with an index (`[indexes]`);
//! - by child value without one (the collection read and sorted).
//!
//! Figures are recorded in docs/benchmarks.md, "Ordering by a child value".

use std::time::{Duration, Instant};

use kora_core::order::ByChild;
use kora_core::{Mutation, Path, PathQuery, Query};
use kora_engine::{Config, Context, Kora};
use serde_json::{json, Map};

const READS: usize = 50;
const WRITES: usize = 50;

fn p(text: &str) -> Path {
    Path::parse(text).expect("valid path")
}

fn p50(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

async fn case(name: &str, children: usize, query: PathQuery, indexed: bool) {
    let mut config = Config::default();
    if indexed {
        config.indexes = [("scores".to_string(), vec!["score".to_string()])].into();
    }
    let kora = Kora::builder()
        .config(config)
        .build()
        .await
        .expect("engine");
    let writer = Context::new(1);
    for chunk in 0..children.div_ceil(10_000) {
        let mut batch = Map::new();
        for i in chunk * 10_000..((chunk + 1) * 10_000).min(children) {
            batch.insert(format!("c{i:06}"), json!({"score": i, "name": "x"}));
        }
        let m = Mutation::merge(&p("scores"), serde_json::Value::Object(batch)).expect("valid");
        kora.mutate(&writer, m, None).await.expect("commit");
    }
    let reader = Context::new(2);
    let one = Query {
        paths: vec![query.clone()],
    };
    let mut reads = Vec::with_capacity(READS);
    for _ in 0..READS {
        let t = Instant::now();
        std::hint::black_box(kora.query(&reader, &one).await.expect("read"));
        reads.push(t.elapsed());
    }
    let mut session = kora.session(Context::new(3));
    let subscribed = PathQuery {
        subscribe: true,
        ..query
    };
    session
        .subscribe("top", subscribed, None)
        .await
        .expect("subscribe");
    let mut refreshes = Vec::with_capacity(WRITES);
    for i in 0..WRITES {
        // A child far below the window gets a new low score: the window stays as it is.
        let m = Mutation::merge(&p(&format!("scores/c{i:06}/score")), json!(i % 7)).expect("valid");
        let seq = kora.mutate(&writer, m, None).await.expect("commit").seq;
        kora.wait_delivered(seq).await;
        let t = Instant::now();
        std::hint::black_box(session.process_queued(usize::MAX).await);
        refreshes.push(t.elapsed());
    }
    println!(
        "{name}, {children} children: read p50 {:?}, change outside the window p50 {:?}",
        p50(reads),
        p50(refreshes)
    );
    drop(session);
    kora.shutdown().await;
}

fn main() {
    let children: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let top = PathQuery {
        limit: Some(10),
        reverse: true,
        ..PathQuery::new(p("scores"))
    };
    let by_score = PathQuery {
        by: Some(ByChild {
            child: "score".into(),
            ..ByChild::default()
        }),
        ..top.clone()
    };
    rt.block_on(async {
        case("key order, limit 10", children, top, false).await;
        case(
            "by child, indexed, limit 10",
            children,
            by_score.clone(),
            true,
        )
        .await;
        case("by child, no index, limit 10", children, by_score, false).await;
    });
}
