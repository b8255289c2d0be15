//! The TypeScript declarations of the protocol, for the web client: `clients/web/src/protocol.ts`
//! is [`declarations`]'s output, and the test below fails when the committed file is not
//! current. Regenerate it with
//!
//! ```sh
//! KORA_BLESS=1 cargo test -p kora-protocol typescript
//! ```

use ts_rs::{Config, TS};

use crate::{
    AuthResult, Code, Committed, Current, ErrorBody, Push, QueryPath, QueryResult, Reply, Request,
};

/// Where the declarations are committed, from the workspace root.
pub const FILE: &str = "clients/web/src/protocol.ts";

/// Types with no Rust counterpart here (values, mutations and conditions as JSON).
const PRELUDE: &str = r#"// Kora's WebSocket protocol (docs/protocol.md), generated from the Rust types of
// crates/kora-protocol. Do not edit: run `KORA_BLESS=1 cargo test -p kora-protocol typescript`.

/** Any JSON value. */
export type JsonValue = number | string | boolean | Array<JsonValue> | { [key in string]?: JsonValue } | null;

/** A delete tree: `1` deletes the path it stands at; an object lists deletes further down. */
export type DeleteTree = 1 | { [key in string]?: DeleteTree };

/** A mutation: deletes apply first, then merges (`null` members of `merge` delete). */
export type Mutation = { merge?: { [key in string]?: JsonValue }; delete?: DeleteTree };

/**
 * A condition a write commits under: the value at `path` equals `equals` (`null`: nothing is
 * there), or nothing at, beneath or above `path` changed after sequence `since`.
 */
export type Condition = { path: string; equals: JsonValue } | { path: string; since: number };

/**
 * Children ordered by the value at `child` (a path below each child; `""`: its own value)
 * instead of by key, from `from` to `to` inclusive (docs/protocol.md, "Ordering by a child value").
 */
export type ByChild = { child: string; from?: JsonValue; to?: JsonValue };
"#;

/// The whole file.
pub fn declarations() -> String {
    // Sequences are JSON numbers on the wire, read by JavaScript as numbers (exact up to
    // 2^53, more commits than any store will hold).
    let cfg = Config::default().with_large_int("number");
    let decls = [
        Code::decl(&cfg),
        QueryPath::decl(&cfg),
        Request::decl(&cfg),
        Current::decl(&cfg),
        ErrorBody::decl(&cfg),
        Reply::decl(&cfg),
        Push::decl(&cfg),
        QueryResult::decl(&cfg),
        Committed::decl(&cfg),
        AuthResult::decl(&cfg),
        "type ServerFrame = Reply | Push;".to_string(),
    ];
    let mut out = PRELUDE.to_string();
    for decl in decls {
        out.push('\n');
        out.push_str("export ");
        out.push_str(&decl);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    #[test]
    fn typescript_declarations_are_current() {
        let file = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(super::FILE);
        let generated = super::declarations();
        if std::env::var_os("KORA_BLESS").is_some() {
            std::fs::write(&file, &generated).expect("write the declarations");
            return;
        }
        let committed = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            committed == generated,
            "{} is not what crates/kora-protocol generates: run \
             `KORA_BLESS=1 cargo test -p kora-protocol typescript` and commit it",
            super::FILE
        );
    }
}
