//! Authentication with JSON Web Tokens: HS256, RS256 (PEM) and ES256 (JWKS); expiry,
//! not-before, forgery, `alg: none`; over HTTP, event streams and WebSocket.

mod common;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::tokens::{hs256, key_file, now, SECRET};
use common::{server_with, url, Client};
use kora_engine::{Context, FnHandler, Kora};
use kora_server::Running;
use serde_json::{json, Value};

fn claims(sub: &str) -> Value {
    json!({"sub": sub, "exp": now() + 3600})
}

/// A server whose `whoami` handler answers the caller's claims, and whose interceptor-free
/// data is open; tokens verified with every kind of key.
async fn server() -> Running {
    let builder = Kora::builder().handler(
        "whoami",
        FnHandler(|_: Value, ctx: Context, _: Kora| async move {
            Ok(ctx.auth().unwrap_or(Value::Null))
        }),
    );
    server_with(builder, |config| {
        config.auth.hs256_secret = Some(SECRET.into());
        config.auth.public_key = Some(key_file("rsa-public.pem"));
        config.auth.jwks = Some(key_file("jwks.json"));
        config.auth.leeway_secs = 0;
    })
    .await
}

async fn whoami_ws(running: &Running, token: Option<&str>) -> Value {
    let mut client = Client::connect(running).await;
    if let Some(token) = token {
        let reply = client.request(json!({"op": "auth", "token": token})).await;
        if reply.get("error").is_some() {
            return reply;
        }
    }
    client
        .request(json!({"op": "call", "name": "whoami"}))
        .await
}

#[tokio::test]
async fn an_hs256_token_becomes_the_identity() {
    let running = server().await;
    let reply = whoami_ws(&running, Some(&hs256(claims("jack")))).await;
    assert_eq!(reply["result"]["sub"], json!("jack"));
    let anonymous = whoami_ws(&running, None).await;
    assert_eq!(anonymous["result"], Value::Null);
}

#[tokio::test]
async fn rs256_with_a_pem_key_and_es256_from_a_jwks_are_accepted() {
    let running = server().await;
    let rsa = std::fs::read(key_file("rsa-private.pem")).unwrap();
    let token = encode(
        &Header::new(Algorithm::RS256),
        &claims("rsa"),
        &EncodingKey::from_rsa_pem(&rsa).unwrap(),
    )
    .unwrap();
    assert_eq!(
        whoami_ws(&running, Some(&token)).await["result"]["sub"],
        json!("rsa")
    );

    let ec = std::fs::read(key_file("ec-private.pem")).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("ec-1".into());
    let token = encode(
        &header,
        &claims("ec"),
        &EncodingKey::from_ec_pem(&ec).unwrap(),
    )
    .unwrap();
    assert_eq!(
        whoami_ws(&running, Some(&token)).await["result"]["sub"],
        json!("ec")
    );
}

#[tokio::test]
async fn expired_early_forged_and_unsigned_tokens_are_refused() {
    let running = server().await;
    let expired = hs256(json!({"sub": "x", "exp": now() - 10}));
    let early = hs256(json!({"sub": "x", "exp": now() + 3600, "nbf": now() + 600}));
    let forged = encode(
        &Header::new(Algorithm::HS256),
        &claims("x"),
        &EncodingKey::from_secret(b"another-secret-of-at-least-32-bytes!!"),
    )
    .unwrap();
    // alg: none — header and claims, no signature.
    let b64 = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string().as_bytes());
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"})),
        b64(claims("x"))
    );
    for token in [expired, early, forged, unsigned, "garbage".to_string()] {
        let reply = whoami_ws(&running, Some(&token)).await;
        assert_eq!(
            reply["error"]["code"],
            json!("permission_denied"),
            "{token}: {reply}"
        );
    }
}

