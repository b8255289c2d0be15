//! The conformance suite against Cassandra (`KORA_TEST_CASSANDRA_URL`, e.g.
//! `cassandra://cassandra:cassandra@127.0.0.1:19042`: `scripts/services` starts the node with
//! a password required and TLS offered), each check in a keyspace of its own that is dropped
//! afterwards; two stores — two Kora nodes — committing concurrently through one keyspace,
//! each reading the change log; and logging in, over TLS, and being refused.

mod conformance;

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use kora_core::{Mutation, Path, PathQuery, Stamp, Tree};
use kora_store::cassandra::{drop_keyspace, CassandraStore};
use kora_store::{Change, LogRead, Store, Write};
use serde_json::{json, Map};

fn factory() -> Pin<Box<dyn Future<Output = Option<conformance::Opened>> + Send>> {
    Box::pin(async {
        let base = std::env::var("KORA_TEST_CASSANDRA_URL").ok()?;
        let name = conformance::unique_name("kora_test");
        let url = conformance::with_database(&base, &name);
        let store = CassandraStore::open(&url).await.expect("open");
        let cleanup = Box::pin(async move {
            let _ = drop_keyspace(&url).await;
        });
        Some(conformance::Opened {
            store: Arc::new(store) as Arc<dyn Store>,
            cleanup: Some(cleanup),
        })
    })
}

conformance_tests!("cassandra", factory);

/// Writers per store in the two-node check, and commits per writer.
const WRITERS: u64 = 8;
const COMMITS_PER_WRITER: u64 = 40;

/// Two stores on one keyspace, as two Kora nodes would be: writers on both commit at once;
/// the sequences handed out are 1..=N with none twice; a change-log reader on each store,
/// resuming page by page, sees every commit exactly once and in order, each with the effect
/// its writer was told; and the log replayed, the tree read back and the reference model
/// (`kora_core::Tree`) fed the same stamped writes all agree.
#[test]
fn two_nodes_share_one_log_without_gaps() {
    let rt = conformance::runtime();
    rt.block_on(async {
        let Ok(base) = std::env::var("KORA_TEST_CASSANDRA_URL") else {
            assert!(std::env::var_os("CI").is_none(), "CI runs every backend");
            println!("skipped: cassandra (KORA_TEST_CASSANDRA_URL is not set)");
            return;
        };
        let name = conformance::unique_name("kora_nodes");
        let url = conformance::with_database(&base, &name);
        let started = std::time::Instant::now();
        let a: Arc<dyn Store> = Arc::new(CassandraStore::open(&url).await.expect("open a"));
        let b: Arc<dyn Store> = Arc::new(CassandraStore::open(&url).await.expect("open b"));

        let total = 2 * WRITERS * COMMITS_PER_WRITER;
        let readers = [a.clone(), b.clone()].map(|store| tokio::spawn(follow(store, total)));
        let mut tasks = Vec::new();
        for (node, store) in [a.clone(), b.clone()].into_iter().enumerate() {
            for writer in 0..WRITERS {
                tasks.push(tokio::spawn(write_some(store.clone(), node as u16, writer)));
            }
        }
        let mut committed = BTreeMap::new();
        let mut model = Tree::new();
        for task in tasks {
            for (write, commit) in task.await.expect("writer") {
                model.apply(write.stamp, &write.mutation);
                assert!(
                    committed.insert(commit.seq, commit).is_none(),
                    "a sequence twice"
                );
            }
        }
        assert_eq!(
            committed.keys().copied().collect::<Vec<_>>(),
            (1..=total).collect::<Vec<_>>(),
            "sequences are 1..=N"
        );
        for reader in readers {
            let changes = reader.await.expect("reader");
            let seqs: Vec<u64> = changes.iter().map(|c| c.seq).collect();
            assert_eq!(
                seqs,
                (1..=total).collect::<Vec<_>>(),
                "each commit once, in order"
            );
            let mut plain = Map::new();
            for change in &changes {
                assert_eq!(
                    change.mutation, committed[&change.seq].effect,
                    "seq {}",
                    change.seq
                );
                change.mutation.apply_to(&mut plain);
            }
            assert_eq!(Some(json!(plain)), model.get(&Path::root()), "log replayed");
        }
        for store in [&a, &b] {
            let tree = store
                .get(&PathQuery::new(Path::root()))
                .await
                .expect("read");
            assert_eq!(tree, model.get(&Path::root()), "tree read back");
        }
        println!(
            "cassandra: two nodes, {total} commits from {} writers: log gap-free on both ({:.1?})",
            2 * WRITERS,
            started.elapsed()
        );
        let _ = a.close().await;
        let _ = b.close().await;
        let _ = drop_keyspace(&url).await;
    });
}

