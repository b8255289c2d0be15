//! The store conformance suite: written once, run against every backend (see
//! `tests/<backend>.rs`). Each check opens a fresh store through the backend's factory.
//!
//! The model-based check applies random stamped mutations (merges, deletes, leaf/branch
//! replacement, out-of-order and duplicated stamps, concurrent commits) to the backend and to
//! `kora_core::Tree`, and requires equal trees, equal query answers, and effects that rebuild
//! the tree when replayed in sequence order. Each generated case writes under its own prefix,
//! so one store serves all cases.

#![allow(dead_code)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use kora_core::testing::{mutation, path_query, stamped_set};
use kora_core::{Mutation, Path, PathQuery, Stamp, Tree, Value};
use kora_store::{
    Claim, Commit, Condition, LogRead, NewEffect, Page, Seq, Store, StoreError, Write,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Map};

/// A fresh, empty store, and what to run to remove it afterwards (drop its database).
pub struct Opened {
    pub store: Arc<dyn Store>,
    pub cleanup: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl Opened {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Opened {
            store,
            cleanup: None,
        }
    }
}

/// Opens a fresh, empty store; `None` when the backend is not available here (skipped).
pub type Factory = fn() -> Pin<Box<dyn Future<Output = Option<Opened>> + Send>>;

/// Number of generated cases for the model-based check (`KORA_CONFORMANCE_CASES`).
fn cases() -> u32 {
    std::env::var("KORA_CONFORMANCE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Says a backend was skipped; in CI (`CI` set) every backend must run, so it fails instead.
fn skipped(name: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{name}: its KORA_TEST_* variable is not set, and CI runs every backend (scripts/services)"
    );
    println!("skipped: {name} (its KORA_TEST_* variable is not set)");
}

/// Runs `check` against a fresh store, or says the backend was skipped.
pub fn with_store<F, Fut>(name: &str, factory: Factory, check: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let rt = runtime();
    rt.block_on(async {
        let Some(opened) = factory().await else {
            skipped(name);
            return;
        };
        check(opened.store.clone()).await;
        let _ = opened.store.close().await;
        if let Some(cleanup) = opened.cleanup {
            cleanup.await;
        }
        println!("conformance: {name}: passed");
    });
}

/// A database or keyspace name no other run uses: prefix, process id, time, counter.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        kora_core::stamp::wall_millis() % 100_000_000,
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// `url` with its database (the path after the host) replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let (authority, query) = match rest.split_once('/') {
        Some((authority, tail)) => (authority, tail.split_once('?').map(|(_, q)| q)),
        None => (rest, None),
    };
    match query {
        Some(query) => format!("{scheme}://{authority}/{name}?{query}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}

fn p(text: &str) -> Path {
    Path::parse(text).expect("valid path")
}

fn stamp(n: u64) -> Stamp {
    Stamp::new(1_000 + n, 0, 7)
}

async fn commit(store: &dyn Store, n: u64, mutation: Value) -> Commit {
    let mutation = Mutation::from_json(&mutation).expect("valid mutation");
    store
        .commit(Write::new(stamp(n), mutation))
        .await
        .expect("commit")
}

async fn get(store: &dyn Store, path: &str) -> Option<Value> {
    store.get(&PathQuery::new(p(path))).await.expect("read")
}

// ---------- the model-based check ----------

static CASE: AtomicU64 = AtomicU64::new(0);

/// Random stamped mutations in random order, batching and concurrency, against the model.
pub fn model_based(name: &str, factory: Factory) {
    let rt = runtime();
    let Some(opened) = rt.block_on(factory()) else {
        skipped(name);
        return;
    };
    let store = opened.store;
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        // A failing case is saved beside this file (`*.regressions`) and tried first on
        // every later run: commit it with the fix.
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        source_file: Some(file!()),
        ..Config::default()
    });
    let strategy = (
        stamped_set(),
        prop::collection::vec(0usize..64, 0..6),
        prop::collection::vec(path_query(), 1..4),
        any::<bool>(),
    );
    let result = runner.run(&strategy, |(writes, extra, parts, concurrent)| {
        rt.block_on(check_case(store.clone(), writes, extra, parts, concurrent));
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{name}: model-based conformance failed: {failure}");
    }
    rt.block_on(async {
        let _ = store.close().await;
        if let Some(cleanup) = opened.cleanup {
            cleanup.await;
        }
    });
    println!("conformance: {name}: {} model-based cases passed", cases());
}

async fn check_case(
    store: Arc<dyn Store>,
    writes: Vec<(Stamp, Mutation)>,
    extra: Vec<usize>,
    parts: Vec<PathQuery>,
    concurrent: bool,
) {
    let case = CASE.fetch_add(1, Ordering::SeqCst);
    let prefix = p(&format!("case{case:06}"));
    let n = writes.len();
    let arrivals: Vec<(Stamp, Mutation)> = (0..n)
        .rev()
        .chain(extra.iter().map(|i| i % n))
        .map(|i| (writes[i].0, writes[i].1.clone().nest(&prefix)))
        .collect();

    let mut commits: Vec<Commit> = if concurrent {
        let tasks: Vec<_> = arrivals
            .iter()
            .cloned()
            .map(|(t, m)| {
                let store = store.clone();
                tokio::spawn(async move { store.commit(Write::new(t, m)).await })
            })
            .collect();
        let mut out = Vec::new();
        for task in tasks {
            out.push(task.await.expect("task").expect("commit"));
        }
        out
    } else {
        let mut out = Vec::new();
        for (t, m) in &arrivals {
            out.push(
                store
                    .commit(Write::new(*t, m.clone()))
                    .await
                    .expect("commit"),
            );
        }
        out
    };

    let mut model = Tree::new();
    for (t, m) in &arrivals {
        model.apply(*t, m);
    }
    let expected = model.get(&prefix);
    assert_eq!(get(&*store, &prefix.to_string()).await, expected, "tree");

    // Effects replayed in sequence order rebuild the tree.
    commits.sort_by_key(|c| c.seq);
    let mut plain = Map::new();
    for c in &commits {
        c.effect.apply_to(&mut plain);
    }
    let replayed = plain.get(&prefix.segments()[0]).cloned();
    assert_eq!(replayed, expected, "effects replayed");

    // The change log holds the same effects.
    let first = commits.first().map(|c| c.seq).unwrap_or(1);
    let LogRead::Changes(changes) = store.changes(first - 1, commits.len()).await.expect("log")
    else {
        panic!("log compacted");
    };
    let logged: Vec<(u64, &Mutation)> = changes.iter().map(|c| (c.seq, &c.mutation)).collect();
    let committed: Vec<(u64, &Mutation)> = commits.iter().map(|c| (c.seq, &c.effect)).collect();
    assert_eq!(logged, committed, "change log");

    // Paging through the leaves (an export) lists the model's, in key order; the first
    // query's path picks where, and its `limit` the page size.
    let under = p(&format!("{prefix}/{}", parts[0].path));
    let page = parts[0].limit.unwrap_or(3).max(1);
    let mut paged = Vec::new();
    loop {
        let next = store
            .leaves(Page::new(
                &under,
                paged.last().map(|(p, _): &(Path, Value)| p),
                page,
            ))
            .await
            .expect("leaves");
        let done = next.len() < page;
        paged.extend(next);
        if done {
            break;
        }
    }
    assert_eq!(
        paged,
        model.leaves(&under, None, usize::MAX),
        "leaves under {under}"
    );

    for part in parts {
        let nested = PathQuery {
            path: p(&format!("{prefix}/{}", part.path)),
            ..part
        };
        let answer = store.get(&nested).await.expect("read");
        assert_eq!(answer, model.select(&nested), "query {nested:?}");
    }
    let _ = mutation; // keeps the strategy import used when cases change
}

// ---------- targeted checks ----------

pub async fn commits_get_increasing_sequences_and_effects(store: Arc<dyn Store>) {
    assert_eq!(store.last_seq().await.unwrap(), 0);
    let a = commit(
        &*store,
        1,
        json!({"merge": {"todos": {"t1": {"text": "a"}}}}),
    )
    .await;
    let b = commit(
        &*store,
        2,
        json!({"merge": {"todos": {"t2": {"text": "b"}}}}),
    )
    .await;
    assert_eq!((a.seq, b.seq), (1, 2));
    assert_eq!(store.last_seq().await.unwrap(), 2);
    let late = commit(
        &*store,
        0,
        json!({"merge": {"todos": {"t1": {"text": "old"}}}}),
    )
    .await;
    assert!(
        late.effect.is_empty(),
        "an older write loses: {:?}",
        late.effect
    );
    assert_eq!(
        get(&*store, "todos").await,
        Some(json!({"t1": {"text": "a"}, "t2": {"text": "b"}}))
    );
}

pub async fn older_write_cannot_resurrect_deleted_subtree(store: Arc<dyn Store>) {
    commit(&*store, 5, json!({"delete": {"a": 1}})).await;
    commit(&*store, 3, json!({"merge": {"a": {"b": 1}}})).await;
    assert_eq!(get(&*store, "a").await, None);
    commit(&*store, 6, json!({"merge": {"a": {"c": 1}}})).await;
    assert_eq!(get(&*store, "a").await, Some(json!({"c": 1})));
}

/// `records` lists leaves with their stamps and tombstones, in key order, page by page.
pub async fn records_list_stamps_and_tombstones(store: Arc<dyn Store>) {
    commit(
        &*store,
        1,
        json!({"merge": {"a": {"b": 1, "c": 2}, "z": {"y": 0}}}),
    )
    .await;
    commit(&*store, 2, json!({"delete": {"a": {"c": 1}}})).await;
    commit(&*store, 3, json!({"merge": {"d": "x"}})).await;
    commit(&*store, 4, json!({"delete": {"z": 1}})).await;
    // What each path holds (leaf stamp and value, tombstone). Stores differ in what they
    // need beyond that: branch stamps, and a tombstone no newer than the leaf beside it
    // (which the leaf's write implies), so those are left out.
    type Listed = Vec<(String, Option<(Stamp, Value)>, Option<Stamp>)>;
    let listed = |page: Vec<(Path, kora_core::records::Record)>| -> Listed {
        page.into_iter()
            .map(|(path, r)| {
                let leaf_stamp = r.leaf.as_ref().map(|(s, _)| *s);
                let tombstone = r.tombstone.filter(|t| leaf_stamp.is_none_or(|l| *t > l));
                (path.to_string(), r.leaf, tombstone)
            })
            .filter(|(_, leaf, tombstone)| leaf.is_some() || tombstone.is_some())
            .collect()
    };
    let all = listed(store.records(Page::new(&p(""), None, 100)).await.unwrap());
    let leaf = |path: &str, n: u64, value: Value| (path.to_string(), Some((stamp(n), value)), None);
    let gone = |path: &str, n: u64| (path.to_string(), None, Some(stamp(n)));
    assert_eq!(
        all,
        [
            leaf("a/b", 1, json!(1)),
            gone("a/c", 2),
            leaf("d", 3, json!("x")),
            gone("z", 4)
        ]
    );
    // Paging: after a path, under a path, and a limit.
    let mut paged = Vec::new();
    let mut after: Option<Path> = None;
    loop {
        let page = store
            .records(Page::new(&p(""), after.as_ref(), 1))
            .await
            .unwrap();
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        paged.extend(listed(page));
    }
    assert_eq!(paged, all);
    let under_a = listed(store.records(Page::new(&p("a"), None, 100)).await.unwrap());
    assert_eq!(under_a, [leaf("a/b", 1, json!(1)), gone("a/c", 2)]);
    assert!(store
        .records(Page::new(&p(""), None, 0))
        .await
        .unwrap()
        .is_empty());
}

pub async fn ranged_and_limited_reads(store: Arc<dyn Store>) {
    let mut items = Map::new();
    for i in 0..50 {
        items.insert(format!("k{i:03}"), json!({"n": i}));
    }
    commit(&*store, 1, json!({"merge": {"items": items}})).await;
    let part = |min: Option<&str>, max: Option<&str>, limit, reverse| PathQuery {
        min: min.map(String::from),
        max: max.map(String::from),
        limit,
        reverse,
        ..PathQuery::new(p("items"))
    };
    let keys = |v: Option<Value>| -> Vec<String> {
        v.and_then(|v| v.as_object().cloned())
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let got = store
        .get(&part(Some("k010"), Some("k013"), None, false))
        .await
        .unwrap();
    assert_eq!(keys(got), ["k010", "k011", "k012", "k013"]);
    let got = store.get(&part(None, None, Some(2), true)).await.unwrap();
    assert_eq!(keys(got), ["k048", "k049"]);
    let got = store
        .get(&part(Some("k020"), None, Some(3), false))
        .await
        .unwrap();
    assert_eq!(keys(got), ["k020", "k021", "k022"]);
    let got = store
        .get(&part(Some("z"), Some("a"), None, false))
        .await
        .unwrap();
    assert_eq!(got, None);
}

pub async fn snapshot_reads_several_paths_at_one_sequence(store: Arc<dyn Store>) {
    commit(&*store, 1, json!({"merge": {"a": 1, "b": {"c": 2}}})).await;
    let snapshot = store
        .read(&[
            PathQuery::new(p("a")),
            PathQuery::new(p("b")),
            PathQuery::new(p("nope")),
        ])
        .await
        .unwrap();
    assert_eq!(snapshot.seq, 1);
    assert_eq!(
        snapshot.values,
        vec![Some(json!(1)), Some(json!({"c": 2})), None]
    );
}

pub async fn concurrent_commits_get_distinct_consecutive_sequences(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..200u64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let m = Mutation::merge(&p(&format!("c/{}/{}", i % 20, i)), json!(i)).unwrap();
                store.commit(Write::new(stamp(i), m)).await.expect("commit")
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap().seq);
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=200).collect::<Vec<u64>>());
    let LogRead::Changes(changes) = store.changes(0, 1_000).await.unwrap() else {
        panic!("compacted");
    };
    let mut plain = Map::new();
    for change in &changes {
        change.mutation.apply_to(&mut plain);
    }
    assert_eq!(Some(Value::Object(plain)), get(&*store, "").await);
}

