//! A cluster of real `kora serve` nodes for tests: a fresh PostgreSQL database or Cassandra
//! keyspace, a NATS server of the test's own, and the nodes.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::Connection;

const KORA: &str = env!("CARGO_BIN_EXE_kora");

/// A fresh database for one test, dropped at the end.
pub struct Database {
    admin: String,
    name: String,
    pub url: String,
}

impl Database {
    pub async fn create(admin: &str) -> Database {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "kora_cluster_{}_{}_{}",
            std::process::id(),
            kora_core::stamp::wall_millis() % 1_000_000_000,
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut conn = sqlx::PgConnection::connect(admin).await.expect("postgres");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create");
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin);
        Database {
            admin: admin.to_string(),
            url: format!("{base}/{name}"),
            name,
        }
    }

    pub async fn drop(self) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn)
            .await;
        }
    }
}

/// A NATS server of the test's own, on a fixed free port so it can be restarted there.
pub struct Nats {
    child: Option<Child>,
    port: u16,
}

impl Nats {
    pub fn start() -> Nats {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut nats = Nats { child: None, port };
        nats.resume();
        nats
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn resume(&mut self) {
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server runs");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One `kora serve` node.
pub struct Node {
    child: Child,
    pub addr: String,
}

impl Node {
    pub fn start(store: &str, nats: &str) -> Node {
        let mut child = Command::new(KORA)
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--store",
                store,
                "--cluster",
                nats,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kora serve starts");
        let addr = super::listening_address(&mut child);
        Node { child, addr }
    }

    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// A fresh database on a store several nodes can share, dropped by [`SharedStore::drop`].
pub enum SharedStore {
    Postgres(Database),
    Cassandra(String),
}

impl SharedStore {
    /// The `--store` URL.
    pub fn url(&self) -> &str {
        match self {
            SharedStore::Postgres(db) => &db.url,
            SharedStore::Cassandra(url) => url,
        }
    }

    pub async fn drop(self) {
        match self {
            SharedStore::Postgres(db) => db.drop().await,
            SharedStore::Cassandra(url) => {
                let _ = kora_store::cassandra::drop_keyspace(&url).await;
            }
        }
    }
}

/// A fresh database on each shared store the `KORA_TEST_*` variables name (PostgreSQL,
/// Cassandra), with its name; each one missing is reported skipped (in CI, a failure). NATS
/// is required too: the nodes fan out over it.
pub async fn shared_stores() -> Vec<(&'static str, SharedStore)> {
    let mut out = Vec::new();
    if !kora_testkit::service("KORA_TEST_NATS_URL") {
        return out;
    }
    if kora_testkit::service("KORA_TEST_POSTGRES_URL") {
        let admin = std::env::var("KORA_TEST_POSTGRES_URL").unwrap_or_default();
        out.push((
            "postgres",
            SharedStore::Postgres(Database::create(&admin).await),
        ));
    }
    if kora_testkit::service("KORA_TEST_CASSANDRA_URL") {
        let base = std::env::var("KORA_TEST_CASSANDRA_URL").unwrap_or_default();
        let hosts = base.trim_start_matches("cassandra://");
        let hosts = hosts.split('/').next().unwrap_or_default();
        let keyspace = format!(
            "kora_counters_{}_{}",
            std::process::id(),
            kora_core::stamp::wall_millis() % 1_000_000_000
        );
        out.push((
            "cassandra",
            SharedStore::Cassandra(format!("cassandra://{hosts}/{keyspace}")),
        ));
    }
    out
}
