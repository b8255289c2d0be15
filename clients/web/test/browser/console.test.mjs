// The console at `/`, on the web client: sign in with a token, browse 100,000 children a page
// at a time, edit, see live changes highlighted, metrics.
import test from "node:test";
import assert from "node:assert/strict";
import { clickIn, countWsBytes, jwt, startKora, until, withBrowser } from "./harness.mjs";

const SECRET = "console-test-secret-of-at-least-32-bytes";
const rules = `rules:\n  "**":\n    read: "auth != null"\n    write: "auth != null"\n`;
const token = jwt(SECRET, { sub: "admin", exp: Math.floor(Date.now() / 1000) + 3600 });

const suite = withBrowser();

test("the console signs in, pages through 100,000 children, edits and highlights live changes", async () => {
  const kora = await startKora({ rules, config: `[auth]\nhs256_secret = "${SECRET}"\n`, token });
  try {
    // 100,000 children of two leaves, in merges of 2,500 (what the rules check in one write is bounded).
    for (let part = 0; part < 40; part++) {
      const many = {};
      for (let i = part * 2_500; i < (part + 1) * 2_500; i++) many[`k${String(i).padStart(6, "0")}`] = { n: i, text: "some text" };
      await kora.http("PATCH", "/v1/data/many", many);
    }

    const page = await suite.browser.newPage();
    page.on("pageerror", (e) => console.error("page error:", e.message));
    page.on("dialog", (d) => d.accept());
    const counter = await countWsBytes(page);
    await page.goto(`${kora.url}/?path=many`);
    await until("the console to connect", () => page.$eval("#status", (e) => e.textContent === "online"));
    await until("anonymous to be refused", () => page.$eval("#error", (e) => e.textContent.startsWith("permission_denied")));

    await page.type("#token", token);
    await clickIn(page, "#signin");
    await until("signed in", () => page.$eval("#who", (e) => e.textContent === "signed in as admin"));
    const rows = () => page.$$eval("#rows tr td.key", (tds) => tds.map((t) => t.textContent));
    await until("the first page", async () => (await rows()).length === 50);
    assert.deepEqual((await rows()).slice(0, 2), ["k000000", "k000001"]);
    // One page, not the subtree: 51 children of ~60 bytes, not 100,000.
    assert.ok(counter.bytes < 50_000, `${counter.bytes} bytes received for the first page`);

    await clickIn(page, "#next");
    await until("the second page", async () => (await rows())[0] === "k000050" && (await rows()).length === 50);
    await clickIn(page, "#prev");
    await until("back to the first page", async () => (await rows())[0] === "k000000" && (await rows()).length === 50);
    assert.ok(counter.bytes < 150_000, `${counter.bytes} bytes after three pages`);

    // Edit a child: its value becomes the JSON typed.
    await clickIn(page, "#rows tr td.actions button", 2); // the second row's edit (edit, delete per row)
    await page.$eval("#rows input", (i) => {
      i.value = '{"n": 1, "text": "edited"}';
      i.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter" }));
    });
    await until("the edit to reach the server", async () => (await kora.get("many/k000001"))?.text === "edited");

    // A change made elsewhere shows, highlighted.
    await kora.http("PUT", "/v1/data/many/k000003/text", "changed elsewhere");
    await until("the live change, highlighted", () =>
      page.$$eval("#rows tr", (trs) => trs[3].className === "changed" && trs[3].textContent.includes("k000003")));
    await until("logged", () => page.$eval("#log", (l) => l.textContent.includes("k000003")));

    // Delete one, and page into a branch and back.
    await clickIn(page, "#rows tr td.actions button", 1);
    await until("the delete to reach the server", async () => (await kora.get("many/k000000")) === null);
    await clickIn(page, "#rows tr td.key a");
    await until("inside a child", () => page.$eval("#crumbs", (c) => c.textContent.includes("k000001")));
    await until("its fields", async () => (await rows()).join() === "n,text");

    await until("metrics", () => page.$eval("#metrics", (t) => t.textContent.includes("effects dead-lettered")));
    await page.close();
  } finally {
    await kora.close();
  }
});

test("the console signed in with the admin secret passes the rules and retries and drops dead letters", async () => {
  const admin = "console-admin-secret-of-at-least-32-bytes";
  // Port 9 (discard) is closed on loopback: every webhook fails its one try.
  const closed = `rules:\n  "orders/$id":\n    read: false\n    write: "auth != null"\n    effects:\n      - webhook: http://127.0.0.1:9/hook\n`;
  const kora = await startKora({
    rules: closed,
    config: `[auth]\nhs256_secret = "${SECRET}"\nadmin_secret = "${admin}"\n[effects]\nmax_attempts = 1\n`,
    token,
  });
  try {
    await kora.http("PUT", "/v1/data/orders/o1", { n: 1 });
    await kora.http("PUT", "/v1/data/orders/o2", { n: 2 });
    const dead = async () => (await fetch(`${kora.url}/v1/effects/dead`, { headers: { authorization: `Bearer ${admin}` } })).json();
    await until("two dead letters", async () => (await dead()).dead === 2);
    const buried = async () => Number(/^kora_effects_total\{outcome="dead"\} (\d+)/m.exec(await (await fetch(`${kora.url}/metrics`)).text())[1]);

    const page = await suite.browser.newPage();
    page.on("pageerror", (e) => console.error("page error:", e.message));
    await page.goto(`${kora.url}/?path=orders`);
    await until("anonymous to be refused", () => page.$eval("#error", (e) => e.textContent.startsWith("permission_denied")));
    assert.equal(await page.$eval("#deadbox", (d) => d.hidden), true, "no dead letters for anonymous");

    await page.type("#token", admin);
    await clickIn(page, "#signin");
    await until("signed in as administrator", () => page.$eval("#who", (e) => e.textContent === "signed in as administrator"));
    // Past the rules (`read: false`): the administrator sees the orders.
    const keys = () => page.$$eval("#rows tr td.key", (tds) => tds.map((t) => t.textContent));
    await until("the orders", async () => (await keys()).join() === "o1,o2");
    const listed = () => page.$$eval("#dead tr", (trs) => trs.map((t) => t.dataset.id));
    await until("the dead letters listed", async () => (await listed()).length === 2);
    const [first, second] = await listed();
    assert.ok((await page.$eval("#dead", (t) => t.textContent)).includes("webhook"));

    await page.click(`#dead tr[data-id="${first}"] button:nth-of-type(2)`); // drop
    await until("the first dropped", async () => (await listed()).join() === second);
    assert.deepEqual((await dead()).effects.map((e) => String(e.id)), [second]);

    const before = await buried();
    await page.click(`#dead tr[data-id="${second}"] button:nth-of-type(1)`); // retry
    // It runs again, fails its one try again, and is dead once more.
    await until("the retried effect to run and die again", async () => (await buried()) === before + 1);
    await until("still listed", async () => (await dead()).dead === 1);
    await page.close();
  } finally {
    await kora.close();
  }
});
