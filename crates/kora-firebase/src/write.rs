//! Firebase writes as Kora mutations, shared by the WebSocket and REST transports.
//!
//! A put (`set`) at P is "delete P, then merge the value at P" — one mutation; an update
//! (`m`, PATCH) is one put per child, combined into one mutation so it stays atomic. Server
//! values (`.sv`) are resolved here, at arrival, and the write is stamped on arrival, as
//! Firebase does. A put to `P/.priority` changes P's priority (turning a leaf into
//! `{".value", ".priority"}`), as Firebase's `setPriority` does.
//!
//! Compare-and-set (a transaction's `h`, REST's `if-match`), increments and priorities decide
//! on the current value: they read it, decide, and commit on condition that it did not change
//! since (`kora_store::Condition::Unchanged`, checked inside the store's commit, across every
//! node on the store). If it changed, they read and decide again (`decide_and_commit`).

use kora_core::{Mutation, Path, PathQuery};
use kora_engine::{Code, Condition, Context, Error, Turn, WriteRequest};
use kora_store::Seq;
use serde_json::{Map, Value};

use super::node;
use crate::FirebaseState;
use kora_transport::http::check_size;

/// State the Firebase transports share across connections.
pub struct Shared {
    /// The last push id handed out, so REST `POST`s get increasing ids.
    pub push_ids: std::sync::Mutex<node::PushIdState>,
    /// The `orderByChild` indexes.
    pub indexes: super::index::Indexes,
    /// Recent changes rendered for default listens, by listened location.
    pub rendered: kora_transport::rendered::Rendered<String, Vec<kora_transport::rendered::Frame>>,
    /// The long-polling connections (`/.lp`).
    pub polls: crate::serve::longpoll::Polls,
}

impl Shared {
    pub fn new(config: &super::FirebaseConfig) -> Self {
        Shared {
            push_ids: Default::default(),
            indexes: super::index::Indexes::new(&config.index_on),
            rendered: Default::default(),
            polls: Default::default(),
        }
    }
}

/// What a write must find before it writes.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    Anything,
    /// The node's hash (a transaction's `h`; REST's ETag, `null_etag` for nothing).
    Hash(String),
}

/// A write that did not happen.
#[derive(Debug)]
pub enum Refusal {
    /// The node was not what the write expected; here is what it is.
    Stale {
        current: Option<Value>,
    },
    Error(Error),
}

impl From<Error> for Refusal {
    fn from(error: Error) -> Self {
        Refusal::Error(error)
    }
}

/// A write that happened: its commit (none when it changed nothing, e.g. a priority on an
/// empty node) and the value it stored at its path.
#[derive(Debug)]
pub struct Written {
    pub seq: Option<Seq>,
    pub value: Option<Value>,
}

/// The ETag/hash of a node, as REST's ETags and transactions compare them.
pub fn etag(value: Option<&Value>) -> String {
    match value {
        None => "null_etag".to_string(),
        Some(_) => node::hash(value),
    }
}

fn matches(expect: &Expect, current: Option<&Value>) -> bool {
    match expect {
        Expect::Anything => true,
        Expect::Hash(hash) if hash == "null_etag" => current.is_none(),
        Expect::Hash(hash) => *hash == node::hash(current),
    }
}

fn needs_current(expect: &Expect, data: &Value) -> bool {
    *expect != Expect::Anything || has_increment(data)
}

/// Sets the node at `path` to `data` (Firebase export format; `null` deletes).
pub async fn put(
    state: &FirebaseState,
    ctx: &Context,
    path: &Path,
    data: Value,
    expect: Expect,
) -> Result<Written, Refusal> {
    if path.last() == Some(".priority") {
        return set_priority(state, ctx, path, data).await;
    }
    if !needs_current(&expect, &data) {
        let value = resolve(data, None)?;
        let seq = commit(state, ctx, set_or_delete(path, value.as_ref())?, None).await?;
        return Ok(Written {
            seq: Some(seq),
            value,
        });
    }
    let (seq, value) = decide_and_commit(state, ctx, vec![path.clone()], |mut found| {
        let current = found.pop().flatten();
        if !matches(&expect, current.as_ref()) {
            return Err(Refusal::Stale { current });
        }
        let value = resolve(data.clone(), current.as_ref())?;
        Ok((Some(set_or_delete(path, value.as_ref())?), value))
    })
    .await?;
    Ok(Written { seq, value })
}

