// A real Chromium against a real `kora serve`: offline writes, reloads, tabs.
import test from "node:test";
import assert from "node:assert/strict";
import { countWsBytes, ev, load, startKora, tab, until, withBrowser } from "./harness.mjs";

const suite = withBrowser({ app: true });

test("a write made while the server is down shows at once, survives a reload, reaches the server exactly once", async () => {
  const kora = await startKora();
  try {
    const page = await tab(suite.browser, suite.app);
    await ev(page, (url) => openDb({ url, name: "offline-1" }) && watch("todos"), kora.url);
    await ev(page, () => db.synced());
    assert.equal(await ev(page, () => seen.todos), null);

    await kora.stop();
    await until("the tab to see the server gone", () => ev(page, () => status === "offline"));
    await ev(page, () => {
      window.written = db.set("todos/t1", { text: "buy milk" }).then((c) => c, (e) => ({ error: e.code }));
      return true;
    });
    await until("the write to show", () => ev(page, () => seen.todos?.t1?.text === "buy milk"));
    assert.deepEqual(await ev(page, () => db.get("todos/t1")), { text: "buy milk" }, "get sees the local view");
    assert.equal(await ev(page, () => db.pending()), 1);

    // A reload while the server is still down: the queue and the saved copy come back.
    await load(page, suite.app, true);
    await ev(page, (url) => openDb({ url, name: "offline-1" }), kora.url);
    assert.equal(await ev(page, () => db.pending()), 1, "pending() straight after a reload");
    await ev(page, () => watch("todos"));
    await until("the saved copy with the queued write", () => ev(page, () => seen.todos?.t1?.text === "buy milk"));
    assert.equal(await ev(page, () => status), "offline");

    // The restarted server counts from zero: every write it received is the queued one.
    await kora.start();
    await ev(page, () => db.synced());
    assert.equal(await ev(page, () => db.pending()), 0);
    assert.deepEqual(await kora.get("todos"), { t1: { text: "buy milk" } });
    assert.equal(await kora.mutations(), 1, "the queued write reached the server once");
    assert.deepEqual(await ev(page, () => seen.todos), { t1: { text: "buy milk" } });
    await page.close();
  } finally {
    await kora.close();
  }
});

test("two tabs writing while offline: every write applied once, both see all", async () => {
  const kora = await startKora();
  try {
    const a = await tab(suite.browser, suite.app);
    const b = await tab(suite.browser, suite.app);
    const frames = [await countWsBytes(a), await countWsBytes(b)];
    for (const p of [a, b]) await ev(p, (url) => openDb({ url, name: "tabs-2" }) && watch("notes"), kora.url);
    for (const p of [a, b]) await ev(p, () => db.synced());
    await kora.stop();
    for (const p of [a, b]) await until("offline", () => ev(p, () => status === "offline"));

    const writes = (who) => {
      window.acks = [];
      for (let i = 0; i < 5; i++) acks.push(db.set(`notes/${who}${i}`, { by: who, i }));
      acks.push(db.set("notes/shared", who)); // the same key from both tabs: the later stamp wins
      return true;
    };
    await ev(a, writes, "a");
    await ev(b, writes, "b");
    for (const p of [a, b]) {
      await until("each tab to show both tabs' writes", () => ev(p, () => seen.notes && Object.keys(seen.notes).length === 11));
      assert.equal(await ev(p, () => db.pending()), 12);
    }
    // Both tabs lay the two writes of `shared` in stamp order, as the server will. (Eleven keys
    // show before the other tab's write of `shared` may have arrived: wait for both.)
    const sharedIn = (p) => ev(p, () => seen.notes.shared);
    await until("both tabs to show the same `shared`", async () => (await sharedIn(a)) === (await sharedIn(b)));
    const shared = await sharedIn(a);

    await kora.start();
    for (const p of [a, b]) {
      await ev(p, () => Promise.all(acks));
      await ev(p, () => db.synced());
    }
    assert.equal(await kora.mutations(), 12, "each of the 12 writes reached the server once (the restarted server counts from zero)");
    const sent = frames.map((f) => f.sent.mutate ?? 0).sort();
    assert.deepEqual(sent, [0, 12], "one tab sent every write, once");
    const server = await kora.get("notes");
    assert.equal(Object.keys(server).length, 11);
    assert.equal(server.shared, shared, "the server kept the value both tabs showed");
    for (const p of [a, b]) {
      assert.deepEqual(await ev(p, () => seen.notes), server);
      assert.equal(await ev(p, () => db.pending()), 0);
    }
    await a.close();
    await b.close();
  } finally {
    await kora.close();
  }
});

test("a write refused by the rules is rolled back with the server's error code", async () => {
  const rules = `rules:\n  "**":\n    read: "true"\n    write: "true"\n  locked/**:\n    write: "false"\n`;
  const kora = await startKora({ rules });
  try {
    const page = await tab(suite.browser, suite.app);
    await ev(page, (url) => openDb({ url, name: "rules-1" }) && watch("locked"), kora.url);
    await ev(page, () => db.synced());
    await kora.stop();
    await until("offline", () => ev(page, () => status === "offline"));
    await ev(page, () => {
      window.refused = db.set("locked/x", 1).then(() => "committed", (e) => ({ code: e.code, message: e.message, isError: e instanceof Error }));
      return true;
    });
    await until("the write to show first", () => ev(page, () => seen.locked?.x === 1));
    await kora.start();
    const outcome = await ev(page, () => refused);
    assert.equal(outcome.code, "permission_denied");
    assert.ok(outcome.isError);
    assert.match(outcome.message, /locked/);
    await until("the rollback", () => ev(page, () => seen.locked === null));
    assert.equal(await ev(page, () => db.pending()), 0);
    assert.equal(await kora.get("locked"), null);
    await page.close();
  } finally {
    await kora.close();
  }
});

test("transactions from three tabs on one counter end exact", async () => {
  const kora = await startKora();
  try {
    const tabs = [];
    for (let i = 0; i < 3; i++) tabs.push(await tab(suite.browser, suite.app));
    for (const p of tabs) await ev(p, (url) => openDb({ url, name: "tx-3" }), kora.url);
    for (const p of tabs) await ev(p, () => db.synced());
    const N = 10;
    const results = await Promise.all(
      tabs.map((p) =>
        ev(p, (n) => Promise.all(Array.from({ length: n }, () => db.transaction("counter", (c) => (c ?? 0) + 1))), N),
      ),
    );
    for (const r of results) for (const t of r) assert.ok(t.committed);
    const values = results.flat().map((t) => t.value).sort((x, y) => x - y);
    assert.deepEqual(values, Array.from({ length: 3 * N }, (_, i) => i + 1), "each increment saw a distinct value");
    assert.equal(await kora.get("counter"), 3 * N);
    for (const p of tabs) await p.close();
  } finally {
    await kora.close();
  }
});
