//! The examples, each shown working.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use kora_core::{Mutation, Path, PathQuery, Query, Value};
use kora_engine::{Code, Config, Context, EffectsConfig, Kora};
use serde_json::json;

fn p(text: &str) -> Path {
    Path::parse(text).unwrap()
}

async fn kora(webhook: &str) -> Kora {
    let config = Config {
        effects: EffectsConfig {
            max_attempts: 3,
            base_backoff: Duration::from_millis(20),
            poll: Duration::from_millis(20),
            ..EffectsConfig::default()
        },
        ..Config::default()
    };
    kora_example_app::register(Kora::builder().config(config), webhook)
        .build()
        .await
        .unwrap()
}

async fn merge(
    kora: &Kora,
    ctx: &Context,
    path: &str,
    value: Value,
) -> Result<(), kora_engine::Error> {
    kora.mutate(ctx, Mutation::merge(&p(path), value).unwrap(), None)
        .await
        .map(drop)
}

async fn get(kora: &Kora, path: &str) -> Option<Value> {
    kora.read_value(&p(path)).await.unwrap()
}

#[tokio::test]
async fn company_employees_follow_the_users_company() {
    let kora = kora("http://127.0.0.1:9/").await;
    let ctx = Context::new(1);
    merge(
        &kora,
        &ctx,
        "company:info/pearl",
        json!({"name": "Black Pearl"}),
    )
    .await
    .unwrap();
    merge(
        &kora,
        &ctx,
        "user:info/jack",
        json!({"name": "Jack", "company": "pearl"}),
    )
    .await
    .unwrap();
    let joined = get(&kora, "company:employees/pearl/jack").await;
    assert!(joined.as_ref().is_some_and(Value::is_u64), "{joined:?}");

    // Changed by setting just the field.
    merge(&kora, &ctx, "user:info/jack/company", json!("dutchman"))
        .await
        .unwrap();
    assert_eq!(get(&kora, "company:employees/pearl").await, None);
    assert!(get(&kora, "company:employees/dutchman/jack")
        .await
        .is_some());

    // The user deleted.
    kora.mutate(&ctx, Mutation::delete(&p("user:info/jack")), None)
        .await
        .unwrap();
    assert_eq!(get(&kora, "company:employees").await, None);
}

#[tokio::test]
async fn new_todos_get_created_and_user_and_need_a_text() {
    let kora = kora("http://127.0.0.1:9/").await;
    let ctx = Context::new(1);
    kora.call(&ctx, "login", json!({"user": "jack"}))
        .await
        .unwrap();
    merge(
        &kora,
        &ctx,
        "todos/T1",
        json!({"text": "Find the Black Pearl"}),
    )
    .await
    .unwrap();
    let todo = get(&kora, "todos/T1").await.unwrap();
    assert_eq!(todo["user"], json!("jack"));
    assert!(todo["created"].is_u64());

    let err = merge(&kora, &ctx, "todos/T2", json!({"done": false}))
        .await
        .unwrap_err();
    assert_eq!(err.code, Code::ValidationFailed);
    assert_eq!(
        get(&kora, "todos/T2").await,
        None,
        "a refused write leaves nothing"
    );

    // Editing an existing todo keeps its creation time.
    let created = todo["created"].clone();
    merge(&kora, &ctx, "todos/T1", json!({"done": true}))
        .await
        .unwrap();
    assert_eq!(get(&kora, "todos/T1/created").await, Some(created));
}

#[tokio::test]
async fn the_stats_path_is_computed_not_stored() {
    let kora = kora("http://127.0.0.1:9/").await;
    let ctx = Context::new(1);
    merge(&kora, &ctx, "todos/a", json!({"text": "a", "done": true}))
        .await
        .unwrap();
    merge(&kora, &ctx, "todos/b", json!({"text": "b"}))
        .await
        .unwrap();
    let stats = json!({"stats": {"todos": {"total": 2, "done": 1, "open": 1}}});
    let read = |path: &'static str| {
        let query = Query {
            paths: vec![PathQuery::new(p(path))],
        };
        let (kora, ctx) = (kora.clone(), ctx.clone());
        async move { kora.query(&ctx, &query).await.unwrap().value }
    };
    assert_eq!(read("stats/todos").await, stats);
    assert_eq!(get(&kora, "stats").await, None);
    // A read of an ancestor holds it.
    assert_eq!(read("stats").await, stats);
}

