//! Three `kora serve` nodes on loopback in front of one PostgreSQL database, commits fanned
//! out over a NATS server the tests start and stop themselves. Needs KORA_TEST_POSTGRES_URL
//! and a `nats-server` binary (KORA_TEST_NATS_URL says one is installed); skipped otherwise.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::cluster::{Database, Nats, Node};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Map, Value};
use tokio_tungstenite::tungstenite::Message;

fn skip() -> Option<String> {
    let pg = std::env::var("KORA_TEST_POSTGRES_URL").ok();
    let nats = std::env::var("KORA_TEST_NATS_URL").ok();
    match (pg, nats) {
        (Some(pg), Some(_)) => Some(pg),
        _ => {
            if std::env::var("CI").is_ok() {
                panic!("CI must run the cluster tests: set KORA_TEST_POSTGRES_URL and KORA_TEST_NATS_URL");
            }
            println!(
                "skipped: the cluster tests need KORA_TEST_POSTGRES_URL and KORA_TEST_NATS_URL"
            );
            None
        }
    }
}

async fn put(client: &reqwest::Client, node: &Node, path: &str, value: Value) -> Option<u64> {
    let reply = client
        .put(format!("http://{}/v1/data/{path}", node.addr))
        .json(&value)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    reply.json::<Value>().await.ok()?["seq"].as_u64()
}

async fn get(node: &Node, path: &str) -> Value {
    reqwest::get(format!("http://{}/v1/data/{path}", node.addr))
        .await
        .expect("get")
        .json()
        .await
        .expect("json")
}

/// A subscriber that keeps its view and every sequence it received, and fails over.
struct Subscriber {
    path: String,
    seqs: Vec<u64>,
    view: Map<String, Value>,
    last: u64,
    socket: Option<
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
    >,
}

impl Subscriber {
    fn new(path: &str) -> Subscriber {
        Subscriber {
            path: path.into(),
            seqs: Vec::new(),
            view: Map::new(),
            last: 0,
            socket: None,
        }
    }

    /// Connects to `node` and subscribes, resuming after the last sequence seen.
    async fn connect(&mut self, node: &Node) {
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/v1/ws", node.addr))
            .await
            .expect("websocket");
        let mut path = json!({"path": self.path, "subscribe": true, "sub": "s"});
        if self.last > 0 {
            path["since"] = json!(self.last);
        }
        let request = json!({"op": "query", "id": 1, "paths": [path]});
        ws.send(Message::Text(request.to_string().into()))
            .await
            .expect("send");
        self.socket = Some(ws);
        // The reply carries the snapshot (first connection) or nothing (resumed).
        loop {
            let frame = self.frame(Duration::from_secs(10)).await.expect("a reply");
            if frame["id"] == json!(1) {
                if self.last == 0 {
                    self.last = frame["result"]["seq"].as_u64().unwrap_or(0);
                    if let Some(Value::Object(tree)) = frame["result"].get("value") {
                        self.view = tree.clone();
                    }
                }
                return;
            }
            self.take(frame);
        }
    }

    async fn frame(&mut self, wait: Duration) -> Option<Value> {
        let ws = self.socket.as_mut()?;
        loop {
            let next = tokio::time::timeout(wait, ws.next()).await.ok()??.ok()?;
            if let Message::Text(text) = next {
                return serde_json::from_str(text.as_str()).ok();
            }
        }
    }

    fn take(&mut self, frame: Value) {
        match frame["push"].as_str() {
            Some("change") => {
                let seq = frame["seq"].as_u64().unwrap_or(0);
                self.seqs.push(seq);
                self.last = self.last.max(seq);
                let mutation =
                    kora_core::Mutation::from_json(&frame["mutation"]).expect("a mutation");
                mutation.apply_to(&mut self.view);
            }
            Some("reset") => panic!("unexpected reset: {frame}"),
            _ => {}
        }
    }

    /// Reads pushes until none arrives for `quiet`.
    async fn drain(&mut self, quiet: Duration) {
        while let Some(frame) = self.frame(quiet).await {
            self.take(frame);
        }
    }

    /// Reads pushes for `total` at most: a subscription to a path written without pause is
    /// never quiet.
    async fn read_for(&mut self, total: Duration) {
        let until = tokio::time::Instant::now() + total;
        while let Ok(Some(frame)) = tokio::time::timeout_at(until, self.frame(total)).await {
            self.take(frame);
        }
    }