#[tokio::test]
async fn tokens_work_on_http_headers_the_handshake_and_the_token_parameter() {
    let running = server().await;
    let token = hs256(claims("jack"));
    // HTTP: a bad bearer token is refused before anything is written.
    let response = reqwest::Client::new()
        .put(url(&running, "/v1/data/a"))
        .bearer_auth("not-a-token")
        .body("1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = reqwest::Client::new()
        .put(url(&running, "/v1/data/a"))
        .bearer_auth(&token)
        .body("1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = reqwest::get(url(&running, &format!("/v1/data/a?token={token}")))
        .await
        .unwrap();
    assert_eq!(response.json::<Value>().await.unwrap(), json!(1));
    let refused = reqwest::get(url(&running, "/v1/data/a?token=bad"))
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);

    // WebSocket handshake with ?token=.
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/v1/ws?token={token}", running.addr))
            .await
            .unwrap();
    use futures_util::{SinkExt, StreamExt};
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        json!({"op": "call", "id": 1, "name": "whoami"})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let reply = loop {
        let frame = ws.next().await.unwrap().unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
            break serde_json::from_str::<Value>(text.as_str()).unwrap();
        }
    };
    assert_eq!(reply["result"]["sub"], json!("jack"));
    // A bad token in the handshake is refused with 403.
    let refused =
        tokio_tungstenite::connect_async(format!("ws://{}/v1/ws?token=bad", running.addr)).await;
    assert!(refused.is_err());
}

#[tokio::test]
async fn an_identity_ends_when_its_token_expires() {
    let running = server().await;
    let mut client = Client::connect(&running).await;
    let token = hs256(json!({"sub": "brief", "exp": now() + 1}));
    client.request(json!({"op": "auth", "token": token})).await;
    // The identity holds until its `exp` second has passed (leeway 0 here), then ends.
    let client = std::sync::Arc::new(tokio::sync::Mutex::new(client));
    kora_testkit::eventually("the identity to end", || {
        let client = client.clone();
        async move {
            let reply = client
                .lock()
                .await
                .request(json!({"op": "call", "name": "whoami"}))
                .await;
            reply["result"] == Value::Null
        }
    })
    .await;
    let mut client = std::sync::Arc::into_inner(client)
        .expect("one owner")
        .into_inner();
    assert_eq!(client.push().await, json!({"push": "auth_expired"}));
    // And `auth` with null signs out explicitly.
    let reply = client.request(json!({"op": "auth", "token": null})).await;
    assert_eq!(reply["result"], json!({"auth": null}));
}

#[tokio::test]
async fn a_server_without_keys_refuses_tokens() {
    let running = server_with(Kora::builder(), |_| {}).await;
    let reply = Client::connect(&running)
        .await
        .request(json!({"op": "auth", "token": hs256(claims("x"))}))
        .await;
    assert_eq!(reply["error"]["code"], json!("permission_denied"));
}

#[tokio::test]
async fn a_users_stored_subscriptions_start_when_they_authenticate() {
    let running = server().await;
    let mut writer = Client::connect(&running).await;
    writer
        .mutate(json!({"merge": {
            "inbox": {"jack": {"m1": "hello"}},
            "kora:subscriptions": {"jack": {"inbox": {"path": "inbox/jack"}}}
        }}))
        .await;
    let mut jack = Client::connect(&running).await;
    let reply = jack
        .request(json!({"op": "auth", "token": hs256(claims("jack"))}))
        .await;
    assert!(reply.get("result").is_some(), "{reply}");
    // The server subscribes the user and says what it follows, with the current value.
    let reset = jack.push().await;
    assert_eq!(
        reset,
        json!({"push": "reset", "sub": "stored:inbox", "seq": 1,
               "value": {"m1": "hello"}, "query": {"path": "inbox/jack"}})
    );
    writer
        .mutate(json!({"merge": {"inbox": {"jack": {"m2": "again"}}}}))
        .await;
    let change = jack.push().await;
    assert_eq!(change["sub"], "stored:inbox");
    assert_eq!(
        change["mutation"]["merge"],
        json!({"inbox": {"jack": {"m2": "again"}}})
    );
}

