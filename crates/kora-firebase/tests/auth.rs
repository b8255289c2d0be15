//! Who a Firebase client is and which tree it sees: signed tokens on the socket and over
//! REST, tokens that lapse (`ac expired_token`, the stream's `auth_revoked`), the stream's
//! `keep-alive`, and one tree per namespace.

mod common;

use common::firebase::{Events, Firebase};
use common::tokens::{now, sign, SECRET};
use common::Setup;
use common::{json, server_with, url, Client};
use kora_engine::Kora;
use kora_firebase::Namespaces;
use kora_server::Running;
use serde_json::{json, Value};

const OWN_DATA: &str = "rules:\n  users/$uid:\n    read: auth != null && auth.sub == $uid\n    write: auth != null && auth.sub == $uid\n";

/// A server verifying HS256 tokens (no leeway) under `rules`, with `tweak` applied.
async fn server(rules: &str, tweak: impl FnOnce(&mut Setup)) -> (Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kora.rules.yaml");
    std::fs::write(&file, rules).unwrap();
    let running = server_with(Kora::builder(), |c| {
        c.rules = Some(file);
        c.auth.hs256_secret = Some(SECRET.into());
        c.auth.leeway_secs = 0;
        tweak(c);
    })
    .await;
    (running, dir)
}

#[tokio::test]
async fn a_signed_token_is_the_identity_on_the_socket() {
    let (running, _dir) = server(OWN_DATA, |_| {}).await;
    let mut ada = Firebase::connect(&running).await;
    let forged = sign(
        json!({"sub": "ada", "exp": now() + 3600}),
        "another-secret-that-is-at-least-32-bytes",
    );
    let (_, reply) = ada.request("auth", json!({"cred": forged})).await;
    assert_eq!(reply["s"], "invalid_token");
    let (_, reply) = ada
        .request("p", json!({"p": "/users/ada", "d": {"age": 36}}))
        .await;
    assert_eq!(reply["s"], "permission_denied");

    let token = sign(json!({"sub": "ada", "exp": now() + 3600}), SECRET);
    let (_, reply) = ada.request("auth", json!({"cred": token})).await;
    assert_eq!(reply["s"], "ok");
    assert_eq!(reply["d"]["auth"]["uid"], "ada");
    let (_, reply) = ada
        .request("p", json!({"p": "/users/ada", "d": {"age": 36}}))
        .await;
    assert_eq!(reply["s"], "ok");
    let (_, reply) = ada
        .request("p", json!({"p": "/users/bob", "d": {"age": 1}}))
        .await;
    assert_eq!(reply["s"], "permission_denied");
    let (_, reply) = ada.request("g", json!({"p": "/users/ada"})).await;
    assert_eq!(reply, json!({"s": "ok", "d": {"age": 36}}));

    let (_, reply) = ada.request("unauth", json!({})).await;
    assert_eq!(reply["s"], "ok");
    let (_, reply) = ada.request("g", json!({"p": "/users/ada"})).await;
    assert_eq!(reply["s"], "permission_denied");
    running.stop().await.ok();
}

#[tokio::test]
async fn a_signed_token_is_the_identity_over_rest() {
    let (running, _dir) = server(OWN_DATA, |_| {}).await;
    let http = reqwest::Client::new();
    let token = sign(json!({"sub": "ada", "exp": now() + 3600}), SECRET);
    let put = http
        .put(url(&running, &format!("/users/ada.json?auth={token}")))
        .body(r#"{"age": 36}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let get = |path: &str, bearer: Option<&str>| {
        let mut request = http.get(url(&running, path));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let with_bearer = get("/users/ada.json", Some(&token)).await.unwrap();
    assert_eq!(with_bearer.status(), 200);
    assert_eq!(
        with_bearer.json::<Value>().await.unwrap(),
        json!({"age": 36})
    );
    let with_param = get(&format!("/users/ada.json?access_token={token}"), None);
    assert_eq!(with_param.await.unwrap().status(), 200);
    let anonymous = get("/users/ada.json", None).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.json::<Value>().await.unwrap()["error"].is_string());
    let other = get(&format!("/users/bob.json?auth={token}"), None);
    assert_eq!(other.await.unwrap().status(), 401);
    let expired = sign(json!({"sub": "ada", "exp": now() - 10}), SECRET);
    let lapsed = get(&format!("/users/ada.json?auth={expired}"), None);
    assert_eq!(lapsed.await.unwrap().status(), 401);
    running.stop().await.ok();
}

#[tokio::test]
async fn a_token_that_lapses_is_revoked_on_the_socket() {
    let (running, _dir) = server(OWN_DATA, |c| c.heartbeat_secs = 1).await;
    let mut ada = Firebase::connect(&running).await;
    let token = sign(json!({"sub": "ada", "exp": now() + 2}), SECRET);
    let (_, reply) = ada.request("auth", json!({"cred": token})).await;
    assert_eq!(reply["s"], "ok");
    let revoked = ada.push().await;
    assert_eq!(
        revoked,
        json!({"a": "ac", "b": {"s": "expired_token", "d": "the token has expired"}})
    );
    let (_, reply) = ada.request("g", json!({"p": "/users/ada"})).await;
    assert_eq!(reply["s"], "permission_denied");
    running.stop().await.ok();
}

