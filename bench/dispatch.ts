/**
 * `npm run bench:dispatch [-- 1000 5000 10000] [--poll-seconds 10] [--no-idle]`: N simulated agents, spread over
 * client processes, long-poll the control plane on workerd without wrangler's dev proxy (bench/workerd.ts:
 * the bundle `wrangler deploy` builds, local D1, the real coordinator in an isolate of its own), through
 * fronts: one workerd process per client process holds its agents' connections and passes every request
 * to the control plane's process by JS RPC on one Cap'n Proto connection (bench/fronts.ts), as Cloudflare's
 * edge holds real agents' connections; so the coordinator's process holds a handful of descriptors at any size.
 * Measures, in the same run, for each size:
 *  - enqueue → agent-received latency (p50, p99) against a bare HTTP round trip (p50), and where the time
 *    goes, from the Worker's Server-Timing marks (worker/server-timing.ts) and the agents' receive times;
 *  - a changed report → the dashboard WebSocket's `host` event (p50, p99);
 *  - the Durable Objects' isolate heap with every poll held, against production's 128 MB per object;
 *  - what an idle host costs: Worker requests, Durable Object requests and D1 rows written over an idle
 *    window, and per poll cycle; a host-day at the 90 s default is computed from those, never measured;
 *    (--no-idle leaves that window out: dispatch alone, in a minute rather than four);
 *  - how long after the admin's 202 the command's audit entry is in D1, carried by the coordinator's outbox;
 *  - errors: failed polls and command events.
 * Writes bench/results/dispatch.json after every size. --profile takes CPU profiles of workerd's isolates and of
 * the probe process over the dispatch samples (bench/cpu-profile.ts): their busy time per dispatch and the functions
 * that spent it go into the JSON, the profiles themselves into a temporary directory (its path is printed). The
 * profiler costs time of its own, so a profiled run's latencies are not the unprofiled ones.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, writeFile } from "node:fs/promises";
import * as os from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { parseArgs } from "node:util";
import { PROTOCOL_VERSION } from "../common/protocol.ts";
import { CpuProfile, SAMPLING_INTERVAL_US, summarize } from "./cpu-profile.ts";
import { benchReport } from "./fleet-protocol.ts";
import { type BenchHost, createHosts, median, now, percentile, request, round, stats, Swarm, waitForPolls } from "./fleet.ts";
import { runInfo } from "./run-info.ts";
import { startWorkerd, type Workerd } from "./workerd.ts";

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: { "poll-seconds": { type: "string", default: "90" }, processes: { type: "string" }, samples: { type: "string", default: "200" }, "no-idle": { type: "boolean", default: false }, profile: { type: "boolean", default: false } },
});
const agentCounts = positionals.map(Number).filter((n) => n > 0);
const AGENT_COUNTS = agentCounts.length > 0 ? agentCounts : [1000, 5000, 10000];
const SAMPLES = Number(flags.samples);
const POLL_SECONDS = Number(flags["poll-seconds"]);
/** Two poll cycles at least, so every agent's poll ends in the window whatever its phase. */
const IDLE_MEASURE_MS = Math.max(40_000, 2 * POLL_SECONDS * 1000);
const DEFAULT_POLL_SECONDS = 90;
/** Production's memory limit of one Durable Object (an isolate). */
const OBJECT_MEMORY_LIMIT_BYTES = 128 * 1024 * 1024;
/** The coordinator flushes "last seen" at most this often (worker/coordinator/presence.ts). */
const LAST_SEEN_FLUSHES_PER_DAY = 24 / 6;
/**
 * All but this many in a held poll counts as every poll held: at thousands of agents some are always
 * between an answered poll and the next, so waiting for all of them at once would wait for ever.
 */