fn set_or_delete(path: &Path, value: Option<&Value>) -> Result<Mutation, Error> {
    Ok(match value {
        Some(value) => Mutation::set(path, value.clone())?,
        None => Mutation::delete(path),
    })
}

/// Sets each relative path (`a/b`) of `children` under `path`, atomically.
pub async fn update(
    state: &FirebaseState,
    ctx: &Context,
    path: &Path,
    children: Map<String, Value>,
) -> Result<Seq, Error> {
    let located = locate(state, path, children)?;
    if !located.iter().any(|(_, data)| has_increment(data)) {
        return commit(state, ctx, build_update(&located, &[])?, None).await;
    }
    let paths = located.iter().map(|(child, _)| child.clone()).collect();
    let decided = decide_and_commit(state, ctx, paths, |found| {
        Ok((Some(build_update(&located, &found)?), ()))
    });
    match decided.await {
        Ok((seq, ())) => Ok(seq.unwrap_or_default()),
        Err(Refusal::Error(error)) => Err(error),
        Err(Refusal::Stale { .. }) => Err(Error::internal("an update found stale")),
    }
}

/// An update's children at their paths below `path`, each checked against the depth limit.
fn locate(
    state: &FirebaseState,
    path: &Path,
    children: Map<String, Value>,
) -> Result<Vec<(Path, Value)>, Error> {
    let limits = state.config.path_limits();
    let mut located = Vec::with_capacity(children.len());
    for (relative, data) in children {
        let child = below(path, &relative)?;
        if child.depth() > limits.max_depth {
            return Err(Error::from(kora_core::path::PathError::TooDeep {
                depth: child.depth(),
                limit: limits.max_depth,
            }));
        }
        located.push((child, data));
    }
    Ok(located)
}

/// The mutation of an update, given the current values of its children (`found`, in order;
/// empty when no child needs one).
fn build_update(located: &[(Path, Value)], found: &[Option<Value>]) -> Result<Mutation, Error> {
    let mut mutation = Mutation::new();
    for (i, (child, data)) in located.iter().enumerate() {
        let current = found.get(i).and_then(Option::as_ref);
        mutation = match resolve(data.clone(), current)? {
            Some(value) => mutation.combine(Mutation::set(child, value)?),
            None => mutation.and_delete(child),
        };
    }
    Ok(mutation)
}

/// The mutation of a WebSocket `p` (set) or `m` (update) that decides on nothing it would
/// read — no transaction hash, no increment, no priority — or `None` for one that does.
/// Such writes are pipelined: committed in the order they arrived, each under its `turn`,
/// without waiting for the one before to finish (`ws.rs`).
pub fn plain(
    state: &FirebaseState,
    action: &str,
    path: &Path,
    body: &mut Value,
) -> Result<Option<Mutation>, Error> {
    let data = body.get("d").unwrap_or(&Value::Null);
    let is_plain = match action {
        "p" => body.get("h").is_none() && path.last() != Some(".priority") && !has_increment(data),
        "m" => match data {
            Value::Object(children) => !children.values().any(has_increment),
            _ => return Err(Error::bad_request("an update's data is an object")),
        },
        _ => false,
    };
    if !is_plain {
        return Ok(None);
    }
    // Decided: the data is taken, not copied (the request is not used again).
    let data = body.get_mut("d").map(Value::take).unwrap_or(Value::Null);
    match data {
        Value::Object(children) if action == "m" => {
            let located = locate(state, path, children)?;
            Ok(Some(build_update(&located, &[])?))
        }
        data => {
            let value = resolve(data, None)?;
            Ok(Some(set_or_delete(path, value.as_ref())?))
        }
    }
}

