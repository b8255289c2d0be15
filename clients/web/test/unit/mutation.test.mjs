import test from "node:test";
import assert from "node:assert/strict";
import { load } from "./load.mjs";

const m = await load("mutation");
const { overlay, covers, pick, combinePending } = await load("view");

// A small deterministic generator, so that a failure names a reproducible seed.
function rng(seed) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

function randomValue(r, depth) {
  if (depth > 2 || r() < 0.5) return r() < 0.8 ? Math.floor(r() * 3) : "s";
  const out = {};
  for (const k of ["a", "b", "c"]) if (r() < 0.5) out[k] = randomValue(r, depth + 1);
  return out;
}

function randomPath(r) {
  const n = 1 + Math.floor(r() * 3);
  return Array.from({ length: n }, () => "abc"[Math.floor(r() * 3)]).join("/");
}

function randomMutation(r) {
  const k = r();
  if (k < 0.4) return m.setMutation(randomPath(r), randomValue(r, 0));
  if (k < 0.7) {
    const v = randomValue(r, 1);
    return m.mergeMutation(randomPath(r), typeof v === "object" ? { ...v, c: r() < 0.3 ? null : 1 } : { a: v });
  }
  return m.deleteMutation(randomPath(r));
}

test("combine(a, b) applied equals a then b applied, on random mutations", () => {
  for (let seed = 1; seed <= 3000; seed++) {
    const r = rng(seed);
    const start = randomValue(r, 0);
    const tree = typeof start === "object" ? start : { a: start };
    const a = randomMutation(r);
    const b = randomMutation(r);
    const sequential = m.applyTo(m.applyTo(structuredClone(tree), a), b);
    const combined = m.applyTo(structuredClone(tree), m.combine(a, b));
    assert.deepEqual(combined, sequential, `seed ${seed}: ${JSON.stringify({ tree, a, b })}`);
  }
});

test("restrictRange keeps what a reader of the path sees", () => {
  const w = m.fromWire({ merge: { todos: { t1: { text: "x" }, t2: 1 }, other: 1 }, delete: { todos: { t3: 1 } } });
  assert.deepEqual(m.restrictRange(w, ["todos", "t1"]), { merge: { todos: { t1: { text: "x" } } }, delete: {} });
  assert.deepEqual(m.restrictRange(w, ["todos"], "t2", "t3"), { merge: { todos: { t2: 1 } }, delete: { todos: { t3: 1 } } });
  const gone = m.fromWire({ delete: { todos: 1 } });
  assert.deepEqual(m.restrictRange(gone, ["todos", "t1"]), { merge: {}, delete: { todos: { t1: 1 } } });
  const leaf = m.fromWire({ merge: { todos: 5 } });
  assert.deepEqual(m.restrictRange(leaf, ["todos", "t1"]), { merge: {}, delete: { todos: { t1: 1 } } });
});

test("set, merge and delete build the mutations the server expects", () => {
  assert.deepEqual(m.setMutation("a/b", { x: 1, y: null }), { merge: { a: { b: { x: 1 } } }, delete: { a: { b: 1 } } });
  assert.deepEqual(m.setMutation("a", null), { merge: {}, delete: { a: 1 } });
  assert.deepEqual(m.mergeMutation("a", { x: 1, y: null }), { merge: { a: { x: 1 } }, delete: { a: { y: 1 } } });
  assert.deepEqual(m.deleteMutation("a/b"), { merge: {}, delete: { a: { b: 1 } } });
  assert.throws(() => m.setMutation("a//b", 1), (e) => e.code === "invalid_path");
  assert.throws(() => m.mergeMutation("a", { "x/y": 1 }), (e) => e.code === "invalid_path");
});

test("the view lays pending writes over stored data, then the window", () => {
  const q = { path: "todos", limit: 2 };
  const pending = combinePending([
    { stamp: "2", mutation: m.fromWire({ merge: { todos: { b: 20 }, other: 1 } }) },
    { stamp: "1", mutation: m.fromWire({ delete: { todos: { a: 1 } } }) },
  ]);
  const stored = { a: 1, b: 2, c: 3 };
  assert.deepEqual(overlay(stored, q, pending), { b: 20, c: 3 });
  assert.deepEqual(stored, { a: 1, b: 2, c: 3 }, "the stored value is not changed");
  assert.equal(overlay({ a: 1 }, q, m.fromWire({ delete: { todos: 1 } })), null);
  assert.deepEqual(pick({ a: 1, b: 2, c: 3 }, { path: "x", min: "b", limit: 1, reverse: true }), { c: 3 });
  assert.equal(overlay(null, { path: "x" }, null), null);
});

test("a subscription covers the same query and queries inside an unbounded one", () => {
  const todos = { path: "todos" };
  assert.ok(covers(todos, { path: "todos/t1/text" }));
  assert.ok(covers(todos, { path: "todos", limit: 3 }));
  assert.ok(!covers(todos, { path: "users" }));
  assert.ok(!covers(todos, { path: "todosx" }));
  const ranged = { path: "todos", min: "b" };
  assert.ok(covers(ranged, { path: "todos/c" }));
  assert.ok(!covers(ranged, { path: "todos/a" }));
  assert.ok(!covers(ranged, todos));
  assert.ok(!covers({ path: "todos", limit: 5 }, { path: "todos/a" }));
});

test("keys order by UTF-8 bytes, as on the server", () => {
  const keys = ["b", "a", "\u{1F600}", "\uFFFD", "A", "aa"];
  assert.deepEqual(keys.sort(m.compareKeys), ["A", "a", "aa", "b", "\uFFFD", "\u{1F600}"]);
});

test("applyShared equals applyTo and never changes what was handed out", () => {
  for (let seed = 1; seed <= 2000; seed++) {
    const r = rng(seed);
    const start = randomValue(r, 0);
    let current = typeof start === "object" ? start : { a: start };
    let owned = new WeakSet();
    const handedOut = [];
    let model = structuredClone(current);
    for (let step = 0; step < 6; step++) {
      const w = randomMutation(r);
      current = m.applyShared(current, w, owned);
      model = m.applyTo(model, w);
      assert.deepEqual(current, model, `seed ${seed} step ${step}`);
      if (r() < 0.5) {
        // A reader gets the value: from now on it must stay as it is.
        handedOut.push([current, structuredClone(current)]);
        owned = new WeakSet();
      }
    }
    for (const [value, snapshot] of handedOut) assert.deepEqual(value, snapshot, `seed ${seed}: a handed-out value changed`);
  }
});
