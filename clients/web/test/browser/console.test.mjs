// The console at `/`, on the web client: sign in with a token, browse 100,000 children a page
// at a time, edit, see live changes highlighted, metrics.
import test, { after, before } from "node:test";
import assert from "node:assert/strict";
import { clickIn, countWsBytes, jwt, launch, startKora, until } from "./harness.mjs";

const SECRET = "console-test-secret-of-at-least-32-bytes";
const rules = `rules:\n  "**":\n    read: "auth != null"\n    write: "auth != null"\n`;
const token = jwt(SECRET, { sub: "admin", exp: Math.floor(Date.now() / 1000) + 3600 });

let browser;
before(async () => (browser = await launch()));
after(async () => browser?.close());

test("the console signs in, pages through 100,000 children, edits and highlights live changes", async () => {
  const kora = await startKora({ rules, config: `[auth]\nhs256_secret = "${SECRET}"\n`, token });
  try {
    // 100,000 children of two leaves, in merges of 2,500 (what the rules check in one write is bounded).
    for (let part = 0; part < 40; part++) {
      const many = {};
      for (let i = part * 2_500; i < (part + 1) * 2_500; i++) many[`k${String(i).padStart(6, "0")}`] = { n: i, text: "some text" };
      await kora.http("PATCH", "/v1/data/many", many);
    }

    const page = await browser.newPage();
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
