// Builds dist/kora.js: one minified ES module with no imports, served by `kora serve` at
// /v1/client.js and shipped in the npm package. `node build.mjs --out DIR` builds elsewhere
// (the freshness test compares that with the committed file).
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import { dirname, join, resolve } from "node:path";

const here = dirname(fileURLToPath(import.meta.url));
const i = process.argv.indexOf("--out");
const outdir = i > 0 ? resolve(process.argv[i + 1]) : join(here, "dist");

await build({
  entryPoints: [join(here, "src/index.ts")],
  outfile: join(outdir, "kora.js"),
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2020",
  minify: true,
  legalComments: "none",
  // The committed bundle must be byte-identical on every machine: no absolute paths, no dates.
  sourcemap: false,
  logLevel: "warning",
});
