//! Interceptors: server-side logic that runs inside the write and read paths.
//!
//! An interceptor is registered with a path pattern (`todos/$id`) and sees every layer of a
//! write whose path matches (see `kora_core::Mutation::layers`): the creation, change or
//! deletion of a todo, whichever way the mutation spells it. It may
//!
//! - pass (`Ok(None)`),
//! - refuse (`Err`): the whole write is refused and nothing is written,
//! - return an extra mutation (absolute paths), combined into the write and itself
//!   intercepted — to augment (`created: now`) or denormalise (`company:employees/...`);
//!
//! and, once the write is final, name effects to run after commit (written to the outbox in
//! the same transaction). For reads, `before_query` may refuse and `resolve_query` may answer
//! a virtual path instead of the store.

use async_trait::async_trait;
use kora_core::{Layer, Mutation, Path, PathQuery, Stamp, Value};
use kora_store::NewEffect;

use crate::context::Context;
use crate::error::Error;
use crate::kora::Kora;
use crate::pattern::{Captures, Pattern, Relation};

/// One layer of a write, as an interceptor sees it.
pub struct WriteLayer<'a> {
    /// The path of this layer.
    pub path: &'a Path,
    /// What the pattern captured (`$id` → `"TOD1"`).
    pub captures: &'a Captures,
    /// The part of the write at this path: merged children, a leaf, deletes.
    pub layer: &'a Layer<'a>,
    /// The whole write as it stands (the original plus what interceptors added so far).
    pub mutation: &'a Mutation,
    /// The stamp the write will commit with (its time, for `created` fields and the like).
    pub stamp: Stamp,
    /// The database, to read current values.
    pub kora: &'a Kora,
}

impl WriteLayer<'_> {
    /// The capture `name`, or `""`.
    pub fn capture(&self, name: &str) -> &str {
        self.captures
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// The value at this path before the write (reads the store).
    pub async fn data(&self) -> Result<Option<Value>, Error> {
        self.kora.read_value(self.path).await
    }

    /// The value at this path once the write is applied, assuming no concurrent write.
    pub async fn new_data(&self) -> Result<Option<Value>, Error> {
        let data = self.data().await?;
        Ok(after(self.path, data, self.mutation))
    }
}

/// The value at `path` after `mutation` is applied to `data` (the value there before).
pub fn after(path: &Path, data: Option<Value>, mutation: &Mutation) -> Option<Value> {
    let mut tree = serde_json::Map::new();
    if let Some(data) = data {
        kora_core::query::place(&mut tree, path.segments(), data);
    }
    mutation.restrict(path).apply_to(&mut tree);
    let mut node = Some(Value::Object(tree));
    for segment in path.segments() {
        node = node.and_then(|mut n| n.as_object_mut().and_then(|m| m.remove(segment)));
    }
    node
}

/// One path of a read, as an interceptor sees it.
pub struct ReadLayer<'a> {
    pub query: &'a PathQuery,
    /// How the interceptor's pattern relates to the queried path.
    pub relation: &'a Relation,
    pub kora: &'a Kora,
}

/// A whole write, as an interceptor sees it in [`Interceptor::before_write`].
pub struct WholeWrite<'a> {
    /// The mutation as the client sent it.
    pub mutation: &'a Mutation,
    pub stamp: Stamp,
    pub kora: &'a Kora,
}

/// What [`Interceptor::before_write`] adds to a write.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Addition {
    /// Combined into the write (and seen by the per-layer interceptors).
    pub mutation: Option<Mutation>,
    /// Written to the outbox with the write.
    pub effects: Vec<NewEffect>,
}

/// Server-side logic on the write and read paths. Every method has a default that does
/// nothing, so an interceptor implements only what it needs.
#[async_trait]
pub trait Interceptor: Send + Sync + 'static {
    /// Once per write whose layers the pattern matches, before any `before_mutation`, with
    /// the mutation as the client sent it: refuse it, or add to it. (The rules file is an
    /// interceptor of this kind, registered on `**`.)
    async fn before_write(
        &self,
        _write: &WholeWrite<'_>,
        _ctx: &Context,
    ) -> Result<Addition, Error> {
        Ok(Addition::default())
    }

    /// Before a write commits, for each matching layer.
    async fn before_mutation(
        &self,
        _layer: &WriteLayer<'_>,
        _ctx: &Context,
    ) -> Result<Option<Mutation>, Error> {
        Ok(None)
    }

    /// Effects to run after the (final) write commits, for each matching layer.
    async fn effects(
        &self,
        _layer: &WriteLayer<'_>,
        _ctx: &Context,
    ) -> Result<Vec<NewEffect>, Error> {
        Ok(Vec::new())
    }

    /// Before a read of a path the pattern relates to: refuse with an error, or pass.
    async fn before_query(&self, _read: &ReadLayer<'_>, _ctx: &Context) -> Result<(), Error> {
        Ok(())
    }

    /// True when this interceptor answers reads ([`Interceptor::resolve_query`]): only then
    /// is that called — for a read of a matching path, and for the matching paths beneath a
    /// read of an ancestor, whose answer then holds them (a read of `stats` holds
    /// `stats/todos`; `users/$uid/summary` is in a read of `users` once per user there).
    fn answers_reads(&self) -> bool {
        false
    }

    /// Answers a read of a matching path instead of the store (a virtual path). Called only
    /// when [`Interceptor::answers_reads`] is true; `None` leaves the read to the store.
    async fn resolve_query(
        &self,
        _read: &ReadLayer<'_>,
        _ctx: &Context,
    ) -> Result<Option<Value>, Error> {
        Ok(None)
    }

    /// The paths whose changes may change what [`Interceptor::resolve_query`] answers for
    /// `read`: a live virtual path. A subscriber of the virtual path gets the answer again
    /// after commits that touch one of them (re-resolved on the subscriber's task, several
    /// commits at once under load, never in a writer's way), as the difference from the last.
    /// Empty (the default): the answer is read once, when the subscription starts.
    fn resolves_from(&self, _read: &ReadLayer<'_>) -> Vec<Path> {
        Vec::new()
    }

    /// True when this interceptor filters what readers see ([`Interceptor::filter_read`],
    /// [`Interceptor::filter_change`]); only then are those called, so the others cost
    /// nothing on every read and every pushed change.
    fn filters_reads(&self) -> bool {
        false
    }

    /// Removes from an answer (the value at `read.query.path`) what the caller may not see.
    async fn filter_read(
        &self,
        _read: &ReadLayer<'_>,
        value: Option<Value>,
        _ctx: &Context,
    ) -> Result<Option<Value>, Error> {
        Ok(value)
    }

    /// Removes from a change pushed to a subscriber of `query` what it may not see. An error
    /// ends the subscription (the subscriber may no longer read its path).
    async fn filter_change(
        &self,
        _query: &PathQuery,
        change: Mutation,
        _ctx: &Context,
        _kora: &Kora,
    ) -> Result<Mutation, Error> {
        Ok(change)
    }
}

/// An interceptor with the pattern it was registered for.
#[derive(Clone)]
pub(crate) struct Registered {
    pub pattern: Pattern,
    pub interceptor: std::sync::Arc<dyn Interceptor>,
}
