// Compiles the client's modules (TypeScript) for the unit tests, once per test process.
import { build } from "esbuild";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const out = mkdtempSync(join(tmpdir(), "kora-web-unit-"));
const modules = ["mutation", "view", "stamp", "store", "client", "errors"];
await build({
  entryPoints: modules.map((m) => join(root, "src", `${m}.ts`)),
  outdir: out,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "neutral",
  target: "es2022",
  logLevel: "error",
});
export const load = (m) => import(pathToFileURL(join(out, `${m}.js`)).href);
