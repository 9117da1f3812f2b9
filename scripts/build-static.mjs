// Bundles the browser code: static/src/main.js -> static/dist/app.js (+ app.css, chunks, fonts).
// Usage: npm run build          (minified, with sourcemaps)
//        npm run watch          (rebuild on change, for development)
import { rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import * as esbuild from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outdir = join(root, "static", "dist");
const watch = process.argv.includes("--watch");

const options = {
  absWorkingDir: root,
  entryPoints: { app: "static/src/main.js" },
  outdir,
  bundle: true,
  format: "esm",
  // Rarely needed code (KaTeX) is split into chunks loaded on demand.
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  assetNames: "assets/[name]-[hash]",
  minify: !watch,
  sourcemap: true,
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  loader: { ".woff2": "file", ".woff": "file", ".ttf": "file" },
  legalComments: "linked",
  logLevel: "info",
};

// A clean output folder, so stale chunks from an earlier build never linger.
await rm(outdir, { recursive: true, force: true });

if (watch) {
  const context = await esbuild.context(options);
  await context.watch();
} else {
  await esbuild.build(options);
}