/// Commits a write [`plain`] made, in its turn among the connection's writes.
pub async fn commit_in_turn(
    state: &FirebaseState,
    ctx: &Context,
    mutation: Mutation,
    turn: Turn,
) -> Result<Seq, Error> {
    commit(state, ctx, mutation, Some(turn)).await
}

/// Reads `paths` at one point, lets `decide` make a write of what it found (`None`: nothing
/// to write) and what to answer, and commits it on condition that none of them changed since
/// the read. When one did (a concurrent writer, on this node or another), reads and decides
/// again, up to `max_write_attempts` times. Returns the commit's sequence (`None`: nothing was
/// written) and the answer.
async fn decide_and_commit<T>(
    state: &FirebaseState,
    ctx: &Context,
    paths: Vec<Path>,
    mut decide: impl FnMut(Vec<Option<Value>>) -> Result<(Option<Mutation>, T), Refusal>,
) -> Result<(Option<Seq>, T), Refusal> {
    let attempts = state.kora.config().max_write_attempts.max(1);
    let parts: Vec<PathQuery> = paths.iter().cloned().map(PathQuery::new).collect();
    // This write's turn on its paths, when they are hot (`kora_engine::contention`).
    let contention = state.kora.contention();
    let mut hot = match contention.is_hot(&paths) {
        true => Some(contention.turn(&paths).await),
        false => None,
    };
    for _ in 0..attempts {
        let snapshot = state.kora.read_store(&parts).await?;
        let (mutation, answer) = decide(snapshot.values.clone())?;
        let Some(mutation) = mutation else {
            return Ok((None, answer));
        };
        check_size(state, &mutation)?;
        let conditions = paths
            .iter()
            .map(|path| Condition::unchanged(path.clone(), snapshot.seq))
            .collect();
        let request = WriteRequest {
            conditions,
            ..WriteRequest::new(mutation, state.kora.stamp(None))
        };
        match state.kora.write(ctx, request).await {
            Ok(commit) => return Ok((Some(commit.seq), answer)),
            // What it decided on changed before it committed: read again.
            Err(error) if error.conflict.is_some() => {
                let seq = error.conflict.map_or(snapshot.seq, |c| c.seq);
                drop(hot.take()); // (a turn held from the last attempt goes first)
                hot = Some(state.kora.before_retry(&paths, seq).await);
            }
            // The rules decide on the data as it is when they run; if another write changed
            // what this one decided on before then, their refusal answers a write the client
            // never made for that data: decide again (a transaction's answer is then
            // `datastale`, as Firebase answers, and the client re-runs it).
            Err(error) if refused_by_rules(&error) => {
                let now = state.kora.read_store(&parts).await?;
                if now.values == snapshot.values {
                    return Err(error.into());
                }
            }
            Err(error) => return Err(error.into()),
        }
    }
    Err(Error::new(
        Code::Conflict,
        format!("the data kept changing under this write: gave up after {attempts} attempts"),
    )
    .into())
}

fn refused_by_rules(error: &Error) -> bool {
    matches!(error.code, Code::PermissionDenied | Code::ValidationFailed)
}

/// Whether `data` holds an increment (`{".sv": {"increment": n}}`), which reads the node.
fn has_increment(data: &Value) -> bool {
    match data {
        Value::Object(map) => match map.get(".sv") {
            Some(sv) => sv.get("increment").is_some(),
            None => map.values().any(has_increment),
        },
        _ => false,
    }
}

/// Whether `data` holds any server value.
fn has_server_value(data: &Value) -> bool {
    match data {
        Value::Object(map) => map.contains_key(".sv") || map.values().any(has_server_value),
        _ => false,
    }
}

