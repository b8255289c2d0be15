//! HTTP hooks against a real server and a real endpoint, both on loopback: refusing,
//! replacing and adding to writes (atomically), timeouts under both failure policies,
//! what a request carries, resolving reads, serving calls, signed requests, kept-alive
//! connections, and a derived index kept exact by a hook under 16 concurrent writers.

#[path = "../../kora-server/tests/common/mod.rs"]
mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use common::{json as body_of, server_with, url, Client};
use kora_engine::Kora;
use kora_hooks::{HookConfig, HookKind, OnFailure};
use serde_json::{json, Value};

type Answerer = dyn Fn(&Value) -> Value + Send + Sync;

/// Each request an endpoint received: its signature header, and its body.
type Seen = Arc<Mutex<Vec<(Option<String>, String)>>>;

/// An endpoint answering each request with `answer`, after `delay`; it keeps every request
/// with its signature header, and the address of each connection a request came on.
struct Endpoint {
    url: String,
    seen: Seen,
    peers: Arc<Mutex<HashSet<SocketAddr>>>,
}

async fn endpoint(
    delay: Duration,
    answer: impl Fn(&Value) -> Value + Send + Sync + 'static,
) -> Endpoint {
    #[derive(Clone)]
    struct Shared {
        answer: Arc<Answerer>,
        delay: Duration,
        seen: Seen,
        peers: Arc<Mutex<HashSet<SocketAddr>>>,
    }
    async fn serve(
        State(shared): State<Shared>,
        ConnectInfo(peer): ConnectInfo<SocketAddr>,
        headers: HeaderMap,
        body: String,
    ) -> Json<Value> {
        shared.peers.lock().unwrap().insert(peer);
        let signature = headers
            .get(kora_hooks::client::SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        shared.seen.lock().unwrap().push((signature, body.clone()));
        tokio::time::sleep(shared.delay).await;
        let request: Value = serde_json::from_str(&body).expect("a JSON request");
        Json((shared.answer)(&request))
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let peers = Arc::new(Mutex::new(HashSet::new()));
    let shared = Shared {
        answer: Arc::new(answer),
        delay,
        seen: seen.clone(),
        peers: peers.clone(),
    };
    let app = Router::new().route("/", post(serve)).with_state(shared);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await });
    Endpoint {
        url: format!("http://{addr}/"),
        seen,
        peers,
    }
}

fn hook(endpoint: &Endpoint, path: &str, on: &[HookKind]) -> HookConfig {
    HookConfig {
        url: endpoint.url.clone(),
        path: Some(path.to_string()),
        on: on.to_vec(),
        timeout_ms: 2_000,
        ..HookConfig::default()
    }
}

async fn kora_with(hooks: &[HookConfig]) -> kora_server::Running {
    let builder = kora_hooks::register(Kora::builder(), hooks).expect("hooks register");
    server_with(builder, |_| {}).await
}

async fn put(running: &kora_server::Running, path: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .put(url(running, &format!("/v1/data/{path}")))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn get(running: &kora_server::Running, path: &str) -> Value {
    body_of(reqwest::Client::new().get(url(running, &format!("/v1/data/{path}")))).await
}

#[tokio::test]
async fn a_refusing_hook_writes_nothing() {
    let orders = endpoint(Duration::ZERO, |request| {
        if request["new_data"]["items"].is_array() {
            json!({})
        } else {
            json!({"refuse": {"code": "validation_failed", "message": "an order needs items"}})
        }
    })
    .await;
    let running = kora_with(&[hook(&orders, "orders/$id", &[HookKind::BeforeMutation])]).await;
    let refused = put(&running, "orders/o1", json!({"note": "no items"})).await;
    assert_eq!(refused.status(), 422);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["code"], "validation_failed");
    assert_eq!(error["error"]["message"], "an order needs items");
    assert_eq!(get(&running, "orders").await, Value::Null);
    assert_eq!(
        put(&running, "orders/o1", json!({"items": ["tea"]}))
            .await
            .status(),
        200
    );
    assert_eq!(get(&running, "orders/o1/items").await, json!(["tea"]));
    // What the hook was told: the layer, the data before and after, the captures, the caller.
    let seen = orders.seen.lock().unwrap().clone();
    let request: Value = serde_json::from_str(&seen[0].1).unwrap();
    assert_eq!(request["hook"], "before_mutation");
    assert_eq!(request["pattern"], "orders/$id");
    assert_eq!(request["path"], "orders/o1");
    assert_eq!(request["captures"], json!({"id": "o1"}));
    assert_eq!(request["data"], Value::Null);
    assert_eq!(request["new_data"], json!({"note": "no items"}));
    assert_eq!(request["context"]["system"], false);
    running.stop().await.ok();
}