pub async fn change_log_pages_and_reports_compaction(store: Arc<dyn Store>) {
    for i in 1..=10 {
        commit(&*store, i, json!({"merge": {"log": {format!("e{i}"): i}}})).await;
    }
    let LogRead::Changes(page) = store.changes(3, 4).await.unwrap() else {
        panic!("compacted");
    };
    assert_eq!(page.iter().map(|c| c.seq).collect::<Vec<_>>(), [4, 5, 6, 7]);
    assert_eq!(page[0].stamp, stamp(4));
    let LogRead::Changes(tail) = store.changes(10, 4).await.unwrap() else {
        panic!("compacted");
    };
    assert!(tail.is_empty());
    // Compact everything committed until now: the log no longer covers sequence 1.
    let far_future = kora_core::stamp::wall_millis() + 60_000;
    let report = store.compact(Stamp::ZERO, far_future).await.unwrap();
    assert_eq!(report.log_entries_removed, 10);
    assert_eq!(
        store.changes(0, 10).await.unwrap(),
        LogRead::Compacted { oldest: 11 }
    );
    assert_eq!(
        store.changes(10, 10).await.unwrap(),
        LogRead::Changes(vec![])
    );
    let stats = store.stats().await.unwrap();
    assert_eq!(
        (stats.last_seq, stats.log_start, stats.log_entries),
        (10, 11, 0)
    );
    commit(&*store, 11, json!({"merge": {"log": {"e11": 11}}})).await;
    let LogRead::Changes(next) = store.changes(10, 10).await.unwrap() else {
        panic!("compacted");
    };
    assert_eq!(next.iter().map(|c| c.seq).collect::<Vec<_>>(), [11]);
}

