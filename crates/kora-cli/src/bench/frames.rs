//! What the load generator reads of a server's message — a reply's request id and outcome, a
//! change's newest send time — in one pass over the text, without building a JSON tree.
//!
//! The generator shares the machine with the server it measures, so its own cost per
//! delivery is part of every figure: reading each message into a `serde_json::Value` cost
//! it about 3 µs per delivery (`scripts/bench-server fanout-profile`: 60 % of it in
//! building maps), as much CPU as the server spent delivering it. Fields the generator does
//! not need are skipped by the parser rather than built.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::Protocol;

/// What a message says, as far as the generator cares.
#[derive(Debug, Default, PartialEq)]
pub struct Seen {
    /// A reply: its request id and whether it succeeded.
    pub reply: Option<(u64, bool)>,
    /// A change push: the newest send time it carries, if any.
    pub change: Option<Option<u64>>,
}

/// Reads `text`, a whole message of `protocol`.
pub fn read(protocol: Protocol, text: &str) -> serde_json::Result<Seen> {
    match protocol {
        Protocol::Kora => serde_json::from_str::<KoraMessage>(text).map(KoraMessage::seen),
        Protocol::Firebase => serde_json::from_str::<FirebaseMessage>(text).map(|m| m.seen()),
    }
}

/// `{"id": 1, "error"?: …}` (a reply) or `{"push": "change", "mutation": {"merge": …}}`.
#[derive(Deserialize)]
struct KoraMessage<'a> {
    id: Option<Id>,
    error: Option<IgnoredAny>,
    #[serde(borrow)]
    push: Option<std::borrow::Cow<'a, str>>,
    mutation: Option<KoraMutation>,
}

#[derive(Deserialize)]
struct KoraMutation {
    merge: Option<NewestTime>,
}

impl KoraMessage<'_> {
    fn seen(self) -> Seen {
        if self.push.as_deref() == Some("change") {
            let newest = self.mutation.and_then(|m| m.merge).and_then(|m| m.0);
            return Seen {
                reply: None,
                change: Some(newest),
            };
        }
        Seen {
            reply: self
                .id
                .and_then(|id| id.0)
                .map(|id| (id, self.error.is_none())),
            change: None,
        }
    }
}

/// `{"t": "d", "d": {"r"?: 1, "a"?: "d", "b": {"s"?: "ok", "d"?: …}}}`.
#[derive(Deserialize)]
struct FirebaseMessage<'a> {
    #[serde(borrow)]
    d: Option<FirebaseData<'a>>,
}

#[derive(Deserialize)]
struct FirebaseData<'a> {
    r: Option<Id>,
    #[serde(borrow)]
    a: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    b: Option<FirebaseBody<'a>>,
}

#[derive(Deserialize)]
struct FirebaseBody<'a> {
    #[serde(borrow)]
    s: Option<std::borrow::Cow<'a, str>>,
    d: Option<NewestTime>,
}

impl FirebaseMessage<'_> {
    fn seen(self) -> Seen {
        let Some(d) = self.d else {
            return Seen::default();
        };
        let status = d.b.as_ref().and_then(|b| b.s.as_deref());
        if let Some(Id(Some(r))) = d.r {
            return Seen {
                reply: Some((r, status == Some("ok"))),
                change: None,
            };
        }
        let pushed = matches!(d.a.as_deref(), Some("d" | "m"));
        Seen {
            reply: None,
            change: pushed.then(|| d.b.and_then(|b| b.d).and_then(|d| d.0)),
        }
    }
}

/// A request id: a number, or anything else (a subscription's name), which is no reply's.
struct Id(Option<u64>);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let newest = deserializer.deserialize_any(Newest { at_time: true })?;
        Ok(Id(newest.0))
    }
}

/// The newest `t` (a write's send time) anywhere in a JSON value.
struct NewestTime(Option<u64>);

impl<'de> Deserialize<'de> for NewestTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(Newest { at_time: false })
    }
}

/// Walks a value; `at_time`: the value is a `t` field's, so a number is a send time.
struct Newest {
    at_time: bool,
}

