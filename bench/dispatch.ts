/**
 * `npm run bench:dispatch [-- 200 1000]`: N simulated agents long-poll a locally
 * running control plane (wrangler dev on workerd, local D1, the real
 * coordinator Durable Object). Measures, in the same run:
 *  - enqueue → agent-received latency (p50, p99) against a bare HTTP round trip (p50);
 *  - a changed report → the dashboard WebSocket's `host` event (p50, p99);
 *  - what an idle host costs: Worker requests, Durable Object requests and D1
 *    rows written over an idle window, and per poll cycle; a host-day at the
 *    90 s default is computed from those (`idle_host_day_computed`, which says
 *    how), never measured;
 *  - poll errors (any failed long-poll counts).
 * Writes bench/results/dispatch.json.
 */
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { Agent, fetch as undiciFetch } from "undici";
import { z } from "zod";
import { PROTOCOL_VERSION, PollResponse, type Report } from "../common/protocol.ts";
import { NIXFLEET_VERSION } from "../common/version.ts";
import { startControlPlane, type ControlPlane } from "../test/support/control-plane.ts";
import { runInfo } from "./run-info.ts";

const agentCounts = process.argv.slice(2).map(Number).filter((n) => n > 0);
const AGENT_COUNTS = agentCounts.length > 0 ? agentCounts : [200, 1000, 5000];
const SAMPLES = 200;
const BENCH_POLL_SECONDS = 10;
const IDLE_MEASURE_MS = 40_000;
const DEFAULT_POLL_SECONDS = 90;
/** The coordinator flushes "last seen" at most this often (worker/coordinator/presence.ts). */
const LAST_SEEN_FLUSHES_PER_DAY = 24 / 6;

// One connection per waiting poll, as N real agents would hold.
const dispatcher = new Agent({ connections: null, pipelining: 1, keepAliveTimeout: 120_000, headersTimeout: 0, bodyTimeout: 0 });
let clientRequests = 0;
let pollErrors = 0;

async function request(url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  clientRequests++;
  const res = await undiciFetch(url, { ...init, dispatcher });
  return { status: res.status, json: (await res.json()) as unknown };
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};
const round = (n: number) => Math.round(n * 100) / 100;

function report(hostname: string): Report {
  return {
    protocol: PROTOCOL_VERSION,
    agentVersion: NIXFLEET_VERSION,
    platform: "nixos",
    hostname,
    os: { value: "NixOS 25.05 (Warbler)" },
    nixpkgsVersion: { value: "25.05.20250101.abcdef0" },
    nixVersion: { value: "2.28.3" },
    repo: { commit: { value: "a".repeat(40) }, branch: { value: "main" }, dirty: false },
    lock: { hash: { value: "b".repeat(64) }, lastModified: { nixpkgs: 1_702_234_567 } },
    system: { current: { value: `/nix/store/${"c".repeat(32)}-nixos-system-${hostname}` }, builtFromCommit: "a".repeat(40) },
    tests: { configured: false, autoRunAfterSwitch: false, last: null },
    uptimeSeconds: 1000,
    agentUptimeSeconds: 10,
    rollout: { autoUpdate: true, priority: 100, canary: false },
  };
}

/** A simulated agent: the real protocol, no host work; finishes each command at once. */
class SimulatedAgent {
  readonly session = crypto.randomUUID();
  private acks: string[] = [];
  private first = true;
  private running = true;
  readonly received = new Map<string, number>();
  onCommand: ((id: string, at: number) => void) | null = null;
  private readonly url: string;
  readonly name: string;
  readonly token: string;

  constructor(url: string, name: string, token: string) {
    this.url = url;
    this.name = name;
    this.token = token;
  }

