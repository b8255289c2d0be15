//! The client over TLS: an `https://` server whose certificate a private CA signed is reached
//! with `Options::trusting(ca)`, and refused without it.

mod common;

use common::{options, server_in, wait_status};
use kora_client::{Client, Status};
use kora_testkit::tls::TestCa;
use serde_json::json;

#[tokio::test]
async fn a_client_trusting_the_ca_reads_and_writes_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let files = TestCa::new("client").server_files(dir.path(), "server");
    let running = server_in(dir.path(), |config| {
        config.tls_cert = Some(files.cert.clone());
        config.tls_key = Some(files.key.clone());
    })
    .await;
    let url = format!("https://localhost:{}", running.addr.port());

    let trusted = options(&dir.path().join("trusted"))
        .trusting(&files.ca)
        .expect("the CA file loads");
    let client = Client::connect(&url, trusted).await.unwrap();
    wait_status(&client, Status::Online).await;
    client
        .set("ships/pearl", json!({"captain": "Jack"}))
        .await
        .unwrap();
    assert_eq!(
        client.get("ships/pearl").await.unwrap(),
        Some(json!({"captain": "Jack"}))
    );
    client.close().await;

    // The web's CAs do not know the test CA: the handshake fails and the client stays offline.
    let untrusting = Client::connect(&url, options(&dir.path().join("untrusting")))
        .await
        .unwrap();
    // It retries every 20–300 ms: in two seconds it would have got in several times over.
    let mut status = untrusting.watch_status();
    let online = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        status.wait_for(|s| *s == Status::Online),
    )
    .await;
    assert!(online.is_err(), "an untrusted certificate was accepted");
    assert!(untrusting.get("ships/pearl").await.is_err());
    untrusting.close().await;

    let missing = options(dir.path()).trusting(&dir.path().join("missing.pem"));
    assert!(missing.is_err());
    running.stop().await.unwrap();
}
