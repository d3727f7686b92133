/**
 * `npm run bench:rollout [-- HOSTS SWITCH_SECONDS]`: a real rollout, Merge & Deploy of an update PR,
 * to real agent processes (real git, real Nix, the nixos-rebuild stand-in made to take SWITCH_SECONDS
 * per switch) against the local control plane and the GitHub emulator. Canary 1 host with a 5 s soak,
 * then waves of 10. Measures, in the same run:
 *  - wall time from the merge request to every host passed;
 *  - for comparison, computed (not run): the sum of the hosts' own command times in this run, what one
 *    host after another would take (`sequential_seconds_computed`);
 *  - the wave step, the agents' reports included: the last host of a wave verified its switch (the
 *    agent's finished event) → each host of the next wave delivered its command (minus the soak),
 *    p50 and p99 (`wave_step_*`);
 *  - where each step goes (`wave_step_breakdown_ms`, the step's last host of a wave and each
 *    next-wave host): activated (the host's running-system link flipped, read from the stand-in's
 *    link) → finished event (the agent's check of the result) → gate passed (its report judged) →
 *    next wave queued → delivered to the held poll. The first part precedes the wave step;
 *  - the baseline: one request's round trip to the coordinator, timed while the rollout ran.
 * Writes bench/results/rollout.json.
 */
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { z } from "zod";
import { CommandView, RolloutView } from "../common/protocol.ts";
import { adminApi } from "../test/support/admin-api.ts";
import { everyHostReporting } from "../test/support/e2e-agent.ts";
import { startGitHubFleet } from "../test/support/github-fleet.ts";
import { eventuallyWith } from "../test/support/wait.ts";
import { runInfo } from "./run-info.ts";

const [hostsArg, switchArg] = process.argv.slice(2).map(Number);
const HOSTS = hostsArg && hostsArg > 0 ? hostsArg : 20;
const SWITCH_SECONDS = switchArg !== undefined && switchArg >= 0 ? switchArg : 10;
const CANARY_SOAK_SECONDS = 5;
const WAVE_SIZE = 10;
const SECRET = "bench-secret";
const TOKEN = "github_pat_bench";

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
};
const round = (n: number) => Math.round(n * 100) / 100;

const root = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-bench-rollout-"));
const names = Array.from({ length: HOSTS }, (_, i) => `b${String(i).padStart(2, "0")}`);
const { cp, emulator, agents, stop } = await startGitHubFleet({
  root,
  hosts: names,
  webhookSecret: SECRET,
  token: TOKEN,
  pollTimeoutSeconds: 30,
  vars: { ROLLOUT_CANARY_SOAK_SECONDS: String(CANARY_SOAK_SECONDS), ROLLOUT_WAVE_SIZE: String(WAVE_SIZE) },
  packages: {},
});
const call = adminApi(cp.url);
const until = eventuallyWith({ timeoutMs: 300_000, intervalMs: 100 });

try {
  await until("every host to report", everyHostReporting(cp.url, HOSTS));
  // Every host first runs the fleet's current configuration, at full speed.
  const warm = await call(z.object({ rollout: RolloutView }), "/api/rollouts", { body: {} });
  await until("the warm-up rollout", async () => (await call(z.object({ rollout: RolloutView }), `/api/rollouts/${warm.rollout.id}`)).rollout.finishedAt !== undefined);
  for (const agent of agents) await agent.shim.setDelay(SWITCH_SECONDS);

  const pr = await emulator.openPullRequest({
    head: "update",
    title: "flake.lock: Update",
    labels: ["automated"],
    files: Object.fromEntries(names.map((name) => [`hosts/${name}.txt`, `${name} generation 2`])),
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
  const { rollout } = await call(z.object({ rollout: RolloutView }), `/api/update-prs/${pr.number}/merge-and-deploy`, { body: {} });
  // Each look at the rollout is a round trip through the Worker to the coordinator and back: timed, it is
  // the machine's baseline for one request in this very run (the shared machine's load moves both alike).
  const roundTrips: number[] = [];
  const done = await until("the rollout", async () => {
    const asked = performance.now();
    const view = (await call(z.object({ rollout: RolloutView }), `/api/rollouts/${rollout.id}`)).rollout;
    roundTrips.push(performance.now() - asked);
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
  // The stand-in flips each host's running-system link once in this rollout: its mtime is the activation.
  const activatedAt = new Map(await Promise.all(agents.map(async (a) => [a.name, (await fs.lstat(a.shim.currentSystemLink)).mtimeMs] as const)));
  const waveStep: number[] = [];
  const stages = { activated_to_finished: [] as number[], finished_to_passed: [] as number[], passed_to_queued: [] as number[], queued_to_delivered: [] as number[] };
  for (let k = 1; k < done.waves.length; k++) {
    const previous = done.waves[k - 1]!;
    const soakMs = previous.canary ? CANARY_SOAK_SECONDS * 1000 : 0;
    const last = previous.hosts.reduce((a, b) => (time(commands.get(b.name)?.finishedAt ?? null) > time(commands.get(a.name)?.finishedAt ?? null) ? b : a));
    const lastFinished = time(commands.get(last.name)?.finishedAt ?? null);
    const lastPassed = Math.max(...previous.hosts.map((h) => time(h.finishedAt ?? null)));
    stages.activated_to_finished.push(lastFinished - activatedAt.get(last.name)!);
    stages.finished_to_passed.push(lastPassed - lastFinished);
    for (const host of done.waves[k]!.hosts) {
      const command = commands.get(host.name);
      const delivered = time(command?.deliveredAt ?? null);
      waveStep.push(delivered - lastFinished - soakMs);
      stages.passed_to_queued.push(time(command?.createdAt ?? null) - lastPassed - soakMs);
      stages.queued_to_delivered.push(delivered - time(command?.createdAt ?? null));
    }
  }
  const spread = (values: number[]) => ({ min: round(Math.min(...values)), p50: round(percentile(values, 50)), max: round(Math.max(...values)) });
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
    /** The last host of a wave verified (its finished event) → each next-wave host's command delivered, minus the soak: reports and gate inside. */
    wave_step_p50_ms: round(percentile(waveStep, 50)),
    wave_step_p99_ms: round(percentile(waveStep, 99)),
    wave_step_samples: waveStep.length,
    /** The baseline in the same run: one admin request's round trip to the coordinator (GET the rollout), while the rollout ran. */
    baseline_round_trip_ms: { p50: round(percentile(roundTrips, 50)), p99: round(percentile(roundTrips, 99)), samples: roundTrips.length },
    /**
     * Where the steps go. Per step: the wave's last host activated → its finished event (the agent's check,
     * before the wave step), that finished event → the wave's last gate passed (reports judged). Per
     * next-wave host: gate passed → its command queued (minus the soak), queued → delivered.
     */
    wave_step_breakdown_ms: Object.fromEntries(Object.entries(stages).map(([stage, values]) => [stage, spread(values)])),
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
    targets: { wall_seconds: 45, wave_step_p99_ms: 50 },
  };
  await fs.mkdir(new URL("./results/", import.meta.url), { recursive: true });
  await fs.writeFile(new URL("./results/rollout.json", import.meta.url), `${JSON.stringify(output, null, 2)}\n`);
  console.log(JSON.stringify(output, null, 2));
} finally {
  await stop();
  await fs.rm(root, { recursive: true, force: true });
}
process.exit(0);
