//! Virtual paths inside reads of their ancestors (docs/interceptors.md, "Reads"): a read of
//! `users` holds `users/$uid/summary` for each user there, a read of `stats` (or of the root)
//! holds `stats/users`; a subscriber of an ancestor holds every virtual path's current answer
//! once changes settle, users coming and going included, against concurrent writers.

use std::time::Duration;

use async_trait::async_trait;
use kora_core::{Mutation, Path, PathQuery, Query};
use kora_engine::{
    Context, Error, Initial, Interceptor, Kora, Push, ReadLayer, Relation, Resume, Session,
};
use serde_json::{json, Map, Value};

fn p(text: &str) -> Path {
    Path::parse(text).unwrap()
}

/// `users/$uid/summary`: the user's orders, counted and summed; computed from
/// `orders/$uid`. The user `hidden` may not be summarised.
struct Summary;

#[async_trait]
impl Interceptor for Summary {
    fn answers_reads(&self) -> bool {
        true
    }

    fn resolves_from(&self, read: &ReadLayer<'_>) -> Vec<Path> {
        let Relation::Exact(captures) = read.relation else {
            return Vec::new();
        };
        p("orders")
            .child(captures["uid"].as_str())
            .into_iter()
            .collect()
    }

    async fn resolve_query(
        &self,
        read: &ReadLayer<'_>,
        _ctx: &Context,
    ) -> Result<Option<Value>, Error> {
        let Relation::Exact(captures) = read.relation else {
            return Ok(None);
        };
        let uid = captures["uid"].as_str();
        if uid == "hidden" {
            return Err(Error::permission_denied("not this one"));
        }
        let orders = read.kora.read_value(&p("orders").child(uid)?).await?;
        let orders = orders.as_ref().and_then(Value::as_object);
        let count = orders.map_or(0, Map::len);
        let total: i64 = orders
            .into_iter()
            .flat_map(|o| o.values())
            .filter_map(|o| o.get("amount").and_then(Value::as_i64))
            .sum();
        Ok(Some(json!({"orders": count, "total": total})))
    }
}

/// `stats/users`: how many users there are; computed from `users`.
struct UserStats;

#[async_trait]
impl Interceptor for UserStats {
    fn answers_reads(&self) -> bool {
        true
    }

    fn resolves_from(&self, _read: &ReadLayer<'_>) -> Vec<Path> {
        vec![p("users")]
    }

    async fn resolve_query(
        &self,
        read: &ReadLayer<'_>,
        _ctx: &Context,
    ) -> Result<Option<Value>, Error> {
        let users = read.kora.read_value(&p("users")).await?;
        let count = users
            .as_ref()
            .and_then(Value::as_object)
            .map_or(0, Map::len);
        Ok(Some(json!({"count": count})))
    }
}

/// A read filter taking every `total` out of what readers see.
struct HideTotals;

#[async_trait]
impl Interceptor for HideTotals {
    fn filters_reads(&self) -> bool {
        true
    }

    async fn filter_read(
        &self,
        _read: &ReadLayer<'_>,
        value: Option<Value>,
        _ctx: &Context,
    ) -> Result<Option<Value>, Error> {
        fn strip(value: &mut Value) {
            if let Value::Object(children) = value {
                children.remove("total");
                children.values_mut().for_each(strip);
            }
        }
        Ok(value.map(|mut value| {
            strip(&mut value);
            value
        }))
    }
}

async fn kora() -> Kora {
    Kora::builder()
        .interceptor("users/$uid/summary", Summary)
        .interceptor("stats/users", UserStats)
        .build()
        .await
        .unwrap()
}

async fn merge(kora: &Kora, path: &str, value: Value) {
    let mutation = Mutation::merge(&p(path), value).unwrap();
    kora.mutate(&Context::new(1), mutation, None).await.unwrap();
}

async fn delete(kora: &Kora, path: &str) {
    let mutation = Mutation::delete(&p(path));
    kora.mutate(&Context::new(1), mutation, None).await.unwrap();
}

async fn read(kora: &Kora, query: PathQuery) -> Option<Value> {
    let answer = kora
        .query(&Context::new(2), &Query { paths: vec![query] })
        .await
        .unwrap();
    answer.values.into_iter().next().flatten()
}

async fn read_at(kora: &Kora, path: &str) -> Option<Value> {
    read(kora, PathQuery::new(p(path))).await
}

