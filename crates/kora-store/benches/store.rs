//! Every backend through the `Store` trait, on Kora's own workload.
//!
//! ```sh
//! cargo bench -p kora-store --bench store                      # embedded + memory
//! exports=$(scripts/services) && eval "$exports"               # + PostgreSQL and MySQL
//! cargo bench -p kora-store --bench store -- --quick           # 1/10 of the work
//! cargo bench -p kora-store --bench store -- --backends embedded --only writes --scenario 64x1
//! cargo bench -p kora-store --bench store -- --only restart --memtable-mib 16   # embedded only
//! ```
//!
//! Backends: `embedded` (a temporary directory) and `memory` always; `postgres` and `mysql`
//! when `KORA_TEST_POSTGRES_URL` / `KORA_TEST_MYSQL_URL` are set, each in a database created
//! for the run and dropped after it; `cassandra` (one node, replication 1) and
//! `cassandra-ring` (three nodes, replication 3, QUORUM) when `KORA_TEST_CASSANDRA_URL` /
//! `KORA_TEST_CASSANDRA_RING_URL` are set, each in a keyspace of its own, dropped after.
//!
//! Measured, each in a fresh store:
//!
//! - **writes**: durable committed mutations per second with 1 and 64 concurrent writers
//!   (tokio tasks), each waiting for its commit before the next, for mutations of 1 and 10
//!   leaves (`todos/<id>/<field>`, ids drawn from 100k so that writes mix inserts and
//!   overwrites); p50/p99 commit latency as the writer sees it.
//! - **subtree read**: `todos` (10k leaves) in a store of 100k leaves; median of 10.
//! - **log replay**: 100k change-log entries read with `changes()` in pages of 1,000;
//!   median of 3.
//! - **restart** (embedded, only with `--only restart`): reopen time after 400k mutations
//!   and a simulated crash, with the memtable size of `--memtable-mib` (default 16).
//!
//! Markdown tables go to stdout, progress to stderr.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kora_core::{Clock, Mutation, Path, PathQuery};
use kora_store::embedded::Tuning;
use kora_store::{EmbeddedStore, LogRead, MemoryStore, Store, StoreError, Write};
use serde_json::{json, Map, Value};
use sqlx::Connection;

/// Write scenarios: (writers, leaves per mutation, mutations).
const WRITES: [(usize, usize, u64); 4] = [
    (1, 1, 5_000),
    (1, 10, 5_000),
    (64, 1, 200_000),
    (64, 10, 100_000),
];

/// A write scenario stops at this time even if it has not done all its mutations (the
/// slow backends), so that the whole run stays bounded.
const WRITE_TIME_LIMIT: Duration = Duration::from_secs(15);

/// Todo ids are drawn from this many, so writes mix inserts and overwrites.
const ID_SPACE: u64 = 100_000;

const SUBTREE_LEAVES: u64 = 10_000;
const OTHER_LEAVES: u64 = 90_000;
const LOG_ENTRIES: u64 = 100_000;
/// Writers filling the log before a replay: many, so group commit makes large batches and
/// even the three-node ring fills 100,000 entries in minutes.
const FILL_WRITERS: usize = 512;
const LOG_PAGE: usize = 1_000;

/// Mutations written before the simulated crash of the restart measurement: enough to fill
/// fjall's 64 MB active journal and more.
const RESTART_MUTATIONS: u64 = 400_000;

/// The embedded engine's settings for this run (`--memtable-mib` changes the memtables).
static TUNING: std::sync::OnceLock<Tuning> = std::sync::OnceLock::new();

fn tuning() -> Tuning {
    TUNING.get().copied().unwrap_or_default()
}

/// What removes a store's database afterwards.
type Cleanup = Pin<Box<dyn Future<Output = ()>>>;

/// A store to measure, and what removes it afterwards.
struct Opened {
    store: Arc<dyn Store>,
    cleanup: Option<Cleanup>,
    _dir: Option<tempfile::TempDir>,
}

