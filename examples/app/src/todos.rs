//! "Todo created": a new todo gets `created` (the write's time) and `user` (who is logged in
//! on the connection, set by the `login` handler); a todo without `text` is refused.

use async_trait::async_trait;
use kora_core::{Mutation, Value};
use kora_engine::{Context, Error, Interceptor, Kora, WriteLayer};
use serde_json::json;

pub struct TodoCreated;

#[async_trait]
impl Interceptor for TodoCreated {
    async fn before_mutation(
        &self,
        layer: &WriteLayer<'_>,
        ctx: &Context,
    ) -> Result<Option<Mutation>, Error> {
        let Some(todo) = layer.new_data().await? else {
            return Ok(None); // deleted
        };
        if !todo.get("text").is_some_and(Value::is_string) {
            return Err(Error::validation_failed("a todo needs a text"));
        }
        if layer.data().await?.is_some() {
            return Ok(None); // not new
        }
        let mut fields = json!({"created": layer.stamp.millis()});
        if let Some(user) = ctx.user() {
            fields["user"] = Value::from(user);
        }
        // Interceptors see their own additions in the next round: add them once.
        let added = fields
            .as_object()
            .is_some_and(|f| f.iter().all(|(k, v)| todo.get(k) == Some(v)));
        if added {
            return Ok(None);
        }
        Ok(Some(Mutation::merge(layer.path, fields)?))
    }
}

/// `login {"user": "jack"}`: remembers the user on the connection.
pub async fn login(args: Value, ctx: Context, _kora: Kora) -> Result<Value, Error> {
    let user = args
        .get("user")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| Error::bad_request("login needs a \"user\""))?;
    ctx.set("user", Value::from(user));
    Ok(json!({"user": user}))
}
