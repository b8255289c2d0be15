//! The conformance suite against `memory:`.

mod conformance;

use std::sync::Arc;

use kora_store::{MemoryStore, Store};

fn factory(
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<conformance::Opened>> + Send>> {
    Box::pin(async {
        Some(conformance::Opened::new(
            Arc::new(MemoryStore::new()) as Arc<dyn Store>
        ))
    })
}

conformance_tests!("memory", factory);
