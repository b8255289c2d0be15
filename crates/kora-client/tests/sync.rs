//! Conflicts made offline converge: two clients behind proxies the test cuts and restores,
//! a real server, and the caches compared with the server's tree.

mod common;

use std::time::Duration;

use common::{client, cut_off, server_in, server_value, text, Proxy, SYNC};
use kora_client::{Client, ClientError, PathQuery, Update};
use serde_json::json;

fn todos() -> PathQuery {
    PathQuery::new(kora_client::Path::parse("todos").unwrap())
}

/// Two synced clients following `todos`, each behind its own proxy.
async fn pair(
    dir: &std::path::Path,
    running: &kora_server::Running,
) -> ((Proxy, Client), (Proxy, Client)) {
    let pa = Proxy::start(running.addr).await;
    let pb = Proxy::start(running.addr).await;
    let a = client(&pa, &dir.join("a")).await;
    let b = client(&pb, &dir.join("b")).await;
    a.subscribe(todos()).await.unwrap();
    b.subscribe(todos()).await.unwrap();
    a.synced(SYNC).await.unwrap();
    b.synced(SYNC).await.unwrap();
    ((pa, a), (pb, b))
}

/// `a` sets `path` to `value`; returns once the server took it and `b` is in sync.
async fn seed(a: &Client, b: &Client, path: &str, value: serde_json::Value) {
    a.set(path, value)
        .await
        .unwrap()
        .acknowledged()
        .await
        .unwrap();
    b.synced(SYNC).await.unwrap();
}

