//! The WebSocket protocol's frames as the server writes them: the types are
//! `kora-protocol`'s (docs/protocol.md is the contract); this module joins them to the
//! engine's errors, commits and pushes.

use kora_core::{Mutation, PathQuery, Stamp, Value};
use kora_engine::Error;
use kora_protocol::{Committed, Push, QueryPath, Reply};
use kora_store::{Commit, Seq};

pub use kora_protocol::Request;

/// Parses a text frame. On failure, returns the error and the request id if one could be
/// read, so the reply can still echo it.
pub fn parse(text: &str) -> Result<Request, (Option<Value>, Error)> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| (None, Error::bad_request(format!("not JSON: {e}"))))?;
    let id = value.get("id").cloned();
    serde_json::from_value(value).map_err(|e| (id, Error::bad_request(e.to_string())))
}

/// The path query one `query` path asks for.
pub fn to_query(path: &QueryPath, limits: &kora_core::Limits) -> Result<PathQuery, Error> {
    Ok(path.to_query(limits)?)
}

/// A successful reply.
pub fn result(id: &Value, result: impl serde::Serialize) -> String {
    Reply::ok(id.clone(), result).to_text()
}

/// An error reply (`id` is `null` when the request's id could not be read).
pub fn error(id: Option<&Value>, error: &Error) -> String {
    Reply::error(id.cloned(), error.body()).to_text()
}

/// The result of a committed mutation.
pub fn commit(commit: &Commit) -> Value {
    serde_json::to_value(Committed {
        seq: commit.seq,
        stamp: commit.stamp,
    })
    .unwrap_or_default()
}

/// A pushed change.
pub fn change(sub: &str, seq: Seq, stamp: Stamp, mutation: &Mutation) -> String {
    Push::change_text(sub, seq, stamp, mutation)
}

/// A subscription the server ended (its subscriber may no longer read its path).
pub fn ended(sub: &str, error: &Error) -> String {
    let error = kora_protocol::ErrorBody::new(error.code, error.message.clone());
    Push::Ended {
        sub: sub.to_string(),
        error,
    }
    .to_text()
}

/// A pushed fresh value that replaces what the client holds for `sub`; with the query of a
/// subscription the server started (a stored subscription).
pub fn reset(sub: &str, seq: Seq, value: Option<Value>, query: Option<&PathQuery>) -> String {
    Push::Reset {
        sub: sub.to_string(),
        seq,
        value,
        query: query.cloned(),
    }
    .to_text()
}

/// The connection's token expired: it is anonymous now.
pub fn auth_expired() -> String {
    Push::AuthExpired.to_text()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_each_request_and_refuses_unknown_fields() {
        let r = parse(r#"{"op":"mutate","id":1,"mutation":{"merge":{"a":1}}}"#).unwrap();
        assert!(matches!(r, Request::Mutate { .. }));
        let r = parse(
            r#"{"op":"mutate","id":1,"mutation":{"merge":{"a":1}},
                "conditions":[{"path":"a","equals":null},{"path":"b","since":3}]}"#,
        )
        .unwrap();
        assert!(matches!(r, Request::Mutate { conditions, .. } if conditions.len() == 2));
        let (_, err) = parse(r#"{"op":"mutate","id":1,"mutation":{},"conditions":[{"path":"a"}]}"#)
            .unwrap_err();
        assert!(err.message.contains("exactly one of"), "{}", err.message);
        let r =
            parse(r#"{"op":"query","id":"q","paths":[{"path":"a","subscribe":true}]}"#).unwrap();
        assert!(matches!(r, Request::Query { .. }));
        let (id, err) = parse(r#"{"op":"ping","id":7,"extra":1}"#).unwrap_err();
        assert_eq!(id, Some(json!(7)));
        assert_eq!(err.code, kora_engine::Code::BadRequest);
        assert!(parse("{nope").is_err());
        assert!(parse(r#"{"op":"fly","id":1}"#).is_err());
    }

    #[test]
    fn a_conflict_reply_carries_what_the_writer_may_read() {
        let conflict = kora_engine::Conflict {
            failed: vec![0],
            current: vec![kora_engine::Current {
                path: "n".into(),
                value: Some(json!(3)),
            }],
            seq: 7,
        };
        let text = error(Some(&json!(1)), &Error::conflict("changed", conflict));
        let reply: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            reply,
            json!({"id": 1, "error": {"code": "conflict", "message": "changed", "failed": [0],
                "current": [{"path": "n", "value": 3}], "seq": 7}})
        );
    }
}
