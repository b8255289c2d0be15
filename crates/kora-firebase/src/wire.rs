//! The frames of Firebase's WebSocket protocol v5: envelopes, replies, pushes, and the
//! splitting of long messages into numbered fragments (notes: §1.2–§1.7, §2, §3).

use kora_engine::{Code, Error};
use serde_json::{json, Map, Value};

use kora_transport::rendered::Frame;

/// Longest frame Firebase clients send and expect; longer messages are split.
pub const MAX_FRAME_CHARS: usize = 16_384;

/// The server's hello, which must be the first frame.
pub fn hello(now_ms: u64, host: &str, session: &str) -> String {
    control(
        "h",
        json!({"ts": now_ms, "v": "5", "h": host, "s": session}),
    )
}

/// The answer to a client's ping.
pub fn pong() -> String {
    control("o", Value::Null)
}

fn control(kind: &str, data: Value) -> String {
    json!({"t": "c", "d": {"t": kind, "d": data}}).to_string()
}

/// A reply to request `r`.
pub fn reply(r: &Value, status: &str, data: Value) -> String {
    json!({"t": "d", "d": {"r": r, "b": {"s": status, "d": data}}}).to_string()
}

/// `ok` with the data a request of this kind answers with.
pub fn ok(r: &Value, data: Value) -> String {
    reply(r, "ok", data)
}

/// A refused request: Firebase's status for the error, and its message.
pub fn refused(r: &Value, error: &Error) -> String {
    reply(r, status(error.code), Value::String(error.message.clone()))
}

/// Firebase's status string for a Kora error code. A failed validation is
/// `permission_denied`, as Firebase's `.validate` rules report it.
pub fn status(code: Code) -> &'static str {
    match code {
        Code::PermissionDenied | Code::ValidationFailed => "permission_denied",
        Code::TooLarge => "too_big",
        Code::Unavailable => "unavailable",
        _ => "failed",
    }
}

/// Overwrites the node at `path` (`null`: deleted).
pub fn data(path: &str, data: Value, tag: Option<u64>) -> String {
    push("d", path, data, tag)
}

/// Overwrites each relative path of `children` under `path`.
pub fn merge(path: &str, children: Map<String, Value>, tag: Option<u64>) -> String {
    push("m", path, Value::Object(children), tag)
}

/// Replaces the leaves of each range of the node at `path` (a reconnecting client's copy,
/// compared range by range through its compound hash).
pub fn range_merge(path: &str, merges: &[crate::node::RangeMerge], tag: Option<u64>) -> String {
    let ranges = merges
        .iter()
        .map(crate::node::RangeMerge::to_wire)
        .collect();
    push("rm", path, Value::Array(ranges), tag)
}

fn push(action: &str, path: &str, data: Value, tag: Option<u64>) -> String {
    let mut body = json!({"p": path, "d": data});
    if let Some(tag) = tag {
        body["t"] = json!(tag);
    }
    json!({"t": "d", "d": {"a": action, "b": body}}).to_string()
}

/// A listen the client may no longer hold (it fires the listener's cancel callback). `q`
/// must be a list for the JS SDK to find the query.
pub fn revoked(path: &str, query: Option<&Value>) -> String {
    let mut body = json!({"p": path});
    if let Some(query) = query {
        body["q"] = json!([query]);
    }
    json!({"t": "d", "d": {"a": "c", "b": body}}).to_string()
}

/// The client's credential no longer holds: it drops it and reconnects.
pub fn auth_revoked(status: &str, reason: &str) -> String {
    json!({"t": "d", "d": {"a": "ac", "b": {"s": status, "d": reason}}}).to_string()
}

/// The frames that carry `message`: itself, or a count then at most `MAX_FRAME_CHARS`-char
/// pieces cut on character boundaries.
pub fn frames(message: Frame) -> Vec<Frame> {
    // A message of no more bytes than a frame holds characters fits; it goes as it is (a
    // shared rendering stays shared).
    if message.len() <= MAX_FRAME_CHARS || message.as_str().chars().count() <= MAX_FRAME_CHARS {
        return vec![message];
    }
    let mut pieces = Vec::new();
    let mut piece = String::with_capacity(MAX_FRAME_CHARS);
    let mut chars = 0;
    for c in message.as_str().chars() {
        piece.push(c);
        chars += 1;
        if chars == MAX_FRAME_CHARS {
            pieces.push(std::mem::take(&mut piece));
            chars = 0;
        }
    }
    if !piece.is_empty() {
        pieces.push(piece);
    }
    let mut out = Vec::with_capacity(pieces.len() + 1);
    out.push(pieces.len().to_string().into());
    out.extend(pieces.into_iter().map(Frame::from));
    out
}