/// Two users with a name, one with orders, and `hidden`.
async fn seeded() -> Kora {
    let kora = kora().await;
    merge(&kora, "users/u1", json!({"name": "Ann"})).await;
    merge(&kora, "users/u2", json!({"name": "Bo"})).await;
    merge(&kora, "users/hidden", json!({"name": "Cy"})).await;
    merge(&kora, "orders/u1/o1", json!({"amount": 5})).await;
    merge(&kora, "orders/u1/o2", json!({"amount": 7})).await;
    kora
}

#[tokio::test]
async fn an_ancestor_read_holds_the_virtual_paths_beneath_it() {
    let kora = seeded().await;
    let users = json!({
        "u1": {"name": "Ann", "summary": {"orders": 2, "total": 12}},
        "u2": {"name": "Bo", "summary": {"orders": 0, "total": 0}},
        // The resolver refuses this caller here: left out, the rest of the read stands.
        "hidden": {"name": "Cy"},
    });
    assert_eq!(read_at(&kora, "users").await, Some(users.clone()));
    assert_eq!(
        read_at(&kora, "users/u1").await,
        Some(json!({"name": "Ann", "summary": {"orders": 2, "total": 12}}))
    );
    // A literal key is there with nothing stored under it.
    assert_eq!(
        read_at(&kora, "stats").await,
        Some(json!({"users": {"count": 3}}))
    );
    let root = read_at(&kora, "").await.unwrap();
    assert_eq!(root["users"], users);
    assert_eq!(root["stats"], json!({"users": {"count": 3}}));
    assert_eq!(root["orders"]["u1"]["o1"], json!({"amount": 5}));
    // Nothing of it is stored.
    assert_eq!(kora.read_value(&p("stats")).await.unwrap(), None);
    assert_eq!(kora.read_value(&p("users/u1/summary")).await.unwrap(), None);
}

#[tokio::test]
async fn a_window_gains_no_children_only_what_lies_beneath_its_own() {
    let kora = seeded().await;
    let window = PathQuery {
        limit: Some(2),
        ..PathQuery::new(p("users"))
    };
    assert_eq!(
        read(&kora, window).await,
        Some(json!({
            "hidden": {"name": "Cy"},
            "u1": {"name": "Ann", "summary": {"orders": 2, "total": 12}},
        }))
    );
    let stats = PathQuery {
        limit: Some(5),
        ..PathQuery::new(p("stats"))
    };
    assert_eq!(read(&kora, stats).await, None);
}

#[tokio::test]
async fn a_stored_leaf_on_the_way_keeps_its_place() {
    let kora = kora().await;
    merge(&kora, "users/u1", json!("a leaf, not a branch")).await;
    assert_eq!(
        read_at(&kora, "users").await,
        Some(json!({"u1": "a leaf, not a branch"}))
    );
}

/// A subscriber's copy of one subscription, built the way a client builds it.
struct Held {
    query: PathQuery,
    tree: Map<String, Value>,
}

impl Held {
    fn new(query: PathQuery, initial: Initial) -> Held {
        let mut held = Held {
            query,
            tree: Map::new(),
        };
        match initial {
            Initial::Snapshot { value, .. } | Initial::Reset { value, .. } => held.reset(value),
            Initial::Replay { .. } => panic!("a snapshot, not a replay"),
        }
        held
    }

    fn reset(&mut self, value: Option<Value>) {
        self.tree.clear();
        if let Some(value) = value {
            kora_core::query::place(&mut self.tree, self.query.path.segments(), value);
        }
    }

    fn apply(&mut self, push: Push) {
        match push {
            Push::Change { mutation, .. } => mutation.apply_to(&mut self.tree),
            Push::Reset { value, .. } => self.reset(value),
            Push::Ended { id, error } => panic!("subscription {id} ended: {error}"),
        }
    }

    fn value(&self) -> Option<Value> {
        let selected = Query {
            paths: vec![self.query.clone()],
        }
        .select(&self.tree);
        let mut node = Some(&selected);
        for segment in self.query.path.segments() {
            node = node.and_then(|n| n.get(segment));
        }
        node.cloned()
    }
}

/// Takes pushes until the held copy is what a fresh read answers, then checks that what
/// was still queued keeps it so.
async fn settle(kora: &Kora, session: &mut Session, held: &mut Held) {
    let expected = read(kora, held.query.clone()).await;
    let follow = async {
        while held.value() != expected {
            held.apply(session.next().await.expect("a push"));
        }
    };
    if tokio::time::timeout(Duration::from_secs(30), follow)
        .await
        .is_err()
    {
        panic!(
            "the subscriber of {} holds {:?}, a read answers {expected:?}",
            held.query.path,
            held.value()
        );
    }
    let last = kora.store().last_seq().await.unwrap();
    kora.wait_delivered(last).await;
    for push in session.process_queued(usize::MAX).await {
        held.apply(push);
    }
    assert_eq!(held.value(), expected, "after what was queued");
}

