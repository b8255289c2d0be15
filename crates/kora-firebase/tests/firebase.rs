//! Firebase's WebSocket protocol and REST API, frame by frame, against a real server: the
//! orderings the SDKs depend on (docs/firebase-protocol.md §7), transactions, onDisconnect, and that Kora's own
//! clients and Firebase's see one tree. The SDK itself runs in `tests/firebase` (Node).

mod common;

use common::firebase::{Events, Firebase};
use common::{server, server_with, server_with_rules, url, Client, Rules};
use kora_engine::Kora;
use serde_json::{json, Value};

#[tokio::test]
async fn the_hello_comes_first_and_names_the_host_the_client_used() {
    let running = server().await;
    let client = Firebase::connect(&running).await;
    let hello = &client.hello["d"];
    assert_eq!(client.hello["t"], "c");
    assert_eq!(hello["t"], "h");
    assert_eq!(hello["d"]["v"], "5");
    assert_eq!(hello["d"]["h"], running.addr.to_string());
    assert!(hello["d"]["ts"].as_u64().is_some_and(|ts| ts > 1 << 40));
    let session = hello["d"]["s"].as_str().unwrap_or_default();
    assert!(!session.is_empty() && session.chars().all(|c| c.is_ascii_alphanumeric()));
    running.stop().await.ok();
}

#[tokio::test]
async fn a_listen_gets_its_data_before_its_ok_and_a_write_its_pushes_before_its_ok() {
    let running = server().await;
    let mut a = Firebase::connect(&running).await;
    let (pushes, reply) = a.request("s", json!({"c": {"sdk.js.1-1-5": 1}})).await;
    assert_eq!((pushes.len(), reply), (0, json!({"s": "ok", "d": ""})));

    let (_, reply) = a
        .request("p", json!({"p": "/users/ada", "d": {"age": 36}}))
        .await;
    assert_eq!(reply["s"], "ok");
    let (pushes, reply) = a.request("q", json!({"p": "/users", "h": ""})).await;
    assert_eq!(reply, json!({"s": "ok", "d": {}}));
    assert_eq!(
        pushes,
        vec![json!({"a": "d", "b": {"p": "users", "d": {"ada": {"age": 36}}}})]
    );

    let (pushes, reply) = a
        .request(
            "m",
            json!({"p": "/users/ada", "d": {"age": 37, "tags/x": true}}),
        )
        .await;
    assert_eq!(reply["s"], "ok");
    assert_eq!(
        pushes,
        vec![json!({"a": "m", "b": {"p": "users/ada", "d": {"age": 37, "tags/x": true}}})]
    );
    let (pushes, _) = a
        .request("p", json!({"p": "/users/ada/age", "d": null}))
        .await;
    assert_eq!(
        pushes,
        vec![json!({"a": "d", "b": {"p": "users/ada/age", "d": null}})]
    );
    running.stop().await.ok();
}

#[tokio::test]
async fn another_connection_sees_writes_and_unlistened_paths_stay_quiet() {
    let running = server().await;
    let mut a = Firebase::connect(&running).await;
    let mut b = Firebase::connect(&running).await;
    b.request("q", json!({"p": "/room", "h": ""})).await;
    a.request("p", json!({"p": "/elsewhere", "d": 1})).await;
    a.request("p", json!({"p": "/room/msg", "d": "hi"})).await;
    assert_eq!(
        b.push().await,
        json!({"a": "d", "b": {"p": "room/msg", "d": "hi"}})
    );
    running.stop().await.ok();
}

#[tokio::test]
async fn a_transaction_with_a_stale_hash_gets_the_current_value_then_datastale() {
    let running = server().await;
    let mut a = Firebase::connect(&running).await;
    a.request("p", json!({"p": "/counter", "d": 7})).await;
    // The hash of 1 (the client believed the counter was 1).
    let (pushes, reply) = a
        .request(
            "p",
            json!({"p": "/counter", "d": 2, "h": "YPVfR2bXt/lcDjiQZ8pOkAd3qkQ="}),
        )
        .await;
    assert_eq!(reply["s"], "datastale");
    assert_eq!(
        pushes,
        vec![json!({"a": "d", "b": {"p": "counter", "d": 7}})]
    );
    // The hash of 7 matches.
    let hash = kora_firebase::node::hash(Some(&json!(7)));
    let (_, reply) = a
        .request("p", json!({"p": "/counter", "d": 8, "h": hash}))
        .await;
    assert_eq!(reply["s"], "ok");
    let (_, reply) = a.request("g", json!({"p": "/counter", "q": {}})).await;
    assert_eq!(reply, json!({"s": "ok", "d": 8}));
    running.stop().await.ok();
}

