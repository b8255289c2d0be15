//! A followed query: its current value, and a stream of what happens to it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;
use kora_core::{PathQuery, Value};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::error::ClientError;
use crate::shared::{Shared, Update};

/// A subscription. As a [`Stream`] it yields each [`Update`] in order; [`Subscription::value`]
/// reads what it holds now (from the cache, so offline too).
pub struct Subscription {
    shared: Arc<Shared>,
    name: String,
    query: PathQuery,
    updates: mpsc::Receiver<Update>,
}

impl Subscription {
    pub(crate) fn new(
        shared: Arc<Shared>,
        name: String,
        query: PathQuery,
        updates: mpsc::Receiver<Update>,
    ) -> Self {
        Subscription {
            shared,
            name,
            query,
            updates,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn query(&self) -> &PathQuery {
        &self.query
    }

    /// The current value, writes not yet acknowledged included; `None` when nothing is there
    /// (or the server has not answered yet: see [`Subscription::is_synced`]).
    pub async fn value(&self) -> Result<Option<Value>, ClientError> {
        Ok(self.shared.cache.read(&self.query).await?.flatten())
    }

    /// [`Subscription::value`] into a type of your own.
    pub async fn value_as<T: DeserializeOwned>(&self) -> Result<Option<T>, ClientError> {
        match self.value().await? {
            Some(value) => Ok(Some(serde_json::from_value(value)?)),
            None => Ok(None),
        }
    }

    /// True once the server has sent this subscription's data (in this run or an earlier one).
    pub async fn is_synced(&self) -> bool {
        self.shared
            .cache
            .subscription(&self.name)
            .await
            .is_some_and(|f| f.synced)
    }

    /// The next update; `None` once the client is closed.
    pub async fn next_update(&mut self) -> Option<Update> {
        self.updates.recv().await
    }
}

impl Stream for Subscription {
    type Item = Update;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Update>> {
        self.updates.poll_recv(cx)
    }
}
