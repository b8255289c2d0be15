//! Kora examples: each module is one interceptor pattern, with a test in `tests/`.
//!
//! - [`company`]: the seed model — `user:info`, `company:info`, and
//!   `company:employees/$company/$uid` (the join time) kept in step when a user's company is
//!   set, changed, or the user deleted (denormalisation).
//! - [`todos`]: "todo created" — the server adds `created` and `user` (from the connection's
//!   state, set by a `login` handler); a todo without `text` is refused (validation).
//! - [`orders`]: a webhook effect after each new order (durable, retried, dead-lettered).
//! - [`stats`]: a virtual path answered by `resolve_query` instead of the store.

pub mod company;
pub mod orders;
pub mod stats;
pub mod todos;

use kora_engine::KoraBuilder;

/// Registers every example on a builder. `webhook` is where order webhooks are posted.
pub fn register(builder: KoraBuilder, webhook: &str) -> KoraBuilder {
    builder
        .interceptor("user:info/$uid", company::CompanyEmployees)
        .interceptor("todos/$id", todos::TodoCreated)
        .handler("login", kora_engine::FnHandler(todos::login))
        .interceptor(
            "orders/$id",
            orders::OrderWebhook {
                url: webhook.to_string(),
            },
        )
        .interceptor("stats/todos", stats::TodoStats)
}
