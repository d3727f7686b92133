// Bundles the host agent and the `nixfleet` CLI into plain JavaScript, one
// self-contained file each (zod and the shared modules inside, no
// node_modules): dist/agent/nixfleet-agent.mjs and dist/agent/nixfleet.mjs.
// This is what the Nix package installs and what bin/nixfleet-agent.js runs
// when it is there. Node then loads no TypeScript stripper on the host: with
// type stripping every agent carried about 37 MB more RSS (docs/hosts.md).
import { build } from "esbuild";
import { mkdir, rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { zodWithoutJsonSchema } from "./build-ui.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
export const defaultAgentOutdir = `${root}dist/agent`;

/** What each bundle runs; the same calls bin/nixfleet-agent.js and bin/nixfleet.js make. */
const entries = {
  "nixfleet-agent": 'import { runCli } from "./agent/cli.ts";\nrunCli();\n',
  nixfleet: 'import { run } from "./cli/nixfleet.ts";\nawait run();\n',
};

/** Builds both bundles into `outdir` (default dist/agent); resolves with esbuild's results. */
export async function buildAgent({ outdir = defaultAgentOutdir } = {}) {
  await rm(outdir, { recursive: true, force: true });
  await mkdir(outdir, { recursive: true });
  return Promise.all(
    Object.entries(entries).map(([name, contents]) =>
      build({
        stdin: { contents, resolveDir: root, sourcefile: `${name}-entry.ts`, loader: "ts" },
        bundle: true,
        platform: "node",
        format: "esm",
        // engines.node in package.json.
        target: "node22.12",
        // Not minified: minifying saved 0.4 MB of RSS, and readable stack traces in a host's journal are worth more.
        minify: false,
        metafile: true,
        tsconfig: `${root}agent/tsconfig.json`,
        outfile: `${outdir}/${name}.mjs`,
        logLevel: "warning",
        plugins: [zodWithoutJsonSchema],
      }),
    ),
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const outdir = process.argv[2] ?? defaultAgentOutdir;
  await buildAgent({ outdir });
  console.log(`built ${outdir}/nixfleet-agent.mjs and ${outdir}/nixfleet.mjs`);
}
