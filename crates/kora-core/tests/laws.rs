//! The algebraic laws of the data model, property-tested (1,000 cases each).
//!
//! 1. Convergence: any permutation of a set of stamped mutations, with duplicates, gives the
//!    same tree — and that tree is the one the rule of docs/design.md §4 defines (checked against a
//!    literal transcription, `spec_tree`) and the one plain sequential application in stamp
//!    order gives.
//! 2. `apply(combine(a, b)) == apply(b) ∘ apply(a)` for unstamped mutations.
//! 3. Key encoding preserves order and the prefix property for arbitrary paths.
//! 4. `Path` text and `Mutation` JSON round-trip.
//! 5. A query's answer equals a naive filter of the full tree.
//! 6. A subscriber's restriction of a mutation changes its view exactly as the mutation does.
//! 7. The effect a stamped apply returns, applied without stamps in arrival order, reproduces
//!    the visible tree after every step (what plain subscribers rely on).
//! 8. Flat records (what stores keep), loaded only through each batch's read set, give the
//!    reference tree's answers — visible tree, effects and queries — for any arrival order.
//! 9. Paging through the leaves under a path (an export), from any cursor and with any page
//!    size, lists exactly the leaves of the value there, in key order.

use std::collections::BTreeMap;

use kora_core::key;
use kora_core::records::{Assembler, ReadSet, Record, Records};
use kora_core::{Mutation, Path, PathQuery, Query, Stamp, Tree, Value};
use proptest::prelude::*;
use serde_json::{json, Map};

/// 1,000 cases per law; `PROPTEST_CASES` raises it for a longer search.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0u32)
        .max(1000);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

use kora_core::query::place;
use kora_core::testing::{mutation, path_query, plain_tree, stamped_set};

/// Any valid segment: a small alphabet (prefixes of each other) or arbitrary unicode without
/// `/` and control characters.
fn any_segment() -> impl Strategy<Value = String> {
    prop_oneof!["[ab]{1,3}", "[^/\\p{Cc}]{1,6}",]
}

fn any_path() -> impl Strategy<Value = Path> {
    prop::collection::vec(any_segment(), 0..5)
        .prop_map(|s| Path::from_segments(s).expect("valid path"))
}

// ---------- the rule of docs/design.md §4, transcribed literally ----------

fn spec_tree(writes: &[(Stamp, Mutation)]) -> Value {
    let mut tombstones: Vec<(Vec<String>, Stamp)> = Vec::new();
    let mut leaves: Vec<(Vec<String>, Stamp, Value)> = Vec::new();
    let mut markers: Vec<(Vec<String>, Stamp)> = Vec::new();
    for (t, m) in writes {
        for path in m.deletes().paths() {
            tombstones.push((path, *t));
        }
        m.for_each_write(|path, value| {
            let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
            match value {
                Some(value) => {
                    tombstones.push((path.clone(), *t));
                    leaves.push((path, *t, value.clone()));
                }
                None => markers.push((path, *t)),
            }
        });
    }
    let mut tree = Map::new();
    for (path, t, value) in &leaves {
        let covered = tombstones
            .iter()
            .any(|(p, ts)| path.starts_with(p) && ts > t);
        // A marker at B is a write strictly beneath B, so it hides leaves at B and above.
        let branched = leaves
            .iter()
            .any(|(q, tq, _)| q.len() > path.len() && q.starts_with(path) && tq > t)
            || markers.iter().any(|(b, tb)| b.starts_with(path) && tb > t);
        if !covered && !branched {
            place(&mut tree, path, value.clone());
        }
    }
    Value::Object(tree)
}

fn apply_in(order: &[usize], writes: &[(Stamp, Mutation)]) -> Tree {
    let mut tree = Tree::new();
    for &i in order {
        tree.apply(writes[i].0, &writes[i].1);
    }
    tree
}

/// A store's key space in miniature: records loaded through read sets, changes written back.
#[derive(Default)]
struct FlatStore {
    records: BTreeMap<Vec<u8>, Record>,
}

