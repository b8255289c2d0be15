//! # kora-transport
//!
//! What every protocol Kora serves shares, beneath both Kora's own transports (kora-server)
//! and Firebase's (kora-firebase), so neither depends on the other:
//!
//! - [`config`]: the server's configuration ([`ServerConfig`], its [`Limits`]) and the
//!   kora.toml tables kept aside for mounted protocols;
//! - [`state`]: [`AppState`], what every request handler holds — the engine, the
//!   configuration, token verification, and admission of long-lived connections;
//! - [`auth`]: tokens — verification, where a request presents one, the admin secret, and a
//!   token's lifetime with the verifier's leeway (one policy for every protocol);
//! - [`connection`]: the loop every WebSocket connection runs (heartbeat, silent peers,
//!   batched writes), whatever its protocol;
//! - [`rendered`]: a change rendered once per protocol and shared by every connection
//!   sending it;
//! - [`error`] and [`http`]: engine errors as HTTP statuses and bodies, JSON bodies read
//!   within the body limit, the mutation size limit;
//! - [`mount`]: how a protocol brings its routes to the server's listener.
//!
//! It serves nothing itself: kora-server assembles the listener.

pub mod auth;
pub mod config;
pub mod connection;
pub mod error;
pub mod http;
pub mod mount;
pub mod rendered;
pub mod state;

pub use config::{Limits, ServerConfig};
pub use mount::Mount;
pub use state::AppState;