impl Opened {
    async fn close(self) {
        let _ = self.store.close().await;
        if let Some(cleanup) = self.cleanup {
            cleanup.await;
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Embedded,
    Memory,
    Postgres,
    Mysql,
    Cassandra,
    CassandraRing,
}

impl Backend {
    const ALL: [Backend; 6] = [
        Backend::Embedded,
        Backend::Postgres,
        Backend::Mysql,
        Backend::Cassandra,
        Backend::CassandraRing,
        Backend::Memory,
    ];

    fn name(self) -> &'static str {
        match self {
            Backend::Embedded => "embedded",
            Backend::Memory => "memory",
            Backend::Postgres => "postgres",
            Backend::Mysql => "mysql",
            Backend::Cassandra => "cassandra",
            Backend::CassandraRing => "cassandra-ring",
        }
    }

    fn admin_url(self) -> Option<String> {
        match self {
            Backend::Postgres => std::env::var("KORA_TEST_POSTGRES_URL").ok(),
            Backend::Mysql => std::env::var("KORA_TEST_MYSQL_URL").ok(),
            Backend::Cassandra => std::env::var("KORA_TEST_CASSANDRA_URL").ok(),
            Backend::CassandraRing => std::env::var("KORA_TEST_CASSANDRA_RING_URL").ok(),
            _ => Some(String::new()),
        }
    }

    async fn open(self) -> anyhow::Result<Opened> {
        match self {
            Backend::Embedded => {
                let dir = tempfile::tempdir()?;
                let store = EmbeddedStore::open_tuned(dir.path().join("data"), tuning()).await?;
                Ok(Opened {
                    store: Arc::new(store),
                    cleanup: None,
                    _dir: Some(dir),
                })
            }
            Backend::Memory => Ok(Opened {
                store: Arc::new(MemoryStore::new()),
                cleanup: None,
                _dir: None,
            }),
            Backend::Postgres | Backend::Mysql => self.open_sql().await,
            Backend::Cassandra | Backend::CassandraRing => self.open_cassandra().await,
        }
    }

    /// Opens the store in a keyspace of its own (the ring's replicated 3 times, at QUORUM).
    async fn open_cassandra(self) -> anyhow::Result<Opened> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let base = self.admin_url().unwrap_or_default();
        let name = format!(
            "kora_bench_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let mut url = with_database(&base, &name);
        if self == Backend::CassandraRing {
            url.push_str("?replication=3&consistency=quorum&serial_consistency=serial");
        }
        let store = kora_store::cassandra::CassandraStore::open(&url).await?;
        let cleanup = Box::pin(async move {
            let _ = kora_store::cassandra::drop_keyspace(&url).await;
        });
        Ok(Opened {
            store: Arc::new(store),
            cleanup: Some(cleanup),
            _dir: None,
        })
    }

    /// Creates a database of its own and opens the store in it.
    async fn open_sql(self) -> anyhow::Result<Opened> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let admin = self.admin_url().unwrap_or_default();
        let name = format!(
            "kora_bench_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let url = with_database(&admin, &name);
        let (store, cleanup): (Arc<dyn Store>, Cleanup) = if self == Backend::Postgres {
            let mut conn = sqlx::PgConnection::connect(&admin).await?;
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await?;
            let store = kora_store::sql::postgres::PostgresStore::open(&url).await?;
            let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            let cleanup = Box::pin(async move {
                let _ = sqlx::query(&drop).execute(&mut conn).await;
            });
            (Arc::new(store), cleanup)
        } else {
            let mut conn = sqlx::MySqlConnection::connect(&admin).await?;
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await?;
            let store = kora_store::sql::mysql::MysqlStore::open(&url).await?;
            let drop = format!("DROP DATABASE IF EXISTS {name}");
            let cleanup = Box::pin(async move {
                let _ = sqlx::query(&drop).execute(&mut conn).await;
            });
            (Arc::new(store), cleanup)
        };
        Ok(Opened {
            store,
            cleanup: Some(cleanup),
            _dir: None,
        })
    }
}

/// `url` with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{authority}/{name}")
}

/// xorshift64*, seeded per writer: reproducible, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

const FIELDS: [&str; 10] = [
    "text", "done", "priority", "owner", "due", "tag", "notes", "created", "order", "color",
];

/// `todos/<id>` with `leaves` fields.
fn todo(id: u64, leaves: usize, rng: &mut Rng) -> Mutation {
    let mut fields = Map::new();
    for (i, field) in FIELDS.iter().take(leaves).enumerate() {
        let value = match i % 3 {
            0 => json!(format!("buy milk and call mom {}", rng.below(1000))),
            1 => json!(rng.below(2) == 0),
            _ => json!(rng.below(1_000_000)),
        };
        fields.insert(field.to_string(), value);
    }
    let path = Path::from_segments(["todos".to_string(), format!("t{id:07}")]).expect("path");
    Mutation::merge(&path, Value::Object(fields)).expect("mutation")
}

struct WriteRun {
    mutations: u64,
    elapsed: Duration,
    lat_ns: Vec<u64>,
}

