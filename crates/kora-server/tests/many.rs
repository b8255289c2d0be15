//! 1,000 concurrent WebSocket connections, each subscribing and writing.

mod common;

use std::time::Duration;

use common::{server, Client};
use serde_json::json;

const CONNECTIONS: usize = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connections_each_subscribe_and_write() {
    // Each connection needs two descriptors here: its client end and its server end.
    rlimit::increase_nofile_limit(4 * CONNECTIONS as u64 + 256)
        .expect("raise the open-files limit");
    let running = server().await;
    let mut clients = Vec::with_capacity(CONNECTIONS);
    for i in 0..CONNECTIONS {
        let mut client = Client::connect(&running).await;
        let reply = client.subscribe(&format!("room/{i}")).await;
        assert!(reply.get("result").is_some(), "{reply}");
        clients.push(client);
    }
    // Every connection writes to its neighbour's path, all at once.
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut client)| {
            tokio::spawn(async move {
                let next = (i + 1) % CONNECTIONS;
                let reply = client
                    .mutate(json!({"merge": {"room": {next.to_string(): {"from": i}}}}))
                    .await;
                assert!(reply.get("result").is_some(), "{reply}");
                let push = client.push().await;
                let from = (i + CONNECTIONS - 1) % CONNECTIONS;
                assert_eq!(
                    push["mutation"]["merge"]["room"][i.to_string()]["from"],
                    json!(from),
                    "connection {i} got {push}"
                );
                assert!(client.maybe_push(Duration::from_millis(50)).await.is_none());
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        running.kora.store().last_seq().await.unwrap(),
        CONNECTIONS as u64
    );
}
