//! The WebSocket protocol as the client speaks it (docs/protocol.md): requests out, replies
//! and pushes in.

use kora_core::{Mutation, PathQuery, Stamp, Value};
use kora_store::Condition;
use serde_json::json;

use crate::error::ClientError;

/// A request id; the client numbers its requests.
pub type RequestId = u64;

pub fn subscribe(id: RequestId, name: &str, query: &PathQuery, since: Option<u64>) -> String {
    let mut path = json!(query);
    path["subscribe"] = json!(true);
    path["sub"] = json!(name);
    if let Some(since) = since {
        path["since"] = json!(since);
    }
    json!({"op": "query", "id": id, "paths": [path]}).to_string()
}

pub fn query(id: RequestId, query: &PathQuery) -> String {
    let mut path = json!(query);
    if let Some(map) = path.as_object_mut() {
        map.remove("subscribe");
    }
    json!({"op": "query", "id": id, "paths": [path]}).to_string()
}

pub fn unsubscribe(id: RequestId, name: &str) -> String {
    json!({"op": "unsubscribe", "id": id, "sub": name}).to_string()
}

pub fn mutate(
    id: RequestId,
    mutation: &Mutation,
    stamp: Stamp,
    conditions: &[Condition],
) -> String {
    let mut request = json!({"op": "mutate", "id": id, "mutation": mutation, "stamp": stamp});
    if !conditions.is_empty() {
        request["conditions"] = json!(conditions);
    }
    request.to_string()
}

pub fn call(id: RequestId, name: &str, args: &Value) -> String {
    json!({"op": "call", "id": id, "name": name, "args": args}).to_string()
}

pub fn cast(name: &str, args: &Value) -> String {
    json!({"op": "cast", "name": name, "args": args}).to_string()
}

pub fn ping(id: RequestId) -> String {
    json!({"op": "ping", "id": id}).to_string()
}

/// Something the server sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Reply {
        id: Option<RequestId>,
        outcome: Result<Value, ClientError>,
    },
    Change {
        sub: String,
        seq: u64,
        stamp: Stamp,
        mutation: Mutation,
    },
    Reset {
        sub: String,
        seq: u64,
        value: Option<Value>,
        /// Set for a subscription the server started (a stored subscription).
        query: Option<PathQuery>,
    },
    Ended {
        sub: String,
        error: ClientError,
    },
    /// A push this client does not know (a newer server): ignored.
    Other,
}

/// Parses one text frame.
pub fn parse(text: &str) -> Result<Incoming, ClientError> {
    let frame: Value = serde_json::from_str(text)
        .map_err(|e| ClientError::Protocol(format!("a frame that is not JSON: {e}")))?;
    let bad = |what: &str| ClientError::Protocol(format!("{what} in {text:.200}"));
    let Some(push) = frame.get("push").and_then(Value::as_str) else {
        let id = frame.get("id").and_then(Value::as_u64);
        let outcome = match (frame.get("result"), frame.get("error")) {
            (Some(result), _) => Ok(result.clone()),
            (None, Some(error)) => Err(refusal(error)),
            (None, None) => return Err(bad("a reply without result or error")),
        };
        return Ok(Incoming::Reply { id, outcome });
    };
    let sub = || {
        frame
            .get("sub")
            .and_then(Value::as_str)
            .map(String::from)
            .ok_or_else(|| bad("a push without sub"))
    };
    let seq = || {
        frame
            .get("seq")
            .and_then(Value::as_u64)
            .ok_or_else(|| bad("a push without seq"))
    };
    Ok(match push {
        "change" => Incoming::Change {
            sub: sub()?,
            seq: seq()?,
            stamp: serde_json::from_value(frame.get("stamp").cloned().unwrap_or_default())
                .map_err(|_| bad("a change without a valid stamp"))?,
            mutation: Mutation::from_json(frame.get("mutation").unwrap_or(&Value::Null))
                .map_err(|e| bad(&format!("a change with an invalid mutation ({e})")))?,
        },
        "reset" => Incoming::Reset {
            sub: sub()?,
            seq: seq()?,
            value: frame.get("value").filter(|v| !v.is_null()).cloned(),
            query: match frame.get("query") {
                Some(q) => Some(
                    serde_json::from_value(q.clone())
                        .map_err(|_| bad("a reset with an invalid query"))?,
                ),
                None => None,
            },
        },
        "ended" => Incoming::Ended {
            sub: sub()?,
            error: refusal(frame.get("error").unwrap_or(&Value::Null)),
        },
        _ => Incoming::Other,
    })
}

fn refusal(error: &Value) -> ClientError {
    let field = |name: &str| error.get(name).and_then(Value::as_str).unwrap_or("");
    let mut refused = ClientError::refused(field("code"), field("message"));
    if let ClientError::Refused { conflict, .. } = &mut refused {
        if error.get("current").is_some() {
            *conflict = Some(Box::new(error.clone()));
        }
    }
    refused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_replies_and_pushes() {
        assert_eq!(
            parse(r#"{"id": 3, "result": {"seq": 4}}"#).unwrap(),
            Incoming::Reply {
                id: Some(3),
                outcome: Ok(json!({"seq": 4}))
            }
        );
        let refused =
            parse(r#"{"id": 5, "error": {"code": "validation_failed", "message": "no"}}"#).unwrap();
        assert!(matches!(
            refused,
            Incoming::Reply { id: Some(5), outcome: Err(e) } if e.is_permanent()
        ));
        let stamp = Stamp::new(1_700_000_000_000, 0, 9);
        let change = json!({"push": "change", "sub": "todos", "seq": 7, "stamp": stamp,
            "mutation": {"merge": {"todos": {"a": 1}}, "delete": {}}});
        assert!(matches!(
            parse(&change.to_string()).unwrap(),
            Incoming::Change { seq: 7, stamp: s, .. } if s == stamp
        ));
        let reset = r#"{"push": "reset", "sub": "stored:x", "seq": 2, "value": null, "query": {"path": "inbox"}}"#;
        assert!(matches!(
            parse(reset).unwrap(),
            Incoming::Reset {
                value: None,
                query: Some(_),
                ..
            }
        ));
        assert_eq!(parse(r#"{"push": "later"}"#).unwrap(), Incoming::Other);
        assert!(parse("nope").is_err());
    }

    #[test]
    fn requests_follow_the_protocol() {
        let q = PathQuery::new(kora_core::Path::parse("todos").unwrap());
        let text = subscribe(1, "todos", &q, Some(9));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            json!({"op": "query", "id": 1, "paths": [{"path": "todos", "subscribe": true, "sub": "todos", "since": 9}]})
        );
    }
}
