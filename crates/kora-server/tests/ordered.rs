//! Queries ordered by a child value (`by`), over the WebSocket protocol against a real
//! server: one-time windows and subscriptions, with a declared index and without, under
//! concurrent writers (the subscriber's copy must settle on the window a fresh read of the
//! whole collection gives) and with writes spaced out (each change seen).

mod common;

use std::time::{Duration, Instant};

use common::{server_with, Client};
use kora_core::order::{self, ByChild};
use kora_core::{Mutation, Path, PathQuery};
use kora_engine::Kora;
use kora_server::Running;
use serde_json::{json, Map, Value};

/// How long a subscriber may take to settle after the last write.
const SETTLE: Duration = Duration::from_secs(10);

async fn server(indexed: bool) -> Running {
    server_with(Kora::builder(), |c| {
        if indexed {
            c.indexes = [("players".to_string(), vec!["stats/score".to_string()])].into();
        }
    })
    .await
}

fn top(n: usize) -> Value {
    json!({"path": "players", "by": {"child": "stats/score"}, "limit": n, "reverse": true})
}

/// The window of `query` computed the plain way from the whole collection `players`.
fn expected(query: &Value, players: Option<&Value>) -> Option<Value> {
    let by: ByChild = serde_json::from_value(query["by"].clone()).unwrap();
    let part = PathQuery {
        path: Path::parse("players").unwrap(),
        min: query["min"].as_str().map(String::from),
        max: query["max"].as_str().map(String::from),
        limit: query["limit"].as_u64().map(|n| n as usize),
        reverse: query["reverse"].as_bool().unwrap_or(false),
        subscribe: false,
        by: Some(by.clone()),
    };
    order::select(&part, &by, players)
}

async fn whole(client: &mut Client) -> Option<Value> {
    let reply = client
        .request(json!({"op": "query", "paths": [{"path": "players"}]}))
        .await;
    reply["result"]["value"].get("players").cloned()
}

async fn window(client: &mut Client, query: &Value) -> Option<Value> {
    let reply = client
        .request(json!({"op": "query", "paths": [query]}))
        .await;
    assert!(reply.get("error").is_none(), "{reply}");
    reply["result"]["value"].get("players").cloned()
}

/// A subscriber's copy of its window, kept by applying its pushes.
struct Follower {
    client: Client,
    copy: Map<String, Value>,
}

impl Follower {
    async fn start(running: &Running, query: &Value) -> Follower {
        let mut client = Client::connect(running).await;
        let mut query = query.clone();
        query["subscribe"] = json!(true);
        let reply = client
            .request(json!({"op": "query", "paths": [query]}))
            .await;
        let copy = reply["result"]["value"].as_object().cloned().unwrap();
        Follower { client, copy }
    }

    fn players(&self) -> Option<Value> {
        self.copy.get("players").cloned()
    }

    fn apply(&mut self, push: Value) {
        match push["push"].as_str() {
            Some("change") => {
                let mutation: Mutation = serde_json::from_value(push["mutation"].clone()).unwrap();
                mutation.apply_to(&mut self.copy);
            }
            Some("reset") => match push["value"].clone() {
                Value::Null => {
                    self.copy.remove("players");
                }
                value => {
                    self.copy.insert("players".into(), value);
                }
            },
            other => panic!("unexpected push {other:?}: {push}"),
        }
    }

    /// Applies pushes until the copy equals `want`; panics after [`SETTLE`].
    async fn settles_on(&mut self, want: &Option<Value>) {
        let deadline = Instant::now() + SETTLE;
        while &self.players() != want {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.client.maybe_push(left).await {
                Some(push) => self.apply(push),
                None => panic!("the copy {:?} did not settle on {want:?}", self.players()),
            }
        }
    }
}

fn player(score: Option<i64>) -> Value {
    match score {
        Some(score) => json!({"name": "p", "stats": {"score": score}}),
        None => json!({"name": "p"}),
    }
}

async fn seed_players(client: &mut Client, rng: &mut fastrand::Rng) {
    let mut players = Map::new();
    for i in 0..30 {
        players.insert(format!("p{i:02}"), player(Some(rng.i64(0..20))));
    }
    players.insert("p99".into(), player(None));
    client.mutate(json!({"merge": {"players": players}})).await;
}

/// A random write to one player: a new score, a score removed, the player replaced,
/// deleted, or a field beside the score changed.
fn random_write(rng: &mut fastrand::Rng) -> Value {
    let key = format!("p{:02}", rng.usize(0..40));
    match rng.u8(0..5) {
        0 | 1 => json!({"merge": {"players": {(key): {"stats": {"score": rng.i64(0..20)}}}}}),
        2 => json!({"delete": {"players": {(key): {"stats": {"score": 1}}}}}),
        3 => {
            json!({"delete": {"players": {(key.clone()): 1}}, "merge": {"players": {(key): player(Some(rng.i64(0..20)))}}})
        }
        _ => json!({"delete": {"players": {(key): 1}}}),
    }
}