pub async fn compaction_keeps_the_tree(store: Arc<dyn Store>) {
    commit(&*store, 1, json!({"merge": {"a": {"x": 1, "y": 2}}})).await;
    commit(&*store, 2, json!({"delete": {"a": {"x": 1}}})).await;
    store.compact(stamp(100), 0).await.unwrap();
    assert_eq!(get(&*store, "").await, Some(json!({"a": {"y": 2}})));
}

pub async fn outbox_claims_leases_retries_and_buries(store: Arc<dyn Store>) {
    let mutation = Mutation::merge(&p("orders/o1"), json!({"total": 5})).unwrap();
    let write = Write {
        effects: vec![
            NewEffect {
                kind: "webhook".into(),
                payload: json!({"url": "http://127.0.0.1:1/a"}),
            },
            NewEffect {
                kind: "webhook".into(),
                payload: json!({"url": "http://127.0.0.1:1/b"}),
            },
        ],
        ..Write::new(stamp(1), mutation)
    };
    let c = store.commit(write).await.unwrap();
    let now = kora_core::stamp::wall_millis();
    let claimed = store.claim_effects(ten_due(now)).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(claimed
        .iter()
        .all(|e| e.seq == c.seq && e.kind == "webhook"));
    // Leased: a second runner gets nothing until the lease ends.
    assert!(store.claim_effects(ten_due(now)).await.unwrap().is_empty());
    let again = store.claim_effects(ten_due(now + 30_001)).await.unwrap();
    assert_eq!(again.len(), 2, "an expired lease is claimed again");

    let (a, b) = (claimed[0].id, claimed[1].id);
    store.complete_effect(a).await.unwrap();
    store
        .retry_effect(b, now + 100_000, "HTTP 500")
        .await
        .unwrap();
    assert!(store
        .claim_effects(ten_due(now + 60_002))
        .await
        .unwrap()
        .is_empty());
    let retried = store.claim_effects(ten_due(now + 100_000)).await.unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].attempts, 1);
    assert_eq!(retried[0].last_error.as_deref(), Some("HTTP 500"));

    store.bury_effect(b, "gave up").await.unwrap();
    let dead = store.dead_effects(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 2);
    assert!(store
        .claim_effects(ten_due(now + 200_000))
        .await
        .unwrap()
        .is_empty());
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.effects_pending, stats.effects_dead), (0, 1));
    let counts = store.effect_counts().await.unwrap();
    assert_eq!((counts.pending, counts.dead), (0, 1));

    store.revive_effect(b).await.unwrap();
    let revived = store.claim_effects(ten_due(now + 200_000)).await.unwrap();
    assert_eq!(revived.len(), 1);
    assert_eq!(revived[0].attempts, 0);
    assert_eq!(
        store.discard_effect(b).await,
        Err(StoreError::NoSuchEffect(b)),
        "a pending effect is not discarded"
    );
    assert_eq!(
        store.revive_effect(b).await,
        Err(StoreError::NoSuchEffect(b)),
        "only a dead effect is revived"
    );
    store.bury_effect(b, "gave up again").await.unwrap();
    store.discard_effect(b).await.unwrap();
    assert!(store.dead_effects(10).await.unwrap().is_empty());
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.effects_pending, stats.effects_dead), (0, 0));
    assert_eq!(
        store.complete_effect(9_999).await,
        Err(StoreError::NoSuchEffect(9_999))
    );
}

