//! The frames of the WebSocket protocol: requests (client → server), replies and pushes
//! (server → client), and the shapes of each request's result.

use kora_core::order::ByChild;
use kora_core::{Condition, Limits, Mutation, Path, PathError, PathQuery, Seq, Stamp};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use ts_rs::TS;

use crate::code::Code;

/// A client request. Every request but `cast` carries an `id` of the client's choosing (any
/// JSON value), echoed by its one reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Read paths; those with `subscribe` keep receiving changes. Result: [`QueryResult`].
    Query { id: Value, paths: Vec<QueryPath> },
    /// End a subscription. Result: whether there was one.
    Unsubscribe { id: Value, sub: String },
    /// Apply a mutation, optionally with the client's stamp, only if its conditions hold.
    /// Result: [`Committed`].
    Mutate {
        id: Value,
        #[ts(type = "Mutation")]
        mutation: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional, type = "string")]
        stamp: Option<Stamp>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[ts(optional, type = "Array<Condition>")]
        conditions: Vec<Condition>,
    },
    /// Call a handler and wait for its reply. Result: the handler's.
    Call {
        id: Value,
        name: String,
        #[serde(default)]
        #[ts(as = "Option<Value>", optional)]
        args: Value,
    },
    /// Call a handler without a reply.
    Cast {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional)]
        id: Option<Value>,
        name: String,
        #[serde(default)]
        #[ts(as = "Option<Value>", optional)]
        args: Value,
    },
    /// Check the connection. Result: `"pong"`.
    Ping { id: Value },
    /// Authenticate with a token (`null`: become anonymous). Result: [`AuthResult`].
    Auth {
        id: Value,
        #[serde(default)]
        #[ts(optional)]
        token: Option<String>,
    },
}

impl Request {
    /// The request's id (none for a `cast` without one).
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

    /// The JSON text of the request.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// One path of a `query` request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(deny_unknown_fields)]
pub struct QueryPath {
    pub path: String,
    /// Smallest child key (inclusive, by bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub min: Option<String>,
    /// Largest child key (inclusive, by bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub max: Option<String>,
    /// Order the children by the value at a child path instead of by key; `min` and `max`
    /// then bound keys among the children at exactly `by.from` and `by.to`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional, type = "ByChild")]
    pub by: Option<ByChild>,
    /// First N children (last N with `reverse`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub limit: Option<usize>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[ts(as = "Option<bool>", optional)]
    pub reverse: bool,
    /// Keep receiving changes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[ts(as = "Option<bool>", optional)]
    pub subscribe: bool,
    /// Resume a subscription after this sequence instead of reading a snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub since: Option<Seq>,
    /// The store history `since` belongs to (a query result's `history`): a resume from
    /// another history — the server was restored from a backup — gets a `reset`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub history: Option<String>,
    /// The subscription's name in pushes (default: the path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub sub: Option<String>,
}

impl QueryPath {
    /// The path query this names (no validation of the path: see `Path::parse`).
    pub fn of(query: &PathQuery) -> Self {
        QueryPath {
            path: query.path.to_string(),
            min: query.min.clone(),
            max: query.max.clone(),
            limit: query.limit,
            reverse: query.reverse,
            subscribe: query.subscribe,
            by: query.by.clone(),
            since: None,
            history: None,
            sub: None,
        }
    }

    /// The path query this asks for, its path checked against `limits`.
    pub fn to_query(&self, limits: &Limits) -> Result<PathQuery, PathError> {
        Ok(PathQuery {
            path: Path::parse_with(&self.path, limits)?,
            min: self.min.clone(),
            max: self.max.clone(),
            limit: self.limit,
            reverse: self.reverse,
            subscribe: self.subscribe,
            by: self.by.clone(),
        })
    }

    /// The subscription's name.
    pub fn name(&self) -> String {
        self.sub.clone().unwrap_or_else(|| self.path.clone())
    }
}

/// An error as the protocol shows it. A conditional write's `conflict` also tells which
/// conditions failed, the values now at their paths that the caller may read, and the last
/// commit those include.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ErrorBody {
    pub code: Code,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub failed: Option<Vec<usize>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub current: Option<Vec<Current>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub seq: Option<Seq>,
}