#[tokio::test]
async fn server_values_are_resolved_on_arrival() {
    let running = server().await;
    let mut a = Firebase::connect(&running).await;
    a.request("p", json!({"p": "/n", "d": 5})).await;
    a.request("p", json!({"p": "/n", "d": {".sv": {"increment": 2}}}))
        .await;
    a.request("m", json!({"p": "/", "d": {"t": {".sv": "timestamp"}}}))
        .await;
    let (_, n) = a.request("g", json!({"p": "/n", "q": {}})).await;
    let (_, t) = a.request("g", json!({"p": "/t", "q": {}})).await;
    assert_eq!(n["d"], 7);
    let now = kora_core::stamp::wall_millis();
    assert!(t["d"].as_u64().is_some_and(|t| now - t < 10_000), "{t}");
    running.stop().await.ok();
}

#[tokio::test]
async fn on_disconnect_writes_run_when_the_socket_closes_and_cancelled_ones_do_not() {
    let running = server().await;
    let mut a = Firebase::connect(&running).await;
    let mut b = Firebase::connect(&running).await;
    a.request("o", json!({"p": "/presence/a", "d": "gone"}))
        .await;
    a.request("om", json!({"p": "/presence", "d": {"b": 1, "c": 2}}))
        .await;
    a.request("oc", json!({"p": "/presence/c", "d": null}))
        .await;
    b.request("q", json!({"p": "/presence", "h": ""})).await;
    drop(a);
    let mut seen = json!({});
    while seen != json!({"a": "gone", "b": 1}) {
        let push = b.push().await;
        let key = push["b"]["p"]
            .as_str()
            .unwrap_or("")
            .trim_start_matches("presence/");
        seen[key] = push["b"]["d"].clone();
    }
    running.stop().await.ok();
}

#[tokio::test]
async fn a_tagged_query_sends_its_window_again_when_it_changes() {
    let running = server().await;
    let mut a = Firebase::connect(&running).await;
    let scores = json!({"a": {"score": 1}, "b": {"score": 9}, "c": {"score": 12}});
    a.request("p", json!({"p": "/scores", "d": scores})).await;
    let query = json!({"l": 2, "vf": "r", "i": "score"});
    let (pushes, reply) = a
        .request("q", json!({"p": "/scores", "q": query, "t": 1, "h": ""}))
        .await;
    assert_eq!(reply["s"], "ok");
    assert_eq!(
        pushes,
        vec![
            json!({"a": "d", "b": {"p": "scores", "d": {"b": {"score": 9}, "c": {"score": 12}}, "t": 1}})
        ]
    );
    let (pushes, _) = a
        .request("p", json!({"p": "/scores/d", "d": {"score": 10}}))
        .await;
    assert_eq!(
        pushes,
        vec![
            json!({"a": "d", "b": {"p": "scores", "d": {"c": {"score": 12}, "d": {"score": 10}}, "t": 1}})
        ]
    );
    // A change outside the window sends nothing.
    let (pushes, _) = a
        .request("p", json!({"p": "/scores/a/score", "d": 2}))
        .await;
    assert!(pushes.is_empty(), "{pushes:?}");
    running.stop().await.ok();
}

