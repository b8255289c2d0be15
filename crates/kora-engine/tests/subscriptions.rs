//! Subscriptions: each subscriber gets exactly its part, in order; slow ones resync without
//! slowing others; resumes replay exactly what was missed.

use std::time::Duration;

use kora_core::testing::{mutation, path_query};
use kora_core::{Mutation, Path, PathQuery, Query};
use kora_engine::{Config, Context, Initial, Kora, Push, Resume, Session};
use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, TestRunner};
use serde_json::{json, Map, Value};

fn p(text: &str) -> Path {
    Path::parse(text).unwrap()
}

/// A subscriber's local copy, built the way a client builds it.
#[derive(Default)]
struct View {
    tree: Map<String, Value>,
}

impl View {
    fn start(&mut self, query: &PathQuery, initial: Initial) {
        match initial {
            Initial::Snapshot { value, .. } | Initial::Reset { value, .. } => {
                self.tree.clear();
                if let Some(value) = value {
                    kora_core::query::place(&mut self.tree, query.path.segments(), value);
                }
            }
            Initial::Replay { changes, .. } => {
                for change in changes {
                    change.mutation.apply_to(&mut self.tree);
                }
            }
        }
    }

    fn apply(&mut self, query: &PathQuery, push: Push) {
        match push {
            Push::Change { mutation, .. } => mutation.apply_to(&mut self.tree),
            Push::Reset { value, .. } => {
                self.start(query, Initial::Snapshot { seq: 0, value });
            }
            Push::Ended { id, error } => panic!("subscription {id} ended: {error}"),
        }
    }

    fn select(&self, query: &PathQuery) -> Value {
        Query {
            paths: vec![query.clone()],
        }
        .select(&self.tree)
    }
}

/// True when `path` lies outside what `query` may see: off its path, or a child outside
/// its key range.
fn leaks(query: &PathQuery, path: &Path) -> bool {
    if query.path.starts_with(path) {
        return false; // an ancestor (or the path itself) of the subscription
    }
    if !path.starts_with(&query.path) {
        return true;
    }
    let child = &path.segments()[query.path.depth()];
    !query.admits(child)
}

/// Takes every push queued once the fan-out has delivered everything committed so far.
async fn drain(session: &mut Session) -> Vec<Push> {
    let kora = session.kora().clone();
    let last = kora.store().last_seq().await.unwrap();
    kora.wait_delivered(last).await;
    let mut out = Vec::new();
    while let Ok(Some(push)) = tokio::time::timeout(Duration::from_millis(5), session.next()).await
    {
        out.push(push);
    }
    out
}

#[test]
fn every_subscriber_gets_exactly_its_part() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut runner = TestRunner::new(PropConfig {
        cases: 256,
        // A failing case is saved beside this file (`*.regressions`) and tried first on
        // every later run: commit it with the fix.
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        source_file: Some(file!()),
        ..PropConfig::default()
    });
    let strategy = (
        prop::collection::vec(mutation(), 1..8),
        prop::collection::vec(path_query(), 1..5),
    );
    runner
        .run(&strategy, |(mutations, queries)| {
            rt.block_on(async {
                let kora = Kora::builder().build().await.unwrap();
                let writer = Context::new(1);
                // Some data before anyone subscribes.
                kora.mutate(&writer, mutations[0].clone(), None)
                    .await
                    .unwrap();
                let mut sessions = Vec::new();
                for (i, query) in queries.iter().enumerate() {
                    // Unlimited subscriptions are restricted per change; limited ones re-read.
                    let mut session = kora.session(Context::new(10 + i as u64));
                    let initial = session.subscribe("s", query.clone(), None).await.unwrap();
                    let mut view = View::default();
                    view.start(query, initial);
                    sessions.push((session, view));
                }
                for m in &mutations[1..] {
                    kora.mutate(&writer, m.clone(), None).await.unwrap();
                }
                let root = kora.read_value(&Path::root()).await.unwrap();
                let mut full = Map::new();
                if let Some(Value::Object(m)) = root {
                    full = m;
                }
                for ((session, view), query) in sessions.iter_mut().zip(&queries) {
                    for push in drain(session).await {
                        if let Push::Change { mutation, .. } = &push {
                            let leaks = mutation.layers().iter().any(|l| leaks(query, &l.path));
                            assert!(!leaks, "{mutation:?} leaks outside {query:?}");
                        }
                        view.apply(query, push);
                    }
                    let expected = Query {
                        paths: vec![query.clone()],
                    }
                    .select(&full);
                    assert_eq!(view.select(query), expected, "{query:?}");
                }
                kora.shutdown().await;
            });
            Ok(())
        })
        .unwrap();
}

