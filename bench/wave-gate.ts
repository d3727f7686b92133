/**
 * `npm run bench:wave-gate [-- ROUNDS]`: the control plane's own share of a rollout's wave gate, with no agent,
 * Nix or git beside it on the machine: a wave of ten hosts (no canary) whose ten finished events, each carrying
 * the host's report after its switch, are sent at the same moment, as bench:rollout's second wave ends. Per round:
 *  - workerd's CPU time (user + system, /proc) from the first event sent to the control plane idle again (the
 *    events, their judgements and whatever the outbox carries after them): a count the machine's load
 *    barely moves, unlike a wall time on the shared machine;
 *  - the wall time from the first event sent to the last one answered, and to the wave's gate passed (the
 *    rollout succeeded, read right after the answers);
 *  - each event's time in the coordinator (its route's Server-Timing marks `routed` → `answered`).
 * Writes bench/results/wave-gate.json.
 */
import * as fs from "node:fs/promises";
import { z } from "zod";
import { RolloutView, SettingsResponse, type Report } from "../common/protocol.ts";
import { adminHeaders, createHosts, median, percentile, request, round, type BenchHost } from "./fleet.ts";
import { benchReport, serverMark } from "./fleet-protocol.ts";
import { runInfo } from "./run-info.ts";
import { startWorkerd } from "./workerd.ts";

const [roundsArg] = process.argv.slice(2).map(Number);
const ROUNDS = roundsArg && roundsArg > 0 ? roundsArg : 20;
const WAVE = 10;
/** workerd's CPU counter moves in 10 ms ticks: the control plane counts as idle once it stays still this long. */
const IDLE_MS = 300;
/** How long after the ends the CPU count goes on at least: past the outbox's delayed effects (worker/coordinator/outbox.ts). */
const SETTLE_MS = 1500;

const sha = (n: number) => n.toString(16).padStart(8, "0").repeat(5);

/** A host's report at `commit`, its system the one that commit builds: what a successful switch reports. */
function reportAt(name: string, commit: string): Report {
  const base = benchReport(name, commit);
  const system = `/nix/store/${commit.slice(0, 32)}-nixos-system-${name}`;
  return { ...base, system: { current: { value: system }, desired: { value: system }, builtFromCommit: commit } };
}

async function ok<T extends z.ZodType>(schema: T, res: { status: number; json: unknown }, what: string): Promise<z.infer<T>> {
  if (res.status >= 300) throw new Error(`${what}: ${res.status} ${JSON.stringify(res.json)}`);
  return schema.parse(res.json);
}

const cp = await startWorkerd({ vars: { SERVER_TIMING: "true" } });
const agentPost = (host: BenchHost, path: string, body: unknown) =>
  request(`${cp.url}/api/agent${path}`, { method: "POST", headers: { authorization: `Bearer ${host.token}`, "content-type": "application/json" }, body: JSON.stringify(body) });

async function idle(): Promise<number> {
  let last = await cp.cpuSeconds();
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
    const now = await cp.cpuSeconds();
    if (now === last) return now;
    last = now;
  }
}

