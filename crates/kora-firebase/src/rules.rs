//! Firebase's security rules (`database.rules.json`) enforced by Kora: `[firebase] rules`.
//!
//! The rules are an interceptor on `**`, so every request passes through them whichever
//! protocol it came by — Firebase's WebSocket and REST, and Kora's own WebSocket protocol,
//! REST and event streams alike. If Kora's rules file is configured too, a request must pass
//! both: neither can grant what the other refuses. The server's own work (the administrator,
//! `owner` with mock tokens, Kora's admin secret) is not subject to them, as Firebase's Admin
//! SDKs are not.
//!
//! The decisions are `kora_firebase_rules`'; this module
//!
//! - turns a Kora write into Firebase's terms: each location the mutation deletes is a `set`
//!   of what it merges there (nothing: a removal), and each merged leaf outside those is set
//!   on its own — so Firebase's `set` and `update` reach the rules as they were sent, and a
//!   deep merge of Kora's protocol is an update of each leaf it writes;
//! - loads the data a decision reads through the engine's recorded reads
//!   (`Kora::read_store`): a write commits only if nothing its rules read changed before its
//!   commit, otherwise the rules run again on fresh data — a rule such as
//!   `!data.exists()` or `newData.val() == data.val() + 1` holds under concurrent writers;
//! - gives rules Firebase's `auth`: `uid`, `provider` and the token's claims as `token`.
//!
//! A read is decided when it starts (a query, a subscription, a listen), and a listen again as
//! each change reaches it: one whose `.read` no longer holds is ended with Firebase's
//! revocation. What differs from Firebase, and why: that second check comes with the next
//! change, not the moment the rule turns false; `query.*` in `.read` rules sees what Kora's query carries — the
//! order (by key, by a child, by value), its bounds and limit — but never `equalTo` (Kora
//! keeps it as equal bounds, `startAt` and `endAt`) or `orderByPriority`; with
//! `[firebase] namespaces = "separate"` rules see Kora's tree, whose top-level keys are the
//! namespaces.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path as FilePath, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use kora_core::{Mutation, Path, PathQuery, Value};
use kora_engine::interceptor::{Addition, Interceptor, ReadLayer, WholeWrite};
use kora_engine::pattern::Relation;
use kora_engine::{Context, Error, Kora};
use kora_firebase_rules::{Data, Decision, OrderBy, QueryParams, Rules, RulesError};
use serde_json::{json, Map};

/// Most rounds of "decide, load what the decision asked for" one request takes: each round
/// loads every location the rules looked at that was not loaded yet, in one read.
pub const MAX_LOOKUP_ROUNDS: usize = 16;

/// A rules file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RulesFileError {
    #[error("reading the Firebase rules {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the Firebase rules {path}: {source}")]
    Invalid { path: PathBuf, source: RulesError },
}

/// A `database.rules.json`, as an interceptor.
pub struct FirebaseRules {
    rules: Rules,
}

impl FirebaseRules {
    /// Reads and checks a rules file.
    pub fn load(path: &FilePath) -> Result<Self, RulesFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| RulesFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|source| RulesFileError::Invalid {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Rules given as text.
    pub fn parse(text: &str) -> Result<Self, RulesError> {
        Ok(FirebaseRules {
            rules: Rules::parse(text)?,
        })
    }

    /// The `.indexOn` declarations: collection pattern (`users/$uid/posts`) → indexed
    /// children.
    pub fn index_on(&self) -> Vec<(String, Vec<String>)> {
        self.rules.index_on()
    }

    /// Whether `ctx` may read what `query` asks for: a read when it starts, and a listen
    /// again as each change reaches it.
    async fn check_read(&self, query: &PathQuery, ctx: &Context, kora: &Kora) -> Result<(), Error> {
        if ctx.is_system() {
            return Ok(());
        }
        let auth = ctx.auth().map(|claims| firebase_auth(&claims));
        let path = format!("/{}", query.path.segments().join("/"));
        let params = query_params(query);
        let now = now();
        decide(kora, |data| {
            let ctx = kora_firebase_rules::Context {
                auth: auth.as_ref(),
                now,
            };
            self.rules.can_read(&path, &ctx, data, params.as_ref())
        })
        .await
    }
}

#[async_trait]
impl Interceptor for FirebaseRules {
    async fn before_write(&self, write: &WholeWrite<'_>, ctx: &Context) -> Result<Addition, Error> {
        if ctx.is_system() {
            return Ok(Addition::default());
        }
        let auth = ctx.auth().map(|claims| firebase_auth(&claims));
        let locations = locations(write.mutation);
        let now = now();
        decide(write.kora, |data| {
            let ctx = kora_firebase_rules::Context {
                auth: auth.as_ref(),
                now,
            };
            self.rules.can_update("/", &locations, &ctx, data)
        })
        .await?;
        Ok(Addition::default())
    }

