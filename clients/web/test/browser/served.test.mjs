// `kora serve` serves the built client at /v1/client.js, and a page imports it from there
// with no build step.
import test from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { root, withBrowser } from "./harness.mjs";

const suite = withBrowser({ kora: true });

test("GET /v1/client.js answers the committed bundle as JavaScript", async () => {
  const res = await fetch(`${suite.kora.url}/v1/client.js`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /^text\/javascript/);
  assert.equal(res.headers.get("access-control-allow-origin"), "*", "pages of other origins may import it");
  assert.equal(await res.text(), readFileSync(join(root, "dist/kora.js"), "utf8"), "rebuild kora after `npm run build`");
});

test("a page on the server's origin imports /v1/client.js and writes", async () => {
  const page = await suite.browser.newPage();
  // Any page of the server's origin will do: the console at `/`.
  await page.goto(`${suite.kora.url}/`);
  const result = await page.evaluate(async () => {
    const { connect } = await import("/v1/client.js");
    const db = connect({ name: "served" });
    await db.set("hello", "world");
    const value = await db.get("hello");
    await db.close();
    return value;
  });
  assert.equal(result, "world");
  assert.equal(await suite.kora.get("hello"), "world");
  await page.close();
});
