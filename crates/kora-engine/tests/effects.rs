//! Effects live in the store's outbox, written with the commit: a node that stops between
//! committing a write and running its effect runs it after a restart.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use kora_core::{Mutation, Path};
use kora_engine::{Config, Context, Error, FnRunner, Interceptor, Kora, WriteLayer};
use kora_store::{EmbeddedStore, NewEffect, Store};
use serde_json::json;

/// Asks for a `notify` effect for every order written.
struct Notify;

#[async_trait]
impl Interceptor for Notify {
    async fn effects(
        &self,
        layer: &WriteLayer<'_>,
        _ctx: &Context,
    ) -> Result<Vec<NewEffect>, Error> {
        Ok(vec![NewEffect {
            kind: "notify".into(),
            payload: json!({"order": layer.path.to_string()}),
        }])
    }
}

async fn open(dir: &std::path::Path) -> Arc<dyn Store> {
    Arc::new(EmbeddedStore::open(dir).await.expect("the store opens"))
}

#[tokio::test]
async fn an_effect_committed_before_a_restart_runs_after_it() {
    let dir = tempfile::tempdir().unwrap();

    // First run: effects are not run on this node, so the effect stays in the outbox.
    let mut config = Config::default();
    config.effects.enabled = false;
    let kora = Kora::builder()
        .store(open(dir.path()).await)
        .config(config)
        .interceptor("orders/$id", Notify)
        .build()
        .await
        .unwrap();
    let write = Mutation::from_json(&json!({"merge": {"orders": {"o1": {"total": 5}}}})).unwrap();
    kora.mutate(&kora.system_context(), write, None)
        .await
        .unwrap();
    assert_eq!(kora.store().stats().await.unwrap().effects_pending, 1);
    kora.shutdown().await;

    // Second run, same directory: the runner gets the effect, once, and the outbox empties.
    let (sent, mut received) = tokio::sync::mpsc::unbounded_channel();
    let mut config = Config::default();
    config.effects.poll = Duration::from_millis(20);
    let kora = Kora::builder()
        .store(open(dir.path()).await)
        .config(config)
        .interceptor("orders/$id", Notify)
        .effect_runner(
            "notify",
            FnRunner(move |effect: kora_store::Effect| {
                let sent = sent.clone();
                async move {
                    let _ = sent.send(effect.payload);
                    Ok(())
                }
            }),
        )
        .build()
        .await
        .unwrap();
    let payload = tokio::time::timeout(Duration::from_secs(10), received.recv())
        .await
        .expect("the effect runs after the restart")
        .unwrap();
    assert_eq!(payload, json!({"order": "orders/o1"}));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while kora.store().stats().await.unwrap().effects_pending > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the effect is never completed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(received.try_recv().is_err(), "the effect ran twice");
    assert_eq!(
        kora.read_value(&Path::parse("orders/o1/total").unwrap())
            .await
            .unwrap(),
        Some(json!(5))
    );
    kora.shutdown().await;
}
