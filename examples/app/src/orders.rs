//! A webhook after every new order: the effect is written to the outbox with the order, so it
//! is delivered even if the server stops right after the commit, retried with backoff while
//! the receiver fails, and dead-lettered after the last try.

use async_trait::async_trait;
use kora_engine::{Context, Error, Interceptor, WriteLayer};
use kora_store::NewEffect;
use serde_json::json;

pub struct OrderWebhook {
    pub url: String,
}

#[async_trait]
impl Interceptor for OrderWebhook {
    async fn effects(
        &self,
        layer: &WriteLayer<'_>,
        _ctx: &Context,
    ) -> Result<Vec<NewEffect>, Error> {
        if layer.data().await?.is_some() {
            return Ok(Vec::new());
        }
        let Some(order) = layer.new_data().await? else {
            return Ok(Vec::new());
        };
        Ok(vec![NewEffect {
            kind: "webhook".into(),
            payload: json!({
                "url": self.url,
                "body": {"event": "order_created", "id": layer.capture("id"), "order": order},
            }),
        }])
    }
}
