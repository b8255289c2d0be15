//! # kora-engine
//!
//! Kora as a library: the whole database without sockets, which the server and embedding
//! applications use alike.
//!
//! ```no_run
//! # async fn example() -> Result<(), kora_engine::Error> {
//! use kora_engine::{Context, Kora};
//! use kora_core::{Mutation, Path};
//!
//! let kora = Kora::builder().build().await?; // memory: store by default
//! let ctx = Context::new(42);
//! let todo = Path::parse("todos/TOD1")?;
//! kora.mutate(&ctx, Mutation::merge(&todo, serde_json::json!({"text": "hi"}))?, None)
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! - [`pipeline`]: the write path (stamp → interceptors → one store transaction → fan-out →
//!   effects) and the read path.
//! - [`interceptor`], [`handler`], [`pattern`]: server-side logic and how it is matched;
//!   `virtuals`: the virtual paths a read of their ancestor holds.
//! - [`session`], [`subscriptions`]: connections, subscriptions, the fan-out.
//! - [`feed`]: committed changes in sequence order, gaps filled from the change log.
//! - [`effects`]: the outbox runner, webhooks.

pub mod cluster;
pub mod config;
pub mod contention;
pub mod context;
pub mod effects;
mod error;
pub mod feed;
pub mod handler;
pub mod index;
pub mod interceptor;
mod kora;
pub mod metrics;
pub mod pattern;
pub mod pipeline;
pub mod reads;
pub mod rules;
pub mod session;
pub mod subscriptions;
mod virtuals;

pub use cluster::ClusterConfig;
pub use config::{Config, Conflicts, EffectsConfig};
pub use context::Context;
pub use effects::{EffectRunner, FnRunner, WebhookRunner};
pub use error::{Code, Conflict, Current, Error};
pub use handler::{FnHandler, Handler};
pub use interceptor::{Addition, Interceptor, ReadLayer, WholeWrite, WriteLayer};
pub use kora::{Kora, KoraBuilder};
pub use kora_store::Condition;
pub use pattern::{Captures, Pattern, Relation};
pub use pipeline::{Answer, Stamping, Turn, Turns, WriteRequest};
pub use reads::ReadLog;
pub use rules::RulesInterceptor;
pub use session::{Incoming, Initial, Push, Replayed, Resume, Session, STORED_SUBSCRIPTIONS};
