/**
 * `npm run bench:rollout [-- HOSTS SWITCH_SECONDS]`: a real rollout, Merge & Deploy of an update PR,
 * to real agent processes (real git, real Nix, the nixos-rebuild stand-in made to take SWITCH_SECONDS
 * per switch) against the local control plane and the GitHub emulator. Canary 1 host with a 5 s soak,
 * then waves of 10. Measures, in the same run:
 *  - wall time from the merge request to every host passed;
 *  - for comparison, computed (not run): the sum of the hosts' own command times in this run, what one
 *    host after another would take (`sequential_seconds_computed`);
 *  - the engine's step overhead: the last command of a wave finished → each host of the next wave
 *    delivered its command (minus the soak), p50 and p99.
 * Writes bench/results/rollout.json.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { z } from "zod";
import type { AgentConfigInput } from "../common/agent-config.ts";
import { CommandView, HostView, RolloutView } from "../common/protocol.ts";
import { GitHubEmulator } from "../tools/github-emulator/emulator.ts";
import { fleetFlake } from "../tools/fleet-kit/fleet-repo.ts";
import { isolatedHostEnv } from "../tools/fleet-kit/host-env.ts";
import { installRebuildShim } from "../tools/fleet-kit/rebuild-shim.ts";
import { startControlPlane } from "../test/support/control-plane.ts";
import { runInfo } from "./run-info.ts";

const [hostsArg, switchArg] = process.argv.slice(2).map(Number);
const HOSTS = hostsArg && hostsArg > 0 ? hostsArg : 20;
const SWITCH_SECONDS = switchArg !== undefined && switchArg >= 0 ? switchArg : 10;
const CANARY_SOAK_SECONDS = 5;
const WAVE_SIZE = 10;
const SECRET = "bench-secret";
const TOKEN = "github_pat_bench";
const exec = promisify(execFile);
const AGENT_BIN = fileURLToPath(new URL("../bin/nixfleet-agent.js", import.meta.url));

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
};
const round = (n: number) => Math.round(n * 100) / 100;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const root = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-bench-rollout-"));
const gitEnv = isolatedHostEnv(path.join(root, "env"));
// The emulator binds its port before the control plane is told its URL (a port merely found free could be taken meanwhile), then learns where to send webhooks.
const emulator = new GitHubEmulator({ owner: "example", repo: "fleet", workDir: path.join(root, "github"), webhookSecret: SECRET, token: TOKEN });
const githubUrl = await emulator.start();
const cp = await startControlPlane({
  vars: {
    POLL_TIMEOUT_SECONDS: "30",
    GITHUB_REPOSITORY: "example/fleet",
    GITHUB_WEBHOOK_SECRET: SECRET,
    GITHUB_TOKEN: TOKEN,
    GITHUB_API_URL: githubUrl,
    ROLLOUT_CANARY_SOAK_SECONDS: String(CANARY_SOAK_SECONDS),
    ROLLOUT_WAVE_SIZE: String(WAVE_SIZE),
  },
});
emulator.setWebhookUrl(`${cp.url}/webhooks/github`);
const agents: ChildProcess[] = [];

async function call<T extends z.ZodType>(schema: T, pathname: string, body?: unknown): Promise<z.infer<T>> {
  const res = await fetch(`${cp.url}${pathname}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { origin: cp.url, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json: unknown = await res.json();
  if (!res.ok) throw new Error(`${pathname}: ${res.status} ${JSON.stringify(json)}`);
  return schema.parse(json);
}

async function until<T>(what: string, probe: () => Promise<T | null | false>, timeoutMs = 300_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => null);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

try {
  const names = Array.from({ length: HOSTS }, (_, i) => `b${String(i).padStart(2, "0")}`);
  const pins = path.join(root, "pins");
  await fs.mkdir(pins);
  const git = (cwd: string, ...args: string[]) => exec("git", args, { cwd, env: gitEnv });
  await git(pins, "init", "--quiet", "--initial-branch", "main");
  await fs.writeFile(path.join(pins, "README"), "pins v1\n");
  await git(pins, "add", "-A");
  await git(pins, "commit", "--quiet", "-m", "pins v1");
  const work = path.join(root, "work");
  await fs.mkdir(path.join(work, "hosts"), { recursive: true });
  const flake = fleetFlake(`git+file://${pins}`);
  await fs.writeFile(path.join(work, "flake.nix"), flake);
  for (const name of names) await fs.writeFile(path.join(work, "hosts", `${name}.txt`), `${name} 1`);
  await git(work, "init", "--quiet", "--initial-branch", "main");
  await git(work, "add", "-A");
  await exec("nix", ["flake", "lock"], { cwd: work, env: gitEnv });
  await emulator.seed({
    "flake.nix": flake,
    "flake.lock": await fs.readFile(path.join(work, "flake.lock"), "utf8"),
    ...Object.fromEntries(names.map((name) => [`hosts/${name}.txt`, `${name} 1`])),
  });
  await call(z.unknown(), "/api/repo/refresh", {});

  const shims = [];
  for (const [index, name] of names.entries()) {
    const dir = path.join(root, name);
    const shim = await installRebuildShim(path.join(dir, "shim"));
    shims.push(shim);
    const { token } = await call(z.object({ token: z.string() }), "/api/hosts", { name, platform: "nixos" });
    await fs.writeFile(path.join(dir, "token"), `${token}\n`, { mode: 0o600 });
    const config: AgentConfigInput = {
      url: cp.url,
      tokenFile: path.join(dir, "token"),
      hostName: name,
      platform: "nixos",
      repoUrl: emulator.cloneUrl,
      branch: "main",
      stateDir: path.join(dir, "state"),
      pollTimeoutSeconds: 30,
      tools: { nixosRebuild: shim.nixosRebuild, detach: "setsid" },
      currentSystemLink: shim.currentSystemLink,
      rollout: { priority: index },
    };
    await fs.writeFile(path.join(dir, "agent.json"), JSON.stringify(config));
    agents.push(spawn(process.execPath, [AGENT_BIN, "run", "--config", path.join(dir, "agent.json")], { env: isolatedHostEnv(dir), stdio: "ignore" }));
  }
  await until("every host to report", async () => {
    const { hosts } = await call(z.object({ hosts: z.array(HostView) }), "/api/hosts");
    return hosts.length === HOSTS && hosts.every((h) => h.online && h.report);
  });
  // Every host first runs the fleet's current configuration, at full speed.
  const warm = await call(z.object({ rollout: RolloutView }), "/api/rollouts", {});
  await until("the warm-up rollout", async () => (await call(z.object({ rollout: RolloutView }), `/api/rollouts/${warm.rollout.id}`)).rollout.finishedAt !== undefined);
  for (const shim of shims) await shim.setDelay(SWITCH_SECONDS);

  const pr = await emulator.openPullRequest({
    head: "update",
    title: "flake.lock: Update",
    labels: ["automated"],
    files: Object.fromEntries(names.map((name) => [`hosts/${name}.txt`, `${name} 2`])),
    message: "flake.lock: Update",
  });
  await emulator.setCheckRun(pr.head.sha, { name: "build", status: "completed", conclusion: "success" });
  await emulator.flushWebhooks();
  await until("the update PR with CI green", async () => {
    const { updatePrs } = await call(z.object({ updatePrs: z.array(z.object({ number: z.number(), ciState: z.string() })) }), "/api/update-prs");
    return updatePrs.some((p) => p.number === pr.number && p.ciState === "success");
  });

  console.error(`rollout benchmark: ${HOSTS} hosts, ${SWITCH_SECONDS} s per switch…`);
  const started = performance.now();
  const startedAt = Date.now();
  const { rollout } = await call(z.object({ rollout: RolloutView }), `/api/update-prs/${pr.number}/merge-and-deploy`, {});
  const done = await until("the rollout", async () => {
    const view = (await call(z.object({ rollout: RolloutView }), `/api/rollouts/${rollout.id}`)).rollout;
    return view.state === "succeeded" && view.done === HOSTS ? view : null;
  });
  const wallSeconds = (performance.now() - started) / 1000;

  const commands = new Map<string, CommandView>();
  for (const name of names) {
    const { commands: list } = await call(z.object({ commands: z.array(CommandView) }), `/api/hosts/${name}/commands`);
    const sent = list.find((c) => c.actor === `rollout ${rollout.id}` && c.kind === "pull-switch");
    if (sent) commands.set(name, sent);
  }
  const time = (iso: string | null) => (iso === null ? Number.NaN : Date.parse(iso));
  const sequentialSeconds = [...commands.values()].reduce((sum, c) => sum + (time(c.finishedAt) - time(c.deliveredAt)) / 1000, 0);
  const overhead: number[] = [];
  const gateToDelivery: number[] = [];
  for (let k = 1; k < done.waves.length; k++) {
    const previous = done.waves[k - 1]!;
    const soakMs = previous.canary ? CANARY_SOAK_SECONDS * 1000 : 0;
    const lastFinished = Math.max(...previous.hosts.map((h) => time(commands.get(h.name)?.finishedAt ?? null)));
    const lastPassed = Math.max(...previous.hosts.map((h) => time(h.finishedAt ?? null)));
    for (const host of done.waves[k]!.hosts) {
      const delivered = time(commands.get(host.name)?.deliveredAt ?? null);
      overhead.push(delivered - lastFinished - soakMs);
      gateToDelivery.push(delivered - lastPassed - soakMs);
    }
  }
  // A host passes its gate on the report it sends after its switch: the agent's part of the step overhead.
  const finishedToPassed = done.waves.flatMap((wave) => wave.hosts.map((h) => time(h.finishedAt ?? null) - time(commands.get(h.name)?.finishedAt ?? null)));
  const output = {
    ...(await runInfo()),
    hosts: HOSTS,
    switch_seconds: SWITCH_SECONDS,
    canary_soak_seconds: CANARY_SOAK_SECONDS,
    wave_size: WAVE_SIZE,
    waves: done.waves.map((w) => w.hosts.length),
    wall_seconds: round(wallSeconds),
    /** Computed, not run: the sum of the hosts' own command times (delivered → finished) in this rollout. */
    sequential_seconds_computed: round(sequentialSeconds),
    step_overhead_p50_ms: round(percentile(overhead, 50)),
    step_overhead_p99_ms: round(percentile(overhead, 99)),
    step_overhead_samples: overhead.length,
    /** The engine's own part of the step: the wave's last host passing its gate → each next-wave host's command delivered (minus the soak). */
    gate_passed_to_delivered_ms: { min: Math.min(...gateToDelivery), max: Math.max(...gateToDelivery) },
    /** The agent's part: each host's command finished → the host passed its gate (its report after the switch). */
    command_finished_to_gate_passed_ms: { min: Math.min(...finishedToPassed), max: Math.max(...finishedToPassed) },
    /** What the step overhead includes: the agent's finished event and its next report (the gate), then the next wave's delivery. */
    step_overhead_includes: "finished event → report → gate → next wave queued → delivered to the held poll",
    /** Each host's timeline in ms after the merge request: its command delivered, started, finished, and the host passed its gate. */
    timeline_ms: Object.fromEntries(
      done.waves.flatMap((wave) =>
        wave.hosts.map((host) => {
          const command = commands.get(host.name);
          const at = (iso: string | null | undefined) => (iso ? Math.round(Date.parse(iso) - startedAt) : null);
          return [host.name, { wave: wave.index, delivered: at(command?.deliveredAt), started: at(command?.startedAt), finished: at(command?.finishedAt), passed: at(host.finishedAt) }];
        }),
      ),
    ),
    targets: { wall_seconds: 45, step_overhead_p99_ms: 50 },
  };
  await fs.mkdir(new URL("./results/", import.meta.url), { recursive: true });
  await fs.writeFile(new URL("./results/rollout.json", import.meta.url), `${JSON.stringify(output, null, 2)}\n`);
  console.log(JSON.stringify(output, null, 2));
} finally {
  for (const agent of agents) agent.kill("SIGKILL");
  await emulator.stop();
  await cp.stop();
  await fs.rm(root, { recursive: true, force: true });
}
process.exit(0);
