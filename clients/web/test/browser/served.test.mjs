// `kora serve` serves the built client at /v1/client.js, and a page imports it from there
// with no build step.
import test from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KORA_BIN, freePort, launch, root, until, withBrowser } from "./harness.mjs";

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

test("db.call reaches the server and rejects with its error code (kora serve has no handlers)", async () => {
  const page = await suite.browser.newPage();
  await page.goto(`${suite.kora.url}/`);
  const outcome = await page.evaluate(async () => {
    const { connect } = await import("/v1/client.js");
    const db = connect({ name: "call" });
    // A call needs the server (offline it fails with `unavailable` at once): wait until online.
    await new Promise((resolve) => db.on("status", (s) => s === "online" && resolve()));
    try {
      return await db.call("nope", { a: 1 }).then(
        () => "answered",
        (e) => ({ code: e.code, message: e.message, isError: e instanceof Error }),
      );
    } finally {
      await db.close();
    }
  });
  assert.equal(outcome.code, "not_found");
  assert.ok(outcome.isError);
  assert.match(outcome.message, /nope/);
  await page.close();
});

test("over TLS: a page on https:// imports the client and talks to Kora over wss://", async () => {
  const dir = mkdtempSync(join(tmpdir(), "kora-web-tls-"));
  execFileSync(join(root, "../../scripts/test-certificates"), [dir]);
  // Chromium trusts exactly this server key (its SPKI hash), not every certificate.
  const spki = execFileSync("sh", ["-c",
    `openssl x509 -pubkey -noout -in ${dir}/server.crt | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`,
  ]).toString().trim();
  const port = await freePort();
  const kora = spawn(KORA_BIN, ["serve", "--store", "memory:", "--bind", `127.0.0.1:${port}`,
    "--tls-cert", join(dir, "server.crt"), "--tls-key", join(dir, "server.key"), "--log", "warn"], { stdio: "inherit" });
  const browser = await launch([`--ignore-certificate-errors-spki-list=${spki}`]);
  const curl = (path) => execFileSync("curl", ["-sf", "--cacert", join(dir, "ca.crt"), `https://localhost:${port}${path}`]).toString();
  try {
    await until("kora to listen over TLS", () => { try { return curl("/healthz") !== ""; } catch { return false; } });
    const page = await browser.newPage();
    await page.goto(`https://localhost:${port}/`);
    const result = await page.evaluate(async () => {
      const { connect } = await import("/v1/client.js");
      const db = connect({ name: "tls" });
      await db.set("ship", { captain: "Jack" });
      const value = await db.get("ship");
      await db.close();
      return { value, protocol: location.protocol };
    });
    assert.deepEqual(result, { value: { captain: "Jack" }, protocol: "https:" });
    assert.deepEqual(JSON.parse(curl("/v1/data/ship")), { captain: "Jack" });
  } finally {
    await browser.close();
    kora.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
});
