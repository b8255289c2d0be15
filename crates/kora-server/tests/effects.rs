//! Dead letters over HTTP: effects that ran out of tries are listed, retried and discarded by
//! the administrator (`[auth] admin_secret`), counted in `/metrics` by state, and refused to
//! everyone else. The administrator also passes every rule.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use common::{server_with, text, url};
use kora_engine::{Context, Error, FnRunner, Interceptor, Kora, WriteLayer};
use kora_server::Running;
use kora_store::NewEffect;
use kora_testkit::eventually;
use serde_json::{json, Value};
use tokio::sync::mpsc;

const ADMIN: &str = "an-admin-secret-of-at-least-32-bytes!";

/// Asks for a `notify` effect for every order written.
struct Notify;

#[async_trait]
impl Interceptor for Notify {
    async fn effects(&self, layer: &WriteLayer<'_>, _: &Context) -> Result<Vec<NewEffect>, Error> {
        Ok(vec![NewEffect {
            kind: "notify".into(),
            payload: json!({"order": layer.path.to_string()}),
        }])
    }
}

/// A server whose `notify` effects fail on their only try until `healthy` is set; each
/// successful run sends its payload on the returned channel.
async fn server(
    dir: &tempfile::TempDir,
    healthy: Arc<AtomicBool>,
) -> (Running, mpsc::UnboundedReceiver<Value>) {
    let (sent, received) = mpsc::unbounded_channel();
    let rules = dir.path().join("kora.rules.yaml");
    std::fs::write(
        &rules,
        "rules:\n  orders/$id:\n    read: false\n    write: false\n",
    )
    .unwrap();
    let builder = Kora::builder()
        .interceptor("orders/*", Notify)
        .effect_runner(
            "notify",
            FnRunner(move |effect: kora_store::Effect| {
                let healthy = healthy.clone();
                let sent = sent.clone();
                async move {
                    if !healthy.load(Ordering::SeqCst) {
                        return Err("the receiver is down".to_string());
                    }
                    let _ = sent.send(effect.payload);
                    Ok(())
                }
            }),
        );
    let running = server_with(builder, |config| {
        config.auth.admin_secret = Some(ADMIN.into());
        config.effects.max_attempts = 1;
        config.rules = Some(rules);
    })
    .await;
    (running, received)
}

