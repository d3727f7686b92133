/**
 * `npm run bench:rollout [-- HOSTS SWITCH_SECONDS]`: a real rollout, Merge & Deploy of an update PR,
 * to real agent processes (real git, real Nix, the nixos-rebuild stand-in made to take SWITCH_SECONDS
 * per switch) against the control plane on workerd and the GitHub emulator. Canary 1 host with a 5 s soak,
 * then waves of 10. The control plane runs as bench/workerd.ts starts it, without wrangler's dev proxy: in
 * production the agents' requests reach the Worker from Cloudflare's edge, and through the proxy (one Node
 * process that every request crosses) ten hosts' ends at once waited on it (a wave's gate event up to 119 ms
 * from the agent to the Worker in a quiet run). Measures, in the same run:
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
 *  - each finished event's way (`finished_event_ms`): the agent's record of the end, its queue, the
 *    request to the Worker, the Worker's route, the coordinator and the answer back, from the agents'
 *    debug lines and the Worker's Server-Timing marks in them (SERVER_TIMING is on for this run);
 *  - the coordinator's counts over the rollout (GET /api/stats): the polls, its command events, the reports it stored,
 *    its verdicts on a host's report, and the re-checks after an end that found the host judged already — counts no
 *    load moves;
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
import { startGitHubFleetOn } from "../test/support/github-fleet.ts";
import { eventuallyWith } from "../test/support/wait.ts";
import { serverMark } from "./fleet-protocol.ts";
import { runInfo } from "./run-info.ts";
import { startWorkerd } from "./workerd.ts";

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

interface FinishedTimeline {
  command: string;
  at: number;
  queuedAt: number;
  postedAt: number;
  arrived: number;
  routed: number;
  answered: number;
  answeredAt: number;
}

/** An agent's "finished event stored" debug line, with the Worker's marks it carries; null for any other line. */
function finishedTimeline(line: string): FinishedTimeline | null {
  if (!line.includes(" finished event stored ")) return null;
  const fields = new Map([...line.matchAll(/ (\w+)=("(?:[^"\\]|\\.)*"|\S+)/g)].map((m) => [m[1]!, m[2]!.startsWith('"') ? (JSON.parse(m[2]!) as string) : m[2]!]));
  const timing = fields.get("serverTiming") ?? null;
  const timeline = {
    command: fields.get("command") ?? "",
    at: Date.parse(fields.get("at") ?? ""),
    queuedAt: Number(fields.get("queuedAt")),
    postedAt: Number(fields.get("postedAt")),
    arrived: serverMark(timing, "arrived") ?? Number.NaN,
    routed: serverMark(timing, "routed") ?? Number.NaN,
    answered: serverMark(timing, "answered") ?? Number.NaN,
    answeredAt: Number(fields.get("answeredAt")),
  };
  return Object.values(timeline).every((v) => typeof v === "string" || Number.isFinite(v)) ? timeline : null;
}

const root = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-bench-rollout-"));
const names = Array.from({ length: HOSTS }, (_, i) => `b${String(i).padStart(2, "0")}`);
const { cp, emulator, agents, stop } = await startGitHubFleetOn((vars) => startWorkerd({ vars }), {
  root,
  hosts: names,
  webhookSecret: SECRET,
  token: TOKEN,
  pollTimeoutSeconds: 30,
  vars: { ROLLOUT_CANARY_SOAK_SECONDS: String(CANARY_SOAK_SECONDS), ROLLOUT_WAVE_SIZE: String(WAVE_SIZE), SERVER_TIMING: "true" },
  packages: {},
  agentLogLevel: "debug",
});
const call = adminApi(cp.url);
const Counters = z.object({ counters: z.object({ polls: z.number(), commandEvents: z.number(), reportsStored: z.number(), hostJudgements: z.number(), rechecksMoot: z.number() }) });
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

  const countsBefore = (await call(Counters, "/api/stats")).counters;
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
  const countsAfter = (await call(Counters, "/api/stats")).counters;

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
  // Each finished event's way from the agent's stamp to the control plane's answer: the agents' debug lines
  // (agent/command-events.ts) with the Worker's Server-Timing marks (worker/server-timing.ts) in them.
  const finishedEvents = new Map<string, FinishedTimeline>();
  for (const agent of agents) for (const line of agent.log.join("").split("\n")) {
    const timeline = finishedTimeline(line);
    if (timeline) finishedEvents.set(timeline.command, timeline);
  }
  const eventStages = { recorded: [] as number[], queued: [] as number[], to_worker: [] as number[], worker_route: [] as number[], coordinator: [] as number[], answer_to_agent: [] as number[], post: [] as number[] };
  const gateOfWave = { ...Object.fromEntries(Object.keys(eventStages).map((stage) => [stage, [] as number[]])) as typeof eventStages, coordinator_to_passed: [] as number[] };
  const addStages = (into: Record<keyof typeof eventStages, number[]>, t: FinishedTimeline) => {
    into.recorded.push(t.queuedAt - t.at);
    into.queued.push(t.postedAt - t.queuedAt);
    into.to_worker.push(t.arrived - t.postedAt);
    into.worker_route.push(t.routed - t.arrived);
    into.coordinator.push(t.answered - t.routed);
    into.answer_to_agent.push(t.answeredAt - t.answered);
    into.post.push(t.answeredAt - t.postedAt);
  };
  for (const command of commands.values()) {
    const timeline = finishedEvents.get(command.id);
    if (timeline) addStages(eventStages, timeline);
  }
  for (let k = 1; k < done.waves.length; k++) {
    const previous = done.waves[k - 1]!;
    // The gate opens when the wave's last finished event reaches the coordinator: not always the last host to finish.
    const timelines = previous.hosts.map((h) => finishedEvents.get(commands.get(h.name)?.id ?? "")).filter((t) => t !== undefined);
    if (timelines.length < previous.hosts.length) continue;
    const gate = timelines.reduce((a, b) => (b.routed > a.routed ? b : a));
    addStages(gateOfWave, gate);
    gateOfWave.coordinator_to_passed.push(Math.max(...previous.hosts.map((h) => time(h.finishedAt ?? null))) - gate.routed);
  }
  const spread = (values: number[]) => (values.length === 0 ? null : { min: round(Math.min(...values)), p50: round(percentile(values, 50)), max: round(Math.max(...values)) });
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
    /** From the merge request to every host passed: the agents' polls, the coordinator's command events, the reports it stored (changed ones), its verdicts on a host's report, and the re-checks after an end that found the host judged. */
    coordinator_counts: {
      polls: countsAfter.polls - countsBefore.polls,
      command_events: countsAfter.commandEvents - countsBefore.commandEvents,
      reports_stored: countsAfter.reportsStored - countsBefore.reportsStored,
      host_judgements: countsAfter.hostJudgements - countsBefore.hostJudgements,
      rechecks_moot: countsAfter.rechecksMoot - countsBefore.rechecksMoot,
    },
    /** The baseline in the same run: one admin request's round trip to the coordinator (GET the rollout), while the rollout ran. */
    baseline_round_trip_ms: { p50: round(percentile(roundTrips, 50)), p99: round(percentile(roundTrips, 99)), samples: roundTrips.length },
    /**
     * Where the steps go. Per step: the wave's last host activated → its finished event (the agent's check,
     * before the wave step), that finished event → the wave's last gate passed (reports judged). Per
     * next-wave host: gate passed → its command queued (minus the soak), queued → delivered.
     */
    wave_step_breakdown_ms: Object.fromEntries(Object.entries(stages).map(([stage, values]) => [stage, spread(values)])),
    /**
     * Each finished event of the rollout, its stamp → the agent's answer (agent clock and the Worker's marks on one
     * machine; workerd floors its marks to the millisecond): recorded (the agent stored the end on disk, and any
     * report, before handing it to its sender), queued (behind a post in flight), to the Worker, the Worker's route
     * (body, token), the coordinator (its answer, awaits included), the answer back; post is the request whole.
     * `gate_of_wave`: per wave step, the finished event that reached the coordinator last (the one the gate waited
     * for), with its receipt → the wave's gate passed.
     */
    finished_event_ms: {
      samples: eventStages.post.length,
      all: Object.fromEntries(Object.entries(eventStages).map(([stage, values]) => [stage, spread(values)])),
      gate_of_wave: Object.fromEntries(Object.entries(gateOfWave).map(([stage, values]) => [stage, spread(values)])),
    },
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
