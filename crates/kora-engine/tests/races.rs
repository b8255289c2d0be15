//! Writes that decide on data, raced: rules that read the tree, derived index entries and
//! interceptors that denormalise, each driven by concurrent writers through two engines on
//! one store ("two nodes"). Each check runs on the memory and embedded stores, and on
//! PostgreSQL, MySQL and Cassandra when their `KORA_TEST_*` variable is set (required in CI).
//!
//! Without the commit-time check of what the rules read (`kora_engine::reads`), each of these
//! fails: two writers pass a write-once rule, a post slips past a closed gate, the index keeps
//! stale entries, the counter loses increments.
//!
//! The writers' choices come from a seed, printed by each test; `KORA_TEST_SEED=N` replays it.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use kora_core::{Mutation, Path};
use kora_engine::{Code, Context, Error, Interceptor, Kora, RulesInterceptor, WriteLayer};
use kora_rules::Rules;
use kora_store::Store;
use serde_json::{json, Value};

fn p(text: &str) -> Path {
    Path::parse(text).unwrap()
}

// ---------- seeded choices ----------

/// splitmix64: small, fast, and the same sequence for the same seed everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The seed of this run: `KORA_TEST_SEED`, or a fresh one; printed either way.
fn seed(test: &str) -> u64 {
    let seed = std::env::var("KORA_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| kora_core::stamp::wall_millis() ^ u64::from(std::process::id()));
    println!("{test}: seed {seed} (replay with KORA_TEST_SEED={seed})");
    seed
}

// ---------- stores ----------

type Opened = Pin<Box<dyn Future<Output = Option<(Arc<dyn Store>, Arc<dyn Store>)>> + Send>>;

/// Opens two handles ("nodes") on one fresh database; `None` when the backend is not here.
type Open = fn() -> Opened;

/// Each backend's name and opener.
fn backends() -> Vec<(&'static str, Open)> {
    vec![
        ("memory", memory),
        ("embedded", embedded),
        ("postgres", postgres),
        ("mysql", mysql),
        ("cassandra", cassandra),
    ]
}

fn memory() -> Opened {
    Box::pin(async {
        let store: Arc<dyn Store> = Arc::new(kora_store::MemoryStore::new());
        Some((store.clone(), store))
    })
}

fn embedded() -> Opened {
    Box::pin(async {
        let dir = tempfile::tempdir().expect("temp dir").keep();
        let store: Arc<dyn Store> = Arc::new(
            kora_store::EmbeddedStore::open(dir)
                .await
                .expect("open the embedded store"),
        );
        Some((store.clone(), store))
    })
}

/// The variable a backend needs, or `None` (skipped; in CI that fails the test).
fn test_url(var: &str) -> Option<String> {
    let url = std::env::var(var).ok();
    if url.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs every backend: set {var} (scripts/services)"
        );
        println!("skipped: {var} is not set");
    }
    url
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        kora_core::stamp::wall_millis() % 100_000_000,
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

async fn two(url: &str) -> (Arc<dyn Store>, Arc<dyn Store>) {
    let a = kora_store::open(url).await.expect("open the store");
    let b = kora_store::open(url).await.expect("open the store again");
    (a, b)
}

fn postgres() -> Opened {
    Box::pin(async {
        use sqlx::Connection;
        let admin = test_url("KORA_TEST_POSTGRES_URL")?;
        let name = unique("kora_races");
        let mut conn = sqlx::PgConnection::connect(&admin).await.expect("connect");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create database");
        let (scheme, rest) = admin.split_once("://").expect("a URL");
        let authority = rest.split('/').next().unwrap_or_default();
        Some(two(&format!("{scheme}://{authority}/{name}")).await)
    })
}

fn mysql() -> Opened {
    Box::pin(async {
        use sqlx::Connection;
        let admin = test_url("KORA_TEST_MYSQL_URL")?;
        let name = unique("kora_races");
        let mut conn = sqlx::MySqlConnection::connect(&admin)
            .await
            .expect("connect");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create database");
        let (scheme, rest) = admin.split_once("://").expect("a URL");
        let authority = rest.split('/').next().unwrap_or_default();
        Some(two(&format!("{scheme}://{authority}/{name}")).await)
    })
}

fn cassandra() -> Opened {
    Box::pin(async {
        let base = test_url("KORA_TEST_CASSANDRA_URL")?;
        let hosts = base.trim_start_matches("cassandra://");
        let hosts = hosts.split('/').next().unwrap_or_default();
        let url = format!("cassandra://{hosts}/{}", unique("kora_races"));
        // One handle creates the keyspace before the other opens it.
        let a: Arc<dyn Store> = Arc::new(
            kora_store::cassandra::CassandraStore::open(&url)
                .await
                .expect("open the keyspace"),
        );
        let b: Arc<dyn Store> = Arc::new(
            kora_store::cassandra::CassandraStore::open(&url)
                .await
                .expect("open the keyspace again"),
        );
        Some((a, b))
    })
}

