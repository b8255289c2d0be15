//! # kora-core
//!
//! Kora's data model, pure: no I/O, no async. Everything above it — stores, the engine,
//! the server, clients — agrees on the semantics defined here.
//!
//! - [`backoff`]: exponential backoff with jitter, the one retry policy.
//! - [`condition`]: what must hold for a write to commit (checked by the stores).
//! - [`path`]: validated paths (`todos/TOD1/text`) and the limits on them.
//! - [`mutation`]: merge + delete, `combine`, `layers`, `restrict`, plain `apply`, and the
//!   strict JSON wire shape.
//! - [`stamp`]: hybrid-logical-clock stamps, totally ordered, and the [`Clock`] issuing them.
//! - [`tree`]: the reference tree — stamped mutations with per-leaf last-writer-wins and
//!   delete tombstones, the model every store is tested against.
//! - [`query`]: paths with key bounds, limits and reverse, answered as a tree.
//! - [`key`]: the order-preserving byte encoding of paths for ordered key-value stores.
//! - [`records`]: the same rules over flat per-path records, as stores keep them.
//! - [`id`]: time-sortable unique ids.

pub mod backoff;
mod base32;
pub mod condition;
pub mod id;
pub mod key;
pub mod mutation;
pub mod order;
pub mod path;
pub mod query;
pub mod records;
pub mod stamp;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tree;

pub use condition::{Condition, Seq};
pub use mutation::{Delete, Effect, Layer, Mutation, MutationError};
pub use path::{Limits, Path, PathError};
pub use query::{PathQuery, Query};
pub use serde_json::Value;
pub use stamp::{Clock, Stamp};
pub use tree::Tree;