#[tokio::test]
async fn kora_clients_and_firebase_clients_share_one_tree() {
    let running = server().await;
    let mut kora = Client::connect(&running).await;
    let mut firebase = Firebase::connect(&running).await;
    firebase
        .request("q", json!({"p": "/shared", "h": ""}))
        .await;
    let reply = kora
        .request(json!({"op": "mutate", "mutation": {"merge": {"shared": {"from": "kora"}}}}))
        .await;
    assert!(reply.get("error").is_none(), "{reply}");
    assert_eq!(
        firebase.push().await,
        json!({"a": "d", "b": {"p": "shared/from", "d": "kora"}})
    );
    firebase
        .request("p", json!({"p": "/shared/back", "d": "firebase"}))
        .await;
    let answer = reqwest::get(url(&running, "/v1/data/shared"))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(answer, json!({"from": "kora", "back": "firebase"}));
    running.stop().await.ok();
}

#[tokio::test]
async fn rest_answers_as_firebase_does() {
    let running = server().await;
    let http = reqwest::Client::new();
    let at = |p: &str| url(&running, p);
    let put = http
        .put(at("/items/a.json"))
        .body(r#"{"n": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    assert_eq!(put.json::<Value>().await.unwrap(), json!({"n": 1}));
    let post = http.post(at("/items.json")).body("2").send().await.unwrap();
    let name = post.json::<Value>().await.unwrap()["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(name.len(), 20);
    let patch = http
        .patch(at("/items/a.json"))
        .body(r#"{"m": 2, "n": null}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        patch.json::<Value>().await.unwrap(),
        json!({"m": 2, "n": null})
    );
    let got = http.get(at("/items.json")).send().await.unwrap();
    assert_eq!(
        got.json::<Value>().await.unwrap(),
        json!({"a": {"m": 2}, name.clone(): 2})
    );
    let silent = http
        .delete(at("/items/a.json?print=silent"))
        .send()
        .await
        .unwrap();
    assert_eq!(silent.status(), 204);
    let bad = http.put(at("/items.json")).body("{").send().await.unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.json::<Value>().await.unwrap()["error"].is_string());
    let missing = http.get(at("/nothing")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    running.stop().await.ok();
}

#[tokio::test]
async fn rest_etags_guard_writes() {
    let running = server().await;
    let http = reqwest::Client::new();
    let at = url(&running, "/doc.json");
    let created = http
        .put(&at)
        .header("if-match", "null_etag")
        .body("1")
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let etag = created.headers()["etag"].to_str().unwrap().to_string();
    let stale = http
        .put(&at)
        .header("if-match", "null_etag")
        .body("2")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);
    assert_eq!(stale.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(stale.json::<Value>().await.unwrap(), json!(1));
    let fresh = http
        .put(&at)
        .header("if-match", &etag)
        .body("3")
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 200);
    let get = http
        .get(&at)
        .header("X-Firebase-ETag", "true")
        .send()
        .await
        .unwrap();
    assert!(get.headers().contains_key("etag"));
    assert_eq!(get.json::<Value>().await.unwrap(), json!(3));
    running.stop().await.ok();
}

#[tokio::test]
async fn rest_streams_put_then_patch_events() {
    let running = server().await;
    let http = reqwest::Client::new();
    http.put(url(&running, "/feed.json"))
        .body(r#"{"a": 1}"#)
        .send()
        .await
        .unwrap();
    let mut events = Events::open(&running, "/feed.json").await;
    assert_eq!(
        events.next().await,
        "event: put\ndata: {\"data\":{\"a\":1},\"path\":\"/\"}\n\n"
    );
    http.put(url(&running, "/feed/b.json"))
        .body("2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        events.next().await,
        "event: put\ndata: {\"data\":2,\"path\":\"/b\"}\n\n"
    );
    http.patch(url(&running, "/feed.json"))
        .body(r#"{"c": 3, "d": 4}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        events.next().await,
        "event: patch\ndata: {\"data\":{\"c\":3,\"d\":4},\"path\":\"/\"}\n\n"
    );
    running.stop().await.ok();
}

#[tokio::test]
async fn mock_tokens_only_when_enabled() {
    let b64 = |v: Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let token = format!(
        "{}.{}.",
        b64(json!({"alg": "none"})),
        b64(json!({"user_id": "ada"}))
    );
    let running = server().await;
    let mut a = Firebase::connect(&running).await;
    let (_, reply) = a.request("auth", json!({"cred": token})).await;
    assert_eq!(reply["s"], "invalid_token");
    running.stop().await.ok();

    let running = server_with(Kora::builder(), |c| c.firebase.mock_tokens = true).await;
    let mut a = Firebase::connect(&running).await;
    let (_, reply) = a.request("auth", json!({"cred": token})).await;
    assert_eq!(reply["s"], "ok");
    assert_eq!(reply["d"]["auth"]["uid"], "ada");
    let (_, reply) = a.request("gauth", json!({"cred": "owner"})).await;
    assert_eq!(reply["s"], "ok");
    running.stop().await.ok();
}

#[tokio::test]
async fn an_indexed_query_keeps_its_window_through_every_kind_of_change() {
    let running = server_with(Kora::builder(), |c| {
        c.firebase.index_on = [("scores".to_string(), vec!["score".to_string()])].into();
    })
    .await;
    let mut a = Firebase::connect(&running).await;
    let scores = json!({"a": {"score": 1}, "b": {"score": 9}, "c": {"score": 12}});
    a.request("p", json!({"p": "/scores", "d": scores})).await;
    let query = json!({"l": 2, "vf": "r", "i": "score"});
    let (pushes, reply) = a
        .request("q", json!({"p": "/scores", "q": query, "t": 7, "h": ""}))
        .await;
    // No `no_index` warning: the index is declared.
    assert_eq!(reply, json!({"s": "ok", "d": {}}));
    let window = |d: Value| vec![json!({"a": "d", "b": {"p": "scores", "d": d, "t": 7}})];
    assert_eq!(
        pushes,
        window(json!({"b": {"score": 9}, "c": {"score": 12}}))
    );

    // A new child enters the window.
    expect(
        &mut a,
        json!({"p": "/scores/d", "d": {"score": 10}}),
        window(json!({"c": {"score": 12}, "d": {"score": 10}})),
    )
    .await;
    // The indexed field of a window child drops it out; another comes in.
    expect(
        &mut a,
        json!({"p": "/scores/c/score", "d": 0}),
        window(json!({"b": {"score": 9}, "d": {"score": 10}})),
    )
    .await;
    // Another field of a window child: the window's content changes.
    expect(
        &mut a,
        json!({"p": "/scores/d/name", "d": "dee"}),
        window(json!({"b": {"score": 9}, "d": {"score": 10, "name": "dee"}})),
    )
    .await;
    // Another field of a child outside the window: nothing to send.
    expect(&mut a, json!({"p": "/scores/a/name", "d": "ay"}), vec![]).await;
    // A window child deleted.
    expect(
        &mut a,
        json!({"p": "/scores/b", "d": null}),
        window(json!({"a": {"score": 1, "name": "ay"}, "d": {"score": 10, "name": "dee"}})),
    )
    .await;
    // The indexed field deleted: the child sorts first (null), and leaves the window.
    expect(
        &mut a,
        json!({"p": "/scores/d/score", "d": null}),
        window(json!({"a": {"score": 1, "name": "ay"}, "c": {"score": 0}})),
    )
    .await;

    // One-time reads use the index too.
    let (_, reply) = a
        .request(
            "g",
            json!({"p": "/scores", "q": {"sp": 1, "i": "score", "l": 5, "vf": "l"}}),
        )
        .await;
    assert_eq!(reply["d"], json!({"a": {"score": 1, "name": "ay"}}));
    let rest = reqwest::get(url(
        &running,
        "/scores.json?orderBy=%22score%22&limitToFirst=2",
    ))
    .await
    .unwrap()
    .json::<Value>()
    .await
    .unwrap();
    assert_eq!(rest, json!({"c": {"score": 0}, "d": {"name": "dee"}}));
    running.stop().await.ok();
}

#[tokio::test]
async fn an_unindexed_child_query_warns_as_firebase_does() {
    let running = server().await;
    let mut a = Firebase::connect(&running).await;
    let query = json!({"l": 1, "vf": "l", "i": "score"});
    let (_, reply) = a
        .request("q", json!({"p": "/x", "q": query, "t": 1, "h": ""}))
        .await;
    assert_eq!(reply, json!({"s": "ok", "d": {"w": ["no_index"]}}));
    running.stop().await.ok();
}

/// Sends `write` and checks the pushes that came before its `ok`.
async fn expect(client: &mut Firebase, write: Value, pushed: Vec<Value>) {
    let (pushes, reply) = client.request("p", write.clone()).await;
    assert_eq!(reply["s"], "ok", "{write}");
    assert_eq!(pushes, pushed, "after {write}");
}

#[tokio::test]
async fn a_refused_transaction_is_refused_and_shows_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("kora.rules.yaml");
    std::fs::write(
        &rules,
        "rules:\n  '**':\n    read: 'true'\n    write: 'true'\n  secret/**:\n    read: 'false'\n    write: 'false'\n",
    )
    .unwrap();
    let running = server_with(Kora::builder(), |c| c.rules = Some(rules)).await;
    let http = reqwest::Client::new();
    // Written past the rules (the system context), then hidden from clients.
    running
        .kora
        .mutate(
            &running.kora.system_context(),
            kora_core::Mutation::merge(
                &kora_core::Path::parse("secret").unwrap(),
                json!({"n": 41}),
            )
            .unwrap(),
            None,
        )
        .await
        .unwrap();
    let mut a = Firebase::connect(&running).await;
    let stale = kora_firebase::node::hash(Some(&json!(1)));
    let (pushes, reply) = a
        .request("p", json!({"p": "/secret/n", "d": 2, "h": stale}))
        .await;
    assert_eq!(reply["s"], "permission_denied");
    assert!(pushes.is_empty(), "{pushes:?}");
    let denied = http
        .get(url(&running, "/secret.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    running.stop().await.ok();
}

#[tokio::test]
async fn a_listen_whose_reader_loses_the_right_is_revoked_at_the_next_change() {
    let (running, _dir) = server_with_rules(Rules::Kora(
        "rules:
  users/$uid:
    read: auth != null && auth.sub == $uid
    write: auth != null && auth.sub == $uid
",
    ))
    .await;
    let mut ada = Firebase::signed_in(&running, "ada").await;
    let (_, reply) = ada.request("q", json!({"p": "/users/ada", "h": ""})).await;
    assert_eq!(reply["s"], "ok");
    let (_, reply) = ada.request("unauth", json!({})).await;
    assert_eq!(reply, json!({"s": "ok", "d": "unauthenticated"}));
    let change = kora_core::Mutation::merge(
        &kora_core::Path::parse("users/ada/name").unwrap(),
        json!("Ada"),
    )
    .unwrap();
    let system = running.kora.system_context();
    running.kora.mutate(&system, change, None).await.unwrap();
    assert_eq!(ada.push().await, json!({"a": "c", "b": {"p": "users/ada"}}));
    running.stop().await.ok();
}

#[tokio::test]
async fn a_stream_whose_reader_loses_the_right_is_cancelled() {
    let (running, _dir) = server_with_rules(Rules::Kora(
        "rules:\n  notes/$id:\n    read: data == null || data.private != true\n    write: true\n",
    ))
    .await;
    let http = reqwest::Client::new();
    http.put(url(&running, "/notes/n1.json"))
        .body(r#"{"text": "hi"}"#)
        .send()
        .await
        .unwrap();
    let mut events = Events::open(&running, "/notes/n1.json").await;
    assert_eq!(
        events.next().await,
        "event: put\ndata: {\"data\":{\"text\":\"hi\"},\"path\":\"/\"}\n\n"
    );
    http.patch(url(&running, "/notes/n1.json"))
        .body(r#"{"private": true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(events.next().await, "event: cancel\ndata: null\n\n");
    running.stop().await.ok();
}

/// A connection streaming writes without waiting (as an Admin SDK process or a game loop
/// does): every write is acknowledged in the order sent and applied in it (the last set wins), the
/// writer's own listen sees each change before that write's `ok`, and a read sent after the
/// writes sees them all.
#[tokio::test]
async fn pipelined_writes_keep_the_connections_order() {
    const WRITES: u64 = 200;
    let running = server().await;
    let mut client = Firebase::connect(&running).await;
    let (_, listening) = client.request("q", json!({"p": "/game", "h": ""})).await;
    assert_eq!(listening["s"], "ok");
    let mut sent = Vec::new();
    for i in 0..WRITES {
        let r = match i % 2 {
            0 => {
                client
                    .send("p", json!({"p": "/game/state", "d": {"tick": i}}))
                    .await
            }
            _ => {
                client
                    .send(
                        "m",
                        json!({"p": "/game", "d": {"state/tick": i, "log/t": i}}),
                    )
                    .await
            }
        };
        sent.push(r);
    }
    let read = client.send("g", json!({"p": "/game/state", "q": {}})).await;
    // Replies, and the last tick each listen push showed before each reply.
    let mut seen_tick: Option<u64> = None;
    let mut acked = Vec::new();
    let mut read_back = None;
    while read_back.is_none() {
        let frame = client.frame().await;
        let d = &frame["d"];
        if frame["t"] != "d" {
            continue;
        }
        match d.get("r").and_then(Value::as_u64) {
            None => {
                let data = &d["b"]["d"];
                let tick = data["tick"].as_u64().or(data["state"]["tick"].as_u64());
                let tick = tick.or(data["state/tick"].as_u64());
                if let Some(tick) = tick {
                    assert!(seen_tick.is_none_or(|t| tick > t), "changes in order: {d}");
                    seen_tick = Some(tick);
                }
            }
            Some(r) if r == read => read_back = Some(d["b"].clone()),
            Some(r) => {
                assert_eq!(d["b"]["s"], "ok", "{d}");
                let i = sent.iter().position(|s| *s == r).expect("a write's reply") as u64;
                assert_eq!(i, acked.len() as u64, "acknowledged in the order sent");
                assert!(
                    seen_tick.is_some_and(|t| t >= i),
                    "write {i}'s change reached the writer's listen before its ok ({seen_tick:?})"
                );
                acked.push(r);
            }
        }
    }
    assert_eq!(
        acked.len() as u64,
        WRITES,
        "every write acknowledged before the read's reply"
    );
    let read_back = read_back.expect("the read's reply");
    assert_eq!(
        read_back["d"],
        json!({"tick": WRITES - 1}),
        "the last write wins"
    );
}

/// A client back with a large copy sends its compound hash too (`ch`, the Android and Java
/// SDKs): only the ranges that changed come back, as range merges (`rm`), and applying them
/// gives the server's data; a tagged listen's merges carry its tag.
#[tokio::test]
async fn a_listen_with_a_compound_hash_gets_only_the_changed_ranges() {
    use kora_firebase::node::{range_merges, CompoundHash};
    let running = server().await;
    let mut writer = Firebase::connect(&running).await;
    let list: serde_json::Map<String, Value> = (0..500)
        .map(|i| (format!("m{i:04}"), json!({"text": format!("message {i}")})))
        .collect();
    let copy = Value::Object(list);
    writer.request("p", json!({"p": "/list", "d": copy})).await;
    writer
        .request("p", json!({"p": "/list/m0250/text", "d": "edited"}))
        .await;
    let mut now = copy.clone();
    now["m0250"]["text"] = json!("edited");
    let compound = CompoundHash::of(Some(&copy));
    assert!(
        compound.hashes.len() > 5,
        "{} ranges",
        compound.hashes.len()
    );
    let hash = kora_firebase::node::hash(Some(&copy));
    for (listen, tag) in [
        (json!({"p": "/list"}), None),
        (
            json!({"p": "/list", "q": {"vf": "l", "l": 1000}, "t": 7}),
            Some(7),
        ),
    ] {
        let mut back = Firebase::connect(&running).await;
        let mut body = listen;
        body["h"] = json!(hash);
        body["ch"] = compound.to_wire();
        let (pushes, reply) = back.request("q", body).await;
        assert_eq!(reply["s"], "ok");
        assert_eq!(pushes.len(), 1, "{pushes:?}");
        assert_eq!(pushes[0]["a"], "rm", "{}", pushes[0]);
        assert_eq!(pushes[0]["b"]["t"], json!(tag));
        let expected = range_merges(Some(&now), &compound).expect("merges");
        let ranges = pushes[0]["b"]["d"].as_array().expect("a list of ranges");
        assert_eq!(ranges.len(), 1, "one range changed: {ranges:?}");
        assert_eq!(ranges[0], expected[0].to_wire());
        assert_eq!(ranges[0]["m"]["m0250"]["text"], "edited");
        let sent = ranges[0]["m"].as_object().map_or(0, |m| m.len());
        assert!(sent < 100, "{sent} of 500 children sent");
    }
    // A copy that is current gets the ok alone, compound hash or not.
    let mut current = Firebase::connect(&running).await;
    let body = json!({
        "p": "/list",
        "h": kora_firebase::node::hash(Some(&now)),
        "ch": CompoundHash::of(Some(&now)).to_wire(),
    });
    let (pushes, reply) = current.request("q", body).await;
    assert_eq!((pushes.len(), &reply["s"]), (0, &json!("ok")));
    // A malformed compound hash is ignored: the whole value comes.
    let mut odd = Firebase::connect(&running).await;
    let body = json!({"p": "/list", "h": "x", "ch": {"ps": ["a"], "hs": []}});
    let (pushes, _) = odd.request("q", body).await;
    assert_eq!(pushes[0]["a"], "d");
    running.stop().await.ok();
}

/// A reconnecting client sends the hash of its cached copy with each listen (`h`): when it is
/// the hash of the server's data, the listen's `ok` comes without the data; otherwise (the
/// data changed while it was away) the data comes as usual. Plain, tagged and indexed
/// listens alike.
#[tokio::test]
async fn a_listen_whose_hash_matches_gets_its_ok_without_the_data() {
    let running = server_with(Kora::builder(), |c| {
        c.firebase.index_on = [("indexed".to_string(), vec!["score".to_string()])].into();
    })
    .await;
    let mut writer = Firebase::connect(&running).await;
    let scores = json!({"a": {"score": 1}, "b": {"score": 9}, "c": {"score": 12}});
    for place in ["plain", "tagged", "indexed"] {
        writer
            .request("p", json!({"p": format!("/{place}"), "d": scores}))
            .await;
    }
    let query = json!({"l": 2, "vf": "r", "i": "score"});
    let listens = [
        ("plain", json!({"p": "/plain"})),
        ("tagged", json!({"p": "/tagged", "q": query, "t": 1})),
        ("indexed", json!({"p": "/indexed", "q": query, "t": 2})),
    ];
    for (place, listen) in listens {
        // The first visit: no copy yet.
        let mut first = Firebase::connect(&running).await;
        let mut body = listen.clone();
        body["h"] = json!("");
        let (pushes, reply) = first.request("q", body.clone()).await;
        assert_eq!((pushes.len(), &reply["s"]), (1, &json!("ok")), "{place}");
        let cached = pushes[0]["b"]["d"].clone();
        let hash = kora_firebase::node::hash(Some(&cached));

        // Back with the same copy: only the ok.
        let mut again = Firebase::connect(&running).await;
        body["h"] = json!(hash);
        let (pushes, reply) = again.request("q", body.clone()).await;
        assert_eq!(reply["s"], "ok", "{place}");
        assert!(pushes.is_empty(), "{place}: {pushes:?}");
        // The listen is live all the same.
        writer
            .request("p", json!({"p": format!("/{place}/b/score"), "d": 20}))
            .await;
        // A plain listen gets the overwrite; a tagged one its whole window again.
        let expected = match place {
            "plain" => "plain/b/score".to_string(),
            _ => place.to_string(),
        };
        let pushed = again.push().await;
        assert_eq!(pushed["b"]["p"], json!(expected), "{place}: {pushed}");

        // Back with a copy the data has moved past: the data again.
        let mut stale = Firebase::connect(&running).await;
        let (pushes, reply) = stale.request("q", body).await;
        assert_eq!(reply["s"], "ok", "{place}");
        assert_eq!(pushes.len(), 1, "{place}: {pushes:?}");
        assert_ne!(pushes[0]["b"]["d"], cached, "{place}");
        writer
            .request("p", json!({"p": format!("/{place}/b/score"), "d": 9}))
            .await;
    }
    running.stop().await.ok();
}
