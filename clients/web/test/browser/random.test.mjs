// A randomized schedule of writes from three tabs, reloads, server restarts and offline
// periods, ending with every tab's view equal to the server's tree. The seed is printed;
// KORA_WEB_SEED=<seed> replays it (KORA_WEB_STEPS sets the length).
import test from "node:test";
import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { ev, load, startKora, startProxy, tab, until, withBrowser } from "./harness.mjs";

const suite = withBrowser({ app: true });

function rng(seed) {
  let s = seed >>> 0;
  return () => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

test("a random schedule ends with every tab's view equal to the server's tree", async () => {
  const seed = Number(process.env.KORA_WEB_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const steps = Number(process.env.KORA_WEB_STEPS ?? 60);
  console.log(`random schedule: KORA_WEB_SEED=${seed} KORA_WEB_STEPS=${steps}`);
  const r = rng(seed);
  const pickInt = (n) => Math.floor(r() * n);
  const kora = await startKora();
  const proxy = await startProxy(kora.port);
  const open = (page) => ev(page, (url) => openDb({ url, name: "random" }) && watch("r"), proxy.url);
  try {
    const tabs = [];
    for (let i = 0; i < 3; i++) {
      tabs.push(await tab(suite.browser, suite.app));
      await open(tabs[i]);
    }
    let serverUp = true;
    let linkUp = true;
    const log = [];
    for (let step = 0; step < steps; step++) {
      const t = pickInt(tabs.length);
      const page = tabs[t];
      const k = r();
      const key = `r/k${pickInt(30)}`;
      if (k < 0.55) {
        const op = pickInt(4);
        const value = { n: step, by: t };
        log.push(`${step}: tab ${t} ${["set", "merge", "delete", "set leaf"][op]} ${key}`);
        await ev(page, (op, key, value) => {
          const w = op === 0 ? db.set(key, value) : op === 1 ? db.merge(key, { [`f${value.n % 3}`]: value.n }) : op === 2 ? db.delete(key) : db.set(`${key}/leaf`, value.n);
          w.catch((e) => console.error(`write refused: ${e.code} ${e.message}`));
        }, op, key, value);
      } else if (k < 0.6) {
        if (serverUp) {
          log.push(`${step}: the server writes ${key}`);
          await kora.http("PUT", `/v1/data/${key}`, { n: step, by: "server" });
        }
      } else if (k < 0.67) {
        log.push(`${step}: reload tab ${t}`);
        await load(page, suite.app, true);
        await open(page);
      } else if (k < 0.75) {
        log.push(`${step}: ${linkUp ? "cut" : "restore"} the network`);
        if (linkUp) proxy.cut();
        else proxy.restore();
        linkUp = !linkUp;
      } else if (k < 0.85) {
        log.push(`${step}: ${serverUp ? "stop" : "start"} the server`);
        if (serverUp) await kora.stop();
        else await kora.start();
        serverUp = !serverUp;
      } else {
        // Let the tabs run for a moment: what happens meanwhile is random, the outcome is not.
        const ms = pickInt(300);
        log.push(`${step}: run ${ms} ms`);
        await new Promise((res) => setTimeout(res, ms));
      }
    }
    if (!serverUp) await kora.start();
    // Last, changes the tabs miss while offline, so that the end also checks a resume.
    proxy.cut();
    for (let i = 0; i < 5; i++) await kora.http("PUT", `/v1/data/r/missed${i}`, { n: i });
    proxy.restore();
    try {
      for (const page of tabs) await until("the tab to sync", () => ev(page, () => db.synced().then(() => true)), 60_000);
      const server = await kora.get("r");
      for (const [i, page] of tabs.entries()) {
        assert.equal(await ev(page, () => db.pending()), 0, `tab ${i}: nothing pending`);
        // The callback runs just after `synced()`; wait for it, then compare with a diff.
        await until(`tab ${i}'s view`, async () => isDeepStrictEqual(await ev(page, () => seen.r ?? null), server), 5_000).catch(() => {});
        assert.deepEqual(await ev(page, () => seen.r ?? null), server, `tab ${i}`);
        assert.deepEqual(await ev(page, () => db.get("r")), server, `tab ${i}: get`);
      }
    } catch (e) {
      console.log(`replay with KORA_WEB_SEED=${seed}; schedule:\n${log.join("\n")}`);
      throw e;
    }
    for (const page of tabs) await page.close();
  } finally {
    await proxy.close();
    await kora.close();
  }
});