try {
  const { settings } = await ok(SettingsResponse, await request(`${cp.url}/api/settings`), "GET /api/settings");
  await ok(z.unknown(), await request(`${cp.url}/api/settings`, { method: "PUT", headers: adminHeaders(cp.url), body: JSON.stringify({ ...settings, rollout: { ...settings.rollout, canary: 0, waveSize: WAVE } }) }), "PUT /api/settings");
  const hosts = await createHosts(cp.url, WAVE);
  let commit = sha(0);
  for (const host of hosts) await ok(z.unknown(), await agentPost(host, "/poll?wait=0", { protocol: benchReport(host.name).protocol, agentSession: host.session, acks: [], activeCommands: [], report: reportAt(host.name, commit) }), "first report");

  const cpuMs: number[] = [];
  const answeredMs: number[] = [];
  const passedMs: number[] = [];
  const coordinatorMs: number[] = [];
  const lastCoordinatorMs: number[] = [];
  for (let wave = 1; wave <= ROUNDS; wave++) {
    commit = sha(wave);
    const { rollout } = await ok(z.object({ rollout: RolloutView }), await request(`${cp.url}/api/rollouts`, { method: "POST", headers: adminHeaders(cp.url), body: JSON.stringify({ commit, hosts: hosts.map((h) => h.name) }) }), "POST /api/rollouts");
    const commands = await Promise.all(
      hosts.map(async (host) => {
        const poll = await ok(z.object({ commands: z.array(z.object({ id: z.string(), kind: z.string() })) }), await agentPost(host, "/poll?wait=0", { protocol: benchReport(host.name).protocol, agentSession: host.session, acks: [], activeCommands: [] }), "poll");
        const command = poll.commands.find((c) => c.kind === "pull-switch");
        if (!command) throw new Error(`${host.name} got no pull-switch in round ${wave}`);
        await ok(z.unknown(), await agentPost(host, `/commands/${command.id}/events`, { type: "started", at: new Date().toISOString() }), "started");
        return command.id;
      }),
    );
    const before = await idle();
    const sent = performance.now();
    const ends = await Promise.all(
      hosts.map(async (host, i) => {
        const res = await agentPost(host, `/commands/${commands[i]}/events`, {
          type: "finished",
          at: new Date().toISOString(),
          outcome: "succeeded",
          exitCode: 0,
          error: null,
          result: { commitBefore: sha(wave - 1), commitAfter: commit },
          report: { agentSession: host.session, report: reportAt(host.name, commit) },
        });
        await ok(z.unknown(), res, "finished");
        const routed = serverMark(res.serverTiming, "routed");
        const answered = serverMark(res.serverTiming, "answered");
        return { at: performance.now(), coordinator: routed !== null && answered !== null ? answered - routed : Number.NaN, answered: answered ?? Number.NaN };
      }),
    );
    answeredMs.push(Math.max(...ends.map((e) => e.at)) - sent);
    const view = (await ok(z.object({ rollout: RolloutView }), await request(`${cp.url}/api/rollouts/${rollout.id}`), "GET rollout")).rollout;
    if (view.state !== "succeeded") throw new Error(`round ${wave}: the wave's gate did not pass with its ten ends (rollout ${view.state})`);
    passedMs.push(Math.max(...view.waves[0]!.hosts.map((h) => Date.parse(h.finishedAt ?? ""))) - (performance.timeOrigin + sent));
    coordinatorMs.push(...ends.map((e) => e.coordinator));
    lastCoordinatorMs.push(ends.reduce((a, b) => (b.answered > a.answered ? b : a)).coordinator);
    // The effects carried after the ends are the wave's cost too: a host's re-check waits RECHECK_CARRY_DELAY_MS (worker/coordinator/outbox.ts).
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, sent + SETTLE_MS - performance.now())));
    cpuMs.push(Math.round(((await idle()) - before) * 1000));
    console.error(`round ${wave}: cpu ${cpuMs.at(-1)} ms, answered ${round(answeredMs.at(-1)!)} ms`);
  }
  const spread = (values: number[]) => ({ min: round(Math.min(...values)), p50: median(values), p99: round(percentile(values, 99)), max: round(Math.max(...values)) });
  const output = {
    ...(await runInfo()),
    rounds: ROUNDS,
    wave_size: WAVE,
    /** workerd's CPU for one wave's ten ends, their judgements and the effects carried after them (10 ms ticks). */
    cpu_ms_per_wave: { mean: round(cpuMs.reduce((a, b) => a + b, 0) / cpuMs.length), ...spread(cpuMs) },
    /** The first end sent → the last answered. */
    answered_ms: spread(answeredMs),
    /** The first end sent → the wave's gate passed (the last host's verdict). */
    gate_passed_ms: spread(passedMs),
    /** Each end's time in the coordinator (Server-Timing routed → answered; workerd's clock moves on I/O only). */
    coordinator_ms: spread(coordinatorMs.filter(Number.isFinite)),
    /** The last-answered end's time in the coordinator, per round. */
    last_end_coordinator_ms: spread(lastCoordinatorMs.filter(Number.isFinite)),
  };
  await fs.mkdir(new URL("./results/", import.meta.url), { recursive: true });
  await fs.writeFile(new URL("./results/wave-gate.json", import.meta.url), `${JSON.stringify(output, null, 2)}\n`);
  console.log(JSON.stringify(output, null, 2));
} finally {
  await cp.stop();
}
process.exit(0);
