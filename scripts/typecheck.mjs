// `npm run typecheck`: the Worker's binding types first (wrangler types), then every TypeScript project.
// tsc uses one core, so the projects run side by side, as many at once as the machine has cores.
import { spawn } from "node:child_process";
import { availableParallelism } from "node:os";

// Largest first, so that the last one to start is a short one.
const PROJECTS = ["test", ".", "worker", "ui", "agent", "test/worker", "tools/github-emulator", "bench/workers", "common"];

/** Runs a command, its output kept until it ends so that two projects' errors do not interleave. */
function run(command, args) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.on("close", (code) => resolve({ code: code ?? 1, output }));
  });
}

const types = await run("npm", ["run", "--silent", "types"]);
if (types.code !== 0) {
  process.stderr.write(types.output);
  process.exit(types.code);
}

const queue = [...PROJECTS];
const failed = [];
async function worker() {
  for (let project = queue.shift(); project !== undefined; project = queue.shift()) {
    const { code, output } = await run("npx", ["tsc", "-p", project]);
    if (output) process.stdout.write(output);
    if (code !== 0) failed.push(project);
  }
}
await Promise.all(Array.from({ length: Math.min(availableParallelism(), PROJECTS.length) }, worker));
if (failed.length > 0) {
  console.error(`typecheck failed in: ${failed.join(", ")}`);
  process.exit(1);
}
