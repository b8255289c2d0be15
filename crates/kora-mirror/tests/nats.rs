//! A mirror publishing to a real NATS server (JetStream) that goes down while commits keep
//! coming, while Kora's process dies too, and comes back: every commit reaches the stream,
//! each path's changes in commit order. Needs `nats-server` (what `scripts/services` installs; `KORA_TEST_NATS_URL` says it
//! is there): skipped without it, required in CI. The test runs a server of its own, since it
//! stops it.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};

use async_nats::jetstream;
use kora_core::{Mutation, Path};
use kora_engine::Kora;
use kora_mirror::MirrorConfig;
use serde_json::{json, Value};

/// A `nats-server` with JetStream on `port`, storing in `dir`.
struct Nats {
    child: Child,
}

impl Nats {
    fn start(port: u16, dir: &std::path::Path) -> Nats {
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts");
        Nats { child }
    }

    /// [`Nats::start`], and a JetStream context on it once it accepts connections.
    async fn connected(port: u16, dir: &std::path::Path) -> (Nats, jetstream::Context) {
        let nats = Nats::start(port, dir);
        let url = format!("nats://127.0.0.1:{port}");
        let connect = async {
            loop {
                match async_nats::connect(&url).await {
                    Ok(client) => break client,
                    Err(_) => tokio::time::sleep(kora_testkit::EVENTUALLY_POLL).await,
                }
            }
        };
        let client = tokio::time::timeout(kora_testkit::EVENTUALLY_TIMEOUT, connect)
            .await
            .expect("nats-server accepts connections");
        (nats, jetstream::new(client))
    }

    /// Stops it as an operator would (SIGTERM), so what it acknowledged is on disk.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.child.wait();
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn write(kora: &Kora, order: u64, n: u64) -> u64 {
    let path = Path::parse(&format!("orders/o{order}/n")).unwrap();
    let mutation = Mutation::merge(&path, json!(n)).unwrap();
    let commit = kora
        .mutate(&kora.system_context(), mutation, None)
        .await
        .unwrap();
    commit.seq
}

/// Every message in the stream, by path: (commit sequence, the order's `n`), deduplicated by
/// message id, in stream order.
async fn stream_contents(js: &jetstream::Context) -> Option<BTreeMap<String, Vec<(u64, u64)>>> {
    let mut stream = js.get_stream("KORA").await.ok()?;
    let last = stream.info().await.ok()?.state.last_sequence;
    let mut seen = std::collections::BTreeSet::new();
    let mut out: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    for n in 1..=last {
        let message = stream.get_raw_message(n).await.ok()?;
        let id = message
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|v| v.to_string())?;
        if !seen.insert(id) {
            continue;
        }
        let payload: Value = serde_json::from_slice(&message.payload).ok()?;
        let path = payload["path"].as_str()?.to_string();
        let id = path.rsplit('/').next()?.to_string();
        let value = payload["mutation"]["merge"]["orders"][&id]["n"].as_u64()?;
        out.entry(path)
            .or_default()
            .push((payload["seq"].as_u64()?, value));
    }
    Some(out)
}

/// Waits until the stream holds as many distinct messages as `expected` lists.
async fn until_streamed(js: &jetstream::Context, expected: &BTreeMap<String, Vec<(u64, u64)>>) {
    let total: usize = expected.values().map(Vec::len).sum();
    kora_testkit::eventually("the commits in the stream", || async {
        stream_contents(js)
            .await
            .is_some_and(|got| got.values().map(Vec::len).sum::<usize>() >= total)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_survives_nats_going_down_with_nothing_lost_and_order_kept() {
    if std::env::var_os("KORA_TEST_NATS_URL").is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs this test: run scripts/services and set KORA_TEST_NATS_URL"
        );
        println!("skipped: KORA_TEST_NATS_URL is not set (nats-server not installed)");
        return;
    }
    let mut rng =
        kora_testkit::rng("a_mirror_survives_nats_going_down_with_nothing_lost_and_order_kept");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let (nats, js) = Nats::connected(port, &dir.path().join("nats")).await;
    js.create_stream(jetstream::stream::Config {
        name: "KORA".into(),
        subjects: vec!["kora.>".into()],
        ..Default::default()
    })
    .await
    .expect("a stream");

    let store = kora_store::open(&format!("embedded:{}", dir.path().join("kora").display()))
        .await
        .unwrap();
    let kora = Kora::builder().store(store).build().await.unwrap();
    let config = MirrorConfig {
        name: "orders".into(),
        nats: url.clone(),
        paths: vec!["orders/$id".into()],
        max_backoff_ms: 200,
        ack_timeout_ms: 300,
        ..MirrorConfig::default()
    };
    let mut started = kora_mirror::start(&kora, std::slice::from_ref(&config), dir.path()).unwrap();
    let mirror = started.pop().expect("the mirror");

    let mut expected: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    let record = |expected: &mut BTreeMap<String, Vec<(u64, u64)>>, order: u64, seq, n| {
        expected
            .entry(format!("orders/o{order}"))
            .or_default()
            .push((seq, n));
    };
    for n in 0..40 {
        let order = rng.u64(0..4);
        let seq = write(&kora, order, n).await;
        record(&mut expected, order, seq, n);
    }
    until_streamed(&js, &expected).await;
    nats.stop();
    // Down: commits go on, and wait in the change log.
    for n in 40..80 {
        let order = rng.u64(0..4);
        let seq = write(&kora, order, n).await;
        record(&mut expected, order, seq, n);
    }
    // Down long enough for the mirror to fail at least once (no acknowledgement in time);
    // then Kora's process dies (the mirror's task and its NATS client go, with whatever the
    // client held unsent), and a new one starts from the cursor file once NATS is back.
    let failures = mirror.failures.clone();
    kora_testkit::eventually("the mirror failing while NATS is down", || {
        let failures = failures.clone();
        async move { failures.load(std::sync::atomic::Ordering::Acquire) > 0 }
    })
    .await;
    mirror.task.abort();
    let _ = mirror.task.await;
    let (_nats, js) = Nats::connected(port, &dir.path().join("nats")).await;
    let mut restarted = kora_mirror::start(&kora, &[config], dir.path()).unwrap();
    let mirror = restarted.pop().expect("the mirror");
    until_streamed(&js, &expected).await;
    let got = stream_contents(&js).await.expect("the stream");
    assert_eq!(
        got, expected,
        "each path's changes, all of them, in commit order"
    );
    let last = kora.store().last_seq().await.unwrap();
    let mirrored = mirror.mirrored.clone();
    kora_testkit::eventually("the cursor past the last commit", || {
        let mirrored = mirrored.clone();
        async move { mirrored.load(std::sync::atomic::Ordering::Acquire) == last }
    })
    .await;
    mirror.task.abort();
}