const heldEnough = (agents: number) => agents - Math.floor(agents / 200);
/** Client processes for the agents that are not probes, a few thousand connections each at most; as many fronts, one for each. */
const processesFor = (agents: number) => Number(flags.processes) || Math.min(4, Math.max(2, Math.ceil(agents / 2500)));
/**
 * The agents the dispatches go to, in a client process of their own: a real agent has its host to
 * itself, and one sharing an event loop with 500 others waited on theirs (4.0 ms alone, 9.3 ms shared,
 * at load 7). Few, so their process stays quiet; spread over the names, so no one range of hosts is favoured.
 */
const PROBE_AGENTS = 20;
/** Agents that begin polling together (bench/fleet.ts's Swarm.start says why not all): 1,000 starts as one batch, as before. */
const AGENTS_STARTED_AT_ONCE = 1000;
/** workerd's HTTP listener holds every accepted connection under two descriptors (bench/workerd.ts says why): a front's, here. */
const WORKERD_DESCRIPTORS_PER_CONNECTION = 2;
/** What a front holds before its agents come, when no size has run yet to measure it (about 35 measured). */
const FRONT_DESCRIPTORS_BEFORE_AGENTS_GUESS = 100;
const probesOf = (hosts: BenchHost[]) => Array.from({ length: Math.min(PROBE_AGENTS, hosts.length) }, (_, i) => hosts[(i * 7919) % hosts.length]!);
const load = () => os.loadavg().map((n) => round(n));

