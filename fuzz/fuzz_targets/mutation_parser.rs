//! Fuzzes the data model's parsers: the mutation wire shape, path text and key bytes.
//!
//! Input: arbitrary bytes, tried three ways:
//!
//! - as a key (`kora_core::key::decode`): a key that decodes must encode back to itself;
//! - as path text (`Path::parse`, when UTF-8): a path that parses must round-trip through
//!   its text and its key;
//! - as JSON: an object is one mutation, an array is a sequence of them (the first few
//!   elements that parse). Each mutation that parses (`Mutation::from_json`) must round-trip
//!   through `to_json` and through serde; `layers`, `restrict` and `combine` must not panic;
//!   and the laws of `crates/kora-core/tests/laws.rs` must hold for the sequence: the stamped
//!   `Tree` applied in stamp order equals plain sequential application (law 1), in any order
//!   (law 1), its effects replayed reproduce it (law 7), and `combine` of the sequence
//!   applies as the sequence does (law 2).
//!
//! Nothing may panic; an invariant that fails is a bug in kora-core and panics on purpose.
#![no_main]

use kora_core::{key, Mutation, Path, Stamp, Tree};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

/// Most mutations taken from one array input: enough for the laws, bounded in time.
const MAX_MUTATIONS: usize = 6;

fuzz_target!(|data: &[u8]| {
    keys(data);
    if let Ok(text) = std::str::from_utf8(data) {
        paths(text);
    }
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        mutations(data, &value);
    }
});

fn keys(data: &[u8]) {
    if let Ok(path) = key::decode(data) {
        assert_eq!(
            key::encode(&path),
            data,
            "a decoded key encodes back to itself"
        );
        if let Some(end) = key::subtree_end(data) {
            assert!(end.as_slice() > data, "a subtree ends after its start");
        }
    }
}

fn paths(text: &str) {
    if let Ok(path) = Path::parse(text) {
        let shown = path.to_string();
        assert_eq!(
            Path::parse(&shown).as_ref(),
            Ok(&path),
            "path text round-trips"
        );
        let encoded = key::encode(&path);
        assert_eq!(
            key::decode(&encoded).as_ref(),
            Ok(&path),
            "path key round-trips"
        );
        if let Some(parent) = path.parent() {
            assert!(
                path.starts_with(&parent) && parent < path,
                "a parent sorts first"
            );
        }
    }
}

fn mutations(data: &[u8], value: &Value) {
    let parsed = Mutation::from_json(value);
    // The serde impl and the Value parser agree.
    let via_serde = serde_json::from_slice::<Mutation>(data);
    assert_eq!(
        parsed.is_ok(),
        via_serde.is_ok(),
        "from_json and serde agree on {value}"
    );
    if let (Ok(a), Ok(b)) = (&parsed, &via_serde) {
        assert_eq!(a, b, "from_json and serde parse {value} alike");
    }

    let sequence: Vec<Mutation> = match value {
        Value::Object(_) => parsed.into_iter().collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(|item| Mutation::from_json(item).ok())
            .take(MAX_MUTATIONS)
            .collect(),
        _ => Vec::new(),
    };
    for m in &sequence {
        one(m);
    }
    laws(&sequence);
}

/// Round-trips and total functions on one mutation.
fn one(m: &Mutation) {
    let json = m.to_json();
    let back = Mutation::from_json(&json).expect("to_json re-parses");
    assert_eq!(&back, m, "to_json round-trips");
    let text = serde_json::to_string(m).expect("a mutation serializes");
    let back: Mutation = serde_json::from_str(&text).expect("serialized text re-parses");
    // Exact, floats included: the workspace enables serde_json's `float_roundtrip` (see
    // fuzz/artifacts-found/mutation_parser-float-roundtrip.md).
    assert_eq!(&back, m, "serde round-trips");

    let _ = m.is_empty();
    let _ = m.leaf_count();
    let mut touched = Vec::new();
    for layer in m.layers() {
        let _ = layer.deletes_all();
        if let Some(relative) = layer.relative() {
            // A layer written as a mutation is itself a valid mutation.
            let _ = relative.nest(&layer.path).to_json();
        }
        touched.push(layer.path.clone());
    }
    for path in touched.iter().take(8) {
        let _ = m.restrict(path).to_json();
        let _ = m.restrict_range(path, Some("a"), Some("m")).to_json();
    }

    // combine with itself applies as applying twice (law 2 with a = b).
    let twice = m.clone().combine(m.clone());
    let mut sequential = Map::new();
    m.apply_to(&mut sequential);
    m.apply_to(&mut sequential);
    let mut combined = Map::new();
    twice.apply_to(&mut combined);
    assert_eq!(
        combined, sequential,
        "apply(combine(m, m)) == apply(m); apply(m)"
    );

    let mut tree = Tree::new();
    let _ = tree.apply(Stamp::new(1, 0, 1), m);
    let _ = tree.apply(Stamp::new(1, 0, 1), m);
    let _ = tree.leaf_count();
}

/// The laws over a sequence, stamped 1, 2, … in order.
fn laws(sequence: &[Mutation]) {
    if sequence.is_empty() {
        return;
    }
    let stamp = |i: usize| Stamp::new(1_000 + i as u64, 0, 7);

    // Stamped tree in stamp order, with effects replayed onto a plain tree (law 7).
    let mut tree = Tree::new();
    let mut replayed = Map::new();
    let mut sequential = Map::new();
    for (i, m) in sequence.iter().enumerate() {
        let effect = tree.apply(stamp(i), m).to_mutation(m);
        effect.apply_to(&mut replayed);
        m.apply_to(&mut sequential);
        assert_eq!(
            Value::Object(replayed.clone()),
            tree.to_value(),
            "law 7: effects replayed reproduce the tree (after {i})"
        );
    }
    // In stamp order the stamped tree is plain sequential application (law 1).
    assert_eq!(
        tree.to_value(),
        Value::Object(sequential.clone()),
        "law 1: in order"
    );

    // Any arrival order, with a duplicate, converges (law 1).
    let mut reversed = Tree::new();
    for (i, m) in sequence.iter().enumerate().rev() {
        let _ = reversed.apply(stamp(i), m);
    }
    let _ = reversed.apply(stamp(0), &sequence[0]);
    assert_eq!(reversed.to_value(), tree.to_value(), "law 1: any order");

    // combine of the sequence applies as the sequence (law 2).
    let combined = sequence
        .iter()
        .cloned()
        .reduce(|a, b| a.combine(b))
        .expect("a non-empty sequence");
    let mut plain = Map::new();
    combined.apply_to(&mut plain);
    assert_eq!(
        plain, sequential,
        "law 2: apply(combine(...)) == apply in sequence"
    );
}