/// Resolves server values against the current node, and puts the value in canonical form.
fn resolve(data: Value, current: Option<&Value>) -> Result<Option<Value>, Error> {
    if !has_server_value(&data) {
        return Ok(node::normalize(data));
    }
    if node::has_unknown_server_value(&data) {
        return Err(Error::bad_request("unknown server value (.sv)"));
    }
    let existing = |relative: &[String]| {
        let mut node = current;
        for key in relative {
            node = node.and_then(|n| n.get(key));
        }
        node.cloned()
    };
    let resolved = node::resolve_server_values(data, &existing, super::now_millis());
    Ok(node::normalize(resolved))
}

/// `setPriority`: a priority on a leaf wraps it, on a branch is a member, on nothing is
/// ignored; `null` removes it.
async fn set_priority(
    state: &FirebaseState,
    ctx: &Context,
    path: &Path,
    priority: Value,
) -> Result<Written, Refusal> {
    let Some(parent) = path.parent() else {
        return Err(Error::bad_request("the root has no priority").into());
    };
    let priority = resolve(priority, None)?;
    let (seq, value) = decide_and_commit(state, ctx, vec![parent.clone()], |mut found| {
        let next = match (found.pop().flatten(), priority.clone()) {
            (None, _) => return Ok((None, None)),
            (Some(Value::Object(mut map)), priority) => {
                match priority {
                    Some(p) => map.insert(".priority".into(), p),
                    None => map.remove(".priority"),
                };
                node::normalize(Value::Object(map))
            }
            (Some(leaf), Some(p)) => Some(serde_json::json!({".value": leaf, ".priority": p})),
            (Some(leaf), None) => Some(leaf),
        };
        Ok((
            Some(set_or_delete(&parent, next.as_ref())?),
            priority.clone(),
        ))
    })
    .await?;
    Ok(Written { seq, value })
}

async fn commit(
    state: &FirebaseState,
    ctx: &Context,
    mutation: Mutation,
    turn: Option<Turn>,
) -> Result<Seq, Error> {
    check_size(state, &mutation)?;
    let request = WriteRequest {
        turn,
        ..WriteRequest::new(mutation, state.kora.stamp(None))
    };
    Ok(state.kora.write(ctx, request).await?.seq)
}

/// A fresh push id for REST `POST`.
pub fn push_id(state: &FirebaseState) -> String {
    let mut last = match state.firebase.push_ids.lock() {
        Ok(last) => last,
        Err(poisoned) => poisoned.into_inner(),
    };
    node::push_id(super::now_millis(), &mut last)
}

/// Refuses a write the rules would refuse now, without making it: a set of `data` at `path`,
/// or for `om` a set of each child. For writes registered ahead (onDisconnect; they are
/// checked again when they run) and for a transaction found stale.
pub async fn check(
    state: &FirebaseState,
    ctx: &Context,
    action: &str,
    path: &kora_core::Path,
    data: &Value,
) -> Result<(), Error> {
    let now = super::now_millis();
    let set = |path: &kora_core::Path, data: &Value| -> Result<kora_core::Mutation, Error> {
        let resolved = node::resolve_server_values(data.clone(), &|_| None, now);
        Ok(match node::normalize(resolved) {
            Some(value) => kora_core::Mutation::set(path, value)?,
            None => kora_core::Mutation::delete(path),
        })
    };
    let mutation = match (action, data) {
        ("om", Value::Object(children)) => {
            let mut mutation = kora_core::Mutation::new();
            for (relative, data) in children {
                let child = below(path, relative)?;
                mutation = mutation.combine(set(&child, data)?);
            }
            mutation
        }
        _ => set(path, data)?,
    };
    state.kora.check_write(ctx, mutation).await
}

/// `path` followed by a Firebase relative path (`a/b`; empty segments ignored), as an update's
/// keys name their locations.
pub fn below(path: &Path, relative: &str) -> Result<Path, Error> {
    let mut child = path.clone();
    for key in relative.split('/').filter(|k| !k.is_empty()) {
        child = child.child(key)?;
    }
    Ok(child)
}