impl FlatStore {
    /// Applies a batch the way a store does: read set, load, apply each, write changes.
    fn apply_batch(&mut self, batch: &[(Stamp, Mutation)]) -> Vec<Mutation> {
        let mut set = ReadSet::default();
        for (_, m) in batch {
            set.add(m);
        }
        let mut loaded = Records::new();
        for k in &set.points {
            if let Some(r) = self.records.get(k) {
                loaded.load(k.clone(), r.clone());
            }
        }
        for outer in set.outer_subtrees() {
            let end = key::subtree_end(outer);
            for (k, r) in self.records.range(outer.to_vec()..) {
                if end.as_ref().is_some_and(|e| k >= e) {
                    break;
                }
                loaded.load(k.clone(), r.clone());
            }
        }
        let effects = batch.iter().map(|(t, m)| loaded.apply(*t, m)).collect();
        for (k, r) in loaded.take_changes() {
            match r {
                Some(r) => self.records.insert(k, r),
                None => self.records.remove(&k),
            };
        }
        effects
    }

    fn select(&self, part: &PathQuery) -> Option<Value> {
        let mut asm = Assembler::new(part);
        if let Some(own) = self.records.get(asm.key()) {
            if asm.push_own(own) {
                return asm.finish();
            }
        }
        let (start, end) = asm.children_range();
        let in_range = self
            .records
            .range(start..)
            .take_while(|(k, _)| end.as_ref().is_none_or(|e| *k < e));
        let rows: Vec<_> = if part.reverse {
            in_range.collect::<Vec<_>>().into_iter().rev().collect()
        } else {
            in_range.collect()
        };
        for (k, r) in rows {
            if !asm.push(k, r).unwrap() {
                break;
            }
        }
        asm.finish()
    }

    fn to_value(&self) -> Value {
        self.select(&PathQuery::new(Path::root()))
            .unwrap_or_else(|| json!({}))
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn law8_flat_records_agree_with_the_tree_in_any_order_and_batching(
        writes in stamped_set(),
        extra in prop::collection::vec(0usize..64, 0..6),
        cuts in prop::collection::vec(1usize..4, 1..8),
        parts in prop::collection::vec(path_query(), 1..4),
    ) {
        let n = writes.len();
        let order: Vec<(Stamp, Mutation)> = (0..n).rev().chain(extra.iter().map(|i| i % n))
            .map(|i| writes[i].clone()).collect();
        let mut tree = Tree::new();
        let mut flat = FlatStore::default();
        let mut plain = Map::new();
        let mut at = 0;
        for cut in cuts.iter().cycle() {
            if at >= order.len() { break; }
            let batch = &order[at..(at + cut).min(order.len())];
            at += batch.len();
            for effect in flat.apply_batch(batch) {
                effect.apply_to(&mut plain);
            }
            for (t, m) in batch {
                tree.apply(*t, m);
            }
            prop_assert_eq!(&flat.to_value(), &tree.to_value());
            prop_assert_eq!(&Value::Object(plain.clone()), &tree.to_value());
        }
        for part in &parts {
            prop_assert_eq!(flat.select(part), tree.select(part), "{:?}", part);
        }
    }

    #[test]
    fn law1_any_order_with_duplicates_converges_to_the_rule(
        writes in stamped_set(),
        order in Just(()).prop_flat_map(|_| prop::collection::vec(0usize..64, 0..12)),
        seed in any::<u64>(),
    ) {
        let n = writes.len();
        // A permutation of all writes (from `seed`), then extra duplicates (from `order`).
        let mut perm: Vec<usize> = (0..n).collect();
        let mut s = seed;
        for i in (1..n).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            perm.swap(i, (s >> 33) as usize % (i + 1));
        }
        perm.extend(order.iter().map(|i| i % n));

        let mut by_stamp: Vec<usize> = (0..n).collect();
        by_stamp.sort_by_key(|&i| writes[i].0);
        let canonical = apply_in(&by_stamp, &writes).to_value();
        let shuffled = apply_in(&perm, &writes).to_value();
        prop_assert_eq!(&shuffled, &canonical);
        prop_assert_eq!(&canonical, &spec_tree(&writes));

        let mut sequential = Map::new();
        for &i in &by_stamp {
            writes[i].1.apply_to(&mut sequential);
        }
        prop_assert_eq!(&canonical, &Value::Object(sequential));
    }

    #[test]
    fn law7_effects_replayed_in_arrival_order_reproduce_the_tree(
        writes in stamped_set(),
        extra in prop::collection::vec(0usize..64, 0..6),
    ) {
        let n = writes.len();
        let order: Vec<usize> = (0..n).rev().chain(extra.iter().map(|i| i % n)).collect();
        let mut tree = Tree::new();
        let mut plain = Map::new();
        for &i in &order {
            let effect = tree.apply(writes[i].0, &writes[i].1).to_mutation(&writes[i].1);
            effect.apply_to(&mut plain);
            prop_assert_eq!(&Value::Object(plain.clone()), &tree.to_value(), "after {:?}", effect);
        }
    }

