//! Every message of docs/protocol.md over a real WebSocket.

mod common;

use std::time::Duration;

use common::{server, server_with, Client};
use kora_engine::{FnHandler, Kora};
use serde_json::{json, Value};

#[tokio::test]
async fn ping_answers_pong() {
    let running = server().await;
    let mut client = Client::connect(&running).await;
    let reply = client.request(json!({"op": "ping"})).await;
    assert_eq!(reply["result"], json!("pong"));
}

#[tokio::test]
async fn mutate_then_query_several_paths() {
    let running = server().await;
    let mut client = Client::connect(&running).await;
    let reply = client
        .mutate(json!({"merge": {"todos": {"t1": {"text": "hi"}}, "users": {"jack": {"name": "Jack"}}}}))
        .await;
    assert_eq!(reply["result"]["seq"], json!(1));
    assert_eq!(reply["result"]["stamp"].as_str().map(str::len), Some(26));
    let reply = client
        .request(json!({"op": "query", "paths": [{"path": "todos"}, {"path": "users/jack/name"}, {"path": "nope"}]}))
        .await;
    assert_eq!(
        reply["result"],
        json!({"seq": 1, "value": {"todos": {"t1": {"text": "hi"}}, "users": {"jack": {"name": "Jack"}}}})
    );
}

#[tokio::test]
async fn a_subscriber_receives_exactly_its_part_of_another_clients_writes() {
    let running = server().await;
    let mut writer = Client::connect(&running).await;
    let mut reader = Client::connect(&running).await;
    writer
        .mutate(json!({"merge": {"todos": {"t1": {"text": "a"}}}}))
        .await;
    let reply = reader.subscribe("todos/t2").await;
    // A subscribing query names the store's history, which a resume sends back.
    let history = reply["result"]["history"]
        .as_str()
        .expect("a history")
        .to_string();
    assert_eq!(history.len(), 32);
    assert_eq!(
        reply["result"],
        json!({"seq": 1, "value": {}, "history": history})
    );
    writer
        .mutate(
            json!({"merge": {"todos": {"t1": {"done": true}, "t2": {"text": "b"}}, "other": 1}}),
        )
        .await;
    let push = reader.push().await;
    assert_eq!(
        push,
        json!({"push": "change", "sub": "todos/t2", "seq": 2, "stamp": push["stamp"],
               "mutation": {"merge": {"todos": {"t2": {"text": "b"}}}, "delete": {}}})
    );
    // An ancestor's deletion reaches it as a delete of its own path.
    writer.mutate(json!({"delete": {"todos": 1}})).await;
    let push = reader.push().await;
    assert_eq!(
        push["mutation"],
        json!({"merge": {}, "delete": {"todos": {"t2": 1}}})
    );
    // Writes elsewhere send nothing.
    writer.mutate(json!({"merge": {"users": {"x": 1}}})).await;
    assert!(reader
        .maybe_push(Duration::from_millis(200))
        .await
        .is_none());
}

#[tokio::test]
async fn unsubscribe_stops_pushes() {
    let running = server().await;
    let mut client = Client::connect(&running).await;
    client.subscribe("a").await;
    let reply = client
        .request(json!({"op": "unsubscribe", "sub": "a"}))
        .await;
    assert_eq!(reply["result"], json!(true));
    let reply = client
        .request(json!({"op": "unsubscribe", "sub": "a"}))
        .await;
    assert_eq!(reply["result"], json!(false));
    client.mutate(json!({"merge": {"a": 1}})).await;
    assert!(client
        .maybe_push(Duration::from_millis(200))
        .await
        .is_none());
}

#[tokio::test]
async fn resume_since_replays_missed_changes_then_continues() {
    let running = server().await;
    let mut writer = Client::connect(&running).await;
    for i in 1..=3 {
        writer
            .mutate(json!({"merge": {"log": {format!("e{i}"): i}}}))
            .await;
    }
    let mut reader = Client::connect(&running).await;
    let reply = reader
        .request(json!({"op": "query", "paths": [{"path": "log", "subscribe": true, "since": 1, "sub": "L"}]}))
        .await;
    assert_eq!(reply["result"]["value"], json!({}));
    let seqs: Vec<Value> = vec![
        reader.push().await["seq"].clone(),
        reader.push().await["seq"].clone(),
    ];
    assert_eq!(seqs, [json!(2), json!(3)]);
    writer.mutate(json!({"merge": {"log": {"e4": 4}}})).await;
    let live = reader.push().await;
    assert_eq!(
        (live["sub"].clone(), live["seq"].clone()),
        (json!("L"), json!(4))
    );
}

