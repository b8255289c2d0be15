//! What the Cassandra backend's sequence costs: the median latency of a plain write of one
//! row, of a lightweight transaction (compare-and-set on one row, as each commit batch's log
//! append is), and of a whole one-leaf Kora commit from one writer, on the same cluster.
//!
//! ```sh
//! exports=$(scripts/services) && eval "$exports"             # KORA_TEST_CASSANDRA_URL
//! eval "$(scripts/services cassandra-ring start)"            # KORA_TEST_CASSANDRA_RING_URL
//! cargo bench -p kora-store --bench cassandra_sequence
//! ```

use std::time::{Duration, Instant};

use kora_core::{Clock, Mutation, Path};
use kora_store::cassandra::CassandraStore;
use kora_store::{Store, Write};
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::statement::{Consistency, SerialConsistency};
use serde_json::json;

/// Requests of each kind, one after the other.
const ROUNDS: usize = 300;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

async fn time<F, Fut>(mut f: F) -> anyhow::Result<Duration>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut times = Vec::with_capacity(ROUNDS);
    for i in 0..ROUNDS {
        let t = Instant::now();
        f(i).await?;
        times.push(t.elapsed());
    }
    Ok(median(times))
}

async fn measure(name: &str, base: &str, ring: bool) -> anyhow::Result<()> {
    let keyspace = format!("kora_seq_{}", std::process::id());
    let options = if ring {
        "?replication=3&consistency=quorum&serial_consistency=serial"
    } else {
        ""
    };
    let authority = base.trim_start_matches("cassandra://");
    let authority = authority.split('/').next().unwrap_or_default();
    let store =
        CassandraStore::open(&format!("cassandra://{authority}/{keyspace}{options}")).await?;
    let session: Session = SessionBuilder::new()
        .known_nodes(authority.split(','))
        .build()
        .await?;
    session.use_keyspace(&keyspace, false).await?;
    session
        .query_unpaged(
            "CREATE TABLE IF NOT EXISTS bench_cas (k int PRIMARY KEY, v bigint)",
            (),
        )
        .await?;
    let cl = if ring {
        Consistency::Quorum
    } else {
        Consistency::LocalQuorum
    };
    let mut plain = session
        .prepare("UPDATE bench_cas SET v = ? WHERE k = 0")
        .await?;
    plain.set_consistency(cl);
    let mut cas = session
        .prepare("UPDATE bench_cas SET v = ? WHERE k = 1 IF v = ?")
        .await?;
    cas.set_consistency(cl);
    cas.set_serial_consistency(Some(if ring {
        SerialConsistency::Serial
    } else {
        SerialConsistency::LocalSerial
    }));
    session
        .query_unpaged("INSERT INTO bench_cas (k, v) VALUES (1, 0)", ())
        .await?;

    let write = time(|i| {
        let (session, plain) = (&session, &plain);
        async move {
            session.execute_unpaged(plain, (i as i64,)).await?;
            Ok(())
        }
    })
    .await?;
    let lwt = time(|i| {
        let (session, cas) = (&session, &cas);
        async move {
            session
                .execute_unpaged(cas, (i as i64 + 1, i as i64))
                .await?;
            Ok(())
        }
    })
    .await?;
    let clock = Clock::new(3);
    let commit = time(|i| {
        let (store, now) = (&store, clock.now());
        async move {
            let path = Path::parse(&format!("todos/t{i}/done"))?;
            store
                .commit(Write::new(now, Mutation::merge(&path, json!(true))?))
                .await?;
            Ok(())
        }
    })
    .await?;
    println!(
        "| {name} | {:.2} ms | {:.2} ms | {:.2} ms |",
        write.as_secs_f64() * 1e3,
        lwt.as_secs_f64() * 1e3,
        commit.as_secs_f64() * 1e3
    );
    store.close().await?;
    session
        .query_unpaged(format!("DROP KEYSPACE IF EXISTS {keyspace}"), ())
        .await?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        println!("| cluster | plain write (median) | LWT compare-and-set (median) | Kora commit, 1 writer, 1 leaf (median) |");
        println!("|---|---:|---:|---:|");
        if let Ok(url) = std::env::var("KORA_TEST_CASSANDRA_URL") {
            measure("one node, RF 1, LOCAL_QUORUM", &url, false).await?;
        }
        if let Ok(url) = std::env::var("KORA_TEST_CASSANDRA_RING_URL") {
            measure("three nodes, RF 3, QUORUM", &url, true).await?;
        }
        Ok(())
    })
}
