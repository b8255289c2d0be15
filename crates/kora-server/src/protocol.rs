//! The WebSocket protocol's messages (docs/protocol.md is the contract).
//!
//! Requests are JSON objects with an `op` and, except `cast`, an `id` of the client's
//! choosing. Every request with an `id` gets exactly one reply echoing it, with a `result` or
//! an `error`. Pushes carry `push` and the subscription's name (`sub`).

use kora_core::{Mutation, Path, PathQuery, Stamp, Value};
use kora_engine::Error;
use kora_store::{Commit, Condition, Seq};
use serde::Deserialize;
use serde_json::json;

/// A client request.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Read paths; those with `subscribe` keep receiving changes.
    Query { id: Value, paths: Vec<QueryPath> },
    /// End a subscription.
    Unsubscribe { id: Value, sub: String },
    /// Apply a mutation, optionally with the client's stamp, only if its conditions hold.
    Mutate {
        id: Value,
        mutation: Value,
        #[serde(default)]
        stamp: Option<Stamp>,
        #[serde(default)]
        conditions: Vec<Condition>,
    },
    /// Call a handler and wait for its reply.
    Call {
        id: Value,
        name: String,
        #[serde(default)]
        args: Value,
    },
    /// Call a handler without a reply.
    Cast {
        #[serde(default)]
        id: Option<Value>,
        name: String,
        #[serde(default)]
        args: Value,
    },
    /// Check the connection.
    Ping { id: Value },
    /// Authenticate with a token (`null`: become anonymous).
    Auth {
        id: Value,
        #[serde(default)]
        token: Option<String>,
    },
}

impl Request {
    pub fn id(&self) -> Option<&Value> {
        match self {
            Request::Query { id, .. }
            | Request::Unsubscribe { id, .. }
            | Request::Mutate { id, .. }
            | Request::Call { id, .. }
            | Request::Ping { id }
            | Request::Auth { id, .. } => Some(id),
            Request::Cast { id, .. } => id.as_ref(),
        }
    }
}

/// One path of a `query` request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryPath {
    pub path: String,
    #[serde(default)]
    pub min: Option<String>,
    #[serde(default)]
    pub max: Option<String>,
    #[serde(default)]
    pub limit: Option<usize>,
    #[serde(default)]
    pub reverse: bool,
    #[serde(default)]
    pub subscribe: bool,
    /// Resume a subscription after this sequence instead of reading a snapshot.
    #[serde(default)]
    pub since: Option<Seq>,
    /// The subscription's name in pushes (default: the path).
    #[serde(default)]
    pub sub: Option<String>,
}

impl QueryPath {
    pub fn to_query(&self, limits: &kora_core::Limits) -> Result<PathQuery, Error> {
        Ok(PathQuery {
            path: Path::parse_with(&self.path, limits)?,
            min: self.min.clone(),
            max: self.max.clone(),
            limit: self.limit,
            reverse: self.reverse,
            subscribe: self.subscribe,
        })
    }

    /// The subscription's name.
    pub fn name(&self) -> String {
        self.sub.clone().unwrap_or_else(|| self.path.clone())
    }
}

/// Parses a text frame. On failure, returns the error and the request id if one could be
/// read, so the reply can still echo it.
pub fn parse(text: &str) -> Result<Request, (Option<Value>, Error)> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| (None, Error::bad_request(format!("not JSON: {e}"))))?;
    let id = value.get("id").cloned();
    serde_json::from_value(value).map_err(|e| (id, Error::bad_request(e.to_string())))
}

/// A successful reply.
pub fn result(id: &Value, result: Value) -> String {
    json!({"id": id, "result": result}).to_string()
}

/// An error reply (`id` is `null` when the request's id could not be read).
pub fn error(id: Option<&Value>, error: &Error) -> String {
    json!({"id": id, "error": crate::error::error_json(error)}).to_string()
}

/// The result of a committed mutation.
pub fn commit(commit: &Commit) -> Value {
    json!({"seq": commit.seq, "stamp": commit.stamp})
}

/// A pushed change.
pub fn change(sub: &str, seq: Seq, stamp: Stamp, mutation: &Mutation) -> String {
    json!({"push": "change", "sub": sub, "seq": seq, "stamp": stamp, "mutation": mutation})
        .to_string()
}

/// A subscription the server ended (its subscriber may no longer read its path).
pub fn ended(sub: &str, error: &Error) -> String {
    json!({"push": "ended", "sub": sub, "error": {"code": error.code, "message": error.message}})
        .to_string()
}

/// A pushed fresh value that replaces what the client holds for `sub`; with the query of a
/// subscription the server started (a stored subscription).
pub fn reset(sub: &str, seq: Seq, value: Option<Value>, query: Option<&PathQuery>) -> String {
    let mut push = json!({"push": "reset", "sub": sub, "seq": seq, "value": value});
    if let Some(query) = query {
        push["query"] = json!(query);
    }
    push.to_string()
}

#[cfg(test)]
mod tests {
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
}