  async loop(): Promise<void> {
    while (this.running) {
      const body = {
        protocol: PROTOCOL_VERSION,
        agentSession: this.session,
        acks: this.acks,
        activeCommands: [],
        ...(this.first ? { report: report(this.name) } : {}),
      };
      this.acks = [];
      let response: PollResponse;
      try {
        const res = await request(`${this.url}/api/agent/poll?wait=${BENCH_POLL_SECONDS}`, {
          method: "POST",
          headers: { authorization: `Bearer ${this.token}`, "content-type": "application/json" },
          body: JSON.stringify(body),
        });
        response = PollResponse.parse(res.json);
      } catch (err) {
        if (!this.running) return;
        pollErrors++;
        console.error(`${this.name}: poll failed`, err);
        await new Promise((resolve) => setTimeout(resolve, 1000));
        continue;
      }
      this.first = false;
      const at = performance.now();
      for (const command of response.commands) {
        this.received.set(command.id, at);
        this.onCommand?.(command.id, at);
        this.acks.push(command.id);
        await request(`${this.url}/api/agent/commands/${command.id}/events`, {
          method: "POST",
          headers: { authorization: `Bearer ${this.token}`, "content-type": "application/json" },
          body: JSON.stringify({ type: "finished", at: new Date().toISOString(), outcome: "succeeded", exitCode: 0, result: {} }),
        });
      }
    }
  }

  stop() {
    this.running = false;
  }
}

const Stats = z.object({ counters: z.record(z.string(), z.number()), waitingPolls: z.number() });
const adminHeaders = (cp: ControlPlane) => ({ origin: cp.url, "content-type": "application/json" });

async function stats(cp: ControlPlane) {
  return Stats.parse((await request(`${cp.url}/api/stats`)).json);
}

async function d1File(stateDir: string): Promise<string> {
  const dir = join(stateDir, "v3/d1/miniflare-D1DatabaseObject");
  const file = (await readdir(dir)).find((name) => name.endsWith(".sqlite"));
  if (!file) throw new Error(`no local D1 database under ${dir}`);
  return join(dir, file);
}

/** Every row that an idle fleet could write, so a diff counts the rows written. */
function snapshot(path: string): Map<string, string> {
  const db = new DatabaseSync(path, { readOnly: true });
  const rows = new Map<string, string>();
  const tables: [string, string][] = [
    ["hosts", "select id as k, coalesce(last_seen_at, '') as v from hosts"],
    ["reports", "select host_id as k, received_at || report_hash as v from reports"],
    ["audit_log", "select id as k, '' as v from audit_log"],
    ["agent_tokens", "select id as k, coalesce(revoked_at, '') as v from agent_tokens"],
  ];
  for (const [table, sql] of tables) {
    for (const row of db.prepare(sql).all()) rows.set(`${table}:${String(row.k)}`, String(row.v));
  }
  db.close();
  return rows;
}

const changedRows = (before: Map<string, string>, after: Map<string, string>) =>
  [...after].filter(([key, value]) => before.get(key) !== value).length;

