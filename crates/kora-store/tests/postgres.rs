//! The conformance suite against PostgreSQL (`KORA_TEST_POSTGRES_URL`), each check in a
//! database of its own that is dropped afterwards.

mod conformance;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use kora_store::sql::postgres::PostgresStore;
use kora_store::Store;
use sqlx::Connection;

fn factory() -> Pin<Box<dyn Future<Output = Option<conformance::Opened>> + Send>> {
    Box::pin(async {
        let admin_url = std::env::var("KORA_TEST_POSTGRES_URL").ok()?;
        let name = conformance::unique_name("kora_test");
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("connect");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create database");
        let url = conformance::with_database(&admin_url, &name);
        let store = PostgresStore::open(&url).await.expect("open");
        let cleanup = Box::pin(async move {
            let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            let _ = sqlx::query(&drop).execute(&mut admin).await;
        });
        Some(conformance::Opened {
            store: Arc::new(store) as Arc<dyn Store>,
            cleanup: Some(cleanup),
        })
    })
}

conformance_tests!("postgres", factory);
