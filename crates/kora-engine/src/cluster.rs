//! The cluster bus: several nodes in front of one shared store, each commit carried to every
//! node over NATS.
//!
//! Sequence numbers come from the shared store, so they are global: every node's feed
//! (`crate::feed`) delivers the same changes in the same order, whichever node committed
//! them, and a client may resume from sequence N on any node.
//!
//! - After a commit is durable, its node publishes `{seq, stamp, mutation}` on the subject.
//! - Every node subscribes and hands what it receives to its feed, which drops duplicates
//!   and holds back changes until every earlier sequence has passed.
//! - NATS is only the fast path. The feed fills gaps from the store's change log, and the
//!   catch-up loop (`crate::feed::fill_gaps`) notices when the store is ahead of the feed —
//!   NATS down, messages lost while disconnected — and reads the missing changes from the
//!   log. Writes never wait for NATS: when it is down, nodes keep committing and catch up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_util::StreamExt;
use kora_store::Change;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::kora::Kora;

/// Where the bus is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterConfig {
    /// NATS server URL(s), comma-separated (`nats://127.0.0.1:4222`).
    pub nats: String,
    /// The subject commits are published on. Nodes sharing a store share a subject.
    pub subject: String,
}

/// The subject used when none is configured.
pub const DEFAULT_SUBJECT: &str = "kora.commits";

impl ClusterConfig {
    pub fn new(nats: impl Into<String>) -> Self {
        ClusterConfig {
            nats: nats.into(),
            subject: DEFAULT_SUBJECT.to_string(),
        }
    }
}

/// A node's connection to the bus.
pub(crate) struct Bus {
    client: async_nats::Client,
    subject: String,
    connected: Arc<AtomicBool>,
}

impl Bus {
    /// Connects (in the background: a node starts while NATS is down, and reconnects
    /// forever). Own messages are not echoed back: own commits reach the feed directly.
    pub async fn connect(config: &ClusterConfig) -> Result<Bus, Error> {
        let connected = Arc::new(AtomicBool::new(false));
        let flag = connected.clone();
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .no_echo()
            .max_reconnects(None)
            .event_callback(move |event| {
                let flag = flag.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            flag.store(true, Ordering::Release);
                            tracing::info!("connected to the cluster bus");
                        }
                        async_nats::Event::Disconnected => {
                            flag.store(false, Ordering::Release);
                            tracing::warn!("disconnected from the cluster bus; catching up from the change log");
                        }
                        other => tracing::debug!(%other, "cluster bus"),
                    }
                }
            })
            .connect(config.nats.as_str())
            .await
            .map_err(|e| Error::new(crate::Code::Unavailable, format!("NATS {}: {e}", config.nats)))?;
        Ok(Bus {
            client,
            subject: config.subject.clone(),
            connected,
        })
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// Publishes a durable commit. Never blocks a writer for long: a bus that is down only
    /// delays other nodes until they catch up from the log.
    pub async fn publish(&self, change: &Change) {
        let Ok(payload) = serde_json::to_vec(change) else {
            return;
        };
        if let Err(error) = self
            .client
            .publish(self.subject.clone(), payload.into())
            .await
        {
            tracing::debug!(%error, "publishing a commit");
        }
    }
}

/// Receives other nodes' commits and hands them to the feed.
pub(crate) async fn receive(kora: Kora) {
    let Some(bus) = kora.inner.bus.as_ref() else {
        return;
    };
    let mut subscription = loop {
        match bus.client.subscribe(bus.subject.clone()).await {
            Ok(subscription) => break subscription,
            Err(error) => {
                tracing::warn!(%error, "subscribing to the cluster bus; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    };
    while let Some(message) = subscription.next().await {
        match serde_json::from_slice::<Change>(&message.payload) {
            Ok(change) => {
                kora.inner.metrics.cluster_received.inc();
                kora.inner.feed.push(change);
            }
            Err(error) => tracing::warn!(%error, "an undecodable message on the cluster bus"),
        }
    }
}