async fn subscribed(kora: &Kora, query: PathQuery) -> (Session, Held) {
    let mut session = kora.session(Context::new(3));
    let initial = session.subscribe("s", query.clone(), None).await.unwrap();
    (session, Held::new(query, initial))
}

#[tokio::test]
async fn a_subscriber_of_an_ancestor_follows_each_change_spaced_out() {
    let kora = seeded().await;
    let (mut session, mut held) = subscribed(&kora, PathQuery::new(p("users"))).await;
    let (mut root, mut whole) = subscribed(&kora, PathQuery::new(Path::root())).await;
    assert_eq!(held.value(), read_at(&kora, "users").await);
    let sources = session.subscription_count();

    // What a summary resolves from changes: the summary is answered again.
    merge(&kora, "orders/u2/o3", json!({"amount": 4})).await;
    settle(&kora, &mut session, &mut held).await;
    assert_eq!(
        held.value().unwrap()["u2"]["summary"],
        json!({"orders": 1, "total": 4})
    );
    // A new user: a summary comes with it, and follows its orders.
    merge(&kora, "users/u3", json!({"name": "Di"})).await;
    settle(&kora, &mut session, &mut held).await;
    assert_eq!(session.subscription_count(), sources + 1);
    merge(&kora, "orders/u3/o4", json!({"amount": 1})).await;
    settle(&kora, &mut session, &mut held).await;
    assert_eq!(
        held.value().unwrap()["u3"]["summary"],
        json!({"orders": 1, "total": 1})
    );
    // A user replaced whole (delete + merge in one write) keeps a summary.
    let set = Mutation::set(&p("users/u1"), json!({"name": "Ann B."})).unwrap();
    kora.mutate(&Context::new(1), set, None).await.unwrap();
    settle(&kora, &mut session, &mut held).await;
    assert_eq!(
        held.value().unwrap()["u1"]["summary"],
        json!({"orders": 2, "total": 12})
    );
    // A user deleted: its summary goes, and no longer follows its orders.
    delete(&kora, "users/u2").await;
    settle(&kora, &mut session, &mut held).await;
    assert_eq!(session.subscription_count(), sources);
    merge(&kora, "orders/u2/o5", json!({"amount": 9})).await;
    settle(&kora, &mut session, &mut held).await;
    assert!(held.value().unwrap().get("u2").is_none());

    // The root's subscriber held `stats/users` and every summary all along.
    settle(&kora, &mut root, &mut whole).await;
    assert_eq!(
        whole.value().unwrap()["stats"],
        json!({"users": {"count": 3}})
    );
    // A delete of `stats` (nothing stored there) takes it from the subscriber's copy: it
    // gets it again.
    delete(&kora, "stats").await;
    settle(&kora, &mut root, &mut whole).await;
    assert_eq!(
        whole.value().unwrap()["stats"],
        json!({"users": {"count": 3}})
    );

    session.unsubscribe("s");
    assert_eq!(
        session.subscription_count(),
        0,
        "the summaries' sources went with it"
    );
}

