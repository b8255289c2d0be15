// The local database keeps at most `keep` subscription copies: saving one more forgets the
// least recently used, never the one being saved.
import test from "node:test";
import assert from "node:assert/strict";
import { load } from "./load.mjs";

const { MemoryStore, evicted } = await load("store");

const copy = (name, used) => ({ name, query: { path: name }, seq: 1, value: name, used });

test("the least recently used copies are forgotten beyond the limit", async () => {
  const store = new MemoryStore();
  for (const [i, name] of ["a", "b", "c"].entries()) await store.saveSub(copy(name, 10 + i), 3);
  assert.deepEqual((await store.loadSubs()).map((s) => s.name).sort(), ["a", "b", "c"]);
  await store.saveSub(copy("a", 20), 3); // `a` used again: now `b` is the oldest
  await store.saveSub(copy("d", 21), 3);
  assert.deepEqual((await store.loadSubs()).map((s) => s.name).sort(), ["a", "c", "d"]);
  await store.saveSub(copy("e", 22), 1);
  assert.deepEqual((await store.loadSubs()).map((s) => s.name), ["e"], "the saved one stays even at 1");
});

test("eviction never names the copy being saved and tolerates copies without a use time", () => {
  const all = [copy("x", 5), { ...copy("old", 0), used: undefined }, copy("new", 9)];
  assert.deepEqual(evicted(all, 2, "new"), ["old"]);
  assert.deepEqual(evicted(all, 1, "x"), ["old", "new"]);
  assert.deepEqual(evicted(all, 5, "x"), []);
});
