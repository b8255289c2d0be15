//! REST, errors and event streams over real HTTP.

mod common;

use std::time::Duration;

use async_trait::async_trait;
use common::{json, server, server_with, url};
use futures_util::StreamExt;
use kora_core::Mutation;
use kora_engine::{Context, Error, Interceptor, Kora, WriteLayer};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(running: &kora_server::Running, path: &str) -> Value {
    reqwest::get(url(running, path))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn put_patch_delete_and_mutate() {
    let running = server().await;
    let client = reqwest::Client::new();
    let reply = json(
        client
            .put(url(&running, "/v1/data/todos/t1"))
            .body(r#"{"text": "hi", "tags": ["a"]}"#),
    )
    .await;
    assert_eq!(reply["seq"], json!(1));
    client
        .patch(url(&running, "/v1/data/todos"))
        .body(r#"{"t1": {"done": true, "tags": null}, "t2": {"text": "yo"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        get(&running, "/v1/data/todos").await,
        json!({"t1": {"text": "hi", "done": true}, "t2": {"text": "yo"}})
    );
    // PUT replaces the subtree.
    client
        .put(url(&running, "/v1/data/todos/t1"))
        .body(r#"{"text": "new"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        get(&running, "/v1/data/todos/t1").await,
        json!({"text": "new"})
    );
    client
        .delete(url(&running, "/v1/data/todos/t2"))
        .send()
        .await
        .unwrap();
    client
        .post(url(&running, "/v1/mutate"))
        .body(r#"{"merge": {"a": 1}, "delete": {"todos": 1}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(get(&running, "/v1/data").await, json!({"a": 1}));
    assert_eq!(get(&running, "/v1/data/todos").await, Value::Null);
}

#[tokio::test]
async fn get_takes_range_parameters() {
    let running = server().await;
    reqwest::Client::new()
        .put(url(&running, "/v1/data/l"))
        .body(r#"{"a": 1, "b": 2, "c": 3, "d": 4}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        get(&running, "/v1/data/l?min=b&max=c").await,
        json!({"b": 2, "c": 3})
    );
    assert_eq!(
        get(&running, "/v1/data/l?limit=2&reverse=true").await,
        json!({"c": 3, "d": 4})
    );
    let response = reqwest::get(url(&running, "/v1/data/l?limit=x"))
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

/// Refuses todos without text (422) and anything under `secret` (403).
struct Guard;

#[async_trait]
impl Interceptor for Guard {
    async fn before_mutation(
        &self,
        layer: &WriteLayer<'_>,
        _ctx: &Context,
    ) -> Result<Option<Mutation>, Error> {
        if layer.path.segments().first().map(String::as_str) == Some("secret") {
            return Err(Error::permission_denied("secret is read-only"));
        }
        if layer.path.depth() == 2 && layer.layer.merge.is_some_and(|m| !m.contains_key("text")) {
            return Err(Error::validation_failed("a todo needs a text"));
        }
        Ok(None)
    }
}

async fn status_and_code(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["error"]["code"].clone())
}

#[tokio::test]
async fn every_error_code_has_its_status_and_writes_nothing() {
    let builder = Kora::builder().interceptor("**", Guard);
    let running = server_with(builder, |c| c.limits.max_body_bytes = 1024).await;
    let client = reqwest::Client::new();
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            client.put(url(&running, "/v1/data/todos/t1")).body("{nope"),
            400,
            "bad_request",
        ),
        (
            client.put(url(&running, "/v1/data/todos//t1")).body("{}"),
            400,
            "invalid_path",
        ),
        (
            client
                .put(url(
                    &running,
                    &format!("/v1/data/{}", vec!["a"; 65].join("/")),
                ))
                .body("1"),
            400,
            "invalid_path",
        ),
        (
            client
                .post(url(&running, "/v1/mutate"))
                .body(r#"{"delete": {"a": 2}}"#),
            400,
            "bad_request",
        ),
        (
            client
                .put(url(&running, "/v1/data/big"))
                .body(format!("\"{}\"", "x".repeat(2000))),
            413,
            "too_large",
        ),
        (
            client.put(url(&running, "/v1/data/secret/x")).body("1"),
            403,
            "permission_denied",
        ),
        (
            client
                .put(url(&running, "/v1/data/todos/t1"))
                .body(r#"{"done": true}"#),
            422,
            "validation_failed",
        ),
        (client.get(url(&running, "/v2/whatever")), 404, "not_found"),
    ];
    for (request, status, code) in cases {
        let (got_status, got_code) = status_and_code(request.send().await.unwrap()).await;
        assert_eq!((got_status, got_code), (status, json!(code)));
    }
    assert_eq!(
        get(&running, "/v1/data").await,
        Value::Null,
        "nothing was written"
    );
}

#[tokio::test]
async fn an_oversized_body_is_refused_on_its_declared_length_before_it_is_sent() {
    let running = server_with(Kora::builder(), |c| c.limits.max_body_bytes = 1024).await;
    let mut socket = tokio::net::TcpStream::connect(running.addr).await.unwrap();
    // Only the headers: a server that waited for the body would never answer.
    let head = "PUT /v1/data/a HTTP/1.1\r\nhost: x\r\ncontent-length: 100000000\r\n\r\n";
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut answer))
        .await
        .expect("answered without the body")
        .unwrap();
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("too_large"), "{text}");
}

