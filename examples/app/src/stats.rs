//! A live virtual path: `stats/todos` is not stored; `resolve_query` computes it on each read,
//! and a subscriber gets it again after each change to `todos` (`resolves_from`).

use async_trait::async_trait;
use kora_core::{Path, Value};
use kora_engine::{Context, Error, Interceptor, ReadLayer};
use serde_json::json;

pub struct TodoStats;

#[async_trait]
impl Interceptor for TodoStats {
    fn answers_reads(&self) -> bool {
        true
    }

    fn resolves_from(&self, _read: &ReadLayer<'_>) -> Vec<Path> {
        Path::parse("todos").into_iter().collect()
    }

    async fn resolve_query(
        &self,
        read: &ReadLayer<'_>,
        _ctx: &Context,
    ) -> Result<Option<Value>, Error> {
        let todos = read.kora.read_value(&Path::parse("todos")?).await?;
        let (total, done) = match todos {
            Some(Value::Object(todos)) => {
                let done = todos
                    .values()
                    .filter(|t| t.get("done") == Some(&json!(true)))
                    .count();
                (todos.len(), done)
            }
            _ => (0, 0),
        };
        Ok(Some(
            json!({"total": total, "done": done, "open": total - done}),
        ))
    }
}