pub async fn closed_store_refuses_work(store: Arc<dyn Store>) {
    commit(&*store, 1, json!({"merge": {"a": 1}})).await;
    store.close().await.unwrap();
    let err = store
        .commit(Write::new(stamp(2), Mutation::delete(&p("a"))))
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::Closed);
}

// ---------- conditional writes (`kora_store::condition`) ----------

/// The value at `path` and the sequence it was read at.
async fn read_at(store: &dyn Store, path: &str) -> (Option<Value>, Seq) {
    let snapshot = store.read(&[PathQuery::new(p(path))]).await.expect("read");
    (snapshot.values.into_iter().next().flatten(), snapshot.seq)
}

async fn commit_if(
    store: &dyn Store,
    n: u64,
    mutation: Value,
    conditions: Vec<Condition>,
) -> Result<Commit, StoreError> {
    let mutation = Mutation::from_json(&mutation).expect("valid mutation");
    store
        .commit(Write::new(stamp(n), mutation).on(conditions))
        .await
}

fn failed(result: Result<Commit, StoreError>) -> Vec<usize> {
    match result {
        Err(StoreError::Conflict(conflict)) => conflict.failed,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

pub async fn conditions_are_checked_against_the_committed_tree(store: Arc<dyn Store>) {
    commit(&*store, 1, json!({"merge": {"c": {"n": 5, "o": {"x": 1}}}})).await;
    let set_n = |v: i64| json!({"merge": {"c": {"n": v}}});
    // Equals: a leaf, a subtree, numbers by value, nothing.
    let ok = commit_if(
        &*store,
        2,
        set_n(6),
        vec![Condition::equals(p("c/n"), Some(json!(5.0)))],
    );
    assert_eq!(ok.await.expect("5.0 equals 5").seq, 2);
    let stale = commit_if(
        &*store,
        3,
        set_n(7),
        vec![Condition::equals(p("c/n"), Some(json!(5)))],
    );
    assert_eq!(failed(stale.await), [0]);
    let whole = Condition::equals(p("c/o"), Some(json!({"x": 1})));
    assert!(commit_if(&*store, 4, set_n(8), vec![whole]).await.is_ok());
    let absent = |path: &str| Condition::absent(p(path));
    assert!(commit_if(&*store, 5, set_n(9), vec![absent("c/none")])
        .await
        .is_ok());
    let both = vec![absent("c/none"), absent("c/n"), absent("c/o/x")];
    assert_eq!(failed(commit_if(&*store, 6, set_n(10), both).await), [1, 2]);
    // A refused write takes no sequence and writes nothing.
    assert_eq!(store.last_seq().await.unwrap(), 4);
    assert_eq!(get(&*store, "c/n").await, Some(json!(9)));
    assert_eq!(commit(&*store, 7, json!({"merge": {"d": 1}})).await.seq, 5);
    let LogRead::Changes(log) = store.changes(0, 100).await.unwrap() else {
        panic!("compacted");
    };
    assert_eq!(
        log.iter().map(|c| c.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
}

pub async fn unchanged_since_sees_every_touch_after_its_sequence(store: Arc<dyn Store>) {
    commit(&*store, 1, json!({"merge": {"a": {"b": {"c": 1}, "s": 1}}})).await;
    let (_, seq) = read_at(&*store, "a/b").await;
    let since = |path: &str| vec![Condition::unchanged(p(path), seq)];
    // Nothing touched a/b yet: passes (and a write elsewhere does not disturb it).
    commit(&*store, 2, json!({"merge": {"a": {"s": 2}}})).await;
    assert!(
        commit_if(&*store, 3, json!({"merge": {"x": 1}}), since("a/b"))
            .await
            .is_ok()
    );
    // A write beneath, at, or a delete above the path: each fails it.
    commit(&*store, 4, json!({"merge": {"a": {"b": {"c": {"d": 2}}}}})).await;
    assert_eq!(
        failed(commit_if(&*store, 5, json!({"merge": {"x": 2}}), since("a/b")).await),
        [0]
    );
    let (_, seq) = read_at(&*store, "a/b").await;
    commit(&*store, 6, json!({"delete": {"a": 1}})).await;
    let cond = vec![Condition::unchanged(p("a/b/c"), seq)];
    assert_eq!(
        failed(commit_if(&*store, 7, json!({"merge": {"x": 3}}), cond).await),
        [0]
    );
    // Once the log no longer holds the commits after `since`, a change among them must
    // still fail the condition: a store that cannot vouch for the path treats it as changed.
    let far_future = kora_core::stamp::wall_millis() + 60_000;
    store.compact(Stamp::ZERO, far_future).await.unwrap();
    let (_, now) = read_at(&*store, "q").await;
    let old = vec![Condition::unchanged(p("a"), 1)];
    assert_eq!(
        failed(commit_if(&*store, 8, json!({"merge": {"x": 4}}), old).await),
        [0]
    );
    let fresh = vec![Condition::unchanged(p("q"), now)];
    assert!(commit_if(&*store, 9, json!({"merge": {"x": 5}}), fresh)
        .await
        .is_ok());
}

pub async fn a_passing_conditional_write_beats_newer_stamps(store: Arc<dyn Store>) {
    commit(&*store, 500, json!({"merge": {"k": {"v": 1}}})).await;
    // An older stamp would lose to the leaf's; its condition held, so it must apply.
    let cond = vec![Condition::equals(p("k/v"), Some(json!(1)))];
    let done = commit_if(&*store, 10, json!({"merge": {"k": {"v": 2}}}), cond)
        .await
        .expect("commit");
    assert!(
        done.stamp > stamp(500),
        "restamped above the leaf: {:?}",
        done.stamp
    );
    assert_eq!(done.stamp.origin(), stamp(10).origin());
    assert_eq!(get(&*store, "k/v").await, Some(json!(2)));
    let cond = vec![Condition::absent(p("k/w"))];
    let replace = json!({"delete": {"k": 1}, "merge": {"k": {"w": 3}}});
    let done = commit_if(&*store, 11, replace, cond).await.expect("commit");
    assert_eq!(get(&*store, "k").await, Some(json!({"w": 3})));
    // A server-stamped write is ordered by commit too; a client's keeps its stamp (and
    // loses to the newer one).
    let client = Mutation::merge(&p("k/w"), json!(4)).unwrap();
    let lost = store
        .commit(Write::new(stamp(12), client.clone()))
        .await
        .unwrap();
    assert!(lost.effect.is_empty());
    let server = Write {
        server_stamped: true,
        ..Write::new(stamp(12), client)
    };
    let applied = store.commit(server).await.unwrap();
    assert!(applied.stamp > done.stamp);
    assert_eq!(get(&*store, "k/w").await, Some(json!(4)));
}

/// Concurrent writers on one group commit: refused writes fail alone.
pub async fn a_refused_write_leaves_its_group_committing(store: Arc<dyn Store>) {
    commit(&*store, 1, json!({"merge": {"g": {"v": 0}}})).await;
    let tasks: Vec<_> = (0..100u64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let holds = i % 2 == 0;
                let expect = if holds { json!(0) } else { json!(-1) };
                let m = json!({"merge": {"g": {"w": {i.to_string(): i}}}});
                let cond = vec![Condition::equals(p("g/v"), Some(expect))];
                (holds, commit_if(&*store, 10 + i, m, cond).await)
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (true, Ok(commit)) => seqs.push(commit.seq),
            (false, Err(StoreError::Conflict(_))) => {}
            (holds, other) => panic!("condition holds: {holds}, got {other:?}"),
        }
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (2..52).collect::<Vec<u64>>());
    let written = get(&*store, "g/w").await.unwrap();
    assert_eq!(written.as_object().unwrap().len(), 50);
}

/// Runs `work(i)` for `i` in `0..tasks` on tasks of their own, all at once; what each returns.
async fn race<F, Fut>(tasks: u64, work: F) -> Vec<Fut::Output>
where
    F: Fn(u64) -> Fut,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let handles: Vec<_> = (0..tasks).map(|i| tokio::spawn(work(i))).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.expect("task"));
    }
    out
}