/// `writers` tasks commit `total` mutations of `leaves` leaves between them.
async fn write_run(store: Arc<dyn Store>, writers: usize, leaves: usize, total: u64) -> WriteRun {
    let clock = Arc::new(Clock::new(1));
    let deadline = Instant::now() + WRITE_TIME_LIMIT;
    let per_writer = total / writers as u64;
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (store, clock) = (store.clone(), clock.clone());
            tokio::spawn(async move {
                let mut rng = Rng::new(w as u64 + 1);
                let mut lat = Vec::with_capacity(per_writer as usize);
                for _ in 0..per_writer {
                    if Instant::now() > deadline {
                        break;
                    }
                    let m = todo(rng.below(ID_SPACE), leaves, &mut rng);
                    let t = Instant::now();
                    store
                        .commit(Write::new(clock.now(), m))
                        .await
                        .expect("commit");
                    lat.push(t.elapsed().as_nanos() as u64);
                }
                lat
            })
        })
        .collect();
    let mut lat_ns = Vec::new();
    for task in tasks {
        lat_ns.extend(task.await.expect("writer"));
    }
    WriteRun {
        mutations: lat_ns.len() as u64,
        elapsed: started.elapsed(),
        lat_ns,
    }
}

fn percentile(sorted: &[u64], q: f64) -> Duration {
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len().max(1)) - 1;
    Duration::from_nanos(sorted.get(i).copied().unwrap_or(0))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    match ms {
        m if m >= 100.0 => format!("{m:.0} ms"),
        m if m >= 10.0 => format!("{m:.1} ms"),
        m => format!("{m:.2} ms"),
    }
}

/// Fills a store with `leaves` leaves under `collection`, in mutations of 1,000 leaves.
async fn fill(store: &dyn Store, clock: &Clock, collection: &str, leaves: u64) {
    for chunk in 0..leaves.div_ceil(1_000) {
        let mut items = Map::new();
        for i in chunk * 1_000..((chunk + 1) * 1_000).min(leaves) {
            items.insert(format!("i{i:07}"), json!({"title": format!("item {i}")}));
        }
        let path = Path::parse(collection).expect("path");
        let m = Mutation::merge(&path, Value::Object(items)).expect("mutation");
        store
            .commit(Write::new(clock.now(), m))
            .await
            .expect("fill");
    }
}

/// Median time to read all of `todos` (10k leaves) in a store of 100k, 10 times
/// (`KORA_BENCH_READS` times, for profiling).
async fn subtree_read(store: &dyn Store) -> Duration {
    let clock = Clock::new(2);
    fill(store, &clock, "projects", OTHER_LEAVES / 2).await;
    fill(store, &clock, "todos", SUBTREE_LEAVES).await;
    fill(store, &clock, "users", OTHER_LEAVES / 2).await;
    let query = PathQuery::new(Path::parse("todos").expect("path"));
    let mut times = Vec::new();
    let repeat = std::env::var("KORA_BENCH_READS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    for _ in 0..repeat {
        let t = Instant::now();
        let value = store.get(&query).await.expect("read");
        times.push(t.elapsed());
        let n = value.and_then(|v| v.as_object().map(Map::len)).unwrap_or(0);
        assert_eq!(n as u64, SUBTREE_LEAVES);
    }
    median(times)
}

/// Median time to read `LOG_ENTRIES` change-log entries in pages of `LOG_PAGE`.
async fn log_replay(store: Arc<dyn Store>, quick: bool) -> (u64, Duration) {
    let want = if quick { LOG_ENTRIES / 10 } else { LOG_ENTRIES };
    while store.last_seq().await.expect("last seq") < want {
        let missing = want - store.last_seq().await.expect("last seq");
        write_run(
            store.clone(),
            FILL_WRITERS,
            1,
            missing.max(FILL_WRITERS as u64),
        )
        .await;
    }
    let mut times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let (mut after, mut read) = (0, 0);
        while read < want {
            let LogRead::Changes(page) = store.changes(after, LOG_PAGE).await.expect("log") else {
                panic!("log compacted");
            };
            assert!(!page.is_empty(), "log ends at {after}");
            read += page.len() as u64;
            after = page.last().map_or(after, |c| c.seq);
        }
        times.push(t.elapsed());
    }
    (want, median(times))
}

/// Reopening after a crash: `mutations` single-leaf mutations from 64 writers, then the
/// store is dropped without closing (nothing flushed, as after a kill) and reopened; then
/// closed cleanly and reopened again. Returns both reopen times and the journal bytes the
/// first one found.
async fn restart(mutations: u64) -> anyhow::Result<(Duration, Duration, u64)> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("data");
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open_tuned(&path, tuning()).await?);
    write_run(store.clone(), 64, 1, mutations).await;
    drop(store);
    let journal = journal_bytes(&path)?;
    let (store, after_crash) = reopen(&path).await?;
    store.close().await?;
    let (store, after_close) = reopen(&path).await?;
    store.close().await?;
    Ok((after_crash, after_close, journal))
}