async fn follows_concurrent_writers(indexed: bool) {
    let mut rng = kora_testkit::rng(&format!("ordered-concurrent-{indexed}"));
    let running = server(indexed).await;
    let mut admin = Client::connect(&running).await;
    seed_players(&mut admin, &mut rng).await;
    let queries = [
        top(3),
        json!({"path": "players", "by": {"child": "stats/score", "from": 5, "to": 12}, "limit": 4}),
        json!({"path": "players", "by": {"child": "stats/score"}}),
    ];
    let mut followers = Vec::new();
    for query in &queries {
        let follower = Follower::start(&running, query).await;
        assert_eq!(
            follower.players(),
            expected(query, whole(&mut admin).await.as_ref())
        );
        followers.push(follower);
    }
    let mut writers = Vec::new();
    for w in 0..4 {
        let mut client = Client::connect(&running).await;
        let mut rng = fastrand::Rng::with_seed(rng.u64(..) ^ w);
        writers.push(tokio::spawn(async move {
            for _ in 0..40 {
                let reply = client.mutate(random_write(&mut rng)).await;
                assert!(reply.get("error").is_none(), "{reply}");
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let players = whole(&mut admin).await;
    for (query, follower) in queries.iter().zip(&mut followers) {
        let want = expected(query, players.as_ref());
        assert_eq!(
            window(&mut admin, query).await,
            want,
            "a fresh read of {query}"
        );
        follower.settles_on(&want).await;
    }
}

#[tokio::test]
async fn subscribers_settle_on_the_window_under_concurrent_writers_with_an_index() {
    follows_concurrent_writers(true).await;
}

#[tokio::test]
async fn subscribers_settle_on_the_window_under_concurrent_writers_without_an_index() {
    follows_concurrent_writers(false).await;
}

/// Writes one at a time: after each, the subscriber's copy is the window of that moment.
#[tokio::test]
async fn a_subscriber_sees_each_spaced_out_change() {
    for indexed in [true, false] {
        let mut rng = kora_testkit::rng(&format!("ordered-spaced-{indexed}"));
        let running = server(indexed).await;
        let mut admin = Client::connect(&running).await;
        seed_players(&mut admin, &mut rng).await;
        let mut follower = Follower::start(&running, &top(3)).await;
        for _ in 0..30 {
            admin.mutate(random_write(&mut rng)).await;
            let want = expected(&top(3), whole(&mut admin).await.as_ref());
            follower.settles_on(&want).await;
        }
    }
}

/// Paging: `from` with `min` continues after the last child of the previous page, ties
/// on the value ordered by key.
#[tokio::test]
async fn pages_continue_from_the_last_child_seen() {
    let running = server(true).await;
    let mut client = Client::connect(&running).await;
    let mut players = Map::new();
    for (key, score) in [("a", 1), ("b", 2), ("c", 2), ("d", 2), ("e", 3)] {
        players.insert(key.into(), player(Some(score)));
    }
    client.mutate(json!({"merge": {"players": players}})).await;
    let first = json!({"path": "players", "by": {"child": "stats/score"}, "limit": 2});
    let keys = |v: Option<Value>| -> Vec<String> {
        v.and_then(|v| v.as_object().map(|m| m.keys().cloned().collect()))
            .unwrap_or_default()
    };
    assert_eq!(keys(window(&mut client, &first).await), ["a", "b"]);
    // The next page: from the value of the last child seen, after its key.
    let next = json!({"path": "players", "by": {"child": "stats/score", "from": 2}, "min": "b\u{0}", "limit": 2});
    assert_eq!(keys(window(&mut client, &next).await), ["c", "d"]);
    let last = json!({"path": "players", "by": {"child": "stats/score", "from": 2}, "min": "d\u{0}", "limit": 2});
    assert_eq!(keys(window(&mut client, &last).await), ["e"]);
}

#[tokio::test]
async fn key_bounds_without_the_value_they_apply_at_are_refused() {
    let running = server(false).await;
    let mut client = Client::connect(&running).await;
    let reply = client
        .request(json!({"op": "query", "paths": [{"path": "players", "by": {"child": "score"}, "min": "a"}]}))
        .await;
    assert_eq!(reply["error"]["code"], json!("bad_request"), "{reply}");
}

/// REST takes the same ordering as parameters.
#[tokio::test]
async fn rest_reads_a_window_ordered_by_a_child() {
    let running = server(false).await;
    let mut client = Client::connect(&running).await;
    let mut players = Map::new();
    for (key, score) in [("a", 3), ("b", 1), ("c", 2)] {
        players.insert(key.into(), player(Some(score)));
    }
    client.mutate(json!({"merge": {"players": players}})).await;
    let url = common::url(&running, "/v1/data/players?by=stats/score&from=2&limit=1");
    let value: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    assert_eq!(value, json!({"c": player(Some(2))}));
    let bad = common::url(&running, "/v1/data/players?from=2");
    assert_eq!(reqwest::get(bad).await.unwrap().status(), 400);
}
