//! Queries ordered by a child value (`PathQuery::by`): their window through a declared
//! index, or by reading and sorting the whole collection when none is declared.

use kora_core::order::{self, ByChild};
use kora_core::PathQuery;
use kora_store::Seq;
use serde_json::{Map, Value};

use super::{Key, Seek, Span};
use crate::{Context, Error, Kora};

/// The index span of `query`, whose bounds `admits` applies exactly.
pub fn span<'a>(
    query: &PathQuery,
    by: &ByChild,
    admits: &'a dyn Fn(&str, Option<&Value>) -> bool,
) -> Span<'a> {
    Span {
        start: by.from.clone().map(|value| Seek {
            value,
            key: query.min.clone().map_or(Key::First, Key::Name),
        }),
        end: by.to.clone().map(|value| Seek {
            value,
            key: query.max.clone().map_or(Key::Last, Key::Name),
        }),
        limit: query.limit,
        from_end: query.reverse,
        admits,
    }
}

impl Kora {
    /// The window of `query` (ordered by `by`) as `ctx` may read it, with the sequence it was
    /// read at. Read filters judge the children before the window is taken; where one
    /// applies, the whole collection is read even when an index is declared, so a filtered
    /// child never takes a place in the window.
    pub(crate) async fn read_window(
        &self,
        ctx: &Context,
        query: &PathQuery,
        by: &ByChild,
    ) -> Result<(Seq, Option<Value>), Error> {
        by.check(query).map_err(Error::bad_request)?;
        let whole = query.whole();
        let filtered = self.is_filtered(&query.path);
        let index = match filtered {
            true => None,
            false => {
                let indexes = &self.inner.indexes;
                indexes.get(self, &query.path, &by.segments()).await?
            }
        };
        let (seq, node) = match index {
            Some(index) => {
                let admits =
                    |key: &str, value: Option<&Value>| order::admits(query, by, key, value);
                let keys = {
                    let mut index = index.lock().await;
                    index.catch_up().await;
                    index.window(&span(query, by, &admits))
                };
                self.read_children(&query.path, keys).await?
            }
            None => {
                let mut snapshot = self.inner.store.read(std::slice::from_ref(&whole)).await?;
                (snapshot.seq, snapshot.values.pop().flatten())
            }
        };
        let node = self.filter_answer(ctx, &whole, node).await?;
        let window = order::select(query, by, node.as_ref());
        if !self.answers_beneath(&query.path) {
            return Ok((seq, window));
        }
        // The virtual paths beneath the children the window selected, filtered in turn.
        let window = self.include_virtual(ctx, query, window).await?;
        Ok((seq, self.filter_answer(ctx, query, window).await?))
    }

    /// The children `keys` of `path`, read in one snapshot, as one node.
    async fn read_children(
        &self,
        path: &kora_core::Path,
        keys: Vec<String>,
    ) -> Result<(Seq, Option<Value>), Error> {
        let mut parts = Vec::with_capacity(keys.len());
        for key in &keys {
            parts.push(PathQuery::new(path.child(key.as_str())?));
        }
        let snapshot = self.inner.store.read(&parts).await?;
        let children: Map<String, Value> = keys
            .into_iter()
            .zip(snapshot.values)
            .filter_map(|(key, value)| Some((key, value?)))
            .collect();
        Ok((
            snapshot.seq,
            (!children.is_empty()).then_some(Value::Object(children)),
        ))
    }
}
