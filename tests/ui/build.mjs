// Bundles page/ with esbuild into an output folder, the API root fixed at build time the
// way @amp-labs/react reads it (process.env.REACT_APP_AMP_SERVER; the library appends /v1).
//
//   node build.mjs --server http://127.0.0.1:8080 --out /tmp/page
import { build } from "esbuild";
import { copyFile, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: { server: { type: "string" }, out: { type: "string" } },
});
if (!values.server || !values.out) {
  console.error("usage: node build.mjs --server <api root URL> --out <folder>");
  process.exit(2);
}

await mkdir(values.out, { recursive: true });
await build({
  entryPoints: [join(here, "page", "main.jsx")],
  outfile: join(values.out, "main.js"),
  bundle: true,
  format: "iife",
  jsx: "automatic",
  target: "es2020",
  minify: false,
  sourcemap: false,
  logLevel: "warning",
  define: {
    "process.env.NODE_ENV": JSON.stringify("production"),
    "process.env.REACT_APP_AMP_SERVER": JSON.stringify(values.server),
  },
});
await copyFile(join(here, "page", "index.html"), join(values.out, "index.html"));
console.log(`built ${values.out} for ${values.server}`);