#[tokio::test]
async fn client_stamps_order_offline_writes() {
    let running = server().await;
    let mut client = Client::connect(&running).await;
    client.mutate(json!({"merge": {"a": "new"}})).await;
    let old = kora_core::Stamp::new(kora_core::stamp::wall_millis() - 10_000, 0, 77);
    let reply = client
        .request(json!({"op": "mutate", "mutation": {"merge": {"a": "offline"}}, "stamp": old}))
        .await;
    assert_eq!(reply["result"]["stamp"], json!(old));
    let reply = client
        .request(json!({"op": "query", "paths": [{"path": "a"}]}))
        .await;
    assert_eq!(reply["result"]["value"], json!({"a": "new"}));
}

#[tokio::test]
async fn call_replies_and_cast_does_not() {
    let builder = Kora::builder().handler(
        "echo",
        FnHandler(
            |args: Value, ctx: kora_engine::Context, _k: Kora| async move {
                ctx.set("seen", args.clone());
                Ok(json!({"echo": args}))
            },
        ),
    );
    let running = server_with(builder, |_| {}).await;
    let mut client = Client::connect(&running).await;
    let reply = client
        .request(json!({"op": "call", "name": "echo", "args": [1, 2]}))
        .await;
    assert_eq!(reply["result"], json!({"echo": [1, 2]}));
    client
        .send_text(json!({"op": "cast", "name": "echo", "args": "x"}).to_string())
        .await;
    let reply = client.request(json!({"op": "call", "name": "nope"})).await;
    assert_eq!(reply["error"]["code"], json!("not_found"));
    let reply = client.request(json!({"op": "ping"})).await;
    assert_eq!(reply["result"], json!("pong"), "the cast sent no reply");
}

#[tokio::test]
async fn bad_requests_get_coded_errors_and_write_nothing() {
    let running = server().await;
    let mut client = Client::connect(&running).await;
    client.send_text("{not json".into()).await;
    let reply = client.frame().await.unwrap();
    assert_eq!(reply["id"], Value::Null);
    assert_eq!(reply["error"]["code"], json!("bad_request"));
    let cases = [
        (
            json!({"op": "mutate", "mutation": {"delete": {"a": true}}}),
            "bad_request",
        ),
        (
            json!({"op": "mutate", "mutation": {"merge": {"a": {"": 1}}}}),
            "invalid_path",
        ),
        (
            json!({"op": "mutate", "mutation": {"merge": 5}}),
            "bad_request",
        ),
        (
            json!({"op": "query", "paths": [{"path": "a//b"}]}),
            "invalid_path",
        ),
        (
            json!({"op": "query", "paths": [{"path": "a", "limt": 1}]}),
            "bad_request",
        ),
        (json!({"op": "fly"}), "bad_request"),
    ];
    for (request, code) in cases {
        let reply = client.request(request.clone()).await;
        assert_eq!(reply["error"]["code"], json!(code), "{request}");
    }
    let reply = client
        .request(json!({"op": "query", "paths": [{"path": ""}]}))
        .await;
    assert_eq!(reply["result"]["value"], json!({}), "nothing was written");
    assert_eq!(reply["result"]["seq"], json!(0));
}

#[tokio::test]
async fn a_limited_subscription_follows_its_window() {
    let running = server().await;
    let mut client = Client::connect(&running).await;
    client
        .mutate(json!({"merge": {"l": {"b": 2, "c": 3}}}))
        .await;
    let reply = client
        .request(json!({"op": "query", "paths": [{"path": "l", "limit": 2, "subscribe": true}]}))
        .await;
    assert_eq!(reply["result"]["value"], json!({"l": {"b": 2, "c": 3}}));
    client.mutate(json!({"merge": {"l": {"a": 1}}})).await;
    let push = client.push().await;
    assert_eq!(
        push["mutation"],
        json!({"merge": {"l": {"a": 1}}, "delete": {"l": {"a": 1, "c": 1}}})
    );
}