/// The hook's additions commit in the same transaction as the write: when one of them is
/// refused (by a second hook on where it writes), the write is refused whole.
#[tokio::test]
async fn an_augmenting_hook_commits_its_additions_with_the_write() {
    let stamping = endpoint(Duration::ZERO, |request| {
        let id = request["captures"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let user = request["new_data"]["user"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let by_user = object(&user, object(&id, json!(true)));
        json!({
            "replace": {"user": user, "status": "new"},
            "add": {"merge": {"by_user": by_user}}
        })
    })
    .await;
    let guard = endpoint(Duration::ZERO, |request| {
        if request["path"] == "by_user/mallory" {
            json!({"refuse": "mallory may not order"})
        } else {
            json!({})
        }
    })
    .await;
    let running = kora_with(&[
        hook(&stamping, "orders/$id", &[HookKind::BeforeMutation]),
        hook(&guard, "by_user/$user", &[HookKind::BeforeMutation]),
    ])
    .await;
    let ok = put(&running, "orders/o1", json!({"user": "ada", "extra": 1})).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(
        get(&running, "orders/o1").await,
        json!({"user": "ada", "status": "new"})
    );
    assert_eq!(get(&running, "by_user").await, json!({"ada": {"o1": true}}));
    let refused = put(&running, "orders/o2", json!({"user": "mallory"})).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(get(&running, "orders/o2").await, Value::Null);
    assert_eq!(get(&running, "by_user/mallory").await, Value::Null);
    running.stop().await.ok();
}

#[tokio::test]
async fn a_hook_that_times_out_follows_its_failure_policy() {
    let slow = endpoint(
        Duration::from_secs(5),
        |_| json!({"refuse": "too late to matter"}),
    )
    .await;
    let mut strict = hook(&slow, "strict/$id", &[HookKind::BeforeMutation]);
    strict.timeout_ms = 200;
    let mut lenient = hook(&slow, "lenient/$id", &[HookKind::BeforeMutation]);
    lenient.timeout_ms = 200;
    lenient.on_failure = OnFailure::Allow;
    let running = kora_with(&[strict, lenient]).await;
    let refused = put(&running, "strict/a", json!(1)).await;
    assert_eq!(refused.status(), 503);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["code"], "unavailable");
    let message = error["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("no answer within 200 ms"), "{error}");
    assert_eq!(get(&running, "strict").await, Value::Null);
    assert_eq!(put(&running, "lenient/a", json!(1)).await.status(), 200);
    assert_eq!(get(&running, "lenient/a").await, json!(1));
    running.stop().await.ok();
}

#[tokio::test]
async fn a_hook_that_is_down_follows_its_failure_policy() {
    // A port nothing listens on: bound, then closed.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let down = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let strict = HookConfig {
        url: down.clone(),
        path: Some("a/$x".into()),
        on: vec![HookKind::BeforeMutation],
        timeout_ms: 1_000,
        ..HookConfig::default()
    };
    let lenient = HookConfig {
        path: Some("b/$x".into()),
        on_failure: OnFailure::Allow,
        ..strict.clone()
    };
    let running = kora_with(&[strict, lenient]).await;
    assert_eq!(put(&running, "a/1", json!(1)).await.status(), 503);
    assert_eq!(put(&running, "b/1", json!(1)).await.status(), 200);
    assert_eq!(get(&running, "a").await, Value::Null);
    running.stop().await.ok();
}

#[tokio::test]
async fn a_resolving_hook_answers_a_virtual_path_and_a_call_hook_serves_calls() {
    let stats = endpoint(Duration::ZERO, |request| match request["hook"].as_str() {
        Some("resolve") => json!({"value": {"for": request["captures"]["day"]}}),
        Some("call") if request["args"]["password"] == "open sesame" => {
            json!({"value": "welcome", "state": {"user": request["args"]["name"]}})
        }
        Some("call") => {
            json!({"refuse": {"code": "permission_denied", "message": "wrong password"}})
        }
        _ => json!({}),
    })
    .await;
    let mut config = hook(&stats, "stats/$day", &[HookKind::Resolve]);
    config.calls = vec!["login".into()];
    let running = kora_with(&[config]).await;
    assert_eq!(
        get(&running, "stats/monday").await,
        json!({"for": "monday"})
    );
    // A read of an ancestor holds the virtual path for each day stored there.
    assert_eq!(
        put(&running, "stats/tuesday/note", json!("n"))
            .await
            .status(),
        200
    );
    assert_eq!(
        get(&running, "stats").await,
        json!({"tuesday": {"for": "tuesday"}})
    );
    let root = body_of(reqwest::Client::new().get(url(&running, "/v1/data"))).await;
    assert_eq!(root["stats"], json!({"tuesday": {"for": "tuesday"}}));
    let mut client = Client::connect(&running).await;
    let wrong = client
        .request(json!({"op": "call", "name": "login", "args": {"name": "ada", "password": "?"}}))
        .await;
    assert_eq!(wrong["error"]["code"], "permission_denied", "{wrong}");
    let right = client
        .request(json!({"op": "call", "name": "login", "args": {"name": "ada", "password": "open sesame"}}))
        .await;
    assert_eq!(right["result"], "welcome", "{right}");
    // The state the hook set is the connection's from then on: the next call carries it.
    client
        .request(json!({"op": "call", "name": "login", "args": {}}))
        .await;
    let seen = stats.seen.lock().unwrap().clone();
    let last: Value = serde_json::from_str(&seen.last().unwrap().1).unwrap();
    assert_eq!(last["context"]["user"], "ada");
    running.stop().await.ok();
}

/// A request carries the whole write beside its layer, the write's stamp, and the caller's
/// identity, token claims and connection state.
#[tokio::test]
async fn a_hook_request_carries_the_whole_write_the_stamp_and_the_caller() {
    let orders = endpoint(Duration::ZERO, |_| json!({})).await;
    let builder = kora_hooks::register(
        Kora::builder(),
        &[hook(&orders, "orders/$id", &[HookKind::BeforeMutation])],
    )
    .expect("hooks register");
    let running = server_with(builder, |config| {
        config.auth.hs256_secret = Some(common::tokens::SECRET.into());
    })
    .await;
    let now = common::tokens::now();
    let token = common::tokens::hs256(json!({"sub": "ada", "exp": now + 3600, "role": "clerk"}));
    let written = reqwest::Client::new()
        .patch(url(&running, "/v1/data"))
        .bearer_auth(token)
        .json(&json!({"orders": {"o1": {"items": ["tea"]}}, "log": {"l1": "ordered"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(written.status(), 200);
    let seen = orders.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "one request, for the one matching layer");
    let request: Value = serde_json::from_str(&seen[0].1).unwrap();
    assert_eq!(request["path"], "orders/o1");
    assert_eq!(
        request["mutation"]["merge"],
        json!({"orders": {"o1": {"items": ["tea"]}}, "log": {"l1": "ordered"}}),
        "{request}"
    );
    assert!(
        request["stamp"].as_str().is_some_and(|s| !s.is_empty()),
        "{request}"
    );
    assert_eq!(request["context"]["user"], "ada", "{request}");
    assert_eq!(request["context"]["auth"]["role"], "clerk", "{request}");
    assert!(request["context"]["state"].is_object(), "{request}");
    running.stop().await.ok();
}

/// Requests to an endpoint reuse kept-alive connections: one write after another opens one
/// connection, not one per write.
#[tokio::test]
async fn hook_requests_reuse_kept_alive_connections() {
    let passing = endpoint(Duration::ZERO, |_| json!({})).await;
    let running = kora_with(&[hook(&passing, "p/$x", &[HookKind::BeforeMutation])]).await;
    for n in 0..40 {
        assert_eq!(
            put(&running, &format!("p/{n}"), json!(n)).await.status(),
            200
        );
    }
    assert_eq!(passing.seen.lock().unwrap().len(), 40);
    let connections = passing.peers.lock().unwrap().len();
    assert!(
        connections <= 2,
        "40 sequential hook requests on {connections} connections"
    );
    running.stop().await.ok();
}

#[tokio::test]
async fn every_request_is_signed_with_the_shared_secret() {
    let signed = endpoint(Duration::ZERO, |_| json!({})).await;
    let mut config = hook(&signed, "s/$x", &[HookKind::BeforeMutation]);
    config.secret = Some("hook secret".into());
    let running = kora_with(&[config]).await;
    assert_eq!(put(&running, "s/1", json!(1)).await.status(), 200);
    let (signature, body) = signed.seen.lock().unwrap()[0].clone();
    let signature = signature.expect("a signature header");
    let t: u64 = signature
        .strip_prefix("t=")
        .and_then(|rest| rest.split(',').next())
        .and_then(|t| t.parse().ok())
        .expect("a time");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(t) < 60, "signed at {t}, now {now}");
    assert_eq!(
        signature,
        kora_hooks::client::signature("hook secret", t, &body)
    );
    assert_ne!(
        signature,
        kora_hooks::client::signature("another secret", t, &body)
    );
    running.stop().await.ok();
}

/// A hook keeps `by_status/<status>/<id>` in step with `orders/<id>/status`, deciding from the
/// order's previous status (`data`). 16 writers change the statuses of 4 orders at once: at
/// the end the index holds exactly each order under its final status — a decision made on
/// data another writer had changed would leave a stale entry behind.
#[tokio::test]
async fn hooks_under_16_concurrent_writers_keep_a_derived_index_exact() {
    let seed = kora_testkit::seed("hooks_under_16_concurrent_writers_keep_a_derived_index_exact");
    let index = endpoint(Duration::ZERO, |request| {
        let id = request["captures"]["id"].as_str().unwrap_or_default();
        let old = request["data"]["status"].as_str();
        let new = request["new_data"]["status"].as_str();
        let mut merge = serde_json::Map::new();
        let mut delete = serde_json::Map::new();
        if let Some(old) = old.filter(|o| Some(*o) != new) {
            delete.insert(old.to_string(), object(id, json!(1)));
        }
        if let Some(new) = new {
            merge.insert(new.to_string(), object(id, json!(true)));
        }
        json!({"add": {"merge": {"by_status": merge}, "delete": {"by_status": delete}}})
    })
    .await;
    let running = kora_with(&[hook(&index, "orders/$id", &[HookKind::BeforeMutation])]).await;
    let statuses = ["new", "paid", "sent", "lost"];
    let mut writers = Vec::new();
    for writer in 0..16u64 {
        let running_url = url(&running, "");
        writers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut state = seed ^ (writer + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            for _ in 0..15 {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let order = (state >> 33) % 4;
                let status = statuses[((state >> 40) % 4) as usize];
                let response = http
                    .put(format!("{running_url}/v1/data/orders/o{order}/status"))
                    .json(&json!(status))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let orders = get(&running, "orders").await;
    let by_status = get(&running, "by_status").await;
    let mut expected = serde_json::Map::new();
    for (id, order) in orders.as_object().expect("orders") {
        let status = order["status"].as_str().expect("a status");
        let entry = expected
            .entry(status.to_string())
            .or_insert_with(|| json!({}));
        entry[id.as_str()] = json!(true);
    }
    assert_eq!(by_status, Value::Object(expected), "seed {seed}");
    running.stop().await.ok();
}

/// `{key: value}`.
fn object(key: &str, value: Value) -> Value {
    Value::Object([(key.to_string(), value)].into_iter().collect())
}

/// A hook's virtual path declared live (`resolves_from`): a subscriber gets the hook's new
/// answer after a commit under what it resolves from, and nothing for commits elsewhere.
#[tokio::test]
async fn a_live_virtual_path_served_by_a_hook_updates_its_subscribers() {
    let asked = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = asked.clone();
    let stats = endpoint(Duration::ZERO, move |_| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        json!({"value": {"answers": n}})
    })
    .await;
    let mut config = hook(&stats, "stats/$day", &[HookKind::Resolve]);
    config.resolves_from = vec!["orders/$day".into()];
    let running = kora_with(&[config]).await;
    let mut client = Client::connect(&running).await;
    let reply = client.subscribe("stats/monday").await;
    assert_eq!(
        reply["result"]["value"]["stats"]["monday"],
        json!({"answers": 1}),
        "{reply}"
    );
    assert_eq!(put(&running, "other/x", json!(1)).await.status(), 200);
    assert_eq!(
        put(&running, "orders/monday/o1", json!(1)).await.status(),
        200
    );
    let push = client.push().await;
    assert_eq!(push["sub"], "stats/monday", "{push}");
    assert_eq!(
        push["mutation"]["merge"],
        json!({"stats": {"monday": {"answers": 2}}}),
        "answered again once, for the order only: {push}"
    );
    // A client reconnecting with the sequence it had gets the answer afresh, as a reset.
    let seq = push["seq"].clone();
    let mut again = Client::connect(&running).await;
    let reply = again
        .request(json!({"op": "query", "paths": [{"path": "stats/monday", "subscribe": true, "since": seq}]}))
        .await;
    assert!(reply["result"].is_object(), "{reply}");
    let reset = again.push().await;
    assert_eq!(reset["push"], "reset", "{reset}");
    assert_eq!(reset["value"], json!({"answers": 3}), "{reset}");
    running.stop().await.ok();
}
