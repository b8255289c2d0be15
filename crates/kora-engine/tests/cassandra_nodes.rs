//! Two Kora engines on one Cassandra keyspace, joined by NATS, with concurrent writers on
//! both: a subscriber on each engine receives every commit that touches its path exactly
//! once and in sequence order, and what it received rebuilds the reference tree; a
//! subscriber resuming from the middle of the log receives exactly the rest.
//! Needs `KORA_TEST_CASSANDRA_URL` and `KORA_TEST_NATS_URL` (skipped without; required in CI).

use std::collections::BTreeMap;
use std::time::Duration;

use kora_core::{Mutation, Path, PathQuery, Stamp, Tree};
use kora_engine::{ClusterConfig, Config, Context, Initial, Kora, Push, Session};
use kora_store::cassandra::CassandraStore;
use kora_store::LogRead;
use serde_json::json;

const WRITERS_PER_NODE: usize = 4;
const WRITES_PER_WRITER: usize = 40;
const KEYS: usize = 25;

fn urls() -> Option<(String, String)> {
    let cassandra = std::env::var("KORA_TEST_CASSANDRA_URL").ok();
    let nats = std::env::var("KORA_TEST_NATS_URL").ok();
    match (cassandra, nats) {
        (Some(c), Some(n)) => Some((c, n)),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs this test: set KORA_TEST_CASSANDRA_URL and KORA_TEST_NATS_URL"
            );
            println!("skipped: KORA_TEST_CASSANDRA_URL or KORA_TEST_NATS_URL is not set");
            None
        }
    }
}

async fn node(url: &str, nats: &str, subject: &str) -> Kora {
    let store = CassandraStore::open(url).await.expect("open the keyspace");
    let mut cluster = ClusterConfig::new(nats);
    cluster.subject = subject.to_string();
    let config = Config {
        cluster: Some(cluster),
        ..Config::default()
    };
    Kora::builder()
        .store(std::sync::Arc::new(store))
        .config(config)
        .build()
        .await
        .expect("engine")
}

/// Every change pushed to `session` until it has seen `last`.
async fn received(session: &mut Session, last: u64) -> Vec<(u64, Stamp, Mutation)> {
    let mut out = Vec::new();
    while out.last().is_none_or(|(seq, _, _)| *seq < last) {
        let push = tokio::time::timeout(Duration::from_secs(60), session.next())
            .await
            .expect("every change arrives")
            .expect("engine running");
        match push {
            Push::Change {
                seq,
                stamp,
                mutation,
                ..
            } => out.push((seq, stamp, (*mutation).clone())),
            other => panic!("unexpected push {other:?}"),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscribers_on_two_nodes_receive_every_commit_once() {
    let Some((base, nats)) = urls() else {
        return;
    };
    let keyspace = format!(
        "kora_nodes_{}_{}",
        std::process::id(),
        kora_core::stamp::wall_millis() % 100_000_000
    );
    let hosts = base.trim_start_matches("cassandra://");
    let url = format!(
        "cassandra://{}/{keyspace}",
        hosts.split('/').next().unwrap_or_default()
    );
    let subject = format!("kora.test.{keyspace}");
    // One node creates the keyspace first: schema changes from two at once can race.
    let a = node(&url, &nats, &subject).await;
    let b = node(&url, &nats, &subject).await;
    let items = PathQuery::new(Path::parse("items").unwrap());
    let mut sessions = Vec::new();
    for kora in [&a, &b] {
        let mut session = kora.session(Context::new(1));
        let initial = session
            .subscribe("items", items.clone(), None)
            .await
            .unwrap();
        assert!(matches!(initial, Initial::Snapshot { value: None, .. }));
        sessions.push(session);
    }

    let mut writers = Vec::new();
    for (n, kora) in [&a, &b].into_iter().enumerate() {
        for w in 0..WRITERS_PER_NODE {
            let kora = kora.clone();
            writers.push(tokio::spawn(async move {
                let ctx = kora.system_context();
                let mut written = Vec::new();
                for i in 0..WRITES_PER_WRITER {
                    let key = (n * 7 + w * 3 + i) % KEYS;
                    let path = Path::parse(&format!("items/k{key}")).unwrap();
                    let m = if i % 9 == 8 {
                        Mutation::delete(&path)
                    } else {
                        Mutation::merge(&path, json!({"by": format!("{n}.{w}"), "i": i})).unwrap()
                    };
                    let commit = kora.mutate(&ctx, m.clone(), None).await.unwrap();
                    written.push((commit.stamp, m));
                }
                written
            }));
        }
    }
    let mut reference = Tree::new();
    for writer in writers {
        for (stamp, m) in writer.await.unwrap() {
            reference.apply(stamp, &m);
        }
    }
    let store = a.store().clone();
    let last = store.last_seq().await.unwrap();
    let log = match store.changes(0, 100_000).await.unwrap() {
        LogRead::Changes(changes) => changes,
        other => panic!("{other:?}"),
    };
    let touching: Vec<u64> = log
        .iter()
        .filter(|c| !c.mutation.restrict(&items.path).is_empty())
        .map(|c| c.seq)
        .collect();
    let last_touching = *touching.last().expect("commits touched items");

    for (name, session) in ["a", "b"].iter().zip(sessions.iter_mut()) {
        let got = received(session, last_touching).await;
        let seqs: Vec<u64> = got.iter().map(|(seq, _, _)| *seq).collect();
        assert_eq!(seqs, touching, "node {name}: every commit once, in order");
        let mut tree = serde_json::Map::new();
        for (_, _, m) in &got {
            m.apply_to(&mut tree);
        }
        assert_eq!(
            tree.get("items"),
            reference.get(&items.path).as_ref(),
            "node {name}: the changes rebuild the reference tree"
        );
        println!(
            "cassandra nodes: node {name} received {} of {last} commits (all that touch items)",
            got.len()
        );
    }

    // A subscriber resuming from the middle of the log gets exactly the rest.
    let middle = touching[touching.len() / 2];
    let mut late = b.session(Context::new(2));
    let Initial::Replay { changes, .. } = late
        .subscribe(
            "items",
            items.clone(),
            Some(kora_engine::Resume::after(middle)),
        )
        .await
        .unwrap()
    else {
        panic!("expected a replay");
    };
    let replayed: Vec<u64> = changes.iter().map(|c| c.seq).collect();
    let rest: Vec<u64> = touching.iter().copied().filter(|s| *s > middle).collect();
    assert_eq!(replayed, rest);

    let by_stamp: BTreeMap<Stamp, u64> = log.iter().map(|c| (c.stamp, c.seq)).collect();
    assert_eq!(by_stamp.len(), log.len(), "one commit per write");
    a.shutdown().await;
    b.shutdown().await;
    let _ = kora_store::cassandra::drop_keyspace(&url).await;
}
