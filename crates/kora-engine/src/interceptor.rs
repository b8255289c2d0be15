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

/// Server-side logic on the write and read paths. Every method has a default that does
/// nothing, so an interceptor implements only what it needs.
#[async_trait]
pub trait Interceptor: Send + Sync + 'static {
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

    /// Answers a read of a matching path instead of the store (a virtual path).
    async fn resolve_query(
        &self,
        _read: &ReadLayer<'_>,
        _ctx: &Context,
    ) -> Result<Option<Value>, Error> {
        Ok(None)
    }
}

/// An interceptor with the pattern it was registered for.
#[derive(Clone)]
pub(crate) struct Registered {
    pub pattern: Pattern,
    pub interceptor: std::sync::Arc<dyn Interceptor>,
}