#[tokio::test]
async fn queued_changes_are_processed_together_in_order_up_to_the_bound() {
    let kora = Kora::builder().build().await.unwrap();
    let mut session = kora.session(Context::new(2));
    session
        .subscribe("feed", PathQuery::new(p("feed")), None)
        .await
        .unwrap();
    let writer = Context::new(1);
    for i in 0..5 {
        let m = Mutation::merge(&p(&format!("feed/{i}")), json!(i)).unwrap();
        let seq = kora.mutate(&writer, m, None).await.unwrap().seq;
        kora.wait_delivered(seq).await;
    }
    let seqs = |pushes: Vec<Push>| -> Vec<u64> {
        pushes
            .into_iter()
            .map(|push| match push {
                Push::Change { seq, .. } => seq,
                other => panic!("expected a change, got {other:?}"),
            })
            .collect()
    };
    // Two more than the first: three of the five queued changes, oldest first.
    let first = session.recv().await.unwrap();
    let three = seqs(session.process_ready(first, 2).await);
    assert_eq!(three.len(), 3);
    assert!(three.windows(2).all(|w| w[0] < w[1]));
    // The rest come with the next one, and nothing is left behind them.
    let next = session.recv().await.unwrap();
    let rest = seqs(session.process_ready(next, 100).await);
    assert_eq!(rest.len(), 2);
    assert!(three[2] < rest[0]);
    assert!(session.try_recv().is_none());
}

#[tokio::test]
async fn a_slow_subscriber_does_not_delay_others_and_is_reset() {
    let config = Config {
        session_queue: 4,
        ..Config::default()
    };
    let kora = Kora::builder().config(config).build().await.unwrap();
    let mut slow = kora.session(Context::new(2));
    let mut fast = kora.session(Context::new(3));
    slow.subscribe("s", PathQuery::new(p("feed")), None)
        .await
        .unwrap();
    fast.subscribe("f", PathQuery::new(p("feed")), None)
        .await
        .unwrap();
    let writer = Context::new(1);
    for i in 0..20 {
        let m = Mutation::merge(&p(&format!("feed/{i:02}")), json!(i)).unwrap();
        kora.mutate(&writer, m, None).await.unwrap();
        // The fast one keeps up.
        let push = tokio::time::timeout(Duration::from_secs(2), fast.next())
            .await
            .expect("the fast subscriber is not delayed")
            .unwrap();
        assert!(matches!(push, Push::Change { .. }));
    }
    // The slow one overflowed: it gets one fresh snapshot with everything.
    let pushes = drain(&mut slow).await;
    let last = pushes.last().cloned().expect("a reset");
    match last {
        Push::Reset {
            value: Some(Value::Object(map)),
            ..
        } => assert_eq!(map.len(), 20),
        other => panic!("expected a reset, got {other:?}"),
    }
    assert!(kora.metrics().queue_overflows.get() >= 1);
}