    async fn before_query(&self, read: &ReadLayer<'_>, ctx: &Context) -> Result<(), Error> {
        if !matches!(read.relation, Relation::Exact(_)) {
            return Ok(());
        }
        self.check_read(read.query, ctx, read.kora).await
    }

    /// Listens are checked again as each change reaches them (`filter_change`).
    fn filters_reads(&self) -> bool {
        true
    }

    /// A change passes whole (rules are not filters); a listener whose `.read` no longer
    /// holds — its token changed, or the data its rule reads did — is refused, which ends
    /// the listen (Firebase's SDKs get the `c` revocation and cancel it).
    async fn filter_change(
        &self,
        query: &PathQuery,
        change: Mutation,
        ctx: &Context,
        kora: &Kora,
    ) -> Result<Mutation, Error> {
        self.check_read(query, ctx, kora).await?;
        Ok(change)
    }
}

/// A write's locations in Firebase's terms: relative path from the root → its new value
/// (`null`: removed).
fn locations(mutation: &Mutation) -> Map<String, Value> {
    let mut out = Map::new();
    let deletes = mutation.deletes();
    for path in deletes.paths() {
        let value = merged_at(mutation.merges(), &path).cloned();
        out.insert(path.join("/"), value.unwrap_or(Value::Null));
    }
    mutation.for_each_leaf(|path, value| {
        if !deletes.covers(path) {
            out.insert(path.join("/"), value.clone());
        }
    });
    out
}

/// What `merges` holds at `path`.
fn merged_at<'a>(merges: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    rest.iter()
        .try_fold(merges.get(first)?, |node, key| node.as_object()?.get(key))
}

/// Firebase's `auth` for a token's claims: `uid` (from `uid`, `user_id` or `sub`),
/// `provider` (the sign-in provider Firebase's ID tokens name, else `custom`), and every
/// claim as `token`.
fn firebase_auth(claims: &Value) -> Value {
    let uid = ["uid", "user_id", "sub"]
        .iter()
        .find_map(|key| claims.get(key).filter(|v| v.is_string()))
        .cloned()
        .unwrap_or(Value::Null);
    let provider = claims
        .pointer("/firebase/sign_in_provider")
        .cloned()
        .unwrap_or_else(|| json!("custom"));
    json!({"uid": uid, "provider": provider, "token": claims})
}

/// What `query.*` sees of a read: `None` for a plain read of the whole location.
fn query_params(query: &PathQuery) -> Option<QueryParams> {
    let plain = query.by.is_none() && query.limit.is_none() && query.min.is_none();
    if plain && query.max.is_none() {
        return None;
    }
    let mut params = QueryParams::default();
    match &query.by {
        Some(by) => {
            params.order_by = match by.child.as_str() {
                "" => OrderBy::Value,
                child => OrderBy::Child(child.to_string()),
            };
            params.start_at = by.from.clone();
            params.end_at = by.to.clone();
        }
        None => {
            params.start_at = query.min.clone().map(Value::String);
            params.end_at = query.max.clone().map(Value::String);
        }
    }
    match (query.limit, query.reverse) {
        (Some(limit), true) => params.limit_to_last = Some(limit as u64),
        (Some(limit), false) => params.limit_to_first = Some(limit as u64),
        (None, _) => {}
    }
    Some(params)
}

fn now() -> i64 {
    kora_core::stamp::wall_millis() as i64
}