impl ErrorBody {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
            failed: None,
            current: None,
            seq: None,
        }
    }
}

/// The value at one path now (`null`: nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Current {
    pub path: String,
    pub value: Option<Value>,
}

/// The one reply to a request: its `result`, or its `error`. `id` is `null` when the
/// request's id could not be read.
#[derive(Debug, Clone, PartialEq, TS)]
#[ts(type = "{ id: JsonValue, result: JsonValue } | { id: JsonValue, error: ErrorBody }")]
pub struct Reply {
    pub id: Value,
    pub outcome: Result<Value, ErrorBody>,
}

impl Reply {
    pub fn ok(id: Value, result: impl Serialize) -> Self {
        Reply {
            id,
            outcome: Ok(serde_json::to_value(result).unwrap_or_default()),
        }
    }

    pub fn error(id: Option<Value>, error: ErrorBody) -> Self {
        Reply {
            id: id.unwrap_or_default(),
            outcome: Err(error),
        }
    }

    /// The JSON text of the reply.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// `{"id", "result"}` or `{"id", "error"}`, as read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyFrame {
    id: Value,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<ErrorBody>,
}

impl Serialize for Reply {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("id", &self.id)?;
        match &self.outcome {
            // A `null` result is still a result: written out.
            Ok(result) => map.serialize_entry("result", result)?,
            Err(error) => map.serialize_entry("error", error)?,
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Reply {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let has_result = value.get("result").is_some();
        let frame: ReplyFrame = serde_json::from_value(value).map_err(D::Error::custom)?;
        let outcome = match (frame.error, has_result) {
            (Some(error), false) => Err(error),
            (None, true) => Ok(frame.result.unwrap_or_default()),
            _ => return Err(D::Error::custom("a reply holds one of result and error")),
        };
        Ok(Reply {
            id: frame.id,
            outcome,
        })
    }
}

/// Something the server sends without being asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "push", rename_all = "snake_case")]
pub enum Push {
    /// The part of commit `seq` under subscription `sub`: apply it to what you hold.
    Change {
        sub: String,
        seq: Seq,
        #[ts(type = "string")]
        stamp: Stamp,
        #[ts(type = "Mutation")]
        mutation: Mutation,
    },
    /// Replace what you hold for `sub` with `value` (`null`: nothing); with the query of a
    /// subscription the server started (a stored subscription).
    Reset {
        sub: String,
        seq: Seq,
        value: Option<Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[ts(optional, type = "QueryPath")]
        query: Option<PathQuery>,
    },
    /// The server ended subscription `sub` (its reader may no longer read the path).
    Ended { sub: String, error: ErrorBody },
    /// The connection's token expired: it is anonymous now.
    AuthExpired,
}

impl Push {
    /// The JSON text of the push.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The text of a `change` push, written from borrowed parts: a server renders one change
    /// for many subscribers without copying its mutation.
    pub fn change_text(sub: &str, seq: Seq, stamp: Stamp, mutation: &Mutation) -> String {
        #[derive(Serialize)]
        struct Change<'a> {
            push: &'static str,
            sub: &'a str,
            seq: Seq,
            stamp: Stamp,
            mutation: &'a Mutation,
        }
        let change = Change {
            push: "change",
            sub,
            seq,
            stamp,
            mutation,
        };
        serde_json::to_string(&change).unwrap_or_default()
    }
}

/// Any frame the server sends: a reply or a push.
#[derive(Debug, Clone, PartialEq, TS)]
#[ts(type = "Reply | Push")]
pub enum ServerFrame {
    Reply(Reply),
    Push(Push),
    /// A push this version does not know (a newer server): to be ignored.
    Unknown(Value),
}

