// Bundles the host agent and the `nixfleet` CLI into plain JavaScript, one
// self-contained file each (zod and the shared modules inside, no
// node_modules): dist/agent/nixfleet-agent.mjs and dist/agent/nixfleet.mjs,
// with dist/agent/node-flags beside them (AGENT_NODE_FLAGS below).
// This is what the Nix package installs and what bin/nixfleet-agent.js runs
// when it is there. Node then loads no TypeScript stripper on the host: with
// type stripping every agent held about 40 MB more RSS (docs/hosts.md).
import { build } from "esbuild";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { zodWithoutJsonSchema } from "./zod-without-json-schema.mjs";

const root = fileURLToPath(new URL("..", import.meta.url));
export const defaultAgentOutdir = `${root}dist/agent`;

/**
 * The Node flags the agent runs with: written next to the bundles as
 * `node-flags`, which the Nix package's wrapper passes, and used by
 * bench:agent and the bundled-agent test. Measured with bench:agent
 * (docs/hosts.md):
 *  - `--lite-mode`: V8's low-memory mode. No optimizing compiler and no JIT
 *    at all (it implies `--jitless`): the agent waits on the network and on
 *    the programs it runs, its own JavaScript is never hot. An idle agent
 *    holds about 5 MB less, and commands no longer pull in the optimizing
 *    compilers. It also means no WebAssembly, which is one more reason the
 *    agent does not use fetch (agent/http.ts).
 *  - `--max-semi-space-size=1`: a 1 MB young generation instead of up to
 *    16 MB; the agent allocates little, and a full one is only garbage held.
 *  - `--expose-gc`: the agent runs a full collection when a command has
 *    finished and nothing else runs (agent/memory.ts), instead of idling on
 *    that command's garbage.
 */
export const AGENT_NODE_FLAGS = ["--lite-mode", "--max-semi-space-size=1", "--expose-gc"];

/** What each bundle runs; the same calls bin/nixfleet-agent.js and bin/nixfleet.js make. */
const entries = {
  "nixfleet-agent": 'import { runCli } from "./agent/cli.ts";\nrunCli();\n',
  // The safety net's watchdog (`<bundle> watchdog DIR`, started by the agent): only the watchdog's own
  // modules, so it holds 53 MB resident instead of the whole agent's 62 MB (docs/hosts.md).
  "nixfleet-watchdog":
    'import { runWatchdog } from "./agent/safety-net/watchdog.ts";\n' +
    'const [command, dir, ...rest] = process.argv.slice(2);\n' +
    'if (command !== "watchdog" || dir === undefined || rest.length > 0) {\n' +
    '  process.stderr.write("usage: nixfleet-watchdog watchdog DIR (started by nixfleet-agent)\\n");\n' +
    "  process.exit(64);\n" +
    "}\n" +
    'const result = await runWatchdog(dir);\n' +
    'process.exitCode = result === "rollback-failed" || result === "no-record" ? 1 : 0;\n',
  nixfleet: 'import { run } from "./cli/nixfleet.ts";\nawait run();\n',
};

/** Builds the bundles into `outdir` (default dist/agent); resolves with esbuild's results. */
export async function buildAgent({ outdir = defaultAgentOutdir } = {}) {
  await rm(outdir, { recursive: true, force: true });
  await mkdir(outdir, { recursive: true });
  await writeFile(`${outdir}/node-flags`, `${AGENT_NODE_FLAGS.join(" ")}\n`);
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
  console.log(`built ${outdir}/nixfleet-agent.mjs, ${outdir}/nixfleet-watchdog.mjs, ${outdir}/nixfleet.mjs and ${outdir}/node-flags`);
}
