//! # kora-protocol
//!
//! Kora's WebSocket protocol (docs/protocol.md) as types: the [`Request`]s a client sends,
//! the [`Reply`]s and [`Push`]es the server sends back ([`ServerFrame`]), the error
//! [`Code`]s, and the shapes of results. The server parses requests and renders replies and
//! pushes with them; the Rust client and `kora bench` build requests and parse frames with
//! them; the web client's TypeScript declarations (`clients/web/src/protocol.ts`) are
//! generated from them ([`typescript`]), and a test fails when that file is not current.
//!
//! Paths travel as text (`todos/t1`), stamps as 26 base32 characters, mutations as
//! `{"merge": …, "delete": …}`; values are plain JSON.

mod code;
mod frames;
pub mod typescript;

pub use code::Code;
pub use frames::{
    AuthResult, Committed, Current, ErrorBody, Push, QueryPath, QueryResult, Reply, Request,
    ServerFrame,
};
pub use kora_core::{Condition, Seq};
