//! A three-node Cassandra ring (`KORA_TEST_CASSANDRA_RING_URL`, started by
//! `scripts/services cassandra-ring start`) at replication factor 3 and QUORUM loses a node:
//! writers keep committing and a reader keeps reading while node 127.0.0.3 is killed with
//! SIGKILL and later restarted. Every acknowledged write is in the tree at the end, and the
//! tree equals the reference model fed the same writes. Bounded: about 90 s, most of it the
//! restart of the killed node.

mod conformance;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kora_core::{Mutation, Path, PathQuery, Stamp, Tree};
use kora_store::cassandra::CassandraStore;
use kora_store::{Page, Store, StoreError, Write};
use serde_json::json;

/// The ring node this test kills (not the seed, 127.0.0.2).
const VICTIM: &str = "3";
/// Concurrent writers.
const WRITERS: u64 = 4;
/// Phases: writing before the kill, while the node is down, after it is back.
const BEFORE_KILL: Duration = Duration::from_secs(5);
const WHILE_DOWN: Duration = Duration::from_secs(15);
const AFTER_RESTART: Duration = Duration::from_secs(5);
/// A write that fails (`unavailable`) is retried by its writer, as a client would, for
/// at most this long.
const GIVE_UP_AFTER: Duration = Duration::from_secs(120);

fn services(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/services");
    let status = Command::new(script)
        .args(args)
        .status()
        .expect("run scripts/services");
    assert!(status.success(), "scripts/services {args:?} failed");
}

fn path(text: &str) -> Path {
    Path::parse(text).expect("path")
}

/// Commits `write`, retrying while the store is unavailable; the time the commit took.
async fn commit(store: &dyn Store, write: &Write) -> Duration {
    let started = Instant::now();
    loop {
        match store.commit(write.clone()).await {
            Ok(_) => return started.elapsed(),
            Err(StoreError::Unavailable(why)) if started.elapsed() < GIVE_UP_AFTER => {
                eprintln!("ring: commit unavailable, retrying: {why}");
            }
            Err(other) => panic!("commit failed: {other}"),
        }
    }
}

/// Writes until `stop`; returns the acknowledged writes and the slowest commit.
async fn writer(store: Arc<dyn Store>, id: u64, stop: Arc<AtomicBool>) -> (Vec<Write>, Duration) {
    let mut acked = Vec::new();
    let mut slowest = Duration::ZERO;
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let stamp = Stamp::new(kora_core::stamp::wall_millis(), (i % 1000) as u16, 10 + id);
        let mutation = if i % 13 == 12 {
            Mutation::delete(&path(&format!("ring/w{id}/k{}", i % 7)))
        } else {
            Mutation::merge(&path(&format!("ring/w{id}/k{}", i % 50)), json!({"i": i}))
                .expect("merge")
        };
        let write = Write::new(stamp, mutation);
        slowest = slowest.max(commit(&*store, &write).await);
        acked.push(write);
        i += 1;
    }
    (acked, slowest)
}

#[test]
fn ring_survives_losing_a_node() {
    let Ok(base) = std::env::var("KORA_TEST_CASSANDRA_RING_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs the ring test: start it with scripts/services cassandra-ring start"
        );
        println!("skipped: cassandra ring (KORA_TEST_CASSANDRA_RING_URL is not set)");
        return;
    };
    let rt = conformance::runtime();
    let started = Instant::now();
    let name = conformance::unique_name("kora_ring");
    let url = format!(
        "{}?replication=3&consistency=quorum&serial_consistency=serial&timeout_ms=2000",
        conformance::with_database(&base, &name)
    );
    let store: Arc<dyn Store> = rt.block_on(async {
        Arc::new(
            CassandraStore::open(&url)
                .await
                .expect("open the ring store"),
        )
    });
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|id| rt.spawn(writer(store.clone(), id, stop.clone())))
        .collect();
    let reader = {
        let (store, stop, reads) = (store.clone(), stop.clone(), reads.clone());
        rt.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match store.get(&PathQuery::new(path("ring"))).await {
                    Ok(_) => reads.fetch_add(1, Ordering::Relaxed),
                    Err(StoreError::Unavailable(_)) => 0,
                    Err(other) => panic!("read failed: {other}"),
                };
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    std::thread::sleep(BEFORE_KILL);
    let killed_at = Instant::now();
    services(&["cassandra-node", VICTIM, "kill"]);
    std::thread::sleep(WHILE_DOWN);
    let restart = Instant::now();
    services(&["cassandra-node", VICTIM, "start"]);
    let restart_took = restart.elapsed();
    std::thread::sleep(AFTER_RESTART);
    stop.store(true, Ordering::Relaxed);

    rt.block_on(async {
        let mut model = Tree::new();
        let (mut acked, mut slowest) = (0, Duration::ZERO);
        for task in writers {
            let (writes, slow) = task.await.expect("writer");
            acked += writes.len();
            slowest = slowest.max(slow);
            for w in &writes {
                model.apply(w.stamp, &w.mutation);
            }
        }
        reader.await.expect("reader");
        let tree = store
            .get(&PathQuery::new(path("ring")))
            .await
            .expect("final read");
        assert_eq!(
            tree,
            model.get(&path("ring")),
            "every acknowledged write, as the model has it"
        );
        let leaves = store
            .leaves(Page::new(&path("ring"), None, usize::MAX))
            .await
            .expect("leaves");
        assert_eq!(leaves, model.leaves(&path("ring"), None, usize::MAX));
        println!(
            "cassandra ring: {acked} acknowledged commits, {} reads; node {VICTIM} down {:.1?} \
             (restart took {restart_took:.1?}); slowest commit {slowest:.1?}; all readable; \
             test took {:.1?}",
            reads.load(Ordering::Relaxed),
            restart.duration_since(killed_at) + restart_took,
            started.elapsed()
        );
        let _ = store.close().await;
    });
    let _ = rt.block_on(kora_store::cassandra::drop_keyspace(&url));
}
