//! Path patterns: how interceptors, handlers and rules say which paths they care about. One
//! syntax for Rust and for rules files, so it lives in kora-rules (`kora_rules::pattern`):
//!
//! | segment | matches | captured |
//! |---|---|---|
//! | `todos` | that exact key | — |
//! | `$id` | any one key | as `id` |
//! | `*` | any one key | — |
//! | `**` (last only) | any number of keys, none included | — |
//!
//! `todos/$id` matches `todos/TOD1` with `id = "TOD1"`; `user:info/$uid/*` matches every
//! field of every user; `logs/**` matches `logs` and everything beneath it.

pub use kora_rules::pattern::{Captures, Pattern, PatternError, Relation, Step};