impl ServerFrame {
    /// Parses one text frame.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        let value: Value = serde_json::from_str(text)?;
        let Some(push) = value.get("push").and_then(Value::as_str) else {
            return serde_json::from_value(value).map(ServerFrame::Reply);
        };
        const KNOWN: [&str; 4] = ["change", "reset", "ended", "auth_expired"];
        if !KNOWN.contains(&push) {
            return Ok(ServerFrame::Unknown(value));
        }
        serde_json::from_value(value).map(ServerFrame::Push)
    }
}

/// The result of a `query`: the tree holding the values read, and the last commit they
/// include.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct QueryResult {
    pub seq: Seq,
    pub value: Value,
    /// The store history the sequences belong to, when the query subscribed: a client keeps
    /// it with `seq` and sends both to resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub history: Option<String>,
}

/// The result of a committed `mutate`: its sequence and the stamp it committed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Committed {
    pub seq: Seq,
    #[ts(type = "string")]
    pub stamp: Stamp,
}

/// The result of `auth`: the token's claims (`null`: anonymous).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct AuthResult {
    pub auth: Option<Value>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn requests_read_and_write_as_the_protocol_says() {
        let text = r#"{"op":"mutate","id":1,"mutation":{"merge":{"a":1}},
            "conditions":[{"path":"a","equals":null},{"path":"b","since":3}]}"#;
        let request: Request = serde_json::from_str(text).unwrap();
        let Request::Mutate { conditions, .. } = &request else {
            panic!("a mutate");
        };
        assert_eq!(conditions.len(), 2);
        let back: Value = serde_json::from_str(&request.to_text()).unwrap();
        assert_eq!(back["conditions"][0], json!({"path": "a", "equals": null}));
        let ping = Request::Ping { id: json!(7) };
        assert_eq!(ping.to_text(), r#"{"op":"ping","id":7}"#);
        assert!(serde_json::from_str::<Request>(r#"{"op":"ping","id":7,"extra":1}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"op":"fly","id":1}"#).is_err());
    }

    #[test]
    fn replies_and_pushes_round_trip() {
        let ok = Reply::ok(
            json!(3),
            Committed {
                seq: 4,
                stamp: Stamp::new(1, 0, 9),
            },
        );
        let text = ok.to_text();
        assert!(
            text.starts_with(r#"{"id":3,"result":{"seq":4,"stamp":""#),
            "{text}"
        );
        assert_eq!(ServerFrame::parse(&text).unwrap(), ServerFrame::Reply(ok));
        let null = Reply::ok(json!(1), Value::Null);
        assert_eq!(null.to_text(), r#"{"id":1,"result":null}"#);
        assert_eq!(
            ServerFrame::parse(&null.to_text()).unwrap(),
            ServerFrame::Reply(null)
        );
        let refused = Reply::error(None, ErrorBody::new(Code::Conflict, "no"));
        assert_eq!(
            refused.to_text(),
            r#"{"id":null,"error":{"code":"conflict","message":"no"}}"#
        );
        let reset = Push::Reset {
            sub: "s".into(),
            seq: 2,
            value: None,
            query: None,
        };
        assert_eq!(
            reset.to_text(),
            r#"{"push":"reset","sub":"s","seq":2,"value":null}"#
        );
        assert_eq!(
            ServerFrame::parse(&reset.to_text()).unwrap(),
            ServerFrame::Push(reset)
        );
        assert_eq!(Push::AuthExpired.to_text(), r#"{"push":"auth_expired"}"#);
        assert!(matches!(
            ServerFrame::parse(r#"{"push":"later","x":1}"#).unwrap(),
            ServerFrame::Unknown(_)
        ));
        assert!(ServerFrame::parse(r#"{"id":1}"#).is_err());
    }

    #[test]
    fn a_borrowed_change_reads_back_as_a_change() {
        let mutation = Mutation::from_json(&json!({"merge": {"a": {"b": 1}}})).unwrap();
        let stamp = Stamp::new(5, 1, 2);
        let text = Push::change_text("s", 9, stamp, &mutation);
        let owned = Push::Change {
            sub: "s".into(),
            seq: 9,
            stamp,
            mutation,
        };
        assert_eq!(text, owned.to_text());
        assert_eq!(ServerFrame::parse(&text).unwrap(), ServerFrame::Push(owned));
    }
}
