//! Handlers: named commands a client calls (`call`, with a reply) or casts (`cast`, without).
//! A handler can read the tree, write through the pipeline, and change the connection's
//! state — a `login` handler sets the user that later interceptors see.

use async_trait::async_trait;
use kora_core::Value;

use crate::context::Context;
use crate::error::Error;
use crate::kora::Kora;

#[async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, args: Value, ctx: &Context, kora: &Kora) -> Result<Value, Error>;
}

/// Any `async fn(args, ctx, kora)` closure is a handler.
pub struct FnHandler<F>(pub F);

#[async_trait]
impl<F, Fut> Handler for FnHandler<F>
where
    F: Fn(Value, Context, Kora) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Value, Error>> + Send + 'static,
{
    async fn handle(&self, args: Value, ctx: &Context, kora: &Kora) -> Result<Value, Error> {
        (self.0)(args, ctx.clone(), kora.clone()).await
    }
}