/// Two engines ("nodes") on one store, with `rules` and the interceptors `add` registers.
async fn nodes(
    stores: (Arc<dyn Store>, Arc<dyn Store>),
    rules: &str,
    add: impl Fn(kora_engine::KoraBuilder) -> kora_engine::KoraBuilder,
) -> [Kora; 2] {
    let mut out = Vec::new();
    for store in [stores.0, stores.1] {
        let rules = Rules::parse("races.rules.yaml", rules).expect("rules");
        let builder = Kora::builder()
            .store(store)
            .interceptor("**", RulesInterceptor::new(rules));
        out.push(add(builder).build().await.expect("engine"));
    }
    let [a, b]: [Kora; 2] = out.try_into().ok().expect("two engines");
    [a, b]
}

fn user(kora: &Kora, name: &str) -> Context {
    let ctx = Context::new(kora.clock().origin());
    ctx.set_auth(Some(json!({"sub": name})));
    ctx
}

/// Runs `check` on every backend available here.
async fn on_every_backend<F, Fut>(check: F)
where
    F: Fn(&'static str, (Arc<dyn Store>, Arc<dyn Store>)) -> Fut,
    Fut: Future<Output = ()>,
{
    for (name, open) in backends() {
        if let Some(stores) = open().await {
            check(name, stores).await;
            println!("races: {name}: passed");
        }
    }
}

// ---------- a derived index ----------

const INDEX_RULES: &str = r#"
rules:
  items/$id:
    read: true
    write: auth != null
    index:
      - path: "by_color/{newData.color}/{$id}"
  by_color:
    read: true
"#;

const WRITERS: u64 = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_derived_index_written_by_16_writers_equals_its_rebuild() {
    let seed = seed("a_derived_index_written_by_16_writers_equals_its_rebuild");
    on_every_backend(|name, stores| async move {
        let nodes = nodes(stores, INDEX_RULES, |b| b).await;
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let kora = nodes[(w % 2) as usize].clone();
            let mut rng = Rng(seed ^ w.wrapping_mul(0x1000_0000_01B3));
            tasks.push(tokio::spawn(async move {
                let ctx = user(&kora, &format!("w{w}"));
                for _ in 0..20 {
                    let item = p(&format!("items/i{}", rng.below(5)));
                    let mutation = match rng.below(8) {
                        0 => Mutation::delete(&item),
                        n => {
                            let color = ["red", "green", "blue", "black"][(n % 4) as usize];
                            Mutation::set(&item, json!({"color": color, "by": w})).unwrap()
                        }
                    };
                    kora.mutate(&ctx, mutation, None).await.expect("write");
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let system = nodes[0].system_context();
        let items = nodes[0].read_value(&p("items")).await.unwrap();
        let index = nodes[1].read_value(&p("by_color")).await.unwrap();
        let mut rebuilt: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
        for (id, item) in items.iter().flat_map(|v| v.as_object().unwrap()) {
            let color = item["color"].as_str().unwrap().to_string();
            rebuilt
                .entry(color)
                .or_default()
                .insert(id.clone(), json!(true));
        }
        let expected = (!rebuilt.is_empty()).then(|| json!(rebuilt));
        assert_eq!(
            index, expected,
            "{name}: the index drifted from items {items:?}"
        );
        drop(system);
        for kora in nodes {
            kora.shutdown().await;
        }
    })
    .await;
}

// ---------- rules that read data ----------

const GATE_RULES: &str = r#"
rules:
  seats/$id:
    read: true
    write: auth != null && data == null
  gate:
    read: true
    write: auth != null
  posts/$id:
    read: true
    write: auth != null && root('gate/open') == true
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_once_rule_admits_exactly_one_of_racing_writers() {
    let seed = seed("a_write_once_rule_admits_exactly_one_of_racing_writers");
    on_every_backend(|name, stores| async move {
        let nodes = nodes(stores, GATE_RULES, |b| b).await;
        let mut rng = Rng(seed);
        for seat in 0..12 {
            let contenders = 2 + rng.below(7);
            let mut tasks = Vec::new();
            for c in 0..contenders {
                let kora = nodes[(c % 2) as usize].clone();
                tasks.push(tokio::spawn(async move {
                    let ctx = user(&kora, &format!("u{c}"));
                    let m = Mutation::merge(&p(&format!("seats/s{seat}")), json!(c)).unwrap();
                    (c, kora.mutate(&ctx, m, None).await)
                }));
            }
            let mut winners = Vec::new();
            for task in tasks {
                match task.await.unwrap() {
                    (c, Ok(_)) => winners.push(c),
                    (_, Err(e)) => assert_eq!(e.code, Code::PermissionDenied, "{name}: {e}"),
                }
            }
            assert_eq!(winners.len(), 1, "{name}: seat {seat} taken by {winners:?}");
            let value = nodes[0].read_value(&p(&format!("seats/s{seat}"))).await;
            assert_eq!(value.unwrap(), Some(json!(winners[0])), "{name}");
        }
        for kora in nodes {
            kora.shutdown().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_write_passes_a_rule_on_data_a_racing_write_changed() {
    let seed = seed("no_write_passes_a_rule_on_data_a_racing_write_changed");
    on_every_backend(|name, stores| async move {
        let nodes = nodes(stores, GATE_RULES, |b| b).await;
        let ctx = user(&nodes[0], "admin");
        let open = Mutation::merge(&p("gate/open"), json!(true)).unwrap();
        nodes[0].mutate(&ctx, open, None).await.unwrap();
        let mut tasks = Vec::new();
        for w in 0..8u64 {
            let kora = nodes[(w % 2) as usize].clone();
            tasks.push(tokio::spawn(async move {
                let ctx = user(&kora, &format!("u{w}"));
                let mut committed = Vec::new();
                for i in 0..40 {
                    let post = Mutation::merge(&p(&format!("posts/w{w}i{i}")), json!(i)).unwrap();
                    match kora.mutate(&ctx, post, None).await {
                        Ok(commit) => committed.push(commit.seq),
                        Err(e) if e.code == Code::PermissionDenied => break,
                        Err(e) => panic!("post: {e}"),
                    }
                }
                committed
            }));
        }
        // Close the gate after a seeded number of posts.
        let after = Rng(seed).below(60);
        loop {
            let posts = nodes[1].read_value(&p("posts")).await.unwrap();
            if posts.and_then(|v| v.as_object().map(|m| m.len() as u64)) >= Some(after) {
                break;
            }
            tokio::task::yield_now().await;
        }
        let close = Mutation::merge(&p("gate/open"), json!(false)).unwrap();
        let closed = nodes[1].mutate(&ctx, close, None).await.unwrap().seq;
        for task in tasks {
            for seq in task.await.unwrap() {
                assert!(
                    seq < closed,
                    "{name}: a post committed at {seq}, after the gate closed at {closed}"
                );
            }
        }
        for kora in nodes {
            kora.shutdown().await;
        }
    })
    .await;
}

// ---------- an interceptor that reads ----------

/// Keeps `stats/events` equal to the number of children of `events`, by reading it and
/// adding one on every new event.
struct Count;

#[async_trait]
impl Interceptor for Count {
    async fn before_mutation(
        &self,
        layer: &WriteLayer<'_>,
        _ctx: &Context,
    ) -> Result<Option<Mutation>, Error> {
        if layer.data().await?.is_some() {
            return Ok(None); // not a new event
        }
        let count = layer.kora.read_value(&p("stats/events")).await?;
        let n = count.and_then(|v| v.as_i64()).unwrap_or(0);
        Ok(Some(Mutation::merge(&p("stats/events"), json!(n + 1))?))
    }
}

const OPEN_RULES: &str = r#"
rules:
  "**":
    read: true
    write: true
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_interceptor_counting_by_read_and_write_loses_no_count() {
    seed("an_interceptor_counting_by_read_and_write_loses_no_count");
    on_every_backend(|name, stores| async move {
        let nodes = nodes(stores, OPEN_RULES, |b| b.interceptor("events/$id", Count)).await;
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let kora = nodes[(w % 2) as usize].clone();
            tasks.push(tokio::spawn(async move {
                let ctx = user(&kora, "u");
                for i in 0..10 {
                    let event = Mutation::merge(&p(&format!("events/w{w}i{i}")), json!(1)).unwrap();
                    kora.mutate(&ctx, event, None).await.expect("event");
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let count = nodes[0].read_value(&p("stats/events")).await.unwrap();
        assert_eq!(count, Some(json!(WRITERS * 10)), "{name}");
        let retries: u64 = nodes.iter().map(|k| k.metrics().write_retries.get()).sum();
        println!("races: {name}: {retries} writes decided again after a conflict");
        for kora in nodes {
            kora.shutdown().await;
        }
    })
    .await;
}
