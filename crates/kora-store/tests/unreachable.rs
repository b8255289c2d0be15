//! A database that does not answer: the store retries with backoff, then says so clearly.
//! (Each case waits out `CONNECT_RETRY_FOR`, 30 s; they run in parallel.)

use kora_store::cassandra::CassandraStore;
use kora_store::sql::mysql::MysqlStore;
use kora_store::sql::postgres::PostgresStore;
use kora_store::StoreError;

/// A loopback port nothing listens on: bound, then released.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn assert_unavailable(result: Result<(), StoreError>, what: &str) {
    match result {
        Err(StoreError::Unavailable(message)) => {
            assert!(message.contains("gave up after"), "{what}: {message}");
        }
        other => panic!("{what}: expected unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unreachable_postgres_is_unavailable_after_retries() {
    let url = format!("postgres://kora:kora@127.0.0.1:{}/kora", closed_port());
    let started = std::time::Instant::now();
    let result = PostgresStore::open(&url).await.map(|_| ());
    assert_unavailable(result, "postgres");
    assert!(started.elapsed() >= kora_store::sql::CONNECT_RETRY_FOR);
}

#[tokio::test]
async fn an_unreachable_mysql_is_unavailable_after_retries() {
    let url = format!("mysql://kora:kora@127.0.0.1:{}/kora", closed_port());
    let started = std::time::Instant::now();
    let result = MysqlStore::open(&url).await.map(|_| ());
    assert_unavailable(result, "mysql");
    assert!(started.elapsed() >= kora_store::sql::CONNECT_RETRY_FOR);
}

#[tokio::test]
async fn an_unreachable_cassandra_is_unavailable_after_retries() {
    let url = format!("cassandra://127.0.0.1:{}/kora", closed_port());
    let started = std::time::Instant::now();
    let result = CassandraStore::open(&url).await.map(|_| ());
    assert_unavailable(result, "cassandra");
    assert!(started.elapsed() >= kora_store::retry::CONNECT_RETRY_FOR);
    // Bounded: the last try started before the deadline and fails within its timeouts.
    assert!(started.elapsed() < kora_store::retry::CONNECT_RETRY_FOR * 2);
}