/// A handler that signs the connection in (sets its `user`, as a `login` does) starts that
/// user's stored subscriptions, like a token does; signing in as someone else ends them and
/// starts the other user's; signing out ends them.
#[tokio::test]
async fn stored_subscriptions_follow_a_user_a_handler_signs_in() {
    let login = FnHandler(|args: Value, ctx: Context, _| async move {
        ctx.set("user", args["user"].clone());
        Ok(json!("signed in"))
    });
    let running = server_with(Kora::builder().handler("login", login), |_| {}).await;
    let mut writer = Client::connect(&running).await;
    writer
        .mutate(json!({"merge": {
            "inbox": {"jack": {"m1": "hello"}, "jill": {"m1": "hi"}},
            "kora:subscriptions": {
                "jack": {"inbox": {"path": "inbox/jack"}},
                "jill": {"mail": {"path": "inbox/jill"}}
            }
        }}))
        .await;
    let mut client = Client::connect(&running).await;
    let reply = client
        .request(json!({"op": "call", "name": "login", "args": {"user": "jack"}}))
        .await;
    assert_eq!(reply["result"], "signed in", "{reply}");
    let reset = client.push().await;
    assert_eq!(reset["sub"], "stored:inbox", "{reset}");
    assert_eq!(reset["value"], json!({"m1": "hello"}));

    client
        .request(json!({"op": "call", "name": "login", "args": {"user": "jill"}}))
        .await;
    let reset = client.push().await;
    assert_eq!(reset["sub"], "stored:mail", "{reset}");
    // Jack's inbox is no longer followed: his next message reaches no one here, while
    // Jill's does.
    writer
        .mutate(json!({"merge": {"inbox": {"jack": {"m2": "for jack"}}}}))
        .await;
    writer
        .mutate(json!({"merge": {"inbox": {"jill": {"m2": "for jill"}}}}))
        .await;
    let change = client.push().await;
    assert_eq!(change["sub"], "stored:mail", "{change}");
    assert_eq!(
        change["mutation"]["merge"],
        json!({"inbox": {"jill": {"m2": "for jill"}}})
    );

    client
        .request(json!({"op": "call", "name": "login", "args": {"user": null}}))
        .await;
    writer
        .mutate(json!({"merge": {"inbox": {"jill": {"m3": "gone"}}}}))
        .await;
    // The write was delivered before the writer's reply; had it reached this connection, its
    // push would precede the ping's reply.
    let ping = client.request(json!({"op": "ping"})).await;
    assert_eq!(ping["result"], "pong");
    let late = client.maybe_push(std::time::Duration::ZERO).await;
    assert_eq!(late, None, "signed out: no stored subscription is followed");
}

/// A token accepted at connect within the verifier's leeway is not dropped on the next
/// message: the socket applies the same leeway (regression: it compared `exp` alone).
#[tokio::test]
async fn a_token_within_the_leeway_stays_accepted_on_the_socket() {
    let running = server_with(Kora::builder(), |config| {
        config.auth.hs256_secret = Some(SECRET.into());
        config.auth.leeway_secs = 30;
    })
    .await;
    let token = hs256(json!({"sub": "jack", "exp": now() - 5}));
    let mut client = Client::connect(&running).await;
    let reply = client.request(json!({"op": "auth", "token": token})).await;
    assert_eq!(reply["result"]["auth"]["sub"], json!("jack"), "{reply}");
    let pong = client.request(json!({"op": "ping"})).await;
    assert_eq!(pong["result"], json!("pong"), "{pong}");
    // An expiry is pushed before the reply to the message that found it: had the ping found
    // the token lapsed, its push would be queued already.
    let late = client.maybe_push(std::time::Duration::ZERO).await;
    assert_eq!(late, None, "no auth_expired push within the leeway");
}
