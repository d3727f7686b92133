// Bundles the Lit dashboard into dist/ui, which the Worker serves as static assets.
import { build } from "esbuild";
import { cp, mkdir, rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const outdir = `${root}dist/ui`;

export async function buildUi({ minify = true } = {}) {
  await rm(outdir, { recursive: true, force: true });
  await mkdir(outdir, { recursive: true });
  const result = await build({
    entryPoints: [`${root}ui/main.ts`],
    bundle: true,
    format: "esm",
    target: "es2022",
    minify,
    sourcemap: true,
    metafile: true,
    outfile: `${outdir}/app.js`,
    logLevel: "warning",
  });
  await cp(`${root}ui/index.html`, `${outdir}/index.html`);
  return result;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildUi();
  console.log(`built ${outdir}`);
}