    fn assert_once_in_order(&self, name: &str) {
        let mut sorted = self.seqs.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            self.seqs.len(),
            "{name} received a sequence twice: {:?}",
            self.seqs
        );
        assert_eq!(sorted, self.seqs, "{name} received sequences out of order");
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_write_on_one_node_reaches_subscribers_on_every_node_once_in_order() {
    let Some(admin) = skip() else { return };
    runtime().block_on(async {
        let db = Database::create(&admin).await;
        let nats = Nats::start();
        let nodes: Vec<Node> = (0..3).map(|_| Node::start(&db.url, &nats.url())).collect();
        let mut subscribers: Vec<Subscriber> = (0..3).map(|_| Subscriber::new("c")).collect();
        for (s, node) in subscribers.iter_mut().zip(&nodes) {
            s.connect(node).await;
        }
        let client = reqwest::Client::new();
        put(&client, &nodes[0], "c/first", json!(1))
            .await
            .expect("write on A");
        for node in &nodes[1..] {
            assert_eq!(get(node, "c/first").await, json!(1));
        }
        // Three writers on three nodes at once.
        let writers: Vec<_> = (0..3)
            .map(|w| {
                let addr = nodes[w].addr.clone();
                let client = client.clone();
                tokio::spawn(async move {
                    for i in 0..30 {
                        let url = format!("http://{addr}/v1/data/c/w{w}-{i}");
                        client.put(url).json(&json!(i)).send().await.expect("write");
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        let expected = get(&nodes[0], "c").await;
        for (i, s) in subscribers.iter_mut().enumerate() {
            s.drain(Duration::from_millis(1500)).await;
            s.assert_once_in_order(&format!("subscriber {i}"));
            assert_eq!(s.seqs.len(), 91, "subscriber {i} got every commit");
            let view = Value::Object(
                s.view
                    .get("c")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
            );
            assert_eq!(view, expected, "subscriber {i}'s view equals the store");
        }
        drop(nodes);
        db.drop().await;
    });
}

#[test]
fn kill_9_of_a_node_loses_no_acknowledged_write_and_its_subscribers_resume_elsewhere() {
    let Some(admin) = skip() else { return };
    runtime().block_on(async {
        let db = Database::create(&admin).await;
        let nats = Nats::start();
        let mut a = Node::start(&db.url, &nats.url());
        let b = Node::start(&db.url, &nats.url());
        let mut subscriber = Subscriber::new("k");
        subscriber.connect(&a).await;
        let client = reqwest::Client::new();
        let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = {
            let addr = a.addr.clone();
            let client = client.clone();
            let acked = acked.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let url = format!("http://{addr}/v1/data/k/e{i}");
                    match client
                        .put(url)
                        .json(&json!(i))
                        .timeout(Duration::from_secs(2))
                        .send()
                        .await
                    {
                        Ok(r) if r.status().is_success() => acked.lock().unwrap().push(i),
                        _ => break,
                    }
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(1500)).await;
        subscriber.read_for(Duration::from_millis(300)).await;
        a.kill_9();
        let _ = writer.await;
        let acked = acked.lock().unwrap().clone();
        assert!(
            acked.len() > 10,
            "the writer made progress: {}",
            acked.len()
        );
        let seen = get(&b, "k").await;
        for i in &acked {
            assert_eq!(
                seen[format!("e{i}")],
                json!(i),
                "acknowledged write e{i} is visible through B"
            );
        }
        // The subscriber fails over to B and resumes after its last sequence.
        subscriber.connect(&b).await;
        subscriber.drain(Duration::from_millis(1500)).await;
        subscriber.assert_once_in_order("the failed-over subscriber");
        // A write in flight when A died (unacknowledged) may have committed after the first
        // read: compare with the store as it is now.
        let now = get(&b, "k").await;
        let view = Value::Object(
            subscriber
                .view
                .get("k")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        );
        assert_eq!(view, now);
        drop(b);
        db.drop().await;
    });
}

#[test]
fn stopping_nats_during_writes_loses_nothing_and_duplicates_nothing() {
    let Some(admin) = skip() else { return };
    runtime().block_on(async {
        let db = Database::create(&admin).await;
        let mut nats = Nats::start();
        let nodes: Vec<Node> = (0..3).map(|_| Node::start(&db.url, &nats.url())).collect();
        let mut subscribers: Vec<Subscriber> = (0..3).map(|_| Subscriber::new("n")).collect();
        for (s, node) in subscribers.iter_mut().zip(&nodes) {
            s.connect(node).await;
        }
        let client = reqwest::Client::new();
        let mut written = 0;
        for round in 0..3 {
            if round == 1 {
                nats.stop();
            }
            for i in 0..20 {
                let node = &nodes[i % 3];
                put(&client, node, &format!("n/r{round}-{i}"), json!(i))
                    .await
                    .expect("writes go on");
                written += 1;
            }
            if round == 1 {
                tokio::time::sleep(Duration::from_secs(2)).await;
                nats.resume();
            }
        }
        for (i, s) in subscribers.iter_mut().enumerate() {
            s.drain(Duration::from_secs(3)).await;
            s.assert_once_in_order(&format!("subscriber {i}"));
            assert_eq!(
                s.seqs.len(),
                written,
                "subscriber {i} ended with every commit"
            );
        }
        drop(nodes);
        db.drop().await;
    });
}

#[test]
fn a_random_schedule_of_faults_leaves_every_view_equal_to_the_store() {
    let Some(admin) = skip() else { return };
    let seconds: u64 = std::env::var("KORA_CLUSTER_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    runtime().block_on(async {
        let db = Database::create(&admin).await;
        let mut nats = Nats::start();
        let mut nodes: Vec<Option<Node>> = (0..3)
            .map(|_| Some(Node::start(&db.url, &nats.url())))
            .collect();
        let mut subscribers: Vec<(usize, Subscriber)> =
            (0..3).map(|i| (i, Subscriber::new("f"))).collect();
        for (at, s) in subscribers.iter_mut() {
            s.connect(nodes[*at].as_ref().unwrap()).await;
        }
        let client = reqwest::Client::new();
        let mut acked: BTreeMap<String, Value> = BTreeMap::new();
        let mut faults: BTreeMap<&str, usize> = BTreeMap::new();
        let mut rng =
            kora_testkit::rng("a_random_schedule_of_faults_leaves_every_view_equal_to_the_store");
        let mut random = move |n: u64| rng.u64(0..n);
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut i = 0;
        while Instant::now() < deadline {
            // Some writes through live nodes.
            for _ in 0..5 {
                let live: Vec<usize> = (0..3).filter(|n| nodes[*n].is_some()).collect();
                let node = nodes[live[random(live.len() as u64) as usize]]
                    .as_ref()
                    .unwrap();
                let key = format!("k{i}");
                if put(&client, node, &format!("f/{key}"), json!(i))
                    .await
                    .is_some()
                {
                    acked.insert(key, json!(i));
                }
                i += 1;
            }
            for (_, s) in subscribers.iter_mut() {
                s.drain(Duration::from_millis(20)).await;
            }
            match random(6) {
                0 => {
                    let n = random(3) as usize;
                    let live = nodes.iter().filter(|n| n.is_some()).count();
                    if nodes[n].is_some() && live > 1 {
                        nodes[n].take();
                        *faults.entry("node killed (-9)").or_default() += 1;
                        for (at, s) in subscribers.iter_mut() {
                            if *at == n {
                                let to = (0..3).find(|m| nodes[*m].is_some()).unwrap();
                                s.connect(nodes[to].as_ref().unwrap()).await;
                                *at = to;
                                *faults.entry("subscriber failed over").or_default() += 1;
                            }
                        }
                    }
                }
                1 => {
                    if let Some(n) = (0..3).find(|m| nodes[*m].is_none()) {
                        nodes[n] = Some(Node::start(&db.url, &nats.url()));
                        *faults.entry("node restarted").or_default() += 1;
                    }
                }
                2 => {
                    nats.stop();
                    tokio::time::sleep(Duration::from_millis(300 + random(700))).await;
                    nats.resume();
                    *faults.entry("NATS stopped and restarted").or_default() += 1;
                }
                3 => {
                    // A slow subscriber: reads nothing for a while.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    *faults.entry("slow subscribers").or_default() += 1;
                }
                _ => {}
            }
        }
        let live = nodes.iter().flatten().next().unwrap();
        let tree = get(live, "f").await;
        for (key, value) in &acked {
            assert_eq!(&tree[key], value, "acknowledged write {key} survives");
        }
        for (n, (_, s)) in subscribers.iter_mut().enumerate() {
            s.drain(Duration::from_secs(3)).await;
            s.assert_once_in_order(&format!("subscriber {n}"));
            let view = Value::Object(
                s.view
                    .get("f")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
            );
            assert_eq!(view, tree, "subscriber {n}'s view equals the store");
        }
        println!(
            "fault schedule over {seconds} s: {} writes acknowledged, faults: {faults:?}",
            acked.len()
        );
        drop(nodes);
        db.drop().await;
    });
}