#[tokio::test]
async fn resume_from_a_sequence_gives_exactly_the_missed_changes() {
    let kora = Kora::builder().build().await.unwrap();
    let writer = Context::new(1);
    let m = |path: &str, v: Value| Mutation::merge(&p(path), v).unwrap();
    kora.mutate(&writer, m("todos/a", json!(1)), None)
        .await
        .unwrap();
    let seen = kora
        .mutate(&writer, m("todos/b", json!(2)), None)
        .await
        .unwrap()
        .seq;
    kora.mutate(&writer, m("other/x", json!(3)), None)
        .await
        .unwrap();
    kora.mutate(&writer, m("todos/c", json!(4)), None)
        .await
        .unwrap();
    kora.mutate(&writer, Mutation::delete(&p("todos/a")), None)
        .await
        .unwrap();

    let mut session = kora.session(Context::new(2));
    let initial = session
        .subscribe("t", PathQuery::new(p("todos")), Some(Resume::after(seen)))
        .await
        .unwrap();
    let Initial::Replay { seq, changes } = initial else {
        panic!("expected a replay, got {initial:?}");
    };
    assert_eq!(seq, 5);
    let replayed: Vec<(u64, Value)> = changes
        .iter()
        .map(|c| (c.seq, c.mutation.to_json()))
        .collect();
    assert_eq!(
        replayed,
        [
            (4, json!({"merge": {"todos": {"c": 4}}, "delete": {}})),
            (5, json!({"merge": {}, "delete": {"todos": {"a": 1}}})),
        ]
    );
    // Then live changes continue after the replay, none twice.
    kora.mutate(&writer, m("todos/d", json!(5)), None)
        .await
        .unwrap();
    let pushes = drain(&mut session).await;
    let seqs: Vec<u64> = pushes
        .iter()
        .filter_map(|p| match p {
            Push::Change { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(seqs, [6]);
}

#[tokio::test]
async fn resume_past_a_compacted_log_gets_a_reset() {
    let kora = Kora::builder().build().await.unwrap();
    let writer = Context::new(1);
    for i in 0..3 {
        let m = Mutation::merge(&p(&format!("l/{i}")), json!(i)).unwrap();
        kora.mutate(&writer, m, None).await.unwrap();
    }
    let far = kora_core::stamp::wall_millis() + 60_000;
    kora.store()
        .compact(kora_core::Stamp::ZERO, far)
        .await
        .unwrap();
    let mut session = kora.session(Context::new(2));
    let initial = session
        .subscribe("l", PathQuery::new(p("l")), Some(Resume::after(1)))
        .await
        .unwrap();
    assert_eq!(
        initial,
        Initial::Reset {
            seq: 3,
            value: Some(json!({"0": 0, "1": 1, "2": 2}))
        }
    );
}

#[tokio::test]
async fn a_limited_subscription_reports_children_entering_and_leaving_its_window() {
    let kora = Kora::builder().build().await.unwrap();
    let writer = Context::new(1);
    let m = |path: &str, v: Value| Mutation::merge(&p(path), v).unwrap();
    kora.mutate(&writer, m("l", json!({"b": 2, "c": 3, "d": 4})), None)
        .await
        .unwrap();
    let query = PathQuery {
        limit: Some(2),
        ..PathQuery::new(p("l"))
    };
    let mut session = kora.session(Context::new(2));
    let initial = session.subscribe("w", query.clone(), None).await.unwrap();
    let mut view = View::default();
    view.start(&query, initial);
    assert_eq!(view.select(&query), json!({"l": {"b": 2, "c": 3}}));
    kora.mutate(&writer, m("l/a", json!(1)), None)
        .await
        .unwrap();
    for push in drain(&mut session).await {
        view.apply(&query, push);
    }
    assert_eq!(view.select(&query), json!({"l": {"a": 1, "b": 2}}));
    kora.mutate(&writer, Mutation::delete(&p("l/a")), None)
        .await
        .unwrap();
    for push in drain(&mut session).await {
        view.apply(&query, push);
    }
    assert_eq!(view.select(&query), json!({"l": {"b": 2, "c": 3}}));
}

#[tokio::test]
async fn stored_subscriptions_are_followed_while_connected() {
    let kora = Kora::builder().build().await.unwrap();
    let writer = Context::new(1);
    let m = |path: &str, v: Value| Mutation::merge(&p(path), v).unwrap();
    kora.mutate(&writer, m("inbox/jack/m1", json!("hi")), None)
        .await
        .unwrap();
    kora.mutate(
        &writer,
        m(
            "kora:subscriptions/jack/inbox",
            json!({"path": "inbox/jack"}),
        ),
        None,
    )
    .await
    .unwrap();
    let mut session = kora.session(Context::new(2));
    session.follow_stored_subscriptions("jack").await.unwrap();
    let first = drain(&mut session).await;
    assert_eq!(
        first,
        [Push::Reset {
            id: "stored:inbox".into(),
            seq: 2,
            value: Some(json!({"m1": "hi"})),
            query: Some(PathQuery::new(Path::parse("inbox/jack").unwrap())),
        }]
    );
    kora.mutate(&writer, m("inbox/jack/m2", json!("there")), None)
        .await
        .unwrap();
    let next = drain(&mut session).await;
    assert!(matches!(&next[..], [Push::Change { id, .. }] if id == "stored:inbox"));
    // Removing the stored subscription stops the deliveries.
    kora.mutate(
        &writer,
        Mutation::delete(&p("kora:subscriptions/jack/inbox")),
        None,
    )
    .await
    .unwrap();
    drain(&mut session).await;
    kora.mutate(&writer, m("inbox/jack/m3", json!("gone")), None)
        .await
        .unwrap();
    assert!(drain(&mut session).await.is_empty());
    assert_eq!(session.subscription_count(), 1);
}
