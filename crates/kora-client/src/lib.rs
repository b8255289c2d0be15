//! # kora-client
//!
//! Kora's Rust client. A [`Client`] talks to a Kora server over its WebSocket protocol
//! (docs/protocol.md) and keeps a local cache, so an application works the same online and
//! offline:
//!
//! - **Reads** of subscribed paths come from the cache, with the same query options as the
//!   server's, whether or not the server is reachable.
//! - **Writes** apply to the cache at once, stamped with the client's hybrid logical clock,
//!   and wait in a durable queue until the server acknowledges them. Writes made offline
//!   survive restarts and are sent on reconnection, in order, with the stamps they were
//!   made with, so conflicts resolve by when the user made the change (docs/design.md §4).
//!   A write the server refuses is rolled back and reported.
//! - **Subscriptions** persist in the cache; after a reconnection each one resumes from the
//!   last sequence it applied (the server replays what was missed, or sends a fresh value
//!   when its change log no longer covers the gap).
//!
//! docs/client.md shows the API with a program that runs.

mod cache;
mod client;
mod error;
mod link;
pub mod options;
mod shared;
mod subscription;
mod view;
mod wire;

pub use cache::MAX_SUBSCRIPTION_NAME;
pub use client::{Client, Transacted, Written};
pub use error::ClientError;
pub use kora_core::{Mutation, Path, PathQuery, Stamp, Value};
pub use kora_store::Condition;
pub use options::{Options, Status};
pub use shared::{Ack, Stats, Update};
pub use subscription::Subscription;