/// Opens the store at `path` once the last one let go of it, and how long that took.
async fn reopen(path: &std::path::Path) -> anyhow::Result<(EmbeddedStore, Duration)> {
    loop {
        let t = Instant::now();
        match EmbeddedStore::open_tuned(path, tuning()).await {
            Ok(store) => return Ok((store, t.elapsed())),
            // A dropped store's committer is still letting go of the directory.
            Err(StoreError::Locked { .. }) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Bytes written in the journal files under `dir` (fjall preallocates them: count up to
/// the last non-zero byte).
fn journal_bytes(dir: &std::path::Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir.join("fjall"))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "jnl") {
            let bytes = std::fs::read(&path)?;
            total += bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1) as u64;
        }
    }
    Ok(total)
}

struct Args {
    quick: bool,
    backends: Vec<Backend>,
    only: Option<String>,
    /// One write scenario, as `WRITERSxLEAVES` (e.g. `64x1`).
    scenario: Option<String>,
}

fn args() -> Args {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let wanted = value("--backends");
    let backends = Backend::ALL
        .into_iter()
        .filter(|b| {
            wanted
                .as_ref()
                .is_none_or(|w| w.split(',').any(|n| n == b.name()))
        })
        .filter(|b| b.admin_url().is_some())
        .collect();
    if let Some(mib) = value("--memtable-mib").and_then(|m| m.parse::<u64>().ok()) {
        let _ = TUNING.set(Tuning {
            memtable_bytes: mib << 20,
            ..Tuning::default()
        });
    }
    Args {
        quick: args.iter().any(|a| a == "--quick"),
        backends,
        only: value("--only"),
        scenario: value("--scenario"),
    }
}

fn main() -> anyhow::Result<()> {
    let args = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let wants = |what: &str| args.only.as_deref().is_none_or(|o| o == what);
    let scale = if args.quick { 10 } else { 1 };
    if wants("writes") {
        println!("### Durable group-committed writes\n");
        println!(
            "| backend | writers | leaves/mut | mutations | mut/s | leaf writes/s | p50 | p99 |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|");
        for backend in &args.backends {
            for (writers, leaves, total) in WRITES {
                let name = format!("{writers}x{leaves}");
                if args.scenario.as_ref().is_some_and(|s| *s != name) {
                    continue;
                }
                let opened = backend.open().await?;
                eprintln!("  [{}] {writers} writers x {leaves} leaves", backend.name());
                let run = write_run(opened.store.clone(), writers, leaves, total / scale).await;
                opened.close().await;
                print_write(backend.name(), writers, leaves, run);
            }
        }
    }
    if wants("reads") {
        println!("\n### Reads\n");
        println!("| backend | 10k-leaf subtree read (median of 10) | change log: entries read in pages of 1,000 (median of 3) |");
        println!("|---|---:|---:|");
        for backend in &args.backends {
            eprintln!("  [{}] reads", backend.name());
            let opened = backend.open().await?;
            let subtree = subtree_read(&*opened.store).await;
            let (entries, log) = log_replay(opened.store.clone(), args.quick).await;
            opened.close().await;
            println!(
                "| {} | {} | {entries} in {} |",
                backend.name(),
                ms(subtree),
                ms(log)
            );
        }
    }
    if args.only.as_deref() == Some("restart") {
        let mutations = RESTART_MUTATIONS / scale;
        let (crash, clean, journal) = restart(mutations).await?;
        println!(
            "\n| memtables | mutations before the crash | journal replayed | reopen after the crash | reopen after a clean close |\n|---:|---:|---:|---:|---:|\n| {} MiB | {mutations} | {:.1} MB | {} | {} |",
            tuning().memtable_bytes >> 20,
            journal as f64 / 1e6,
            ms(crash),
            ms(clean)
        );
    }
    Ok(())
}

fn print_write(backend: &str, writers: usize, leaves: usize, mut run: WriteRun) {
    run.lat_ns.sort_unstable();
    let rate = run.mutations as f64 / run.elapsed.as_secs_f64();
    println!(
        "| {backend} | {writers} | {leaves} | {} | {rate:.0} | {:.0} | {} | {} |",
        run.mutations,
        rate * leaves as f64,
        ms(percentile(&run.lat_ns, 0.50)),
        ms(percentile(&run.lat_ns, 0.99)),
    );
}