/// One writer's commits: overlapping paths across writers and nodes (so conflicts resolve
/// by stamp), stamps from both nodes' origins, deletes among the merges.
async fn write_some(
    store: Arc<dyn Store>,
    node: u16,
    writer: u64,
) -> Vec<(Write, kora_store::Commit)> {
    let mut done = Vec::new();
    for i in 0..COMMITS_PER_WRITER {
        let n = writer * COMMITS_PER_WRITER + i;
        // Stamps interleave across writers and nodes, and arrive out of order.
        let stamp = Stamp::new(
            1_000 + (n * 7919) % 997,
            (i % 3) as u16,
            u64::from(node) + 1,
        );
        let path = Path::parse(&format!("room{}/item{}", n % 5, n % 11)).expect("path");
        let mutation = if n.is_multiple_of(9) {
            Mutation::delete(&Path::parse(&format!("room{}", n % 5)).expect("path"))
        } else {
            Mutation::merge(&path, json!({"by": node, "n": n})).expect("merge")
        };
        let write = Write::new(stamp, mutation);
        let commit = store.commit(write.clone()).await.expect("commit");
        done.push((write, commit));
    }
    done
}

/// Reads the change log from the start, resuming after the last sequence seen, until
/// `total` changes have arrived (bounded: fails after a minute).
async fn follow(store: Arc<dyn Store>, total: u64) -> Vec<Change> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut seen: Vec<Change> = Vec::new();
    while (seen.len() as u64) < total {
        assert!(
            std::time::Instant::now() < deadline,
            "log reader stuck at {}",
            seen.len()
        );
        let after = seen.last().map_or(0, |c| c.seq);
        match store.changes(after, 37).await.expect("log") {
            LogRead::Changes(page) if page.is_empty() => {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await
            }
            LogRead::Changes(page) => seen.extend(page),
            LogRead::Compacted { .. } => panic!("nothing compacts here"),
        }
    }
    seen
}

/// The test URL with its credentials replaced by `login` (`None`: none).
fn with_login(base: &str, login: Option<&str>) -> String {
    let rest = base.trim_start_matches("cassandra://");
    let hosts = rest.rsplit_once('@').map_or(rest, |(_, hosts)| hosts);
    match login {
        Some(login) => format!("cassandra://{login}@{hosts}"),
        None => format!("cassandra://{hosts}"),
    }
}

#[test]
fn logs_in_over_tls_and_is_refused_by_name() {
    let rt = conformance::runtime();
    rt.block_on(async {
        let (Ok(base), Ok(ca)) = (
            std::env::var("KORA_TEST_CASSANDRA_URL"),
            std::env::var("KORA_TEST_STORE_CA"),
        ) else {
            assert!(std::env::var_os("CI").is_none(), "CI runs every backend");
            println!("skipped: KORA_TEST_CASSANDRA_URL or KORA_TEST_STORE_CA is not set");
            return;
        };
        let name = conformance::unique_name("kora_tls");
        let url = format!("{}?ca={ca}", conformance::with_database(&base, &name));
        let store = CassandraStore::open(&url).await.expect("open over TLS");
        let m = Mutation::from_json(&json!({"merge": {"over": "tls"}})).unwrap();
        store
            .commit(Write::new(Stamp::new(1, 0, 1), m))
            .await
            .unwrap();
        let read = store
            .get(&PathQuery::new(Path::parse("over").unwrap()))
            .await;
        assert_eq!(read.unwrap(), Some(json!("tls")));
        store.close().await.unwrap();

        // Each refusal is reported at once, not retried as if the node were down.
        let started = std::time::Instant::now();
        let stranger = kora_testkit::tls::TestCa::new("stranger");
        let dir = tempfile::tempdir().unwrap();
        let other_ca = stranger.server_files(dir.path(), "other").ca;
        let untrusted = format!(
            "{}?ca={}",
            conformance::with_database(&base, &name),
            other_ca.display()
        );
        let wrong_password = conformance::with_database(
            &with_login(&base, Some("cassandra:not-the-password")),
            &name,
        );
        let anonymous = conformance::with_database(&with_login(&base, None), &name);
        for (url, expected) in [
            (untrusted, "certificate"),
            (wrong_password, "password"),
            (anonymous, "authenticat"),
        ] {
            let error = match CassandraStore::open(&url).await {
                Ok(_) => panic!("{url} is refused"),
                Err(error) => error.to_string(),
            };
            assert!(error.to_lowercase().contains(expected), "{url}: {error}");
            println!("REFUSED {expected}: {error}");
            assert!(
                !error.contains("not-the-password"),
                "no password in {error}"
            );
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "refusals took {:?}",
            started.elapsed()
        );
        let _ = drop_keyspace(&url).await;
    })
}