    #[test]
    fn law2_apply_of_combine_is_apply_in_sequence(
        tree in plain_tree(), a in mutation(), b in mutation(),
    ) {
        let mut sequential = tree.clone();
        a.apply_to(&mut sequential);
        b.apply_to(&mut sequential);
        let mut combined = tree;
        a.clone().combine(b).apply_to(&mut combined);
        prop_assert_eq!(combined, sequential);
    }

    #[test]
    fn law3_key_encoding_preserves_order_and_prefixes(p in any_path(), q in any_path()) {
        let (kp, kq) = (key::encode(&p), key::encode(&q));
        prop_assert_eq!(p.cmp(&q), kp.cmp(&kq));
        let in_subtree = kq >= kp && key::subtree_end(&kp).is_none_or(|end| kq < end);
        prop_assert_eq!(q.starts_with(&p), in_subtree);
        prop_assert_eq!(key::decode(&kp).unwrap(), p);
    }

    #[test]
    fn law4_path_text_and_mutation_json_round_trip(p in any_path(), m in mutation()) {
        prop_assert_eq!(Path::parse(&p.to_string()).unwrap(), p);
        prop_assert_eq!(Mutation::from_json(&m.to_json()).unwrap(), m.clone());
        let text = serde_json::to_string(&m).unwrap();
        prop_assert_eq!(serde_json::from_str::<Mutation>(&text).unwrap(), m);
    }

    #[test]
    fn law5_query_answer_equals_a_naive_filter(
        writes in stamped_set(), parts in prop::collection::vec(path_query(), 1..4),
    ) {
        let mut tree = Tree::new();
        for (t, m) in &writes {
            tree.apply(*t, m);
        }
        let query = Query { paths: parts };
        let Value::Object(plain) = tree.to_value() else { unreachable!() };
        prop_assert_eq!(tree.query(&query), query.select(&plain));
    }

    #[test]
    fn law6_restriction_changes_a_view_exactly_as_the_mutation(
        tree in plain_tree(), m in mutation(), part in path_query(),
    ) {
        // Views without limit: a limit's window depends on data outside the change.
        let part = PathQuery { limit: None, reverse: false, ..part };
        let view = |t: &Map<String, Value>| {
            let Value::Object(v) = (Query { paths: vec![part.clone()] }).select(t) else { unreachable!() };
            v
        };
        let mut after = tree.clone();
        m.apply_to(&mut after);
        let mut seen = view(&tree);
        m.restrict_range(&part.path, part.min.as_deref(), part.max.as_deref())
            .apply_to(&mut seen);
        prop_assert_eq!(view(&seen), view(&after));
    }

    #[test]
    fn law9_paged_leaves_list_the_value_in_key_order(
        writes in stamped_set(),
        under in kora_core::testing::path_in(0..2),
        page in 1usize..5,
    ) {
        let mut tree = Tree::new();
        for (t, m) in &writes {
            tree.apply(*t, m);
        }
        let under = Path::from_segments(under).expect("valid path");
        let mut expected = Vec::new();
        if let Some(value) = tree.get(&under) {
            flatten(&under, &value, &mut expected);
        }
        expected.sort_by_key(|(p, _)| key::encode(p));
        let mut got: Vec<(Path, Value)> = Vec::new();
        loop {
            let next = tree.leaves(&under, got.last().map(|(p, _)| p), page);
            prop_assert!(next.len() <= page);
            let done = next.len() < page;
            got.extend(next);
            if done {
                break;
            }
        }
        prop_assert_eq!(&got, &expected);
        // Any leaf as a cursor: exactly the ones after it.
        for (i, (cursor, _)) in expected.iter().enumerate() {
            let rest = tree.leaves(&under, Some(cursor), usize::MAX);
            prop_assert_eq!(&rest[..], &expected[i + 1..]);
        }
    }
}

/// The leaves of `value` at `path`, in any order.
fn flatten(path: &Path, value: &Value, out: &mut Vec<(Path, Value)>) {
    match value {
        Value::Object(children) => {
            for (k, v) in children {
                flatten(&path.child(k.as_str()).expect("valid path"), v, out);
            }
        }
        leaf => out.push((path.clone(), leaf.clone())),
    }
}
