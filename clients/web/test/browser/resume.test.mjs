// Resume with `since`: a tab that was offline while 10,000 changes were made, 100 of them
// under its subscription, receives only those 100 on reconnect — counted in WebSocket bytes
// through the DevTools protocol.
import test from "node:test";
import assert from "node:assert/strict";
import { countWsBytes, ev, startKora, startProxy, tab, until, withBrowser } from "./harness.mjs";

const suite = withBrowser({ app: true });

/** Runs `jobs` (functions returning promises) at most `n` at a time. */
async function pool(jobs, n) {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < jobs.length) await jobs[next++]();
  }));
}

test("a reconnecting tab receives only the missed changes under its subscription", async () => {
  const kora = await startKora();
  const proxy = await startProxy(kora.port);
  try {
    // The subscription's data is large, so that reading it again would cost far more than
    // the changes: 2,000 children of ~100 bytes.
    const filler = "x".repeat(80);
    const initial = Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`k${i}`, { v: 0, filler }]));
    await kora.http("PUT", "/v1/data/big/mine", initial);

    const page = await tab(suite.browser, suite.app);
    const counter = await countWsBytes(page);
    await ev(page, (url) => openDb({ url, name: "resume-1" }) && watch("big/mine"), proxy.url);
    await ev(page, () => db.synced());
    assert.equal(await ev(page, () => Object.keys(seen["big/mine"]).length), 2000);
    const fullRead = counter.bytes;

    proxy.cut();
    await until("offline", () => ev(page, () => status === "offline"));
    const total = Number(process.env.KORA_WEB_RESUME_CHANGES ?? 10_000);
    const mine = 100;
    const every = Math.floor(total / mine);
    const jobs = Array.from({ length: total }, (_, i) => () =>
      i % every === 0
        ? kora.http("PUT", `/v1/data/big/mine/k${i / every}/v`, i)
        : kora.http("PUT", `/v1/data/big/others/o${i}`, { v: i, filler }),
    );
    const started = Date.now();
    await pool(jobs, 16);
    console.log(`${total} changes made in ${Date.now() - started} ms`);

    counter.bytes = 0;
    counter.frames = 0;
    proxy.restore();
    const t0 = Date.now();
    await ev(page, () => db.synced());
    const resync = Date.now() - t0;
    const view = await ev(page, () => seen["big/mine"]);
    assert.deepEqual(view, await kora.get("big/mine"), "the tab's view equals the server's");
    for (let j = 0; j < mine; j++) assert.equal(view[`k${j}`].v, j * every, `k${j} has its missed change`);

    // ~100 change pushes of ~150 bytes, plus the resume's query, ping and pong. A fresh read
    // of the subscription would be the whole 2,000 children (fullRead); everything would be
    // 10,000 changes.
    console.log(`resume: ${counter.bytes} bytes in ${counter.frames} frames, ${resync} ms (first read: ${fullRead} bytes)`);
    assert.ok(counter.bytes < mine * 300, `${counter.bytes} bytes for ${mine} changes`);
    assert.ok(counter.frames <= mine + 10, `${counter.frames} frames`);
    assert.ok(fullRead > 10 * counter.bytes, "the bound separates a resume from a fresh read");
    await page.close();
  } finally {
    await proxy.close();
    await kora.close();
  }
});