/// `stats/todos` is live: a subscriber holds the resolver's current answer after every
/// change to `todos` settles — each change when writes are spaced out, and the last answer
/// after a burst (which the subscriber's task may answer once for several commits).
#[tokio::test]
async fn a_subscriber_of_the_stats_path_follows_the_todos() {
    let kora = kora("http://127.0.0.1:9/").await;
    let ctx = Context::new(1);
    let mut session = kora.session(ctx.clone());
    let initial = session
        .subscribe("stats", PathQuery::new(p("stats/todos")), None)
        .await
        .unwrap();
    let kora_engine::Initial::Snapshot { value, .. } = initial else {
        panic!("a snapshot: {initial:?}");
    };
    assert_eq!(value, Some(json!({"total": 0, "done": 0, "open": 0})));
    let mut held = serde_json::Map::new();
    kora_core::query::place(&mut held, p("stats/todos").segments(), value.unwrap());
    let stats = |held: &serde_json::Map<String, Value>| held["stats"]["todos"].clone();

    // Spaced out: each change is seen.
    for (id, done, expected) in [
        ("a", false, json!({"total": 1, "done": 0, "open": 1})),
        ("b", true, json!({"total": 2, "done": 1, "open": 1})),
        ("a", true, json!({"total": 2, "done": 2, "open": 0})),
    ] {
        merge(
            &kora,
            &ctx,
            &format!("todos/{id}"),
            json!({"text": id, "done": done}),
        )
        .await
        .unwrap();
        let push = tokio::time::timeout(Duration::from_secs(30), session.next())
            .await
            .expect("a push within 30 s")
            .expect("a push");
        let kora_engine::Push::Change { id, mutation, .. } = push else {
            panic!("a change: {push:?}");
        };
        assert_eq!(id, "stats");
        mutation.apply_to(&mut held);
        assert_eq!(stats(&held), expected);
    }

    // A burst: the subscriber ends up with the answer for the last write.
    for n in 0..20 {
        merge(
            &kora,
            &ctx,
            &format!("todos/t{n}"),
            json!({"text": format!("t{n}"), "done": n % 2 == 0}),
        )
        .await
        .unwrap();
    }
    let settled = json!({"total": 22, "done": 12, "open": 10});
    let follow = async {
        while stats(&held) != settled {
            let push = session.next().await.expect("a push");
            if let kora_engine::Push::Change { mutation, .. } = push {
                mutation.apply_to(&mut held);
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), follow)
        .await
        .expect("the settled answer within 30 s");
    session.unsubscribe("stats");
    assert_eq!(session.subscription_count(), 0, "its sources went with it");
}

/// A webhook receiver that fails the first `failures` calls of each path.
async fn receiver(failures: usize) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let successes = Arc::new(AtomicUsize::new(0));
    let (c, s) = (calls.clone(), successes.clone());
    let app = Router::new().route(
        "/hook",
        post(move |body: String| {
            let (c, s) = (c.clone(), s.clone());
            async move {
                assert!(body.contains("order_created"), "{body}");
                if c.fetch_add(1, Ordering::SeqCst) < failures {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    s.fetch_add(1, Ordering::SeqCst);
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, calls, successes)
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn a_webhook_is_delivered_once() {
    let (url, calls, successes) = receiver(0).await;
    let kora = kora(&url).await;
    merge(&kora, &Context::new(1), "orders/o1", json!({"total": 5}))
        .await
        .unwrap();
    until("the delivery", || successes.load(Ordering::SeqCst) == 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(kora.store().stats().await.unwrap().effects_pending, 0);
}

#[tokio::test]
async fn a_webhook_is_retried_until_the_receiver_accepts_it() {
    let (url, calls, successes) = receiver(2).await;
    let kora = kora(&url).await;
    merge(&kora, &Context::new(1), "orders/o1", json!({"total": 5}))
        .await
        .unwrap();
    until("the third try", || successes.load(Ordering::SeqCst) == 1).await;
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(kora.store().dead_effects(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_webhook_that_always_fails_is_dead_lettered() {
    let (url, calls, _) = receiver(usize::MAX).await;
    let kora = kora(&url).await;
    merge(&kora, &Context::new(1), "orders/o1", json!({"total": 5}))
        .await
        .unwrap();
    until("three tries", || calls.load(Ordering::SeqCst) == 3).await;
    let store = kora.store().clone();
    let mut dead = Vec::new();
    for _ in 0..100 {
        dead = store.dead_effects(10).await.unwrap();
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(
        dead[0].last_error.as_deref(),
        Some("HTTP 500 Internal Server Error")
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 3, "no tries after the last");
}
