//! The conformance suite against PostgreSQL (`KORA_TEST_POSTGRES_URL`), each check in a
//! database of its own that is dropped afterwards.

mod conformance;

sql_factory!(
    "KORA_TEST_POSTGRES_URL",
    sqlx::PgConnection,
    kora_store::sql::postgres::PostgresStore,
    " WITH (FORCE)"
);

conformance_tests!("postgres", factory);