/// The classic lost update, as a schedule (read, someone else writes, write back) and under
/// load: 16 writers incrementing one counter by read-compute-write, retrying on conflict, with
/// stamps that run backwards (each write older than the last). A store that skips the check
/// loses increments; one that honours it ends at exactly the number of increments.
pub async fn no_lost_update_under_concurrent_increments(store: Arc<dyn Store>) {
    commit(&*store, 1, json!({"merge": {"n": 0}})).await;
    let (value, seq) = read_at(&*store, "n").await;
    commit(&*store, 2, json!({"merge": {"n": 1}})).await; // another writer
    let since = vec![Condition::unchanged(p("n"), seq)];
    assert_eq!(
        failed(commit_if(&*store, 3, json!({"merge": {"n": 1}}), since).await),
        [0]
    );
    let equals = vec![Condition::equals(p("n"), value)];
    assert_eq!(
        failed(commit_if(&*store, 3, json!({"merge": {"n": 1}}), equals).await),
        [0]
    );

    const WRITERS: u64 = 16;
    const EACH: u64 = 20;
    let next_stamp = Arc::new(AtomicU64::new(1_000_000));
    let results = race(WRITERS, |w| {
        let store = store.clone();
        let next_stamp = next_stamp.clone();
        async move {
            let mut conflicts = 0;
            for _ in 0..EACH {
                loop {
                    let (value, seq) = read_at(&*store, "n").await;
                    let n = value.and_then(|v| v.as_i64()).expect("a number");
                    // Alternate the two kinds of condition between writers.
                    let cond = if w % 2 == 0 {
                        Condition::unchanged(p("n"), seq)
                    } else {
                        Condition::equals(p("n"), Some(json!(n)))
                    };
                    let t = next_stamp.fetch_sub(1, Ordering::SeqCst);
                    let m = Mutation::merge(&p("n"), json!(n + 1)).unwrap();
                    match store.commit(Write::new(stamp(t), m).on(vec![cond])).await {
                        Ok(_) => break,
                        Err(StoreError::Conflict(_)) => conflicts += 1,
                        Err(e) => panic!("commit: {e}"),
                    }
                }
            }
            conflicts
        }
    })
    .await;
    let conflicts: u64 = results.iter().sum();
    assert_eq!(get(&*store, "n").await, Some(json!(1 + WRITERS * EACH)));
    println!("conformance: {WRITERS} writers x {EACH} increments: {conflicts} conflicts retried");
}