/// Decides with the data the decision reads, loaded as it asks for it.
async fn decide(kora: &Kora, decision: impl Fn(&Lookup) -> Decision) -> Result<(), Error> {
    let mut lookup = Lookup::default();
    for _ in 0..MAX_LOOKUP_ROUNDS {
        let decided = decision(&lookup);
        let missing = lookup.take_missing();
        if missing.is_empty() {
            return match decided {
                Decision::Allow => Ok(()),
                Decision::Deny(denial) => {
                    tracing::debug!(path = %denial.path, rule = ?denial.rule, message = %denial.message, "refused by the Firebase rules");
                    // Firebase's words first, then which rule refused (not its expression).
                    Err(Error::permission_denied(match &denial.rule {
                        Some(rule) => format!("Permission denied: {rule} refused {}", denial.path),
                        None => format!(
                            "Permission denied: no rule allows access to {}",
                            denial.path
                        ),
                    }))
                }
            };
        }
        lookup.load(kora, missing).await?;
    }
    Err(Error::internal(format!(
        "the Firebase rules still needed data after {MAX_LOOKUP_ROUNDS} rounds"
    )))
}

/// The data loaded so far for one decision, and the locations it asked for that were not.
#[derive(Default)]
struct Lookup {
    loaded: BTreeMap<Vec<String>, Option<Value>>,
    missing: Mutex<BTreeSet<Vec<String>>>,
}

impl Lookup {
    fn take_missing(&mut self) -> BTreeSet<Vec<String>> {
        match self.missing.get_mut() {
            Ok(missing) => std::mem::take(missing),
            Err(poisoned) => std::mem::take(poisoned.into_inner()),
        }
    }

    /// Loads `locations` in one read of the store. A location Kora cannot name (a key
    /// Kora's paths refuse) holds nothing.
    async fn load(&mut self, kora: &Kora, locations: BTreeSet<Vec<String>>) -> Result<(), Error> {
        let mut named = Vec::new();
        for location in locations {
            match Path::from_segments(&location) {
                Ok(path) => named.push((location, PathQuery::new(path))),
                Err(_) => {
                    self.loaded.insert(location, None);
                }
            }
        }
        let parts: Vec<PathQuery> = named.iter().map(|(_, part)| part.clone()).collect();
        let snapshot = kora.read_store(&parts).await?;
        for ((location, _), value) in named.into_iter().zip(snapshot.values) {
            self.loaded.insert(location, value);
        }
        Ok(())
    }
}

impl Data for Lookup {
    fn get(&self, path: &[String]) -> Option<Value> {
        // A loaded location, or one inside a loaded location.
        for depth in (0..=path.len()).rev() {
            if let Some(value) = self.loaded.get(&path[..depth]) {
                return path[depth..]
                    .iter()
                    .try_fold(value.as_ref()?, |node, key| node.as_object()?.get(key))
                    .cloned();
            }
        }
        if let Ok(mut missing) = self.missing.lock() {
            missing.insert(path.to_vec());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(mutation: &Mutation) -> Vec<(String, Value)> {
        locations(mutation).into_iter().collect()
    }

    #[test]
    fn a_set_is_one_location_and_a_merge_one_per_leaf() {
        let at = |p: &str| Path::parse(p).unwrap();
        let set = Mutation::set(&at("users/alice"), json!({"name": "A", "age": 3})).unwrap();
        assert_eq!(
            paths(&set),
            vec![("users/alice".into(), json!({"name": "A", "age": 3}))]
        );
        let merge = Mutation::merge(&at("users/alice"), json!({"name": "B", "x": {"y": 1}}))
            .unwrap()
            .and_delete(&at("users/bob"));
        assert_eq!(
            paths(&merge),
            vec![
                ("users/alice/name".into(), json!("B")),
                ("users/alice/x/y".into(), json!(1)),
                ("users/bob".into(), Value::Null),
            ]
        );
    }

    #[test]
    fn auth_has_firebase_shape() {
        let auth = firebase_auth(&json!({"sub": "u1", "email": "e@x"}));
        assert_eq!(auth["uid"], "u1");
        assert_eq!(auth["provider"], "custom");
        assert_eq!(auth["token"]["email"], "e@x");
    }

    #[test]
    fn a_lookup_answers_inside_what_it_loaded_and_records_the_rest() {
        let mut lookup = Lookup::default();
        lookup
            .loaded
            .insert(vec!["a".into()], Some(json!({"b": {"c": 1}})));
        assert_eq!(lookup.get(&["a".into(), "b".into()]), Some(json!({"c": 1})));
        assert_eq!(lookup.get(&["a".into(), "z".into()]), None);
        assert_eq!(lookup.get(&["x".into()]), None);
        assert_eq!(
            lookup.take_missing(),
            BTreeSet::from([vec!["x".to_string()]])
        );
    }
}
