//! # kora-server
//!
//! Transports over the engine, on one listener:
//!
//! - [`ws`]: the WebSocket protocol at `/v1/ws` (docs/protocol.md), on the connection loop
//!   every WebSocket protocol shares (`kora_transport::connection`);
//! - [`http`]: REST at `/v1/data/{path}` and `/v1/mutate`, and [`sse`]: change streams;
//! - [`export`]: `/v1/export/{path}`, the stored leaves as JSON lines;
//! - [`backup`]: a consistent backup of the store at `/v1/backup`, for the administrator;
//! - [`effects`]: dead letters at `/v1/effects/dead`, for the administrator;
//! - protocols mounted beside these on the same listener ([`Mount`]; Firebase's, from the
//!   `kora-firebase` crate), each with its own routes, state and kora.toml table;
//! - [`metrics`]: Prometheus at `/metrics`; `/healthz`; [`console`]: the admin page at `/`;
//! - [`tls`]: every endpoint over TLS, the certificate reloaded without a restart.
//!
//! What these share with every other protocol — configuration, [`AppState`], tokens, the
//! connection loop, errors as HTTP statuses, limits ([`Limits`]) — is in kora-transport,
//! beneath this crate and kora-firebase alike.
//! [`server::start`] assembles it all; `kora serve` (kora-cli) calls it.

pub mod app;
pub mod backup;
pub mod console;
pub mod effects;
pub mod export;
pub mod http;
pub mod metrics;
pub mod protocol;
pub mod reload;
pub mod server;
pub mod sse;
pub mod tls;
pub mod web_client;
pub mod ws;

pub use kora_transport::{self as transport, AppState, Limits, Mount, ServerConfig};
pub use server::{start, start_with, Running, ServerError};