/// A read-modify-write of a whole node (replace it with one field changed) racing blind
/// writes of new children: with the condition, no acknowledged child is ever erased.
pub async fn read_modify_write_erases_no_racing_blind_write(store: Arc<dyn Store>) {
    commit(&*store, 1, json!({"merge": {"doc": {"title": "t0"}}})).await;
    let (doc, seq) = read_at(&*store, "doc").await;
    commit(&*store, 2, json!({"merge": {"doc": {"c0": true}}})).await;
    let mut next = doc.unwrap();
    next["title"] = json!("t1");
    let replace = json!({"delete": {"doc": 1}, "merge": {"doc": next}});
    let since = vec![Condition::unchanged(p("doc"), seq)];
    assert_eq!(failed(commit_if(&*store, 3, replace, since).await), [0]);

    const CHILDREN: u64 = 60;
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 1..=CHILDREN {
                // Stamped by the server on arrival, long before it commits (the worst
                // case): it is ordered by commit, after the rewrite it raced.
                let m = Mutation::merge(&p(&format!("doc/c{i}")), json!(true)).unwrap();
                let write = Write {
                    server_stamped: true,
                    ..Write::new(stamp(100 + i), m)
                };
                store.commit(write).await.expect("blind write");
                tokio::task::yield_now().await;
            }
        })
    };
    let rewriter = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut done = 0;
            while done < 30 {
                let (doc, seq) = read_at(&*store, "doc").await;
                let mut next = doc.unwrap_or_else(|| json!({}));
                next["title"] = json!(format!("t{done}"));
                let mutation = Mutation::set(&p("doc"), next).unwrap();
                let write = Write::new(stamp(10_000 + done), mutation)
                    .on(vec![Condition::unchanged(p("doc"), seq)]);
                match store.commit(write).await {
                    Ok(_) => done += 1,
                    Err(StoreError::Conflict(_)) => {}
                    Err(e) => panic!("commit: {e}"),
                }
            }
        })
    };
    writer.await.unwrap();
    rewriter.await.unwrap();
    let doc = get(&*store, "doc").await.unwrap();
    for i in 1..=CHILDREN {
        assert_eq!(
            doc.get(format!("c{i}")),
            Some(&json!(true)),
            "child c{i} erased: {doc}"
        );
    }
}

