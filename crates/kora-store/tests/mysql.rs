//! The conformance suite against MySQL (`KORA_TEST_MYSQL_URL`), each check in a
//! database of its own that is dropped afterwards.

mod conformance;

sql_factory!(
    "KORA_TEST_MYSQL_URL",
    sqlx::MySqlConnection,
    kora_store::sql::mysql::MysqlStore,
    ""
);

conformance_tests!("mysql", factory);
