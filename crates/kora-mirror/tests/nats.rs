//! Mirrors publishing to a real NATS server (JetStream): one that goes down while commits keep
//! coming, while Kora's process dies too, and comes back — every commit reaches the stream,
//! each path's changes in commit order; and nodes sharing the cursor — a second one goes on
//! where the first stopped, two at once keep the order. Needs `nats-server` (what
//! `scripts/services` installs; `KORA_TEST_NATS_URL` says it is there): skipped without it,
//! required in CI. The tests run servers of their own, since they stop them or set the
//! stream's duplicate window.

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

/// What a stream should hold, by path: (commit sequence, the order's `n`).
type Expected = BTreeMap<String, Vec<(u64, u64)>>;

/// Every message in the stream, by path: (commit sequence, the order's `n`), deduplicated by
/// message id, in stream order.
async fn stream_contents(js: &jetstream::Context) -> Option<Expected> {
    let mut stream = js.get_stream("KORA").await.ok()?;
    let last = stream.info().await.ok()?.state.last_sequence;
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Expected::new();
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
async fn until_streamed(js: &jetstream::Context, expected: &Expected) {
    let total: usize = expected.values().map(Vec::len).sum();
    kora_testkit::eventually("the commits in the stream", || async {
        stream_contents(js)
            .await
            .is_some_and(|got| got.values().map(Vec::len).sum::<usize>() >= total)
    })
    .await;
}

/// Writes `count` changes to random orders, noting each in `expected`.
async fn write_some(kora: &Kora, rng: &mut fastrand::Rng, count: u64, expected: &mut Expected) {
    for _ in 0..count {
        let order = rng.u64(0..4);
        let n = expected.values().map(Vec::len).sum::<usize>() as u64;
        let seq = write(kora, order, n).await;
        expected
            .entry(format!("orders/o{order}"))
            .or_default()
            .push((seq, n));
    }
}

/// Starts one mirror of `config` on `kora`.
fn start_one(kora: &Kora, config: &MirrorConfig) -> kora_mirror::Running {
    let mut started = kora_mirror::start(kora, std::slice::from_ref(config)).unwrap();
    started.pop().expect("the mirror")
}

/// Waits until `mirror`'s cursor is at the last commit.
async fn until_mirrored(kora: &Kora, mirror: &kora_mirror::Running) {
    let last = kora.store().last_seq().await.unwrap();
    let mirrored = mirror.mirrored.clone();
    kora_testkit::eventually("the cursor at the last commit", || {
        let mirrored = mirrored.clone();
        async move { mirrored.load(std::sync::atomic::Ordering::Acquire) == last }
    })
    .await;
}

/// A second node — a mirror with none of the first one's state — started after the first
/// stopped goes on from the shared cursor: it publishes nothing again, although the stream's
/// duplicate window has passed (JetStream would keep a copy). Then two run at once: every
/// commit is in the stream, each path's in commit order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_goes_on_from_the_shared_cursor() {
    if !kora_testkit::service("KORA_TEST_NATS_URL") {
        return;
    }
    let mut rng = kora_testkit::rng("a_second_node_goes_on_from_the_shared_cursor");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (_nats, js) = Nats::connected(port, &dir.path().join("nats")).await;
    let window = std::time::Duration::from_millis(500);
    js.create_stream(jetstream::stream::Config {
        name: "KORA".into(),
        subjects: vec!["kora.>".into()],
        duplicate_window: window,
        ..Default::default()
    })
    .await
    .expect("a stream");
    // One change log, followed by mirrors that share nothing but NATS: nodes.
    let kora = Kora::builder().build().await.unwrap();
    let config = MirrorConfig {
        name: "orders".into(),
        nats: format!("nats://127.0.0.1:{port}"),
        paths: vec!["orders/$id".into()],
        max_backoff_ms: 200,
        ack_timeout_ms: 300,
        ..MirrorConfig::default()
    };
    let mut expected = Expected::new();

    let first = start_one(&kora, &config);
    write_some(&kora, &mut rng, 20, &mut expected).await;
    until_streamed(&js, &expected).await;
    until_mirrored(&kora, &first).await;
    first.task.abort();
    let _ = first.task.await;
    // Not a wait for an outcome: past the duplicate window, a commit published again would
    // stay in the stream as a second copy, which is what this test looks for.
    tokio::time::sleep(window * 3).await;

    let second = start_one(&kora, &config);
    write_some(&kora, &mut rng, 20, &mut expected).await;
    until_streamed(&js, &expected).await;
    until_mirrored(&kora, &second).await;
    let mut stream = js.get_stream("KORA").await.unwrap();
    let stored = stream.info().await.unwrap().state.messages;
    assert_eq!(
        stored, 40,
        "the second node published none of the first one's commits again"
    );

    let third = start_one(&kora, &config);
    write_some(&kora, &mut rng, 20, &mut expected).await;
    until_streamed(&js, &expected).await;
    until_mirrored(&kora, &second).await;
    until_mirrored(&kora, &third).await;
    let got = stream_contents(&js).await.expect("the stream");
    assert_eq!(
        got, expected,
        "each path's changes, all of them, in commit order"
    );
    second.task.abort();
    third.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_survives_nats_going_down_with_nothing_lost_and_order_kept() {
    if !kora_testkit::service("KORA_TEST_NATS_URL") {
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
    let mut started = kora_mirror::start(&kora, std::slice::from_ref(&config)).unwrap();
    let mirror = started.pop().expect("the mirror");

    let mut expected = Expected::new();
    write_some(&kora, &mut rng, 40, &mut expected).await;
    until_streamed(&js, &expected).await;
    nats.stop();
    // Down: commits go on, and wait in the change log.
    write_some(&kora, &mut rng, 40, &mut expected).await;
    // Down long enough for the mirror to fail at least once (no acknowledgement in time);
    // then Kora's process dies (the mirror's task and its NATS client go, with whatever the
    // client held unsent), and a new one starts from the cursor (kept in NATS) once NATS is
    // back.
    let failures = mirror.failures.clone();
    kora_testkit::eventually("the mirror failing while NATS is down", || {
        let failures = failures.clone();
        async move { failures.load(std::sync::atomic::Ordering::Acquire) > 0 }
    })
    .await;
    mirror.task.abort();
    let _ = mirror.task.await;
    let (_nats, js) = Nats::connected(port, &dir.path().join("nats")).await;
    let mut restarted = kora_mirror::start(&kora, &[config]).unwrap();
    let mirror = restarted.pop().expect("the mirror");
    until_streamed(&js, &expected).await;
    let got = stream_contents(&js).await.expect("the stream");
    assert_eq!(
        got, expected,
        "each path's changes, all of them, in commit order"
    );
    until_mirrored(&kora, &mirror).await;
    mirror.task.abort();
}