/// Reads server-sent events until `count` have arrived: (event, id, data).
async fn events(response: reqwest::Response, count: usize) -> Vec<(String, String, Value)> {
    let mut stream = response.bytes_stream();
    let mut text = String::new();
    let mut out = Vec::new();
    while out.len() < count {
        let chunk = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("an event")
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let mut event = (String::new(), String::new(), Value::Null);
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    event.0 = v.into();
                } else if let Some(v) = line.strip_prefix("id: ") {
                    event.1 = v.into();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    event.2 = serde_json::from_str(v).unwrap();
                }
            }
            if !event.0.is_empty() {
                out.push(event);
            }
        }
    }
    out
}

#[tokio::test]
async fn event_streams_send_the_value_then_changes_and_resume_by_last_event_id() {
    let running = server().await;
    let client = reqwest::Client::new();
    client
        .put(url(&running, "/v1/data/todos/t1"))
        .body(r#"{"text": "a"}"#)
        .send()
        .await
        .unwrap();
    let stream = client
        .get(url(&running, "/v1/data/todos"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    client
        .put(url(&running, "/v1/data/todos/t2"))
        .body(r#"{"text": "b"}"#)
        .send()
        .await
        .unwrap();
    client
        .put(url(&running, "/v1/data/other"))
        .body("1")
        .send()
        .await
        .unwrap();
    client
        .delete(url(&running, "/v1/data/todos/t1"))
        .send()
        .await
        .unwrap();
    let got = events(stream, 3).await;
    assert_eq!(got[0].0, "value");
    assert_eq!(
        (got[0].1.as_str(), &got[0].2["value"]),
        ("1", &json!({"t1": {"text": "a"}}))
    );
    assert_eq!((got[1].0.as_str(), got[1].1.as_str()), ("change", "2"));
    assert_eq!(
        got[1].2["mutation"],
        json!({"merge": {"todos": {"t2": {"text": "b"}}}, "delete": {"todos": {"t2": 1}}}),
        "a PUT replaces the subtree: its delete is part of the change"
    );
    assert_eq!(
        (got[2].0.as_str(), got[2].1.as_str()),
        ("change", "4"),
        "nothing from seq 3"
    );

    // Resume after 2: exactly the missed change under the path.
    let resumed = client
        .get(url(&running, "/v1/data/todos"))
        .header("accept", "text/event-stream")
        .header("last-event-id", "2")
        .send()
        .await
        .unwrap();
    let got = events(resumed, 1).await;
    assert_eq!((got[0].0.as_str(), got[0].1.as_str()), ("change", "4"));
}

#[tokio::test]
async fn health_and_metrics() {
    let running = server().await;
    assert_eq!(get(&running, "/healthz").await["status"], json!("ok"));
    reqwest::Client::new()
        .put(url(&running, "/v1/data/a"))
        .body("1")
        .send()
        .await
        .unwrap();
    let text = reqwest::get(url(&running, "/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("kora_writes_total{outcome=\"committed\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("kora_writes_total{outcome=\"conflict\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("kora_mutation_seconds_bucket{le=\"+Inf\"} 1"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    assert!(text.contains("kora_mutation_seconds_bucket"), "{text}");
    let console = reqwest::get(url(&running, "/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(console.contains("/v1/ws"));
}

/// `POST /v1/mutate` and the WebSocket's `mutate` with conditions: a failed one answers 409
/// `conflict` with what is there now — only at paths the caller may read.
#[tokio::test]
async fn conditional_writes_answer_conflict_with_what_the_caller_may_read() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("kora.rules.yaml");
    let text = "rules:\n  open:\n    read: true\n    write: true\n  secret:\n    read: false\n    write: true\n";
    std::fs::write(&rules, text).unwrap();
    let running = server_with(Kora::builder(), |config| config.rules = Some(rules)).await;
    let client = reqwest::Client::new();
    let post = |body: Value| client.post(url(&running, "/v1/mutate")).json(&body).send();
    let ok = post(json!({"merge": {"open": {"n": 1}, "secret": {"s": 1}}}))
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let refused = post(json!({
        "merge": {"open": {"n": 2}},
        "conditions": [
            {"path": "open/n", "equals": 0},
            {"path": "secret/s", "equals": 0},
            {"path": "open/none", "equals": null}
        ]
    }))
    .await
    .unwrap();
    assert_eq!(refused.status(), 409);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], json!("conflict"));
    assert_eq!(body["error"]["failed"], json!([0, 1]));
    assert_eq!(
        body["error"]["current"],
        json!([{"path": "open/n", "value": 1}]),
        "the secret's value is not shown"
    );
    assert_eq!(
        get(&running, "/v1/data/open/n").await,
        json!(1),
        "nothing written"
    );
    let bad = post(json!({"merge": {"open": {"n": 2}}, "conditions": [{"path": "open/n"}]}))
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let mut ws = common::Client::connect(&running).await;
    let since = ws
        .request(json!({"op": "query", "paths": [{"path": "open"}]}))
        .await["result"]["seq"]
        .clone();
    let reply = ws
        .request(
            json!({"op": "mutate", "mutation": {"merge": {"open": {"n": 2}}},
            "conditions": [{"path": "open", "since": since}]}),
        )
        .await;
    assert_eq!(reply["result"]["seq"], json!(2), "{reply}");
    let stale = ws
        .request(
            json!({"op": "mutate", "mutation": {"merge": {"open": {"n": 3}}},
            "conditions": [{"path": "open/n", "since": since}]}),
        )
        .await;
    assert_eq!(stale["error"]["code"], json!("conflict"), "{stale}");
    assert_eq!(
        stale["error"]["current"],
        json!([{"path": "open/n", "value": 2}])
    );
    assert_eq!(stale["error"]["seq"], json!(2));
}

/// Browsers on another origin can use both REST APIs: a preflight is answered (regression:
/// Firebase's REST answered `OPTIONS` with 400), and every answer names the allowed origin once.
#[tokio::test]
async fn cross_origin_requests_are_allowed_from_configured_origins() {
    let running = server().await;
    let client = reqwest::Client::new();
    for path in ["/todos/t1.json", "/v1/data/todos/t1"] {
        let preflight = client
            .request(reqwest::Method::OPTIONS, url(&running, path))
            .header("origin", "https://app.example")
            .header("access-control-request-method", "PUT")
            .header(
                "access-control-request-headers",
                "content-type, authorization",
            )
            .send()
            .await
            .unwrap();
        assert!(
            preflight.status().is_success(),
            "{path}: {}",
            preflight.status()
        );
        let headers = preflight.headers();
        assert_eq!(headers["access-control-allow-origin"], "*", "{path}");
        assert!(
            headers.contains_key("access-control-allow-methods"),
            "{path}"
        );
    }
    for path in ["/todos.json", "/v1/data/todos", "/v1/client.js"] {
        let answer = client
            .get(url(&running, path))
            .header("origin", "https://app.example")
            .send()
            .await
            .unwrap();
        let origins: Vec<_> = answer
            .headers()
            .get_all("access-control-allow-origin")
            .iter()
            .collect();
        assert_eq!(origins, ["*"], "{path}: one allowed origin");
    }

    let running = server_with(Kora::builder(), |config| {
        config.cors_origins = vec!["https://app.example".into()];
    })
    .await;
    let allowed = |origin: &'static str| {
        let client = client.clone();
        let url = url(&running, "/v1/data/todos");
        async move {
            let answer = client
                .get(url)
                .header("origin", origin)
                .send()
                .await
                .unwrap();
            answer.headers().get("access-control-allow-origin").cloned()
        }
    };
    assert_eq!(
        allowed("https://app.example").await.unwrap(),
        "https://app.example"
    );
    assert_eq!(allowed("https://elsewhere.example").await, None);
}
