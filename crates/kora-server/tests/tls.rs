//! Every endpoint over TLS (`tls_cert`, `tls_key`), with a CA made in the test: REST and event
//! streams answer over https (Firebase's REST: kora-firebase's tests), plain HTTP to the port gets nothing, and a
//! new certificate written over the files is served without a restart.

mod common;

use std::time::Duration;

use common::server_with;
use kora_engine::Kora;
use kora_testkit::tls::TestCa;
use serde_json::{json, Value};

/// An HTTPS client that trusts only the CA in `ca`.
fn trusting(ca: &std::path::Path) -> reqwest::Client {
    let pem = std::fs::read(ca).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test]
async fn every_endpoint_answers_over_tls_and_a_renewed_certificate_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let first = TestCa::new("one").server_files(dir.path(), "server");
    let running = server_with(Kora::builder(), |config| {
        config.tls_cert = Some(first.cert.clone());
        config.tls_key = Some(first.key.clone());
    })
    .await;
    let base = format!("https://localhost:{}", running.addr.port());
    let https = trusting(&first.ca);

    let put = https
        .put(format!("{base}/v1/data/ships/pearl"))
        .json(&json!({"captain": "Jack"}))
        .send()
        .await
        .expect("REST over TLS");
    assert!(put.status().is_success(), "{}", put.status());
    let read: Value = https
        .get(format!("{base}/v1/data/ships/pearl"))
        .send()
        .await
        .expect("a read over TLS")
        .json()
        .await
        .unwrap();
    assert_eq!(read, json!({"captain": "Jack"}));
    let stream = https
        .get(format!("{base}/v1/data/ships"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("an event stream over TLS");
    assert_eq!(
        stream.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    drop(stream);

    // Plain HTTP to the TLS port is not answered as HTTP.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{}/healthz", running.addr.port()))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());

    // A renewal from another CA, written over the same files, is picked up without a restart:
    // clients trusting the new CA get in, clients trusting only the old one no longer do.
    let second = TestCa::new("two").server_files(dir.path(), "renewed");
    std::fs::copy(&second.key, &first.key).unwrap();
    std::fs::copy(&second.cert, &first.cert).unwrap();
    let renewed = trusting(&second.ca);
    kora_testkit::eventually("the renewed certificate to be served", || async {
        renewed.get(format!("{base}/healthz")).send().await.is_ok()
    })
    .await;
    let old = trusting(&first.ca)
        .get(format!("{base}/healthz"))
        .send()
        .await;
    assert!(old.is_err(), "a client trusting only the old CA is refused");
    running.stop().await.unwrap();
}

#[tokio::test]
async fn a_bad_certificate_stops_the_server_and_half_a_pair_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let files = TestCa::new("bad").server_files(dir.path(), "server");
    let start = |cert: Option<std::path::PathBuf>, key: Option<std::path::PathBuf>| {
        let config = kora_server::ServerConfig {
            bind: "127.0.0.1:0".into(),
            store: Some("memory:".into()),
            tls_cert: cert,
            tls_key: key,
            ..Default::default()
        };
        kora_server::start(config, Kora::builder())
    };
    let error = start(Some(files.cert.clone()), None)
        .await
        .err()
        .expect("refused");
    assert!(error.to_string().contains("tls_key"), "{error}");
    // A key that is not the certificate's.
    let other = TestCa::new("other").server_files(dir.path(), "other");
    let error = start(Some(files.cert.clone()), Some(other.key.clone()))
        .await
        .err()
        .expect("refused");
    assert!(error.to_string().contains("tls"), "{error}");
    let error = start(
        Some(dir.path().join("missing.crt")),
        Some(files.key.clone()),
    )
    .await
    .err()
    .expect("refused");
    assert!(error.to_string().contains("missing.crt"), "{error}");
}