#[tokio::test]
async fn too_many_subscriptions_are_refused() {
    let running = server_with(Kora::builder(), |c| c.limits.max_subscriptions = 2).await;
    let mut client = Client::connect(&running).await;
    assert!(client.subscribe("a").await.get("result").is_some());
    assert!(client.subscribe("b").await.get("result").is_some());
    let reply = client.subscribe("c").await;
    assert_eq!(reply["error"]["code"], json!("too_large"));
}

#[tokio::test]
async fn an_oversized_frame_is_refused() {
    let running = server_with(Kora::builder(), |c| c.limits.max_body_bytes = 1024).await;
    let mut client = Client::connect(&running).await;
    let big = "x".repeat(1500);
    client
        .send_text(json!({"op": "mutate", "id": 1, "mutation": {"merge": {"a": big}}}).to_string())
        .await;
    let reply = client.frame().await.expect("an error reply");
    assert_eq!(reply["id"], json!(1));
    assert_eq!(reply["error"]["code"], json!("too_large"));
    let reply = client.request(json!({"op": "ping"})).await;
    assert_eq!(reply["result"], json!("pong"), "the connection survives");
    // Far beyond the limit, the message is not read at all: the connection is closed.
    let huge = "x".repeat(64 * 1024);
    client
        .send_text(json!({"op": "mutate", "id": 9, "mutation": {"merge": {"a": huge}}}).to_string())
        .await;
    let mut told = false;
    while let Some(frame) = client.frame().await {
        assert_ne!(frame["result"], json!({}), "never accepted: {frame}");
        told |= frame["error"]["code"] == json!("too_large");
    }
    assert!(told, "the client is told why its connection closes");
    let mut other = Client::connect(&running).await;
    let reply = other
        .request(json!({"op": "query", "paths": [{"path": "a"}]}))
        .await;
    assert_eq!(reply["result"]["value"], json!({}), "nothing was written");
}

#[tokio::test]
async fn connections_per_address_are_limited() {
    let running = server_with(Kora::builder(), |c| c.limits.max_connections_per_ip = 2).await;
    let _a = Client::connect(&running).await;
    let _b = Client::connect(&running).await;
    let third = tokio_tungstenite::connect_async(format!("ws://{}/v1/ws", running.addr)).await;
    match third {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503)
        }
        other => panic!("expected 503, got {other:?}"),
    }
    drop(_a);
    // The slot frees when the server sees the connection close.
    let ws_url = format!("ws://{}/v1/ws", running.addr);
    kora_testkit::eventually("a freed connection slot", || async {
        tokio_tungstenite::connect_async(ws_url.as_str())
            .await
            .is_ok()
    })
    .await;
}

#[tokio::test]
async fn a_client_sending_too_fast_is_told_to_slow_down() {
    let running = server_with(Kora::builder(), |c| c.limits.max_messages_per_second = 5).await;
    let mut client = Client::connect(&running).await;
    let mut refused = 0;
    for _ in 0..20 {
        let reply = client.request(json!({"op": "ping"})).await;
        if reply["error"]["code"] == json!("unavailable") {
            refused += 1;
        }
    }
    assert!(refused >= 10, "{refused} of 20 refused");
    // The allowance refills with time: allowed again after a pause.
    let client = std::sync::Arc::new(tokio::sync::Mutex::new(client));
    kora_testkit::eventually_within("a ping allowed again", Duration::from_secs(5), || {
        let client = client.clone();
        async move {
            let reply = client.lock().await.request(json!({"op": "ping"})).await;
            reply["result"] == json!("pong")
        }
    })
    .await;
}

#[tokio::test]
async fn a_writes_reply_follows_its_own_change() {
    let running = server().await;
    let mut c = Client::connect(&running).await;
    c.subscribe("todos").await;
    for i in 0..50 {
        let mutation = json!({"merge": {"todos": {format!("t{i}"): i}}});
        c.send_text(json!({"op": "mutate", "id": i, "mutation": mutation}).to_string())
            .await;
        let first = c.frame().await.unwrap();
        assert_eq!(first["push"], "change", "{first}");
        let second = c.frame().await.unwrap();
        assert_eq!(second["id"], json!(i), "{second}");
        assert_eq!(second["result"]["seq"], first["seq"]);
    }
}