/// Restores both links, waits for both clients to settle, and checks that both caches and
/// the server hold the same `todos`, byte for byte. Returns it.
async fn converge(
    running: &kora_server::Running,
    (pa, a): &(Proxy, Client),
    (pb, b): &(Proxy, Client),
) -> Option<serde_json::Value> {
    pa.restore();
    pb.restore();
    a.synced(SYNC).await.unwrap();
    b.synced(SYNC).await.unwrap();
    // Each client's writes reach the other as pushes; wait until both have settled again.
    let server = server_value(running, "todos").await;
    for c in [a, b] {
        let deadline = tokio::time::Instant::now() + SYNC;
        while text(&c.get("todos").await.unwrap()) != text(&server) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "a cache did not converge"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_edits_to_different_fields_both_survive() {
    let dir = tempfile::tempdir().unwrap();
    let running = server_in(dir.path(), |_| {}).await;
    let (a, b) = pair(dir.path(), &running).await;
    seed(
        &a.1,
        &b.1,
        "todos/t1",
        json!({"text": "milk", "done": false}),
    )
    .await;

    cut_off(&a.0, &a.1).await;
    cut_off(&b.0, &b.1).await;
    a.1.merge("todos/t1", json!({"text": "oat milk"}))
        .await
        .unwrap();
    b.1.merge("todos/t1", json!({"done": true})).await.unwrap();
    // Offline, each sees its own edit at once.
    assert_eq!(
        a.1.get("todos/t1/text").await.unwrap(),
        Some(json!("oat milk"))
    );
    assert_eq!(b.1.get("todos/t1/done").await.unwrap(), Some(json!(true)));

    let all = converge(&running, &a, &b).await;
    assert_eq!(all, Some(json!({"t1": {"text": "oat milk", "done": true}})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_edits_to_one_field_agree_on_the_later_stamp() {
    let dir = tempfile::tempdir().unwrap();
    let running = server_in(dir.path(), |_| {}).await;
    let (a, b) = pair(dir.path(), &running).await;
    cut_off(&a.0, &a.1).await;
    cut_off(&b.0, &b.1).await;
    let first = a.1.set("todos/t1/text", json!("from a")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let later = b.1.set("todos/t1/text", json!("from b")).await.unwrap();
    assert!(later.stamp > first.stamp);
    // The later write reaches the server first; the earlier one must still lose.
    b.0.restore();
    later.acknowledged().await.unwrap();
    a.0.restore();
    first.acknowledged().await.unwrap();
    let all = converge(&running, &a, &b).await;
    assert_eq!(all, Some(json!({"t1": {"text": "from b"}})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_beats_an_older_offline_edit_and_loses_to_a_newer_one() {
    let dir = tempfile::tempdir().unwrap();
    let running = server_in(dir.path(), |_| {}).await;
    let (a, b) = pair(dir.path(), &running).await;
    let both = json!({"t1": {"text": "one", "done": false}, "t2": {"text": "two", "done": false}});
    seed(&a.1, &b.1, "todos", both).await;

    // b edits inside t1 offline; a deletes t1 later (newer stamp): the delete wins.
    cut_off(&b.0, &b.1).await;
    b.1.merge("todos/t1", json!({"text": "edited offline"}))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    a.1.delete("todos/t1")
        .await
        .unwrap()
        .acknowledged()
        .await
        .unwrap();
    // a deletes t2 now; b, still offline, edits inside t2 afterwards (newer stamp): the
    // edit survives under an otherwise deleted subtree.
    a.1.delete("todos/t2")
        .await
        .unwrap()
        .acknowledged()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    b.1.merge("todos/t2", json!({"text": "kept"}))
        .await
        .unwrap();

    let all = converge(&running, &a, &b).await;
    assert_eq!(all, Some(json!({"t2": {"text": "kept"}})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_write_is_rolled_back_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("kora.rules.yaml");
    std::fs::write(
        &rules,
        "rules:\n  todos/**:\n    read: true\n    write: true\n  todos/$id:\n    validate: newData == null || is_string(newData.text)\n",
    )
    .unwrap();
    let running = server_in(dir.path(), |c| c.rules = Some(rules)).await;
    let proxy = Proxy::start(running.addr).await;
    let c = client(&proxy, &dir.path().join("c")).await;
    let mut sub = c.subscribe(todos()).await.unwrap();
    c.synced(SYNC).await.unwrap();
    let ok = c.set("todos/ok", json!({"text": "fine"})).await.unwrap();
    tokio::time::timeout(SYNC, ok.acknowledged())
        .await
        .unwrap()
        .unwrap();

    let bad = c.set("todos/bad", json!({"text": 5})).await.unwrap();
    assert_eq!(
        c.get("todos/bad").await.unwrap(),
        Some(json!({"text": 5})),
        "shown at once"
    );
    let error = bad.acknowledged().await.unwrap_err();
    assert_eq!(error.code(), Some("validation_failed"), "{error}");
    assert_eq!(c.get("todos/bad").await.unwrap(), None, "rolled back");
    assert_eq!(server_value(&running, "todos/bad").await, None);
    // The subscription saw the local write and then its rollback.
    let mut saw_local = false;
    loop {
        let update = tokio::time::timeout(SYNC, sub.next_update())
            .await
            .unwrap()
            .unwrap();
        match update {
            Update::Local { .. } => saw_local = true,
            Update::RolledBack { error, value, .. } => {
                assert!(saw_local);
                assert_eq!(error.code(), Some("validation_failed"));
                assert_eq!(value, Some(json!({"ok": {"text": "fine"}})));
                break;
            }
            _ => {}
        }
    }
    assert_eq!(c.stats().writes_rolled_back, 1);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribed_data_is_readable_offline_with_query_options() {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Todo {
        text: String,
        done: bool,
    }
    let dir = tempfile::tempdir().unwrap();
    let running = server_in(dir.path(), |_| {}).await;
    let proxy = Proxy::start(running.addr).await;
    let c = client(&proxy, &dir.path().join("c")).await;
    c.subscribe(todos()).await.unwrap();
    for i in 0..5 {
        let todo = Todo {
            text: format!("t{i}"),
            done: i % 2 == 0,
        };
        c.set_as(&format!("todos/t{i}"), &todo).await.unwrap();
    }
    c.synced(SYNC).await.unwrap();
    cut_off(&proxy, &c).await;
    let last_two = PathQuery {
        limit: Some(2),
        reverse: true,
        ..todos()
    };
    let value = c.query(last_two).await.unwrap().unwrap();
    assert_eq!(
        value.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["t3", "t4"]
    );
    let todo: Todo = c.get_as("todos/t2").await.unwrap().unwrap();
    assert_eq!(
        todo,
        Todo {
            text: "t2".into(),
            done: true
        }
    );
    // Not subscribed: the server is needed.
    let err = c.get("users").await.unwrap_err();
    assert!(matches!(err, ClientError::Offline(_)), "{err}");
    assert!(c.call("anything", json!({})).await.is_err());
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_subscriptions_fill_a_new_cache() {
    use jsonwebtoken::{encode, EncodingKey, Header};
    const SECRET: &str = "a-test-secret-that-is-at-least-32-bytes-long";
    let dir = tempfile::tempdir().unwrap();
    let running = server_in(dir.path(), |c| c.auth.hs256_secret = Some(SECRET.into())).await;
    let ctx = running.kora.system_context();
    let m = |v: serde_json::Value| kora_core::Mutation::from_json(&json!({"merge": v})).unwrap();
    running
        .kora
        .mutate(&ctx, m(json!({"inbox": {"jack": {"m1": "hello"}}})), None)
        .await
        .unwrap();
    running
        .kora
        .mutate(
            &ctx,
            m(json!({"kora:subscriptions": {"jack": {"inbox": {"path": "inbox/jack"}}}})),
            None,
        )
        .await
        .unwrap();
    let exp = kora_core::stamp::wall_millis() / 1000 + 3600;
    let token = encode(
        &Header::default(),
        &json!({"sub": "jack", "exp": exp}),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let proxy = Proxy::start(running.addr).await;
    let options = common::options(&dir.path().join("jack")).with_token(token);
    let c = Client::connect(&proxy.url(), options).await.unwrap();
    // Nothing subscribed by hand: the stored subscription arrives by itself.
    let deadline = tokio::time::Instant::now() + SYNC;
    while c.subscription("stored:inbox").await.is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no stored subscription"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    c.synced(SYNC).await.unwrap();
    cut_off(&proxy, &c).await;
    assert_eq!(
        c.get("inbox/jack").await.unwrap(),
        Some(json!({"m1": "hello"}))
    );
    c.close().await;
}
