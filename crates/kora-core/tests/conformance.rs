//! The shared conformance vectors, run verbatim (see `tests/data/README.md`).

use kora_core::{Mutation, Stamp, Tree, Value};

fn load(name: &str) -> Vec<Value> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    match serde_json::from_str(&text) {
        Ok(Value::Array(cases)) => cases,
        other => panic!("{path}: expected an array of cases, got {other:?}"),
    }
}

fn mutation(value: &Value) -> Mutation {
    Mutation::from_json(value).unwrap_or_else(|e| panic!("{value}: {e}"))
}

#[test]
fn every_riptide_combine_vector_passes_verbatim() {
    let cases = load("riptide-mutations.json");
    assert!(!cases.is_empty());
    for case in &cases {
        let [name, op, a, b, expected] = case.as_array().unwrap().as_slice() else {
            panic!("malformed case {case}");
        };
        assert_eq!(op, "combine", "{name}");
        let combined = mutation(a).combine(mutation(b));
        assert_eq!(&combined.to_json(), expected, "case {name}");
    }
    println!("{} riptide combine vectors passed", cases.len());
}

/// Every permutation of `0..n`.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for rest in permutations(n - 1) {
        for at in 0..=rest.len() {
            let mut p = rest.clone();
            p.insert(at, n - 1);
            out.push(p);
        }
    }
    out
}

#[test]
fn every_stamped_apply_vector_converges_in_every_order_with_repeats() {
    let cases = load("stamped-apply.json");
    assert!(!cases.is_empty());
    let mut runs = 0;
    for case in &cases {
        let [name, writes, expected] = case.as_array().unwrap().as_slice() else {
            panic!("malformed case {case}");
        };
        let writes: Vec<(Stamp, Mutation)> = writes
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                let n = w[0].as_u64().expect("integer stamp");
                (Stamp::from_packed(n, 0), mutation(&w[1]))
            })
            .collect();
        for order in permutations(writes.len()) {
            // Once in this order, then again with every write repeated after the others.
            let mut tree = Tree::new();
            for &i in &order {
                tree.apply(writes[i].0, &writes[i].1);
            }
            assert_eq!(&tree.to_value(), expected, "case {name}, order {order:?}");
            for &i in order.iter().rev() {
                tree.apply(writes[i].0, &writes[i].1);
            }
            assert_eq!(
                &tree.to_value(),
                expected,
                "case {name}, repeated {order:?}"
            );
            runs += 1;
        }
    }
    println!(
        "{} stamped-apply vectors passed in {runs} orders",
        cases.len()
    );
}