/// A factory for a SQL backend: each check gets a database of its own on the server that
/// `$env` names, created through an admin connection of type `$connection`, opened as
/// `$store`, and dropped afterwards with `$drop` (`DROP DATABASE IF EXISTS <name>` and what
/// follows it).
#[macro_export]
macro_rules! sql_factory {
    ($env:literal, $connection:ty, $store:ty, $drop:literal) => {
        fn factory() -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Option<conformance::Opened>> + Send>,
        > {
            use sqlx::Connection;
            Box::pin(async {
                let admin_url = std::env::var($env).ok()?;
                let name = conformance::unique_name("kora_test");
                let mut admin = <$connection>::connect(&admin_url)
                    .await
                    .expect("connect");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .await
                    .expect("create database");
                let url = conformance::with_database(&admin_url, &name);
                let store = <$store>::open(&url).await.expect("open");
                let cleanup = Box::pin(async move {
                    let drop = format!("DROP DATABASE IF EXISTS {name}{}", $drop);
                    let _ = sqlx::query(&drop).execute(&mut admin).await;
                });
                Some(conformance::Opened {
                    store: std::sync::Arc::new(store) as std::sync::Arc<dyn kora_store::Store>,
                    cleanup: Some(cleanup),
                })
            })
        }
    };
}