/// Reassembles fragmented messages and drops keep-alives.
#[derive(Debug, Default)]
pub struct Reassembly {
    expected: usize,
    parts: Vec<String>,
}

/// Most fragments one message may announce: at the frame size, more than the largest body.
pub const MAX_FRAGMENTS: usize = 10_000;

impl Reassembly {
    /// The whole message `frame` completes, if any.
    pub fn feed(&mut self, frame: &str) -> Result<Option<String>, Error> {
        if self.expected > 0 {
            self.parts.push(frame.to_string());
            if self.parts.len() < self.expected {
                return Ok(None);
            }
            self.expected = 0;
            return Ok(Some(std::mem::take(&mut self.parts).concat()));
        }
        let count =
            frame.len() <= 6 && !frame.is_empty() && frame.bytes().all(|b| b.is_ascii_digit());
        if !count {
            return Ok(Some(frame.to_string()));
        }
        let n: usize = frame
            .parse()
            .map_err(|_| Error::bad_request("bad fragment count"))?;
        if n > MAX_FRAGMENTS {
            return Err(Error::too_large(format!("{n} fragments announced")));
        }
        // `0` is the clients' keep-alive; `1` announces one frame, which is just that frame.
        self.expected = n;
        Ok(None)
    }
}

/// A client request: `{"r", "a", "b"}` of a data envelope.
#[derive(Debug, PartialEq)]
pub enum Incoming {
    Request {
        r: Value,
        action: String,
        body: Value,
    },
    Ping,
    /// Anything else a client may send that needs no answer.
    Ignored,
}

/// Reads one whole message.
pub fn parse(text: &str) -> Result<Incoming, Error> {
    let message: Value =
        serde_json::from_str(text).map_err(|e| Error::bad_request(format!("not JSON: {e}")))?;
    let layer = message.get("t").and_then(Value::as_str);
    let mut d = message.get("d").cloned().unwrap_or(Value::Null);
    match layer {
        Some("c") if d.get("t").and_then(Value::as_str) == Some("p") => Ok(Incoming::Ping),
        Some("c") => Ok(Incoming::Ignored),
        Some("d") => {
            let r = d.get("r").cloned().unwrap_or(Value::Null);
            let action = d.get("a").and_then(Value::as_str).unwrap_or("").to_string();
            let body = d.get_mut("b").map(Value::take).unwrap_or(Value::Null);
            Ok(Incoming::Request { r, action, body })
        }
        _ => Err(Error::bad_request(
            "a message is {\"t\": \"c\"|\"d\", \"d\": …}",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_split_and_reassembled() {
        let message = json!({"t": "d", "d": {"s": "é".repeat(40_000)}}).to_string();
        let frames = frames(message.clone().into());
        assert_eq!(frames[0].as_str(), "3");
        assert!(frames[1..]
            .iter()
            .all(|f| f.as_str().chars().count() <= MAX_FRAME_CHARS));
        let mut whole = Reassembly::default();
        let mut out = None;
        for frame in &frames {
            out = whole.feed(frame.as_str()).unwrap();
        }
        assert_eq!(out, Some(message));
    }

    #[test]
    fn keep_alives_are_dropped_and_short_messages_pass() {
        let mut whole = Reassembly::default();
        assert_eq!(whole.feed("0").unwrap(), None);
        assert_eq!(whole.feed("{}").unwrap(), Some("{}".into()));
        assert_eq!(frames("{}".into()), vec![Frame::from("{}")]);
        // A message just under the limit in characters but over it in bytes is not split.
        let accents = json!("é".repeat(MAX_FRAME_CHARS - 10)).to_string();
        assert_eq!(frames(accents.clone().into()), vec![Frame::from(accents)]);
    }

    #[test]
    fn requests_pings_and_junk_are_told_apart() {
        let request = parse(r#"{"t":"d","d":{"r":0,"a":"s","b":{"c":{}}}}"#).unwrap();
        assert_eq!(
            request,
            Incoming::Request {
                r: json!(0),
                action: "s".into(),
                body: json!({"c": {}})
            }
        );
        assert_eq!(
            parse(r#"{"t":"c","d":{"t":"p","d":{}}}"#).unwrap(),
            Incoming::Ping
        );
        assert!(parse("[1]").is_err());
        assert!(parse("nope").is_err());
    }
}