async function run(agentCount: number) {
  const errorsBefore = pollErrors;
  const cp = await startControlPlane({ vars: { POLL_TIMEOUT_SECONDS: String(BENCH_POLL_SECONDS) } });
  current.cp = cp;
  const agents: SimulatedAgent[] = [];
  try {
    for (let i = 0; i < agentCount; i += 25) {
      const batch = Array.from({ length: Math.min(25, agentCount - i) }, (_, j) => `bench-${i + j}`);
      const created = await Promise.all(
        batch.map(async (name) => {
          const res = await request(`${cp.url}/api/hosts`, { method: "POST", headers: adminHeaders(cp), body: JSON.stringify({ name, platform: "nixos" }) });
          return { name, token: z.object({ token: z.string() }).parse(res.json).token };
        }),
      );
      agents.push(...created.map(({ name, token }) => new SimulatedAgent(cp.url, name, token)));
    }
    const loops = agents.map((agent) => agent.loop());
    while ((await stats(cp)).waitingPolls < agentCount) await new Promise((resolve) => setTimeout(resolve, 200));

    const bare: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const t0 = performance.now();
      await request(`${cp.url}/api/health`);
      bare.push(performance.now() - t0);
    }

    const dispatch: number[] = [];
    const enqueueAnswered: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const agent = agents[(i * 7919) % agents.length]!;
      // Wait until this agent is back in its long-poll, so we measure a wake-up, not a queue.
      while ((await stats(cp)).waitingPolls < agentCount) await new Promise((resolve) => setTimeout(resolve, 5));
      const received = new Promise<number>((resolve) => {
        agent.onCommand = (_id, at) => resolve(at);
      });
      const t0 = performance.now();
      const res = await request(`${cp.url}/api/hosts/bench-${agents.indexOf(agent)}/commands`, {
        method: "POST",
        headers: adminHeaders(cp),
        body: JSON.stringify({ kind: "refresh" }),
      });
      if (res.status !== 202) throw new Error(`enqueue failed: ${res.status} ${JSON.stringify(res.json)}`);
      enqueueAnswered.push(performance.now() - t0);
      dispatch.push((await received) - t0);
      agent.onCommand = null;
    }

    // A changed report → the dashboard's WebSocket event for that host.
    const socket = new WebSocket(`${cp.url.replace("http", "ws")}/api/events`);
    const reportSeen = new Map<string, (at: number) => void>();
    socket.addEventListener("message", (message) => {
      const event = JSON.parse(String(message.data)) as { type: string; host?: string; reportedAt?: string };
      if (event.type === "host" && event.host && event.reportedAt) reportSeen.get(event.host)?.(performance.now());
    });
    await new Promise((resolve, reject) => {
      socket.addEventListener("open", resolve);
      socket.addEventListener("error", reject);
    });
    const reportToDashboard: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const agent = agents[(i * 104_729) % agents.length]!;
      const seen = new Promise<number>((resolve, reject) => {
        reportSeen.set(agent.name, resolve);
        setTimeout(() => reject(new Error(`no dashboard event for ${agent.name}'s report within 10 s`)), 10_000).unref();
      });
      // A commit no earlier sample used, so the report always changed (an unchanged one is not stored or announced).
      const commit = (i + 1).toString(16).padStart(40, "e");
      const changed = { ...report(agent.name), repo: { commit: { value: commit }, branch: { value: "main" }, dirty: false } };
      const t0 = performance.now();
      await request(`${cp.url}/api/agent/poll?wait=0`, {
        method: "POST",
        headers: { authorization: `Bearer ${agent.token}`, "content-type": "application/json" },
        body: JSON.stringify({ protocol: PROTOCOL_VERSION, agentSession: agent.session, acks: [], activeCommands: [], report: changed }),
      });
      reportToDashboard.push((await seen) - t0);
      reportSeen.delete(agent.name);
    }
    socket.close();

    // Idle: nothing queued; count what the fleet costs per poll cycle.
    while ((await stats(cp)).waitingPolls < agentCount) await new Promise((resolve) => setTimeout(resolve, 50));
    const dbPath = await d1File(cp.stateDir);
    const rowsBefore = snapshot(dbPath);
    const statsBefore = await stats(cp);
    const requestsBefore = clientRequests;
    await new Promise((resolve) => setTimeout(resolve, IDLE_MEASURE_MS));
    const statsAfter = await stats(cp);
    // The two stats calls are ours, not the fleet's.
    const workerRequests = clientRequests - requestsBefore - 1;
    const doRequests =
      Object.keys(statsAfter.counters).reduce((sum, key) => sum + (statsAfter.counters[key]! - (statsBefore.counters[key] ?? 0)), 0);
    const rowsWritten = changedRows(rowsBefore, snapshot(dbPath));
    const cycles = (IDLE_MEASURE_MS / 1000 / BENCH_POLL_SECONDS) * agentCount;
    const pollsPerDay = 86_400 / DEFAULT_POLL_SECONDS;

    return {
      result: {
        agents: agentCount,
        dispatch_p50_ms: round(percentile(dispatch, 50)),
        dispatch_p99_ms: round(percentile(dispatch, 99)),
        bare_rtt_p50_ms: round(percentile(bare, 50)),
        /** Computed from the two p50s above (the target is ≤ 2). */
        dispatch_p50_over_bare_rtt_p50_computed: round(percentile(dispatch, 50) / percentile(bare, 50)),
        /** The admin's own request, for comparison: the agent usually has the command before the admin has the answer. */
        enqueue_answered_p50_ms: round(percentile(enqueueAnswered, 50)),
        report_to_dashboard_p50_ms: round(percentile(reportToDashboard, 50)),
        report_to_dashboard_p99_ms: round(percentile(reportToDashboard, 99)),
        poll_errors: pollErrors - errorsBefore,
        samples: SAMPLES,
      },
      idle: {
        measured: {
          agents: agentCount,
          seconds: IDLE_MEASURE_MS / 1000,
          poll_seconds: BENCH_POLL_SECONDS,
          /** Every agent's held poll ending once per poll_seconds: agents × seconds / poll_seconds. */
          poll_cycles: cycles,
          worker_requests: workerRequests,
          do_requests: doRequests,
          d1_rows_written: rowsWritten,
          worker_requests_per_poll: round(workerRequests / cycles),
          do_requests_per_poll: round(doRequests / cycles),
          d1_rows_written_per_poll: round(rowsWritten / cycles),
        },
        host_day_computed: {
          how: `each measured per-poll figure × ${pollsPerDay} polls a day at the ${DEFAULT_POLL_SECONDS} s default; D1 rows add the coordinator's "last seen" flush, ${LAST_SEEN_FLUSHES_PER_DAY} a day (worker/coordinator/presence.ts), which the ${IDLE_MEASURE_MS / 1000} s window is too short to see`,
          poll_seconds: DEFAULT_POLL_SECONDS,
          polls: pollsPerDay,
          worker_requests: Math.round((workerRequests / cycles) * pollsPerDay),
          do_requests: Math.round((doRequests / cycles) * pollsPerDay),
          d1_rows_written_by_polls: Math.round((rowsWritten / cycles) * pollsPerDay),
          d1_rows_written_by_last_seen_flushes: LAST_SEEN_FLUSHES_PER_DAY,
          d1_rows_written: Math.round((rowsWritten / cycles) * pollsPerDay + LAST_SEEN_FLUSHES_PER_DAY),
        },
      },
    };
  } finally {
    for (const agent of agents) agent.stop();
    await cp.stop();
  }
}