/// One `#[test]` per check, for a backend's factory.
#[macro_export]
macro_rules! conformance_tests {
    ($name:expr, $factory:expr) => {
        #[test]
        fn model_based() {
            conformance::model_based($name, $factory);
        }
        #[test]
        fn commits_get_increasing_sequences_and_effects() {
            conformance::with_store(
                $name,
                $factory,
                conformance::commits_get_increasing_sequences_and_effects,
            );
        }
        #[test]
        fn older_write_cannot_resurrect_deleted_subtree() {
            conformance::with_store(
                $name,
                $factory,
                conformance::older_write_cannot_resurrect_deleted_subtree,
            );
        }
        #[test]
        fn records_list_stamps_and_tombstones() {
            conformance::with_store(
                $name,
                $factory,
                conformance::records_list_stamps_and_tombstones,
            );
        }
        #[test]
        fn ranged_and_limited_reads() {
            conformance::with_store($name, $factory, conformance::ranged_and_limited_reads);
        }
        #[test]
        fn snapshot_reads_several_paths_at_one_sequence() {
            conformance::with_store(
                $name,
                $factory,
                conformance::snapshot_reads_several_paths_at_one_sequence,
            );
        }
        #[test]
        fn concurrent_commits_get_distinct_consecutive_sequences() {
            conformance::with_store(
                $name,
                $factory,
                conformance::concurrent_commits_get_distinct_consecutive_sequences,
            );
        }
        #[test]
        fn change_log_pages_and_reports_compaction() {
            conformance::with_store(
                $name,
                $factory,
                conformance::change_log_pages_and_reports_compaction,
            );
        }
        #[test]
        fn compaction_keeps_the_tree() {
            conformance::with_store($name, $factory, conformance::compaction_keeps_the_tree);
        }
        #[test]
        fn outbox_claims_leases_retries_and_buries() {
            conformance::with_store(
                $name,
                $factory,
                conformance::outbox_claims_leases_retries_and_buries,
            );
        }
        #[test]
        fn conditions_are_checked_against_the_committed_tree() {
            conformance::with_store(
                $name,
                $factory,
                conformance::conditions_are_checked_against_the_committed_tree,
            );
        }
        #[test]
        fn unchanged_since_sees_every_touch_after_its_sequence() {
            conformance::with_store(
                $name,
                $factory,
                conformance::unchanged_since_sees_every_touch_after_its_sequence,
            );
        }
        #[test]
        fn a_passing_conditional_write_beats_newer_stamps() {
            conformance::with_store(
                $name,
                $factory,
                conformance::a_passing_conditional_write_beats_newer_stamps,
            );
        }
        #[test]
        fn a_refused_write_leaves_its_group_committing() {
            conformance::with_store(
                $name,
                $factory,
                conformance::a_refused_write_leaves_its_group_committing,
            );
        }
        #[test]
        fn no_lost_update_under_concurrent_increments() {
            conformance::with_store(
                $name,
                $factory,
                conformance::no_lost_update_under_concurrent_increments,
            );
        }
        #[test]
        fn read_modify_write_erases_no_racing_blind_write() {
            conformance::with_store(
                $name,
                $factory,
                conformance::read_modify_write_erases_no_racing_blind_write,
            );
        }
        #[test]
        fn closed_store_refuses_work() {
            conformance::with_store($name, $factory, conformance::closed_store_refuses_work);
        }
    };
}

/// A claim of up to ten effects due at `now_ms`, leased for 30_000 ms.
fn ten_due(now_ms: u64) -> Claim {
    Claim {
        now_ms,
        lease_ms: 30_000,
        limit: 10,
    }
}
