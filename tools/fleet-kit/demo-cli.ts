/**
 * `npm run demo`: a live fleet in one command (tools/fleet-kit/demo.ts).
 * PORT sets the dashboard's port, as for `npm start`. Ctrl-C or SIGTERM stops
 * everything it started.
 */
import { DemoError, DEMO_HOSTS, FAILS_ACTIVATION, startDemo, type RunningDemo } from "./demo.ts";

const port = Number(process.env.PORT ?? "8787");
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error(`PORT must be a port number, got ${JSON.stringify(process.env.PORT)}`);
  process.exit(2);
}

const startedAt = Date.now();
const aborted = new AbortController();
let demo: RunningDemo | null = null;
let ending = false;
const end = (signal: NodeJS.Signals): void => {
  if (ending) return;
  ending = true;
  console.log(`\n${signal}: stopping the demo and everything it started`);
  if (demo) void demo.stop().then(() => process.exit(0));
  else aborted.abort();
};
process.on("SIGINT", end);
process.on("SIGTERM", end);

try {
  demo = await startDemo({ port, signal: aborted.signal, log: (line) => console.log(`demo: ${line}`) });
} catch (error) {
  if (ending) process.exit(0);
  console.error(`demo: ${error instanceof DemoError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
}
if (ending) {
  await demo.stop();
  process.exit(0);
}

void demo.lost.then(async (what) => {
  if (ending) return;
  ending = true;
  console.error(`\ndemo: ${what}\ndemo: stopping everything else`);
  await demo!.stop();
  process.exit(1);
});

const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
console.log(`
NixFleet demo: ready in ${seconds} s

  Dashboard:       ${demo.url}  (development mode: no sign-in)
  Update PR:       #${demo.updatePr}, flake.lock moves the pinned release; CI green. Two safeguards:
                   - db1 cannot build the new release: the fleet build fails there, and Merge & Deploy
                     is refused (fleet_build_failed) until you untick db1, which then stays behind main;
                   - ${FAILS_ACTIVATION} builds it but fails to activate it: after canary web1, its wave fails,
                     the rollout stops there, and the revert follows (Settings → Rollback).
  GitHub emulator: ${demo.githubUrl}  (example/fleet)

Running (all under ${demo.dir}):
${demo.processes.map((p) => `  ${p.name.padEnd(16)} pid ${String(p.pid).padEnd(8)} log ${p.log}`).join("\n")}
  hosts:           ${DEMO_HOSTS.map((h) => h.name).join(", ")}: each its own clone, state and nixos-rebuild stand-in, building with real Nix

Stop: Ctrl-C (or SIGTERM to pid ${process.pid}) ends all of the above and removes ${demo.dir}.`);
