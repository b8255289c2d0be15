//! The WebSocket protocol as the client speaks it (docs/protocol.md): requests out, replies
//! and pushes in.

use kora_core::{Mutation, PathQuery, Stamp, Value};
use kora_protocol::{ErrorBody, Push, QueryPath, Request, ServerFrame};
use kora_store::Condition;

use crate::error::ClientError;

/// A request id; the client numbers its requests.
pub type RequestId = u64;

fn id(id: RequestId) -> Value {
    Value::from(id)
}

/// A subscribing query; `resume`: the sequence and store history to resume after.
pub fn subscribe(
    request: RequestId,
    name: &str,
    query: &PathQuery,
    resume: Option<(u64, Option<String>)>,
) -> String {
    let (since, history) = resume.map_or((None, None), |(seq, h)| (Some(seq), h));
    let path = QueryPath {
        subscribe: true,
        since,
        history,
        sub: Some(name.to_string()),
        ..QueryPath::of(query)
    };
    Request::Query {
        id: id(request),
        paths: vec![path],
    }
    .to_text()
}

pub fn query(request: RequestId, query: &PathQuery) -> String {
    let path = QueryPath {
        subscribe: false,
        ..QueryPath::of(query)
    };
    Request::Query {
        id: id(request),
        paths: vec![path],
    }
    .to_text()
}

pub fn unsubscribe(request: RequestId, name: &str) -> String {
    Request::Unsubscribe {
        id: id(request),
        sub: name.to_string(),
    }
    .to_text()
}

pub fn mutate(
    request: RequestId,
    mutation: &Mutation,
    stamp: Stamp,
    conditions: &[Condition],
) -> String {
    Request::Mutate {
        id: id(request),
        mutation: serde_json::to_value(mutation).unwrap_or_default(),
        stamp: Some(stamp),
        conditions: conditions.to_vec(),
    }
    .to_text()
}

pub fn call(request: RequestId, name: &str, args: &Value) -> String {
    Request::Call {
        id: id(request),
        name: name.to_string(),
        args: args.clone(),
    }
    .to_text()
}

pub fn cast(name: &str, args: &Value) -> String {
    Request::Cast {
        id: None,
        name: name.to_string(),
        args: args.clone(),
    }
    .to_text()
}

pub fn ping(request: RequestId) -> String {
    Request::Ping { id: id(request) }.to_text()
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
    let frame = ServerFrame::parse(text)
        .map_err(|e| ClientError::Protocol(format!("an unreadable frame ({e}) in {text:.200}")))?;
    Ok(match frame {
        ServerFrame::Reply(reply) => Incoming::Reply {
            id: reply.id.as_u64(),
            outcome: reply.outcome.map_err(refusal),
        },
        ServerFrame::Push(Push::Change {
            sub,
            seq,
            stamp,
            mutation,
        }) => Incoming::Change {
            sub,
            seq,
            stamp,
            mutation,
        },
        ServerFrame::Push(Push::Reset {
            sub,
            seq,
            value,
            query,
        }) => Incoming::Reset {
            sub,
            seq,
            value,
            query,
        },
        ServerFrame::Push(Push::Ended { sub, error }) => Incoming::Ended {
            sub,
            error: refusal(error),
        },
        ServerFrame::Push(Push::AuthExpired) | ServerFrame::Unknown(_) => Incoming::Other,
    })
}

fn refusal(error: ErrorBody) -> ClientError {
    let conflict = error
        .current
        .is_some()
        .then(|| Box::new(serde_json::to_value(&error).unwrap_or_default()));
    let mut refused = ClientError::refused(error.code.as_str(), &error.message);
    if let ClientError::Refused { conflict: slot, .. } = &mut refused {
        *slot = conflict;
    }
    refused
}

#[cfg(test)]
mod tests {
    use serde_json::json;

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
        let text = subscribe(1, "todos", &q, Some((9, Some("h1".into()))));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            json!({"op": "query", "id": 1, "paths": [{"path": "todos", "subscribe": true, "sub": "todos", "since": 9, "history": "h1"}]})
        );
    }
}