/** The control plane of the run under way, so a run past its deadline can still be stopped. */
const current: { cp: ControlPlane | null } = { cp: null };

/** How long a run may take at most: a size the local deployment cannot hold is recorded as such, not waited on forever. */
const RUN_DEADLINE_MS = Number(process.env.BENCH_RUN_DEADLINE_MS) || 15 * 60_000;
const runs: unknown[] = [];
let idle: Awaited<ReturnType<typeof run>>["idle"] | null = null;
const load = async () => (await import("node:os")).loadavg().map((n) => Math.round(n * 100) / 100);
const write = async () => {
  const output = {
    ...(await runInfo()),
    runs,
    /** The last completed size's idle window: what was counted. */
    idle_measured: idle?.measured ?? null,
    /** Computed from idle_measured, not measured: a host-day is far longer than the window. */
    idle_host_day_computed: idle?.host_day_computed ?? null,
    targets: { dispatch_p99_ms_at_1000: 50, dispatch_p50_over_bare_rtt_p50_computed: 2, report_to_dashboard_p99_ms_at_1000: 100, poll_errors_at_5000: 0, idle_host_day_computed: { worker_requests: 1000, do_requests: 1000, d1_rows_written: 20 } },
  };
  // Written after every run, so the figures of the sizes that finished survive one that does not.
  await mkdir(new URL("./results/", import.meta.url), { recursive: true });
  await writeFile(new URL("./results/dispatch.json", import.meta.url), `${JSON.stringify(output, null, 2)}\n`);
  return output;
};
for (const count of AGENT_COUNTS) {
  console.error(`dispatch benchmark: ${count} agents…`);
  const started = Date.now();
  const timedOut = new Promise<"timed-out">((resolve) => setTimeout(() => resolve("timed-out"), RUN_DEADLINE_MS).unref());
  const outcome = await Promise.race([run(count), timedOut]);
  if (outcome === "timed-out") {
    const result = { agents: count, completed: false, reason: `did not finish within ${RUN_DEADLINE_MS / 60_000} min (load average ${(await load()).join(" ")})`, poll_errors: pollErrors };
    console.error(JSON.stringify(result));
    runs.push(result);
    await write();
    await current.cp?.stop();
    break;
  }
  const result = { ...outcome.result, completed: true, seconds: Math.round((Date.now() - started) / 1000), load_average_1_5_15: await load() };
  console.error(JSON.stringify(result));
  runs.push(result);
  idle = outcome.idle;
  await write();
}
console.log(JSON.stringify(await write(), null, 2));
await dispatcher.close();
process.exit(0);
