// Figures for docs/web-client.md (`npm run bench`, with KORA_BIN set as for the tests):
// opening a 10,000-child subscription from the server and from the local copy, local write
// latency (set() called → the subscription's callback shows it), and resync after 10,000
// missed changes (time and WebSocket bytes).
import { countWsBytes, launch, load, startApp, startKora, startProxy, tab } from "../test/browser/harness.mjs";

const ev = (page, f, ...args) => page.evaluate(f, ...args);
const kora = await startKora();
const proxy = await startProxy(kora.port);
const app = await startApp();
const browser = await launch();
try {
  const children = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`c${String(i).padStart(5, "0")}`, { n: i, text: "a todo item" }]));
  for (let i = 0; i < 10_000; i += 2_500) {
    await kora.http("PATCH", "/v1/data/big", Object.fromEntries(Object.entries(children).slice(i, i + 2_500)));
  }
  const page = await tab(browser, app);
  const counter = await countWsBytes(page);
  const open = () => ev(page, async (url) => {
    openDb({ url, name: "bench" });
    const t0 = performance.now();
    await new Promise((resolve) => db.subscribe("big", {}, (v) => v && Object.keys(v).length === 10_000 && resolve()));
    return performance.now() - t0;
  }, proxy.url);
  const fromServer = await open();
  await ev(page, () => db.synced());
  await load(page, app, true);
  const fromLocal = await open();
  console.log(`open a 10,000-child subscription: from the server ${fromServer.toFixed(0)} ms, from the local copy ${fromLocal.toFixed(0)} ms`);

  const latency = await ev(page, async () => {
    await db.synced();
    let want = null;
    let seen = null;
    db.subscribe("big", {}, (v) => {
      if (want !== null && v?.c00001?.n === want) seen?.();
    });
    const times = [];
    for (let i = 1; i <= 200; i++) {
      const shown = new Promise((resolve) => (seen = resolve));
      want = -i;
      const t0 = performance.now();
      const acked = db.set("big/c00001/n", -i);
      await shown;
      times.push(performance.now() - t0);
      await acked; // one write at a time: the latency of a write, not of a queue of them
    }
    times.sort((a, b) => a - b);
    return { p50: times[100], p99: times[198] };
  });
  console.log(`local write (set() → the subscription callback shows it; 10,000 children): p50 ${latency.p50.toFixed(2)} ms, p99 ${latency.p99.toFixed(2)} ms`);

  // As the Rust client's resync bench: 10,000 missed one-leaf changes, one in 100 under the
  // subscription; then every one of them under it.
  for (const touching of [100, 10_000]) {
    await ev(page, () => db.synced());
    proxy.cut();
    await ev(page, () => new Promise((r) => db.on("status", (s) => s === "offline" && r())));
    const every = 10_000 / touching;
    const jobs = Array.from({ length: 10_000 }, (_, i) => () =>
      i % every === 0
        ? kora.http("PUT", `/v1/data/big/c${String(i / every).padStart(5, "0")}/n`, -1 - i)
        : kora.http("PUT", `/v1/data/elsewhere/e${i}`, i));
    let next = 0;
    await Promise.all(Array.from({ length: 16 }, async () => { while (next < jobs.length) await jobs[next++](); }));
    counter.bytes = 0;
    const t0 = Date.now();
    proxy.restore();
    await ev(page, () => db.synced());
    console.log(`resync after 10,000 missed changes, ${touching} under the subscription: ${Date.now() - t0} ms (with the reconnection backoff, ≤ 400 ms here), ${(counter.bytes / 1024).toFixed(1)} KiB received`);
  }
} finally {
  await browser.close();
  await app.close();
  await proxy.close();
  await kora.close();
}
