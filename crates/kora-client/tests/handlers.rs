//! `call` and `cast` reach the server's handlers.

mod common;

use std::time::Duration;

use common::{client, server_value, server_with, Proxy, SYNC};
use kora_engine::{Context, FnHandler, Kora};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_replies_and_cast_runs() {
    let dir = tempfile::tempdir().unwrap();
    let builder = Kora::builder()
        .handler(
            "echo",
            FnHandler(|args: Value, _: Context, _: Kora| async move { Ok(json!({"echo": args})) }),
        )
        .handler(
            "track",
            FnHandler(|args: Value, ctx: Context, kora: Kora| async move {
                let path = kora_core::Path::parse("tracked").unwrap();
                let m = kora_core::Mutation::merge(&path, args).unwrap();
                kora.mutate(&ctx, m, None).await?;
                Ok(Value::Null)
            }),
        );
    let running = server_with(dir.path(), builder, |_| {}).await;
    let proxy = Proxy::start(running.addr).await;
    let c = client(&proxy, &dir.path().join("c")).await;
    c.synced(SYNC).await.unwrap();
    let reply = c.call("echo", json!({"n": 1})).await.unwrap();
    assert_eq!(reply, json!({"echo": {"n": 1}}));
    let missing = c.call("nope", json!({})).await.unwrap_err();
    assert_eq!(missing.code(), Some("not_found"));

    c.cast("track", json!({"page": "home"})).unwrap();
    let deadline = tokio::time::Instant::now() + SYNC;
    while server_value(&running, "tracked").await.is_none() {
        assert!(tokio::time::Instant::now() < deadline, "the cast ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        server_value(&running, "tracked").await,
        Some(json!({"page": "home"}))
    );
    c.close().await;
}
