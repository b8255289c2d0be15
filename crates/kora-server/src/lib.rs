//! # kora-server
//!
//! Transports over the engine, on one listener:
//!
//! - [`ws`]: the WebSocket protocol at `/v1/ws` (docs/protocol.md), on the connection loop
//!   every WebSocket protocol shares ([`connection`]);
//! - [`http`]: REST at `/v1/data/{path}` and `/v1/mutate`, and [`sse`]: change streams;
//! - [`export`]: `/v1/export/{path}`, the stored leaves as JSON lines;
//! - [`backup`]: a consistent backup of the store at `/v1/backup`, for the administrator;
//! - [`effects`]: dead letters at `/v1/effects/dead`, for the administrator;
//! - [`mount`]: protocols mounted beside these on the same listener (Firebase's, from the
//!   `kora-firebase` crate), each with its own routes, state and kora.toml table;
//! - [`metrics`]: Prometheus at `/metrics`; `/healthz`; [`console`]: the admin page at `/`;
//! - [`tls`]: every endpoint over TLS, the certificate reloaded without a restart.
//!
//! Errors map to HTTP statuses in one place ([`error`]); limits are in [`config::Limits`].
//! [`server::start`] assembles it all; `kora serve` (kora-cli) calls it.

pub mod app;
pub mod auth;
pub mod backup;
pub mod config;
pub mod connection;
pub mod console;
pub mod effects;
pub mod error;
pub mod export;
pub mod http;
pub mod metrics;
pub mod mount;
pub mod protocol;
pub mod reload;
pub mod rendered;
pub mod server;
pub mod sse;
pub mod state;
pub mod tls;
pub mod web_client;
pub mod ws;

pub use config::{Limits, ServerConfig};
pub use mount::Mount;
pub use server::{start, start_with, Running, ServerError};