impl Newest {
    fn number(&self, n: u64) -> NewestTime {
        NewestTime(self.at_time.then_some(n))
    }
}

impl<'de> Visitor<'de> for Newest {
    type Value = NewestTime;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_u64<E>(self, n: u64) -> Result<NewestTime, E> {
        Ok(self.number(n))
    }

    fn visit_i64<E>(self, n: i64) -> Result<NewestTime, E> {
        Ok(u64::try_from(n).map_or(NewestTime(None), |n| self.number(n)))
    }

    fn visit_f64<E>(self, _: f64) -> Result<NewestTime, E> {
        Ok(NewestTime(None))
    }

    fn visit_bool<E>(self, _: bool) -> Result<NewestTime, E> {
        Ok(NewestTime(None))
    }

    fn visit_str<E>(self, _: &str) -> Result<NewestTime, E> {
        Ok(NewestTime(None))
    }

    fn visit_unit<E>(self) -> Result<NewestTime, E> {
        Ok(NewestTime(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NewestTime, A::Error> {
        let mut newest = None;
        while let Some(NewestTime(found)) = seq.next_element::<NewestTime>()? {
            newest = newest.max(found);
        }
        Ok(NewestTime(newest))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NewestTime, A::Error> {
        let mut newest = None;
        while let Some(IsTime(at_time)) = map.next_key::<IsTime>()? {
            let NewestTime(found) = map.next_value_seed(Newest { at_time })?;
            newest = newest.max(found);
        }
        Ok(NewestTime(newest))
    }
}

impl<'de> de::DeserializeSeed<'de> for Newest {
    type Value = NewestTime;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<NewestTime, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// Whether an object's key is `t`, read without keeping the key.
struct IsTime(bool);

impl<'de> Deserialize<'de> for IsTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Key;
        impl Visitor<'_> for Key {
            type Value = IsTime;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E>(self, key: &str) -> Result<IsTime, E> {
                Ok(IsTime(key == "t"))
            }
        }
        deserializer.deserialize_str(Key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kora(text: &str) -> Seen {
        read(Protocol::Kora, text).unwrap()
    }

    fn firebase(text: &str) -> Seen {
        read(Protocol::Firebase, text).unwrap()
    }

    #[test]
    fn kora_replies_and_changes() {
        assert_eq!(kora(r#"{"id":7,"seq":3}"#).reply, Some((7, true)));
        assert_eq!(
            kora(r#"{"id":7,"error":{"code":"x","message":"m"}}"#).reply,
            Some((7, false))
        );
        let change = r#"{"push":"change","id":"s","seq":4,
            "mutation":{"merge":{"bench":{"w0-1":{"t":15,"name":"E","score":2},"w0-2":{"t":19}}}}}"#;
        assert_eq!(
            kora(change),
            Seen {
                reply: None,
                change: Some(Some(19))
            }
        );
        assert_eq!(
            kora(r#"{"push":"reset","id":"s","value":null}"#),
            Seen::default()
        );
    }

    #[test]
    fn firebase_replies_and_changes() {
        assert_eq!(
            firebase(r#"{"t":"d","d":{"r":3,"b":{"s":"ok","d":{}}}}"#).reply,
            Some((3, true))
        );
        assert_eq!(
            firebase(r#"{"t":"d","d":{"r":3,"b":{"s":"permission_denied","d":"no"}}}"#).reply,
            Some((3, false))
        );
        let pushed = r#"{"t":"d","d":{"a":"d","b":{"p":"bench/w0-9","d":{"t":1234,"score":5}}}}"#;
        assert_eq!(firebase(pushed).change, Some(Some(1234)));
        assert_eq!(
            firebase(r#"{"t":"c","d":{"t":"h","d":{"ts":1,"v":"5"}}}"#),
            Seen::default()
        );
    }

    #[test]
    fn the_newest_time_is_found_at_any_depth_and_only_under_t() {
        let text = r#"{"push":"change","mutation":{"merge":
            {"a":{"score":99,"l0":{"t":5},"l1":{"t":8}},"list":[{"t":3}],"t":"text"}}}"#;
        assert_eq!(kora(text).change, Some(Some(8)));
    }
}
