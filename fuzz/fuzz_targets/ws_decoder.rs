//! Fuzzes the WebSocket message decoder: what the server does with a text frame before it
//! touches the engine.
//!
//! Input: arbitrary bytes, used when UTF-8 (text frames are UTF-8; binary frames are refused
//! before decoding). `kora_server::protocol::parse` decodes the frame; a refused frame must
//! still yield an error reply. A decoded request goes as far as the connection takes it
//! without a store: a `query`'s paths become `PathQuery`s (`QueryPath::to_query` with the
//! default limits) and are answered from a small reference tree, where the stamped tree's
//! answer must equal a naive filter of the plain tree (law 5 of kora-core's laws); a
//! `mutate`'s mutation is parsed as the server parses it. Nothing may panic.
#![no_main]

use std::sync::OnceLock;

use kora_core::{Limits, Mutation, Path, Query, Stamp, Tree};
use kora_server::protocol::{self, Request};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};

/// Most query paths answered per frame.
const MAX_PARTS: usize = 8;

static DATA: OnceLock<(Tree, Map<String, Value>)> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let request = match protocol::parse(text) {
        Ok(request) => request,
        Err((id, error)) => {
            // The error reply echoes the id when one could be read.
            let reply = protocol::error(id.as_ref(), &error);
            assert!(
                serde_json::from_str::<Value>(&reply).is_ok(),
                "an error reply is JSON"
            );
            return;
        }
    };
    let id = request.id().cloned();
    let limits = Limits::default();
    match request {
        Request::Query { paths, .. } => {
            let parts: Vec<_> = paths
                .iter()
                .inspect(|p| {
                    let _ = p.name();
                })
                .filter_map(|p| p.to_query(&limits).ok())
                .take(MAX_PARTS)
                .collect();
            for part in &parts {
                let _ = part.is_ranged();
                let _ = part.is_empty_range();
            }
            let (tree, plain) = DATA.get_or_init(data_tree);
            for part in &parts {
                let _ = tree.select(part);
            }
            let query = Query { paths: parts };
            assert_eq!(
                tree.query(&query),
                query.select(plain),
                "law 5 for {query:?}"
            );
        }
        Request::Mutate { mutation, .. } => {
            if let Ok(m) = Mutation::from_json_with(&mutation, &limits) {
                let _ = m.leaf_count();
                let _ = m.to_json();
            }
        }
        Request::Unsubscribe { sub, .. } => {
            let _ = Path::parse(&sub);
        }
        Request::Call { .. }
        | Request::Cast { .. }
        | Request::Ping { .. }
        | Request::Auth { .. } => {}
    }
    if let Some(id) = id {
        let _ = protocol::result(&id, json!("pong"));
    }
});

/// A small tree to answer queries from, as the stamped tree and as plain JSON.
fn data_tree() -> (Tree, Map<String, Value>) {
    let writes = [
        json!({"merge": {"todos": {"t1": {"text": "a", "done": false}, "t2": {"text": "b"}, "t3": 3}}}),
        json!({"merge": {"users": {"jack": {"profile": {"name": "Jack", "age": 40}}}}}),
        json!({"merge": {"feed": {"01": "x", "02": "y", "03": "z", "10": {"deep": {"er": 1}}}}}),
        json!({"delete": {"todos": {"t2": 1}}, "merge": {"a": {"b": {"c": [1, 2]}}}}),
    ];
    let mut tree = Tree::new();
    for (i, write) in writes.iter().enumerate() {
        let m = Mutation::from_json(write).expect("a valid mutation");
        let _ = tree.apply(Stamp::new(1 + i as u64, 0, 1), &m);
    }
    let Value::Object(plain) = tree.to_value() else {
        unreachable!("the root is an object")
    };
    (tree, plain)
}