/// Writers race on users and orders (adding, replacing, deleting) while two sessions follow
/// `users` and the root; once the writes stop, each holds what a fresh read answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_of_an_ancestor_settle_on_the_answer_under_concurrent_writers() {
    let seed = std::env::var("KORA_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| kora_core::stamp::wall_millis() ^ u64::from(std::process::id()));
    println!("seed {seed} (replay with KORA_TEST_SEED={seed})");
    let kora = seeded().await;
    let (mut session, mut held) = subscribed(&kora, PathQuery::new(p("users"))).await;
    let (mut root, mut whole) = subscribed(&kora, PathQuery::new(Path::root())).await;
    let windowed = PathQuery {
        limit: Some(3),
        ..PathQuery::new(p("users"))
    };
    let (mut window_session, mut window) = subscribed(&kora, windowed).await;

    let writers: Vec<_> = (0..4u64)
        .map(|writer| {
            let kora = kora.clone();
            tokio::spawn(async move {
                let mut rng = seed.wrapping_add(writer);
                for n in 0..60 {
                    rng = splitmix(rng);
                    let uid = format!("u{}", rng % 6);
                    match (rng >> 8) % 5 {
                        0 => delete(&kora, &format!("users/{uid}")).await,
                        1 => {
                            let set = Mutation::set(
                                &p(&format!("users/{uid}")),
                                json!({"name": format!("w{writer}n{n}")}),
                            )
                            .unwrap();
                            kora.mutate(&Context::new(1), set, None).await.unwrap();
                        }
                        2 => merge(&kora, &format!("users/{uid}/name"), json!(n)).await,
                        _ => {
                            let order = format!("orders/{uid}/w{writer}n{n}");
                            merge(&kora, &order, json!({"amount": n})).await
                        }
                    }
                    // Let the subscribers' tasks in now and then.
                    if n % 10 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    // The subscribers take pushes while the writers write (`recv` may be cancelled, the
    // `process` that follows it runs to its end).
    let writing = async {
        for writer in writers {
            writer.await.unwrap();
        }
    };
    tokio::pin!(writing);
    loop {
        tokio::select! {
            () = &mut writing => break,
            Some(incoming) = session.recv() => {
                for push in session.process(incoming).await {
                    held.apply(push);
                }
            }
            Some(incoming) = root.recv() => {
                for push in root.process(incoming).await {
                    whole.apply(push);
                }
            }
            Some(incoming) = window_session.recv() => {
                for push in window_session.process(incoming).await {
                    window.apply(push);
                }
            }
        }
    }
    settle(&kora, &mut session, &mut held).await;
    settle(&kora, &mut root, &mut whole).await;
    settle(&kora, &mut window_session, &mut window).await;
}

fn splitmix(state: u64) -> u64 {
    let mut z = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What a subscriber of an ancestor gets again of a virtual path passes the read filters,
/// as its first answer did.
#[tokio::test]
async fn virtual_paths_answered_again_pass_the_read_filters() {
    let kora = Kora::builder()
        .interceptor("users/$uid/summary", Summary)
        .interceptor("users/**", HideTotals)
        .build()
        .await
        .unwrap();
    merge(&kora, "users/u1", json!({"name": "Ann"})).await;
    let (mut session, mut held) = subscribed(&kora, PathQuery::new(p("users"))).await;
    let summary = |held: &Held| held.value().unwrap()["u1"]["summary"].clone();
    assert_eq!(summary(&held), json!({"orders": 0}));
    merge(&kora, "orders/u1/o1", json!({"amount": 5})).await;
    settle(&kora, &mut session, &mut held).await;
    assert_eq!(summary(&held), json!({"orders": 1}));
}

#[tokio::test]
async fn a_resumed_subscription_with_virtual_paths_beneath_starts_from_a_snapshot() {
    let kora = seeded().await;
    let last = kora.store().last_seq().await.unwrap();
    merge(&kora, "orders/u2/o3", json!({"amount": 4})).await;
    let mut session = kora.session(Context::new(3));
    let initial = session
        .subscribe("s", PathQuery::new(p("users")), Some(Resume::after(last)))
        .await
        .unwrap();
    let Initial::Reset { value, .. } = initial else {
        panic!("the log holds no virtual paths, so a fresh snapshot: {initial:?}");
    };
    assert_eq!(value, read_at(&kora, "users").await);
    // The virtual path itself, resumed: its answer afresh too (a client ignores what a reply
    // holds for a resumed path, so a snapshot would leave it with what it had).
    let initial = session
        .subscribe(
            "v",
            PathQuery::new(p("users/u2/summary")),
            Some(Resume::after(last)),
        )
        .await
        .unwrap();
    let Initial::Reset { value, .. } = initial else {
        panic!("a fresh answer: {initial:?}");
    };
    assert_eq!(value, Some(json!({"orders": 1, "total": 4})));
}

/// The session's own subscriptions (on what virtual paths resolve from, inside answers) live
/// beside the client's without sharing names: a client may name a subscription as it likes,
/// except with the one character reserved for them.
#[tokio::test]
async fn a_clients_subscription_names_never_meet_the_sessions_own() {
    let kora = seeded().await;
    let mut session = kora.session(Context::new(3));
    session
        .subscribe("v", PathQuery::new(p("users/u1/summary")), None)
        .await
        .unwrap();
    // Names the session's own subscriptions once had: an ordinary name for a client.
    let named = PathQuery::new(p("orders/u1"));
    let initial = session
        .subscribe("virtual:0:v", named.clone(), None)
        .await
        .unwrap();
    let mut held = Held::new(named, initial);
    merge(&kora, "orders/u1/o9", json!({"amount": 1})).await;
    settle(&kora, &mut session, &mut held).await;
    assert_eq!(held.value().unwrap()["o9"], json!({"amount": 1}));

    let refused = session
        .subscribe("\u{0}virtual:0:v", PathQuery::new(p("orders")), None)
        .await
        .unwrap_err();
    assert_eq!(refused.code, kora_engine::Code::BadRequest, "{refused}");
}
