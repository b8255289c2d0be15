//! Criterion benchmarks of the core data model: `cargo bench -p kora-core`.
//! Figures are recorded in docs/benchmarks.md.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kora_core::{key, Mutation, Path, PathQuery, Stamp, Tree};
use serde_json::json;

fn path(text: &str) -> Path {
    Path::parse(text).expect("valid path")
}

fn todo_mutations(count: usize, fields: usize) -> Vec<Mutation> {
    (0..count)
        .map(|i| {
            let mut value = serde_json::Map::new();
            for f in 0..fields {
                value.insert(format!("f{f:03}"), json!(i));
            }
            Mutation::merge(&path(&format!("todos/{i:08}")), value.into()).expect("valid")
        })
        .collect()
}

fn populated(mutations: &[Mutation]) -> (Tree, u64) {
    let mut tree = Tree::new();
    for (i, m) in mutations.iter().enumerate() {
        tree.apply(Stamp::from_packed(i as u64 + 1, 1), m);
    }
    (tree, mutations.len() as u64 + 1)
}

fn apply(c: &mut Criterion) {
    let mut group = c.benchmark_group("tree_apply");
    group.throughput(Throughput::Elements(1));
    let one = todo_mutations(10_000, 1);
    let (mut tree, mut next) = populated(&one);
    let mut i = 0;
    group.bench_function("1_leaf_overwrite_of_10k", |b| {
        b.iter(|| {
            tree.apply(Stamp::from_packed(next, 1), &one[i % one.len()]);
            next += 1;
            i += 1;
        })
    });
    // The same writes cycling over 100 keys: tree and mutations stay in cache.
    let few = todo_mutations(100, 1);
    let (mut tree, mut next) = populated(&few);
    let mut i = 0;
    group.bench_function("1_leaf_overwrite_of_100", |b| {
        b.iter(|| {
            tree.apply(Stamp::from_packed(next, 1), &few[i % few.len()]);
            next += 1;
            i += 1;
        })
    });
    let fresh = todo_mutations(1_000_000, 1);
    let mut tree = Tree::new();
    let mut i = 0;
    group.bench_function("1_leaf_insert", |b| {
        b.iter(|| {
            tree.apply(Stamp::from_packed(i as u64 + 1, 1), &fresh[i % fresh.len()]);
            i += 1;
        })
    });
    let hundred = todo_mutations(1_000, 100);
    let (mut tree, mut next) = populated(&hundred);
    let mut i = 0;
    group.bench_function("100_leaves_overwrite", |b| {
        b.iter(|| {
            tree.apply(Stamp::from_packed(next, 1), &hundred[i % hundred.len()]);
            next += 1;
            i += 1;
        })
    });
    group.finish();
}

fn mutations(c: &mut Criterion) {
    let a = todo_mutations(10, 10)
        .into_iter()
        .fold(Mutation::new(), Mutation::combine);
    let b = todo_mutations(20, 10)
        .into_iter()
        .skip(5)
        .fold(Mutation::delete(&path("todos/00000001")), Mutation::combine);
    c.bench_function("combine_100_and_150_leaves", |bench| {
        bench.iter_batched(
            || (a.clone(), b.clone()),
            |(a, b)| a.combine(b),
            BatchSize::SmallInput,
        )
    });
    let hundred = &todo_mutations(1, 100)[0];
    c.bench_function("layers_100_leaves", |bench| {
        bench.iter(|| black_box(hundred.layers().len()))
    });
    let text =
        r#"{"merge":{"todos":{"01J":{"text":"Find the Black Pearl","done":false}}},"delete":{}}"#;
    c.bench_function("mutation_parse_2_leaves", |bench| {
        bench.iter(|| black_box(serde_json::from_str::<Mutation>(text).expect("valid")))
    });
}

fn keys(c: &mut Criterion) {
    let p = path("todos/01JDQ8Z9X1Y2Z3A4B5C6D7E8F9/text");
    let encoded = key::encode(&p);
    c.bench_function("key_encode_depth_3", |b| {
        b.iter(|| black_box(key::encode(&p)))
    });
    c.bench_function("key_decode_depth_3", |b| {
        b.iter(|| black_box(key::decode(&encoded).expect("valid key")))
    });
}

fn query(c: &mut Criterion) {
    let mut tree = Tree::new();
    for i in 0..100_000u64 {
        let m = Mutation::merge(&path(&format!("items/{i:08}")), json!({"n": i})).expect("valid");
        tree.apply(Stamp::from_packed(i + 1, 1), &m);
    }
    let ranged = PathQuery {
        min: Some(format!("{:08}", 50_000)),
        max: Some(format!("{:08}", 50_999)),
        ..PathQuery::new(path("items"))
    };
    let limited = PathQuery {
        limit: Some(100),
        reverse: true,
        ..PathQuery::new(path("items"))
    };
    let mut group = c.benchmark_group("query_100k_children");
    group.bench_function("range_1000", |b| b.iter(|| black_box(tree.select(&ranged))));
    group.bench_function("last_100", |b| b.iter(|| black_box(tree.select(&limited))));
    group.finish();
}

criterion_group!(benches, apply, mutations, keys, query);
criterion_main!(benches);
