//! Firebase's security rules (`[firebase] rules`) on a real server: enforced for Firebase's
//! protocols and Kora's alike, and decided inside the commit — a data-dependent rule holds
//! against concurrent writers.

mod common;

use common::firebase::Firebase;
use common::unsigned_token;
use common::{server_with_rules, url, Rules};
use serde_json::{json, Value};

const RULES: &str = r#"{
  // Firebase's rules files may hold comments.
  "rules": {
    "users": {
      "$uid": {
        ".read": "auth != null && auth.uid == $uid",
        ".write": "auth != null && auth.uid == $uid",
        ".validate": "newData.hasChildren(['name'])",
        "name": { ".validate": "newData.isString() && newData.val().length <= 20" }
      }
    },
    "counter": {
      ".read": true,
      ".write": true,
      ".validate": "newData.isNumber() && newData.val() == (data.exists() ? data.val() : 0) + 1"
    },
    "scores": { ".indexOn": ["points"], ".read": true },
    "shared": { "$owner": { ".write": "auth.uid == $owner" } },
    "notes": {
      "$owner": {
        ".read": "auth.uid == $owner || root.child('shared').child($owner).child(auth.uid).exists()",
        ".write": "auth.uid == $owner"
      }
    }
  }
}"#;

async fn with_rules() -> (kora_server::Running, tempfile::TempDir) {
    server_with_rules(Rules::Firebase(RULES)).await
}