#[tokio::test]
async fn an_idle_stream_keeps_alive_and_a_lapsed_token_ends_it() {
    let (running, _dir) = server(OWN_DATA, |c| c.heartbeat_secs = 1).await;
    let issued = now();
    let token = sign(json!({"sub": "ada", "exp": issued + 3}), SECRET);
    let mut events = Events::open(&running, &format!("/users/ada.json?auth={token}")).await;
    assert_eq!(
        events.next().await,
        "event: put\ndata: {\"data\":null,\"path\":\"/\"}\n\n"
    );
    assert_eq!(events.next().await, "event: keep-alive\ndata: null\n\n");
    loop {
        let event = events.next().await;
        if event == "event: keep-alive\ndata: null\n\n" {
            continue;
        }
        assert_eq!(
            event,
            "event: auth_revoked\ndata: \"credential is no longer valid\"\n\n"
        );
        break;
    }
    assert!(now() >= issued + 3, "revoked only once the token lapsed");
    assert_eq!(events.rest().await, "", "the stream ends");
    running.stop().await.ok();
}

#[tokio::test]
async fn each_namespace_is_its_own_tree_when_separate() {
    let (running, _dir) = server("rules:\n  '**':\n    read: true\n    write: true\n", |c| {
        c.firebase.namespaces = Namespaces::Separate;
    })
    .await;
    let mut alpha = Firebase::connect_to(&running, "alpha").await;
    let mut beta = Firebase::connect_to(&running, "beta").await;
    let (_, reply) = alpha.request("p", json!({"p": "/x", "d": 1})).await;
    assert_eq!(reply["s"], "ok");
    let (_, reply) = beta.request("p", json!({"p": "/x", "d": 2})).await;
    assert_eq!(reply["s"], "ok");
    let (_, reply) = alpha.request("g", json!({"p": "/"})).await;
    assert_eq!(reply, json!({"s": "ok", "d": {"x": 1}}));

    let mut kora = Client::connect(&running).await;
    let paths = json!([{"path": "alpha"}, {"path": "beta"}]);
    let both = kora.request(json!({"op": "query", "paths": paths})).await;
    assert_eq!(
        both["result"]["value"],
        json!({"alpha": {"x": 1}, "beta": {"x": 2}})
    );

    let http = reqwest::Client::new();
    let beta_x = http.get(url(&running, "/x.json?ns=beta")).send().await;
    assert_eq!(beta_x.unwrap().json::<Value>().await.unwrap(), json!(2));
    let unnamed = http.get(url(&running, "/x.json")).send().await.unwrap();
    assert_eq!(unnamed.status(), 400);
    assert!(unnamed.json::<Value>().await.unwrap()["error"]
        .as_str()
        .is_some_and(|e| e.contains("ns=")));
    let socket = format!("ws://{}/.ws?v=5", running.addr);
    assert!(tokio_tungstenite::connect_async(socket).await.is_err());

    // Ignored (the default): every namespace is the one tree.
    let running = server_with(Kora::builder(), |_| {}).await;
    let mut alpha = Firebase::connect_to(&running, "alpha").await;
    alpha.request("p", json!({"p": "/x", "d": 1})).await;
    let mut unnamed = Firebase::connect_to(&running, "").await;
    let (_, reply) = unnamed.request("g", json!({"p": "/x"})).await;
    assert_eq!(reply, json!({"s": "ok", "d": 1}));
    running.stop().await.ok();
}

/// The administrator's secret (`[auth] admin_secret`) is Firebase's database secret: REST's
/// `?auth=` passes the rules with it.
#[tokio::test]
async fn the_admin_secret_is_the_database_secret() {
    const ADMIN: &str = "an-admin-secret-of-at-least-32-bytes!";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kora.rules.yaml");
    std::fs::write(
        &file,
        "rules:\n  orders/$id:\n    read: false\n    write: false\n",
    )
    .unwrap();
    let running = server_with(Kora::builder(), |c| {
        c.rules = Some(file);
        c.auth.admin_secret = Some(ADMIN.into());
    })
    .await;
    let http = reqwest::Client::new();
    let order = url(&running, "/orders/o1.json");
    let refused = http
        .put(&order)
        .json(&json!({"n": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "the rules refuse an anonymous write");
    let written = http
        .put(format!("{order}?auth={ADMIN}"))
        .json(&json!({"n": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(written.status(), 200);
    let anonymous = http.get(&order).send().await.unwrap();
    assert_ne!(
        anonymous.status(),
        200,
        "the rules refuse an anonymous read"
    );
    let read = json(http.get(format!("{order}?auth={ADMIN}"))).await;
    assert_eq!(read, json!({"n": 1}));
}

/// Firebase's REST over TLS, beside the core's endpoints.
#[tokio::test]
async fn rest_answers_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let files = kora_testkit::tls::TestCa::new("firebase").server_files(dir.path(), "server");
    let running = server_with(Kora::builder(), |c| {
        c.tls_cert = Some(files.cert.clone());
        c.tls_key = Some(files.key.clone());
    })
    .await;
    let pem = std::fs::read(&files.ca).unwrap();
    let https = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let at = format!("https://localhost:{}/ships/pearl.json", running.addr.port());
    let put = https
        .put(&at)
        .json(&json!({"captain": "Jack"}))
        .send()
        .await;
    assert!(put.expect("a write over TLS").status().is_success());
    let read = json(https.get(&at)).await;
    assert_eq!(read, json!({"captain": "Jack"}));
}
