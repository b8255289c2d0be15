//! Effects: work that runs after a commit — a webhook, a NATS publish, a Rust function.
//!
//! Effects are written to the store's outbox in the same transaction as the data, so a
//! committed write never loses its effects. The runner claims due effects with a lease,
//! runs each with a timeout, and then completes it, schedules a retry with exponential
//! backoff, or — after the last try — moves it to the dead letters, where it can be inspected
//! and revived. A runner that dies mid-effect loses its lease and another claims the effect:
//! every effect runs at least once.

use std::time::Duration;

use async_trait::async_trait;
use kora_core::backoff::Backoff;
use kora_core::stamp::wall_millis;
use kora_store::Effect;
use serde_json::json;

use crate::kora::Kora;

/// Runs effects of one kind. An `Err` is a failed try (retried later).
#[async_trait]
pub trait EffectRunner: Send + Sync + 'static {
    async fn run(&self, effect: &Effect) -> Result<(), String>;
}

/// Any `async fn(Effect) -> Result<(), String>` closure is a runner: the Rust function effect.
pub struct FnRunner<F>(pub F);

#[async_trait]
impl<F, Fut> EffectRunner for FnRunner<F>
where
    F: Fn(Effect) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    async fn run(&self, effect: &Effect) -> Result<(), String> {
        (self.0)(effect.clone()).await
    }
}

/// The built-in `webhook` effect: POSTs JSON to a URL; any 2xx answer is success.
///
/// Payload: `{"url": "...", "body": <any JSON>, "headers": {"name": "value"}}`. Without
/// `body`, the whole effect (id, commit sequence, payload) is posted, so an interceptor in
/// any language can live behind a webhook.
pub struct WebhookRunner {
    client: reqwest::Client,
}

impl WebhookRunner {
    pub fn new() -> Self {
        WebhookRunner {
            client: reqwest::Client::new(),
        }
    }
}

impl Default for WebhookRunner {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl EffectRunner for WebhookRunner {
    async fn run(&self, effect: &Effect) -> Result<(), String> {
        let url = effect
            .payload
            .get("url")
            .and_then(|u| u.as_str())
            .ok_or("webhook effect without a \"url\"")?;
        let body = effect.payload.get("body").cloned().unwrap_or_else(
            || json!({"id": effect.id, "seq": effect.seq, "payload": effect.payload}),
        );
        let mut request = self
            .client
            .post(url)
            .header("kora-effect-id", effect.id.to_string())
            .json(&body);
        if let Some(headers) = effect.payload.get("headers").and_then(|h| h.as_object()) {
            for (name, value) in headers {
                if let Some(value) = value.as_str() {
                    request = request.header(name.as_str(), value);
                }
            }
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}", response.status()))
        }
    }
}

/// The pause before try number `attempt + 1` (after `attempt` failures, 1-based): `base`
/// after the first, doubling up to `max` (`kora_core::backoff`, without jitter: effects are
/// claimed by time, so simultaneous retries are already spread by their commit times).
pub fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    Backoff::new(base, max).ceiling(attempt.saturating_sub(1))
}

/// The runner loop: claims due effects and runs them until the engine shuts down.
pub(crate) async fn run(kora: Kora) {
    let config = kora.inner.config.effects.clone();
    loop {
        let claimed = kora
            .inner
            .store
            .claim_effects(kora_store::Claim {
                now_ms: wall_millis(),
                lease_ms: config.lease.as_millis() as u64,
                limit: config.batch,
            })
            .await;
        let effects = match claimed {
            Ok(effects) => effects,
            Err(error) => {
                tracing::warn!(%error, "claiming effects");
                Vec::new()
            }
        };
        let busy = !effects.is_empty();
        let mut running = tokio::task::JoinSet::new();
        for effect in effects {
            let kora = kora.clone();
            running.spawn(async move { run_one(&kora, effect).await });
        }
        while running.join_next().await.is_some() {}
        if !busy {
            let _ = tokio::time::timeout(config.poll, kora.inner.effects_due.notified()).await;
        }
    }
}

async fn run_one(kora: &Kora, effect: Effect) {
    let config = &kora.inner.config.effects;
    let metrics = &kora.inner.metrics;
    let store = &kora.inner.store;
    let outcome = match kora.inner.runners.get(&effect.kind) {
        None => Err(format!("no runner for effects of kind {:?}", effect.kind)),
        Some(runner) => match tokio::time::timeout(config.timeout, runner.run(&effect)).await {
            Ok(result) => result,
            Err(_) => Err(format!("timed out after {:?}", config.timeout)),
        },
    };
    let recorded = match outcome {
        Ok(()) => {
            metrics.effects_run.inc();
            store.complete_effect(effect.id).await
        }
        Err(error) if effect.attempts + 1 >= config.max_attempts => {
            metrics.effects_dead.inc();
            tracing::warn!(id = effect.id, kind = effect.kind, %error, "effect out of tries");
            store.bury_effect(effect.id, &error).await
        }
        Err(error) => {
            metrics.effects_failed.inc();
            let pause = backoff(effect.attempts + 1, config.base_backoff, config.max_backoff);
            let at = wall_millis() + pause.as_millis() as u64;
            store.retry_effect(effect.id, at, &error).await
        }
    };
    if let Err(error) = recorded {
        tracing::warn!(id = effect.id, %error, "recording an effect's outcome");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        let pauses: Vec<u128> = (1..=6).map(|a| backoff(a, base, max).as_millis()).collect();
        assert_eq!(pauses, [100, 200, 400, 800, 1000, 1000]);
    }
}
