// The committed bundle (dist/kora.js, served by `kora serve` at /v1/client.js) must be what
// the source builds: rebuild into a temporary directory and compare.
import test from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { root } from "./load.mjs";

test("dist/kora.js is what src builds (run `npm run build` and commit it)", () => {
  const out = mkdtempSync(join(tmpdir(), "kora-web-build-"));
  execFileSync(process.execPath, [join(root, "build.mjs"), "--out", out], { stdio: "inherit" });
  const built = readFileSync(join(out, "kora.js"), "utf8");
  const committed = readFileSync(join(root, "dist/kora.js"), "utf8");
  assert.ok(built === committed, "dist/kora.js is stale: run `npm run build` in clients/web and commit it");
});

test("the bundle is an ES module with no imports, under 20 KB gzipped", () => {
  const code = readFileSync(join(root, "dist/kora.js"), "utf8");
  assert.ok(/export\s*\{[^}]*\bconnect\b/.test(code), "exports connect");
  assert.ok(!/\bimport\s*[{*"']|\bimport\(/.test(code), "imports nothing");
  const gz = gzipSync(code, { level: 9 }).length;
  assert.ok(gz < 20_000, `${gz} bytes gzipped`);
});