async fn send(request: reqwest::RequestBuilder, token: Option<&str>) -> (u16, Value) {
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    let response = request.send().await.expect("the request is answered");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn dead(running: &Running) -> Value {
    let http = reqwest::Client::new();
    let (status, body) = send(http.get(url(running, "/v1/effects/dead")), Some(ADMIN)).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn the_administrator_lists_retries_and_discards_dead_effects() {
    let dir = tempfile::tempdir().unwrap();
    let healthy = Arc::new(AtomicBool::new(false));
    let (running, mut ran) = server(&dir, healthy.clone()).await;
    let http = reqwest::Client::new();

    // The rules close `orders` to everyone; the administrator passes them.
    let order = url(&running, "/v1/data/orders/o1");
    let (status, _) = send(http.put(&order).json(&json!({"n": 1})), None).await;
    assert_eq!(status, 403, "the rules refuse an anonymous write");
    let (status, body) = send(http.put(&order).json(&json!({"n": 1})), Some(ADMIN)).await;
    assert_eq!(status, 200, "the administrator writes: {body}");

    eventually("the failed effect to be dead", || async {
        dead(&running).await["dead"] == 1
    })
    .await;
    let listed = dead(&running).await;
    assert_eq!(listed["pending"], 0);
    let effect = &listed["effects"][0];
    assert_eq!(effect["kind"], "notify");
    assert_eq!(effect["payload"], json!({"order": "orders/o1"}));
    assert_eq!(effect["last_error"], "the receiver is down");
    assert_eq!(effect["state"], "dead");
    let id = effect["id"].as_u64().expect("an id");

    let metrics = text(http.get(url(&running, "/metrics"))).await;
    assert!(
        metrics.contains("kora_outbox_effects{state=\"dead\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("kora_outbox_effects{state=\"pending\"} 0"));

    // Unknown ids are 404, malformed ones 400; a dead effect is still there after both.
    let (status, _) = send(
        http.post(url(&running, "/v1/effects/dead/999999/retry")),
        Some(ADMIN),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = send(
        http.delete(url(&running, "/v1/effects/dead/x")),
        Some(ADMIN),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = send(
        http.get(url(&running, "/v1/effects/dead?limit=0")),
        Some(ADMIN),
    )
    .await;
    assert_eq!(status, 400, "a limit of 0 is refused");

    // Retried once the receiver is back: it runs, and the outbox empties.
    healthy.store(true, Ordering::SeqCst);
    let retry = url(&running, &format!("/v1/effects/dead/{id}/retry"));
    let (status, body) = send(http.post(&retry), Some(ADMIN)).await;
    assert_eq!((status, body), (200, json!({"retried": id})));
    let payload = tokio::time::timeout(kora_testkit::EVENTUALLY_TIMEOUT, ran.recv())
        .await
        .expect("the retried effect runs")
        .expect("the runner is alive");
    assert_eq!(payload, json!({"order": "orders/o1"}));
    eventually("the outbox to empty", || async {
        let listed = dead(&running).await;
        listed["dead"] == 0 && listed["pending"] == 0
    })
    .await;
    let (status, _) = send(http.post(&retry), Some(ADMIN)).await;
    assert_eq!(status, 404, "a retried effect is no longer dead");

    // Discarded: gone without running.
    healthy.store(false, Ordering::SeqCst);
    let (status, _) = send(
        http.put(url(&running, "/v1/data/orders/o2"))
            .json(&json!(2)),
        Some(ADMIN),
    )
    .await;
    assert_eq!(status, 200);
    eventually("the second effect to be dead", || async {
        dead(&running).await["dead"] == 1
    })
    .await;
    let id = dead(&running).await["effects"][0]["id"].as_u64().unwrap();
    let discard = url(&running, &format!("/v1/effects/dead/{id}"));
    let (status, body) = send(http.delete(&discard), Some(ADMIN)).await;
    assert_eq!((status, body), (200, json!({"discarded": id})));
    assert_eq!(dead(&running).await["dead"], 0);
    let (status, _) = send(http.delete(&discard), Some(ADMIN)).await;
    assert_eq!(status, 404);
    assert!(ran.try_recv().is_err(), "a discarded effect never runs");
}

#[tokio::test]
async fn dead_letters_are_the_administrators_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (running, _ran) = server(&dir, Arc::new(AtomicBool::new(false))).await;
    let http = reqwest::Client::new();
    let list = url(&running, "/v1/effects/dead");
    for token in [
        None,
        Some("not-the-secret"),
        Some(&ADMIN[..ADMIN.len() - 1]),
    ] {
        let (status, body) = send(http.get(&list), token).await;
        assert_eq!(status, 403, "{token:?}: {body}");
        assert_eq!(body["error"]["code"], "permission_denied");
        let (status, _) = send(http.post(format!("{list}/1/retry")), token).await;
        assert_eq!(status, 403);
        let (status, _) = send(http.delete(format!("{list}/1")), token).await;
        assert_eq!(status, 403);
    }

    // A server with no admin secret says why.
    let plain = common::server().await;
    let (status, body) = send(http.get(url(&plain, "/v1/effects/dead")), Some(ADMIN)).await;
    assert_eq!(status, 403);
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("admin_secret"), "{message}");
}

#[tokio::test]
async fn a_short_admin_secret_stops_the_server() {
    let config = kora_server::ServerConfig {
        bind: "127.0.0.1:0".into(),
        store: Some("memory:".into()),
        auth: kora_server::transport::auth::AuthConfig {
            admin_secret: Some("short".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let error = kora_server::start(config, Kora::builder())
        .await
        .err()
        .expect("a short secret is refused");
    assert!(error.to_string().contains("admin_secret"), "{error}");
}

#[tokio::test]
async fn the_administrator_exports_past_read_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (running, _ran) = server(&dir, Arc::new(AtomicBool::new(true))).await;
    let http = reqwest::Client::new();
    for n in 0..3 {
        let order = url(&running, &format!("/v1/data/orders/o{n}"));
        let (status, body) = send(http.put(&order).json(&json!({"n": n})), Some(ADMIN)).await;
        assert_eq!(status, 200, "{body}");
    }
    let export = url(&running, "/v1/export/orders");
    let (status, body) = send(http.get(&export), None).await;
    assert_eq!(status, 403, "read rules refuse an anonymous export: {body}");
    let response = http.get(&export).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let lines: Vec<Value> = response
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[1], json!({"path": "orders/o1/n", "value": 1}));
    assert_eq!(lines[3], json!({"end": {"leaves": 3}}));
}