#[tokio::test]
async fn writes_and_reads_pass_the_rules_over_firebase_rest() {
    let (running, _dir) = with_rules().await;
    let http = reqwest::Client::new();
    let ada = unsigned_token(json!({"sub": "ada"}));
    let at = |p: &str, token: &str| url(&running, &format!("{p}.json?auth={token}"));
    let put = |path: &str, token: &str, body: &str| {
        http.put(at(path, token)).body(body.to_string()).send()
    };
    let ok = put("/users/ada", &ada, r#"{"name": "Ada"}"#).await.unwrap();
    assert_eq!(ok.status(), 200);
    // Another user's location, a name that fails .validate, a write missing a child.
    for (path, body) in [
        ("/users/bob", r#"{"name": "Bob"}"#),
        ("/users/ada", r#"{"name": 7}"#),
        ("/users/ada", r#"{"age": 7}"#),
    ] {
        let refused = put(path, &ada, body).await.unwrap();
        assert_eq!(refused.status(), 401, "{path} {body}");
        let error = refused.json::<Value>().await.unwrap();
        assert!(
            error["error"].as_str().unwrap().contains("ermission"),
            "{error}"
        );
    }
    let read = http.get(at("/users/ada", &ada)).send().await.unwrap();
    assert_eq!(read.json::<Value>().await.unwrap(), json!({"name": "Ada"}));
    let bob = unsigned_token(json!({"sub": "bob"}));
    let refused = http.get(at("/users/ada", &bob)).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    // Nothing refused was written.
    let owner = http.get(at("/users", "owner")).send().await.unwrap();
    assert_eq!(
        owner.json::<Value>().await.unwrap(),
        json!({"ada": {"name": "Ada"}})
    );
    running.stop().await.ok();
}

#[tokio::test]
async fn firebase_websocket_clients_get_permission_denied() {
    let (running, _dir) = with_rules().await;
    let mut client = Firebase::connect(&running).await;
    let token = unsigned_token(json!({"sub": "ada"}));
    let (_, reply) = client.request("auth", json!({"cred": token})).await;
    assert_eq!(reply["s"], "ok");
    let (_, reply) = client
        .request("p", json!({"p": "/users/ada", "d": {"name": "Ada"}}))
        .await;
    assert_eq!(reply["s"], "ok", "{reply}");
    let (_, reply) = client
        .request("p", json!({"p": "/users/bob", "d": {"name": "Bob"}}))
        .await;
    assert_eq!(reply["s"], "permission_denied", "{reply}");
    // An update is checked path by path: one refused path refuses the whole update.
    let (_, reply) = client
        .request(
            "m",
            json!({"p": "/users", "d": {"ada/name": "A", "bob/name": "B"}}),
        )
        .await;
    assert_eq!(reply["s"], "permission_denied", "{reply}");
    let (_, reply) = client
        .request("q", json!({"p": "/users/bob", "h": ""}))
        .await;
    assert_eq!(reply["s"], "permission_denied", "{reply}");
    running.stop().await.ok();
}

#[tokio::test]
async fn kora_protocol_clients_are_held_to_the_same_rules() {
    let (running, _dir) = with_rules().await;
    let http = reqwest::Client::new();
    let refused = http
        .put(url(&running, "/v1/data/users/ada"))
        .json(&json!({"name": "Ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let allowed = http
        .put(url(&running, "/v1/data/counter"))
        .json(&json!(1))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200, "{:?}", allowed.text().await);
    running.stop().await.ok();
}

/// The counter's rule accepts only the current value plus one. Writers that each read the
/// counter and write one more race one another: if a rule were decided on data read outside
/// the commit, two writers reading the same value would both be acknowledged and one
/// increment lost. Decided inside it, the counter ends equal to the writes acknowledged.
#[tokio::test]
async fn a_data_dependent_rule_holds_against_concurrent_writers() {
    let (running, _dir) = with_rules().await;
    const WRITERS: usize = 8;
    const ATTEMPTS: usize = 25;
    let counter = url(&running, "/counter.json");
    let tasks: Vec<_> = (0..WRITERS)
        .map(|_| {
            let counter = counter.clone();
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut acknowledged = 0;
                for _ in 0..ATTEMPTS {
                    let current = http.get(&counter).send().await.unwrap();
                    let current = current.json::<Value>().await.unwrap().as_u64().unwrap_or(0);
                    let put = http
                        .put(&counter)
                        .body((current + 1).to_string())
                        .send()
                        .await
                        .unwrap();
                    match put.status().as_u16() {
                        200 => acknowledged += 1,
                        401 => {} // another writer got there first
                        status => panic!("unexpected {status}: {:?}", put.text().await),
                    }
                }
                acknowledged
            })
        })
        .collect();
    let mut acknowledged = 0;
    for task in tasks {
        acknowledged += task.await.unwrap();
    }
    let http = reqwest::Client::new();
    let value = http.get(&counter).send().await.unwrap();
    let value = value.json::<Value>().await.unwrap();
    assert!(acknowledged > 0);
    assert_eq!(value, json!(acknowledged), "acknowledged increments lost");
    running.stop().await.ok();
}

#[tokio::test]
async fn an_invalid_rules_file_stops_the_server_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("database.rules.json");
    std::fs::write(&file, r#"{"rules": {".read": "auth.uid +"}}"#).unwrap();
    let config = kora_firebase::FirebaseConfig {
        rules: Some(file),
        ..Default::default()
    };
    let error = kora_firebase::Firebase::new(config).err().expect("refused");
    assert!(error.to_string().contains("rules/.read"), "{error}");
}

/// A listen whose `.read` depends on data is ended when that data no longer grants it: Bob
/// shares his notes with Ada, Ada listens, Bob stops sharing, and Ada's listen is revoked at
/// the next change instead of receiving it.
#[tokio::test]
async fn a_listen_is_revoked_when_its_read_rule_stops_holding() {
    let (running, _dir) = with_rules().await;
    let mut bob = Firebase::signed_in(&running, "bob").await;
    let mut ada = Firebase::signed_in(&running, "ada").await;
    for (path, data) in [
        ("/shared/bob/ada", json!(true)),
        ("/notes/bob", json!({"n": 1})),
    ] {
        let (_, reply) = bob.request("p", json!({"p": path, "d": data})).await;
        assert_eq!(reply["s"], "ok", "{path}: {reply}");
    }
    let (data, reply) = ada.request("q", json!({"p": "/notes/bob", "h": ""})).await;
    assert_eq!(reply["s"], "ok", "{reply}");
    assert!(
        data.iter().any(|m| m["b"]["d"] == json!({"n": 1})),
        "{data:?}"
    );
    let (_, reply) = bob
        .request("p", json!({"p": "/shared/bob/ada", "d": null}))
        .await;
    assert_eq!(reply["s"], "ok");
    let (_, reply) = bob.request("p", json!({"p": "/notes/bob/n", "d": 2})).await;
    assert_eq!(reply["s"], "ok");
    assert_eq!(ada.push().await, json!({"a": "c", "b": {"p": "notes/bob"}}));
    running.stop().await.ok();
}

/// `.indexOn` in the rules declares the ordered child index: a limited `orderByChild` listen
/// on it gets its window with no `no_index` warning, while a child the rules do not index
/// still warns, as Firebase does.
#[tokio::test]
async fn an_index_on_in_the_rules_serves_ordered_child_queries() {
    let (running, _dir) = with_rules().await;
    let scores = json!({"a": {"points": 1}, "b": {"points": 9}, "c": {"points": 12}});
    let write = kora_core::Mutation::set(&kora_core::Path::parse("scores").unwrap(), scores)
        .expect("a mutation");
    let system = running.kora.system_context();
    running.kora.mutate(&system, write, None).await.unwrap();
    let mut reader = Firebase::connect(&running).await;
    for (child, tag, answer) in [
        ("points", 1, json!({})),
        ("name", 2, json!({"w": ["no_index"]})),
    ] {
        let top_two = json!({"l": 2, "vf": "r", "i": child});
        let listen = json!({"p": "/scores", "q": top_two, "t": tag, "h": ""});
        let (pushes, reply) = reader.request("q", listen).await;
        assert_eq!(reply, json!({"s": "ok", "d": answer}), "{child}");
        if child == "points" {
            let window = json!({"b": {"points": 9}, "c": {"points": 12}});
            assert_eq!(pushes[0]["b"]["d"], window);
        }
    }
    running.stop().await.ok();
}