async function d1File(stateDir: string): Promise<string> {
  const dir = join(stateDir, "v3/d1/miniflare-D1DatabaseObject");
  const file = (await readdir(dir)).find((name) => name.endsWith(".sqlite") && name !== "metadata.sqlite");
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

/**
 * Milliseconds from `from` (this process's clock) until the audit entry of `commandId` is in D1's file,
 * polled read-only every millisecond, for a second at most.
 */
async function auditEntryInD1(path: string, commandId: string, from: number): Promise<number> {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const entry = db.prepare("select 1 from audit_log where json_extract(details, '$.commandId') = ?");
    for (;;) {
      if (entry.get(commandId) !== undefined) return now() - from;
      if (now() - from > 1000) throw new Error(`the audit entry of ${commandId} was not in D1 a second after the 202`);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  } finally {
    db.close();
  }
}

const changedRows = (before: Map<string, string>, after: Map<string, string>) => [...after].filter(([key, value]) => before.get(key) !== value).length;

/** Where one dispatch's time went, in ms: each part ends where the next begins. */
interface Breakdown {
  /** Client → the Worker's first middleware (through the front, its RPC and the gateway). */
  to_worker: number;
  /** The Worker's middleware and the route's parsing (Access/role/CSRF checks, body validation). */
  middleware: number;
  /** The route's call → the held poll's Worker had the coordinator's answer (the RPC, the step, the storage commit the answer waits for). */
  coordinator_to_poll_answer: number;
  /** The poll's Worker → the agent had the answer (through the gateway, its RPC answer and the front). */
  poll_answer_to_agent: number;
  /** The admin's own answer: the coordinator's reply to the route (the command and its audit entry stored), the way back. */
  admin_enqueue_rpc: number;
  admin_answer_to_client: number;
}

/** What each part of `dispatch_breakdown_p50_ms` spans, for the JSON. */
const BREAKDOWN_HOW: Record<keyof Breakdown, string> = {
  to_worker: "admin request sent (probe process's clock) → the first front → its JS RPC on the Cap'n Proto connection → the gateway → the Worker's first middleware (Server-Timing 'arrived'; workerd floors its marks to the millisecond, so this part reads up to 1 ms short)",
  middleware: "'arrived' → the route's 'routed' mark: Access, role and CSRF checks and the body's validation (workerd's clock moves with I/O only, so CPU without I/O reads as 0)",
  coordinator_to_poll_answer: "'routed' → the held poll's Worker has the coordinator's answer ('answered'): the RPC, the enqueue step that stores the command and answers the waiting poll, and the storage commit the answer waits for (output gate)",
  poll_answer_to_agent: "'answered' → the probe agent has read and parsed the answer (its clock): the Worker's JSON answer, the gateway, the RPC's answer to the first front, the front's answer on the agent's socket, the client (reads up to 1 ms long, the mark being floored); shares workerd's thread with the admin's answer and the outbox's carry of the audit entry to D1",
  admin_enqueue_rpc: "'routed' → the route has the coordinator's reply ('enqueued'): the command and its audit entry stored in one commit; the admin's own path, beside the agent's",
  admin_answer_to_client: "'enqueued' → the admin client (the probe process) has the 202, back through the gateway and the first front",
};

/**
 * The profiles taken over the dispatch samples, written out for DevTools and summed up: each process's busy
 * time per sample (a sample is a dispatch, its bare round trips and the bench's polls of /api/stats between them).
 */
async function profilesOf(isolates: Record<string, CpuProfile>, probe: unknown) {
  const dir = await mkdtemp(join(os.tmpdir(), "nixfleet-dispatch-profiles-"));
  const profiles: Record<string, CpuProfile> = { ...isolates, probe: CpuProfile.parse(probe) };
  for (const [name, profile] of Object.entries(profiles)) await writeFile(join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
  console.error(`  CPU profiles in ${dir}`);
  return {
    how: `V8's sampling profiler every ${SAMPLING_INTERVAL_US} µs over the ${SAMPLES} dispatch samples, in workerd's isolates (its inspector) and the probe process (node:inspector); busy_ms_per is per sample: one dispatch, two bare round trips and the bench's reads of /api/stats around them`,
    ...Object.fromEntries(Object.entries(profiles).map(([name, profile]) => [name, summarize(profile, SAMPLES)])),
  };
}

const progress = (what: string) => console.error(`  ${new Date().toISOString().slice(11, 19)} ${what} (load average ${load().join(" ")})`);

/** Idle: nothing queued; counts what the fleet costs per poll cycle. */
async function idleWindow(cp: Workerd, swarm: Swarm, agentCount: number) {
  progress("idle window");
  // Idle: nothing queued; count what the fleet costs per poll cycle.
  await waitForPolls(cp.url, heldEnough(agentCount), 50);
  const dbPath = await d1File(cp.stateDir);
  const rowsBefore = snapshot(dbPath);
  const statsBefore = await stats(cp.url);
  const requestsBefore = await swarm.counters();
  const cpuBefore = await cp.cpuSeconds();
  const frontCpuBefore = await Promise.all(cp.fronts.map((front) => front.cpuSeconds()));
  await new Promise((resolve) => setTimeout(resolve, IDLE_MEASURE_MS));
  const cpuAfter = await cp.cpuSeconds();
  const frontCpu = (await Promise.all(cp.fronts.map((front) => front.cpuSeconds()))).reduce((sum, after, i) => sum + after - frontCpuBefore[i]!, 0);
  const statsAfter = await stats(cp.url);
  const requestsAfter = await swarm.counters();
  const workerRequests = requestsAfter.requests - requestsBefore.requests;
  // The second stats call is counted by the coordinator's counters too: it is ours, not the fleet's.
  const doRequests = Object.keys(statsAfter.counters).reduce((sum, key) => sum + (statsAfter.counters[key]! - (statsBefore.counters[key] ?? 0)), 0);
  const rowsWritten = changedRows(rowsBefore, snapshot(dbPath));
  const cycles = (IDLE_MEASURE_MS / 1000 / POLL_SECONDS) * agentCount;
  const pollsPerDay = 86_400 / DEFAULT_POLL_SECONDS;
  return {
    measured: {
      agents: agentCount,
      seconds: IDLE_MEASURE_MS / 1000,
      poll_seconds: POLL_SECONDS,
      /** Every agent's held poll ending once per poll_seconds: agents × seconds / poll_seconds. */
      poll_cycles: cycles,
      worker_requests: workerRequests,
      do_requests: doRequests,
      d1_rows_written: rowsWritten,
      worker_requests_per_poll: round(workerRequests / cycles),
      do_requests_per_poll: round(doRequests / cycles),
      d1_rows_written_per_poll: round(rowsWritten / cycles),
      /**
       * The control plane's workerd process (user + system CPU, /proc/<pid>/stat) over the window: the Worker
       * and the objects, and with them what production does outside them (the gateway taking the fronts'
       * RPC, the local D1's SQLite), so an upper bound of the CPU time Cloudflare bills.
       */
      workerd_cpu_seconds: round(cpuAfter - cpuBefore),
      workerd_cpu_ms_per_poll: round(((cpuAfter - cpuBefore) * 1000) / cycles),
      /** The fronts' processes together (HTTP with the agents, their side of the RPC): Cloudflare's edge's part, not billed. */
      front_cpu_seconds: round(frontCpu),
      front_cpu_ms_per_poll: round((frontCpu * 1000) / cycles),
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
      workerd_cpu_ms: Math.round((((cpuAfter - cpuBefore) * 1000) / cycles) * pollsPerDay),
    },
  };
}

async function run(agentCount: number, cp: Workerd, measureIdle: boolean) {
  progress("creating hosts");
  const hosts = await createHosts(cp.url, agentCount);
  progress("starting agents");
  const descriptorsBefore = await cp.descriptors();
  const frontDescriptorsBefore = await Promise.all(cp.fronts.map((front) => front.descriptors()));
  const processes = processesFor(agentCount);
  const probes = probesOf(hosts);
  const swarm = await Swarm.start(cp.agentUrls, hosts, processes, POLL_SECONDS, "finished", probes, AGENTS_STARTED_AT_ONCE);
  current.swarm = swarm;
  try {
    await waitForPolls(cp.url, heldEnough(agentCount), 200);
    const descriptorsHeld = await cp.descriptors();
    const frontDescriptorsHeld = await Promise.all(cp.fronts.map((front) => front.descriptors()));
    const clientDescriptors = await swarm.descriptors();
    progress(`every poll held (workerd holds ${descriptorsHeld.open} descriptors, the fronts ${frontDescriptorsHeld.map((d) => d.open).join(" + ")}, the client processes ${clientDescriptors.join(" + ")}); dispatching`);
    const heldHeap = await cp.objectsHeap();

    const bare: number[] = [];
    const bareFromAdmin: number[] = [];
    const dispatch: number[] = [];
    const enqueueAnswered: number[] = [];
    const parts: Breakdown[] = [];
    let agentBeforeAdmin = 0;
    const auditInD1: number[] = [];
    const dbPath = await d1File(cp.stateDir);
    const profiling = flags.profile ? { isolates: await cp.profileIsolates(), probe: await swarm.profileProbe("start") } : null;
    for (let i = 0; i < SAMPLES; i++) {
      const host = probes[i % probes.length]!.name;
      // (Nearly) every agent back in its long poll, so this measures a wake-up, not a queue.
      await waitForPolls(cp.url, heldEnough(agentCount), 5);
      // The bare round trips next to each dispatch, so both see the same moment of a shared machine's load.
      bare.push(await swarm.bare(`${cp.url}/api/health`));
      const t0 = now();
      await request(`${cp.url}/api/health`);
      bareFromAdmin.push(now() - t0);
      const heldBefore = (await stats(cp.url)).waitingPolls;
      const received = swarm.receipt(host);
      const queued = await swarm.enqueueFromProbe(cp.url, host);
      // From when this process heard of the 202 (a fraction of a millisecond after it), polled: no reader asks for the
      // entry meanwhile. Polled once the agent has its command, not beside it: opening D1's file and reading it every
      // millisecond took CPU on this shared machine while the poll's answer was still on its way (the entry is
      // carried 100 ms after the commit, the command reaches the agent within a few).
      const heardOf202 = now();
      const got = await received;
      auditInD1.push(await auditEntryInD1(dbPath, queued.commandId, heardOf202));
      // The agent reports the command finished, then polls again: the next sample waits for that poll (a
      // second at most, as other polls come and go), or it would share workerd with this one's aftermath.
      const settledBy = now() + 1000;
      while ((await stats(cp.url)).waitingPolls < heldBefore && now() < settledBy) await new Promise((resolve) => setTimeout(resolve, 5));
      dispatch.push(got.at - queued.sent);
      enqueueAnswered.push(queued.answered - queued.sent);
      if (got.at < queued.answered) agentBeforeAdmin++;
      const { arrived, routed, enqueued } = queued.marks;
      if (arrived !== null && routed !== null && enqueued !== null && got.answeredMark !== null) {
        parts.push({
          to_worker: arrived - queued.sent,
          middleware: routed - arrived,
          coordinator_to_poll_answer: got.answeredMark - routed,
          poll_answer_to_agent: got.at - got.answeredMark,
          admin_enqueue_rpc: enqueued - routed,
          admin_answer_to_client: queued.answered - enqueued,
        });
      }
    }

    const cpuProfile = profiling ? await profilesOf(await profiling.isolates.stop(), await swarm.profileProbe("stop")) : null;

    progress("reports to the dashboard");
    // A changed report → the dashboard's WebSocket event for that host.
    const socket = new WebSocket(`${cp.url.replace("http", "ws")}/api/events`);
    const reportSeen = new Map<string, (at: number) => void>();
    socket.addEventListener("message", (message) => {
      const event = JSON.parse(String(message.data)) as { type: string; host?: string; reportedAt?: string };
      if (event.type === "host" && event.host && event.reportedAt) reportSeen.get(event.host)?.(now());
    });
    await new Promise((resolve, reject) => {
      socket.addEventListener("open", resolve);
      socket.addEventListener("error", reject);
    });
    const reportToDashboard: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const host = hosts[(i * 104_729) % hosts.length]!;
      const seen = new Promise<number>((resolve, reject) => {
        reportSeen.set(host.name, resolve);
        setTimeout(() => reject(new Error(`no dashboard event for ${host.name}'s report within 10 s`)), 10_000).unref();
      });
      // A commit no earlier sample used, so the report always changed (an unchanged one is not stored or announced).
      const changed = benchReport(host.name, (i + 1).toString(16).padStart(40, "e"));
      const t0 = now();
      await request(`${cp.url}/api/agent/poll?wait=0`, {
        method: "POST",
        headers: { authorization: `Bearer ${host.token}`, "content-type": "application/json" },
        body: JSON.stringify({ protocol: PROTOCOL_VERSION, agentSession: host.session, acks: [], activeCommands: [], report: changed }),
      });
      reportToDashboard.push((await seen) - t0);
      reportSeen.delete(host.name);
    }
    socket.close();

    const idle = measureIdle && !flags["no-idle"] ? await idleWindow(cp, swarm, agentCount) : null;
    const heapAfter = await cp.objectsHeap();
    const errors = (await swarm.counters()).errors;
    const coordinatorStorageBytes = await cp.coordinatorStorageBytes();
    const breakdownP50 = Object.fromEntries(
      (Object.keys(parts[0] ?? {}) as Array<keyof Breakdown>).map((key) => [key, median(parts.map((part) => part[key]))]),
    );

    return {
      result: {
        agents: agentCount,
        /** Processes holding the agents that are not probes, plus one holding the probes alone. */
        client_processes: processes,
        probe_agents: probes.length,
        poll_seconds: POLL_SECONDS,
        polls_per_second: round(agentCount / POLL_SECONDS),
        /**
         * From the admin's POST /api/hosts/:name/commands leaving the probe process to a probe agent in that
         * process having read and JSON-parsed the held poll's answer with the command.
         */
        dispatch_how: "admin request sent through the first front → probe agent has the poll answer read and JSON-parsed, both in the probe process with undici's request, on its one clock (sub-ms, lined up with the system clock workerd's marks read)",
        dispatch_p50_ms: round(percentile(dispatch, 50)),
        dispatch_p99_ms: round(percentile(dispatch, 99)),
        bare_rtt_how: "GET /api/health from the probe process through the first front (its JS RPC to the gateway, the Worker, back), as the probe agents' polls go, with the client its agents poll with, timed to the answer read and JSON-parsed as theirs are; one before each dispatch sample",
        bare_rtt_p50_ms: round(percentile(bare, 50)),
        /** Beside dispatch_p99_ms: on a shared machine the same moments of load reach both, so a dispatch p99 over 100 ms reads against this. */
        bare_rtt_p99_ms: round(percentile(bare, 99)),
        /** The same request from the bench's own process (reported, not divided by). */
        bare_rtt_admin_client_p50_ms: round(percentile(bareFromAdmin, 50)),
        /** Computed from the two p50s above (the target is ≤ 2). */
        dispatch_p50_over_bare_rtt_p50_computed: round(percentile(dispatch, 50) / percentile(bare, 50)),
        /** Each part's p50 over the samples whose answers carried every mark (`breakdown_samples`); wall-clock marks of workerd are whole milliseconds. */
        dispatch_breakdown_p50_ms: breakdownP50,
        breakdown_samples: parts.length,
        dispatch_breakdown_how: BREAKDOWN_HOW,
        /**
         * How the agent's way and the admin's own answer overlap: on one workerd thread (the Workers, the
         * objects and the local D1) the admin's answer and the outbox's audit carry run beside the held poll's answer.
         */
        agent_before_admin_answer_share: round(agentBeforeAdmin / SAMPLES),
        audit_in_d1_how: "the bench process heard of the admin's 202 (from the probe process) → the command's audit entry is a row of the local D1's file (read-only, polled every millisecond); the coordinator's outbox carries it after the commit, with no reader of the audit log asking",
        audit_in_d1_after_202_p50_ms: round(percentile(auditInD1, 50)),
        audit_in_d1_after_202_p99_ms: round(percentile(auditInD1, 99)),
        /** The admin's own request, for comparison: the agent usually has the command before the admin has the answer. */
        enqueue_answered_p50_ms: round(percentile(enqueueAnswered, 50)),
        report_to_dashboard_p50_ms: round(percentile(reportToDashboard, 50)),
        report_to_dashboard_p99_ms: round(percentile(reportToDashboard, 99)),
        errors,
        error_examples: swarm.errors.slice(0, 3),
        /** The Durable Objects' isolate (the coordinator with every poll held, the Notifier, the Automation) after a garbage collection. */
        objects_heap_used_mb_held: round(heldHeap.used_bytes / 1024 / 1024),
        objects_heap_used_mb_after: round(heapAfter.used_bytes / 1024 / 1024),
        objects_heap_share_of_128mb_limit: round(Math.max(heldHeap.used_bytes, heapAfter.used_bytes) / OBJECT_MEMORY_LIMIT_BYTES),
        workerd_rss_mb: round((await cp.rssBytes()) / 1024 / 1024),
        /**
         * Descriptors with (nearly) every poll held: those of workerd that holds the Worker and the objects
         * (the fronts' Cap'n Proto connections, not the agents') against its limit, per agent above what it
         * held before the agents came; each front's and each client process's.
         */
        workerd_descriptors_held: descriptorsHeld.open,
        workerd_descriptors_before_agents: descriptorsBefore.open,
        workerd_descriptors_per_agent_computed: round((descriptorsHeld.open - descriptorsBefore.open) / agentCount),
        workerd_descriptor_limit: descriptorsHeld.limit,
        /** Descriptors per open connection in workerd: its socket descriptors over the distinct sockets they point to. */
        workerd_descriptors_per_connection: round(descriptorsHeld.sockets / descriptorsHeld.distinctSockets),
        /** Front i holds the connections of client process i (the first also the probe process's and the bench's own). */
        fronts: cp.fronts.length,
        front_descriptors_held: frontDescriptorsHeld.map((d) => d.open),
        front_descriptors_before_agents: frontDescriptorsBefore.map((d) => d.open),
        front_descriptor_limit: frontDescriptorsHeld[0]?.limit ?? null,
        /** The first front's socket descriptors over the distinct sockets they point to. */
        front_descriptors_per_connection: frontDescriptorsHeld[0] ? round(frontDescriptorsHeld[0].sockets / frontDescriptorsHeld[0].distinctSockets) : null,
        front_rss_mb: await Promise.all(cp.fronts.map(async (front) => round((await front.rssBytes()) / 1024 / 1024))),
        client_process_descriptors_held: clientDescriptors,
        coordinator_storage_bytes: coordinatorStorageBytes,
        coordinator_storage_bytes_per_host: Math.round(coordinatorStorageBytes / agentCount),
        samples: SAMPLES,
        ...(cpuProfile ? { cpu_profile: cpuProfile } : {}),
      },
      idle,
    };
  } finally {
    await swarm.stop();
    current.swarm = null;
  }
}

/** The run under way, so a run past its deadline can still be stopped. */
const current: { swarm: Swarm | null } = { swarm: null };

/** How long a run may take at most: a size the local deployment cannot hold is recorded as such, not waited on forever. */
const RUN_DEADLINE_MS = Number(process.env.BENCH_RUN_DEADLINE_MS) || 15 * 60_000;
const runs: unknown[] = [];
let stateFilesystem = "";
let idle: Awaited<ReturnType<typeof idleWindow>> | null = null;
const write = async () => {
  const output = {
    ...(await runInfo()),
    /** Where workerd kept its storage (D1, the objects' SQLite): a tmpfs commits without the shared disk's fsync, which production's storage does not share either. */
    state_filesystem: stateFilesystem,
    setup:
      "the control plane's workerd through Miniflare (no wrangler dev proxy): the Worker, the Durable Objects in an isolate of their own, and a gateway Worker on a socket that takes Cap'n Proto RPC. Between the agents and it, fronts: one workerd process per client process holds that process's agents' connections (HTTP/1.1, one per held poll) and passes each request as one JS RPC call on the one Cap'n Proto connection it holds to the gateway, which hands it to the Worker over a service binding; the bench's own requests, the probe agents' and the bare round trips go through the first front. One machine for all",
    runs,
    /** The first completed size's idle window: what was counted. */
    idle_measured: idle?.measured ?? null,
    /** Computed from idle_measured, not measured: a host-day is far longer than the window. */
    idle_host_day_computed: idle?.host_day_computed ?? null,
    targets: {
      dispatch_p99_ms_at_1000: 50,
      dispatch_p50_over_bare_rtt_p50_computed: 2,
      report_to_dashboard_p99_ms_at_1000: 100,
      one_object_degrades_at: { dispatch_p99_ms: 100, errors: 0 },
      objects_heap_limit_mb: 128,
      idle_host_day_computed: { worker_requests: 1000, do_requests: 1000, d1_rows_written: 20 },
    },
  };
  // Written after every run, so the figures of the sizes that finished survive one that does not.
  await mkdir(new URL("./results/", import.meta.url), { recursive: true });
  await writeFile(new URL("./results/dispatch.json", import.meta.url), `${JSON.stringify(output, null, 2)}\n`);
  return output;
};
/**
 * A size whose held polls need more descriptors in a front than its limit allows: recorded as such, not
 * started (at its limit workerd exits, taking every held poll with it). The control plane's process is not
 * asked: behind the fronts it holds their few Cap'n Proto connections, not the agents'. The busiest front
 * is the first, which holds the probe agents too; it needs what it held before the agents came (as the
 * last completed size measured it) and two descriptors per connection (bench/workerd.ts says why).
 */
function beyondDescriptors(count: number) {
  const measured = runs.filter((run): run is { front_descriptors_before_agents: number[] } => typeof run === "object" && run !== null && "front_descriptors_before_agents" in run).at(-1);
  const before = measured ? Math.max(...measured.front_descriptors_before_agents) : FRONT_DESCRIPTORS_BEFORE_AGENTS_GUESS;
  const fronts = processesFor(count);
  const connections = Math.ceil((count - PROBE_AGENTS) / fronts) + PROBE_AGENTS;
  const needed = before + WORKERD_DESCRIPTORS_PER_CONNECTION * connections;
  // A front inherits this process's limit (the npm script raises it to the hard limit).
  const limit = Number(/Max open files\s+(\d+)/.exec(readFileSync("/proc/self/limits", "utf8"))?.[1]);
  if (!limit || needed < limit) return null;
  return {
    agents: count,
    completed: false,
    reason: `not started: the busiest of ${fronts} fronts would hold ${connections} connections and need about ${needed} descriptors (${WORKERD_DESCRIPTORS_PER_CONNECTION} per connection and the ${before} it holds before the agents come), not below its limit of ${limit} (more fronts: --processes)`,
    errors: null,
    front_descriptors_needed_computed: needed,
    front_descriptor_limit: limit,
  };
}

for (const count of AGENT_COUNTS) {
  const failed = runs.find((run) => typeof run === "object" && run !== null && "completed" in run && run.completed === false && "reason" in run && !String(run.reason).startsWith("not started"));
  // A size past one that failed is not started, but still told apart: one that could never fit says so.
  const beyond = beyondDescriptors(count) ?? (failed ? { agents: count, completed: false, reason: `not started: a smaller size did not finish`, errors: null } : null);
  if (beyond) {
    console.error(JSON.stringify(beyond));
    runs.push(beyond);
    await write();
    continue;
  }
  console.error(`dispatch benchmark: ${count} agents (load average ${load().join(" ")})…`);
  const started = Date.now();
  const cp = await startWorkerd({ vars: { POLL_TIMEOUT_SECONDS: String(POLL_SECONDS), SERVER_TIMING: "true" }, fronts: processesFor(count) });
  stateFilesystem = execFileSync("stat", ["-f", "-c", "%T", cp.stateDir], { encoding: "utf8" }).trim();
  const loadBefore = load();
  const timedOut = new Promise<"timed-out">((resolve) => setTimeout(() => resolve("timed-out"), RUN_DEADLINE_MS).unref());
  const outcome: Awaited<ReturnType<typeof run>> | { failed: string } | "timed-out" = await Promise.race([run(count, cp, idle === null).catch((error: unknown) => ({ failed: error instanceof Error ? error.message : String(error) })), timedOut]);
  if (outcome === "timed-out" || "failed" in outcome) {
    const errors = current.swarm ? (await current.swarm.counters()).errors : null;
    const reason = outcome === "timed-out" ? `did not finish within ${RUN_DEADLINE_MS / 60_000} min` : outcome.failed;
    const result = { agents: count, completed: false, reason, errors, load_average_1_5_15_before: loadBefore, load_average_1_5_15: load() };
    console.error(JSON.stringify(result));
    runs.push(result);
    await current.swarm?.stop();
    await cp.stop();
    await write();
    continue;
  }
  await cp.stop();
  const result = { ...outcome.result, completed: true, seconds: Math.round((Date.now() - started) / 1000), load_average_1_5_15_before: loadBefore, load_average_1_5_15: load() };
  console.error(JSON.stringify(result));
  runs.push(result);
  idle ??= outcome.idle ?? null;
  await write();
}
console.log(JSON.stringify(await write(), null, 2));
process.exit(0);
