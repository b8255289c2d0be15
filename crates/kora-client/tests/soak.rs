//! A randomized soak: five clients write at random while their links are cut, stalled and
//! restored at random. At the end every cache equals the server's tree byte for byte, every
//! write was acknowledged, and the server's tree is exactly the reference tree of all the
//! writes (so no acknowledged write was lost). `KORA_SOAK_SECS` sets how long it writes.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{client, server_in, server_value, text, Proxy, SYNC};
use kora_client::{Client, Mutation, Path, PathQuery, Stamp, Written};
use kora_core::Tree;
use serde_json::json;

const CLIENTS: usize = 5;
const KEYS: u64 = 12;

fn soak_secs() -> u64 {
    std::env::var("KORA_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

fn random_write(rng: &mut fastrand::Rng) -> Mutation {
    let key = format!("soak/k{}", rng.u64(0..KEYS));
    let field = format!("{key}/f{}", rng.u8(0..3));
    let path = |text: &str| Path::parse(text).unwrap();
    match rng.u8(0..100) {
        0..=59 => Mutation::merge(&path(&field), json!(rng.i32(..))).unwrap(),
        60..=74 => Mutation::set(&path(&key), json!({"f0": rng.i32(..)})).unwrap(),
        75..=84 => Mutation::delete(&path(&key)),
        _ => Mutation::delete(&path(&field)),
    }
}

type Log = Arc<Mutex<Vec<(Stamp, Mutation, Written)>>>;

async fn writer(c: Client, log: Log, until: tokio::time::Instant, mut rng: fastrand::Rng) {
    while tokio::time::Instant::now() < until {
        let m = random_write(&mut rng);
        let written = c.mutate(m.clone()).await.expect("queued");
        log.lock().unwrap().push((written.stamp, m, written));
        tokio::time::sleep(Duration::from_millis(rng.u64(0..15))).await;
    }
}

async fn chaos(
    proxy: Arc<Proxy>,
    until: tokio::time::Instant,
    mut rng: fastrand::Rng,
) -> (u32, u32) {
    let (mut cuts, mut stalls) = (0, 0);
    while tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(rng.u64(100..1_200))).await;
        if rng.u8(0..100) < 70 {
            proxy.cut();
            cuts += 1;
        } else {
            proxy.stall();
            stalls += 1;
        }
        tokio::time::sleep(Duration::from_millis(rng.u64(100..2_000))).await;
        proxy.restore();
    }
    (cuts, stalls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_clients_and_links_converge_on_the_servers_tree() {
    let dir = tempfile::tempdir().unwrap();
    let running = server_in(dir.path(), |_| {}).await;
    let mut proxies = Vec::new();
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let proxy = Arc::new(Proxy::start(running.addr).await);
        let c = client(&proxy, &dir.path().join(format!("c{i}"))).await;
        c.subscribe(PathQuery::new(Path::parse("soak").unwrap()))
            .await
            .unwrap();
        proxies.push(proxy);
        clients.push(c);
    }
    let until = tokio::time::Instant::now() + Duration::from_secs(soak_secs());
    let log: Log = Arc::default();
    // One generator per task, each drawn from the test's seed: the choices replay (the
    // interleaving, which the machine decides, does not).
    let mut rng = kora_testkit::rng("random_clients_and_links_converge_on_the_servers_tree");
    let mut tasks = Vec::new();
    for c in &clients {
        let rng = rng.fork();
        tasks.push(tokio::spawn(writer(c.clone(), log.clone(), until, rng)));
    }
    let chaos: Vec<_> = proxies
        .iter()
        .map(|p| tokio::spawn(chaos(p.clone(), until, rng.fork())))
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let (mut cuts, mut stalls) = (0, 0);
    for task in chaos {
        let (c, s) = task.await.unwrap();
        cuts += c;
        stalls += s;
    }
    for proxy in &proxies {
        proxy.restore();
    }

    let log = std::mem::take(&mut *log.lock().unwrap());
    let mut reference = Tree::new();
    for (stamp, m, _) in &log {
        reference.apply(*stamp, m);
    }
    let operations = log.len();
    for (_, _, written) in log {
        tokio::time::timeout(SYNC, written.acknowledged())
            .await
            .expect("acknowledged in time")
            .expect("every write is taken");
    }
    for c in &clients {
        c.synced(SYNC).await.unwrap();
    }
    let server = server_value(&running, "soak").await;
    assert_eq!(
        text(&server),
        text(&reference.get(&Path::parse("soak").unwrap())),
        "the server holds exactly the writes"
    );
    for c in &clients {
        let deadline = tokio::time::Instant::now() + SYNC;
        while text(&c.get("soak").await.unwrap()) != text(&server) {
            assert!(tokio::time::Instant::now() < deadline, "a cache differs");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let reconnects: u64 = clients.iter().map(|c| c.stats().connections - 1).sum();
    println!(
        "soak: {operations} writes by {CLIENTS} clients in {} s; {cuts} cuts, {stalls} stalls, \
         {reconnects} reconnects; every cache equals the server",
        soak_secs()
    );
    assert!(reconnects > 0, "the links were cut");
    for c in clients {
        c.close().await;
    }
}
