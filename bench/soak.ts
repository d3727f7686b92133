/**
 * `npm run bench:soak [-- --minutes 30 --agents 1000]`: the control plane on workerd without the dev
 * proxy (bench/workerd.ts) holds N simulated agents (bench/fleet.ts's swarm, each agent acknowledging,
 * starting, printing and ending its commands and sending its report after one, as agent/ does) for the
 * whole run, with one command enqueued every second and a few dashboards holding the live event stream
 * (ui/data/events.ts, the dashboard's own client). Judged over the last two thirds of the run (the last
 * 20 minutes of 30), against figures from the same run:
 *  - workerd's RSS and the coordinator's storage grow by at most 10 %;
 *  - dispatch p99 (enqueue → the agent has the command) of the last window (a sixth of the run, 5 minutes
 *    of 30) is within 1.2× the first's; each window also has a bare round trip's p50/p99 (`/api/health`,
 *    sampled each second) and the load average, so a window slowed by the shared machine shows as such;
 *  - no errors: failed polls, events, enqueues, receipts, dashboard reconnects or unreadable events;
 *  - the coordinator's pruning (worker/commands/history.ts, carried out by worker/db/coordinator/commands.ts:
 *    past COMMAND_HISTORY_LIMIT the fleet's oldest finished commands go, never a host's newest 20; a host
 *    keeps at most 200, and output for its newest 50; outbox rows go once carried out) keeps the row counts
 *    within their bounds. The soak sets COMMAND_HISTORY_LIMIT to three quarters of the commands of its first
 *    third, so the history is full, and the storage at its steady state, before the judged span begins: every
 *    other command goes to one "hot" host, the rest in turn to a group of other hosts small enough that
 *    each passes its newest 20 (which pruning never takes) within the first third.
 * Writes bench/results/soak.json.
 */
import { writeFile } from "node:fs/promises";
import * as os from "node:os";
import { DatabaseSync } from "node:sqlite";
import { parseArgs } from "node:util";
import { DashboardEvent } from "../common/protocol.ts";
import { historyBounds, storedCommandsBound } from "../worker/commands/history.ts";
import { EventStream, type SocketLike } from "../ui/data/events.ts";
import { createHosts, enqueue, now, percentile, request, round, stats, Swarm, waitForPolls, type BenchHost } from "./fleet.ts";
import { runInfo } from "./run-info.ts";
import { startWorkerd, type Workerd } from "./workerd.ts";

const { values: flags } = parseArgs({
  options: {
    minutes: { type: "string", default: "30" },
    agents: { type: "string", default: "1000" },
    /** Production's default poll (agent/config.ts): a soak holds polls as real agents do. */
    "poll-seconds": { type: "string", default: "90" },
    dashboards: { type: "string", default: "3" },
    "sample-seconds": { type: "string" },
  },
});
const MINUTES = Number(flags.minutes);
const AGENTS = Number(flags.agents);
const POLL_SECONDS = Number(flags["poll-seconds"]);
const DASHBOARDS = Number(flags.dashboards);
if (!(MINUTES > 0 && AGENTS >= 2 && POLL_SECONDS > 0 && DASHBOARDS >= 1)) throw new Error("--minutes > 0, --agents ≥ 2, --poll-seconds > 0 and --dashboards ≥ 1, please");
const DURATION_MS = MINUTES * 60_000;
/** Six windows: 5 minutes each in a 30-minute run. */
const WINDOW_MS = DURATION_MS / 6;
/** The judged span: the last two thirds (20 minutes of 30); the first third lets caches, pools and tables fill. */
const JUDGED_FROM_MS = DURATION_MS / 3;
const SAMPLE_MS = Number(flags["sample-seconds"] ?? Math.max(5, Math.round(DURATION_MS / 1000 / 180))) * 1000;
const COMMAND_EVERY_MS = 1000;
/** An agent that has not received its command after this long counts as an error (a real dispatch takes milliseconds). */
const RECEIPT_TIMEOUT_MS = 60_000;
const processes = Math.min(4, Math.max(2, Math.ceil(AGENTS / 2500)));
/** Full before the judged span: three quarters of the commands sent in the first third. */
const HISTORY_LIMIT = Math.max(20, Math.floor((JUDGED_FROM_MS / COMMAND_EVERY_MS) * 0.75));
const { bounds: HISTORY, problem } = historyBounds(String(HISTORY_LIMIT));
if (problem) throw new Error(problem);
const KEEP_OUTPUT_PER_HOST = HISTORY.outputPerHost;
const KEEP_COMMANDS_PER_HOST = HISTORY.perHostMax;
/** The other half of the first third's commands, over hosts that each get half as many again as pruning never takes. */
const SPREAD_HOSTS = Math.max(1, Math.floor(JUDGED_FROM_MS / COMMAND_EVERY_MS / 2 / (HISTORY.perHostKept * 1.5)));
const TARGETS = { growth_ratio_max: 0.1, last_window_p99_over_first_max: 1.2, errors: 0 };

const load = () => os.loadavg().map(round);
const sinceStart = (t0: number) => Math.round((Date.now() - t0) / 1000);
const progress = (what: string) => console.error(`  ${new Date().toISOString().slice(11, 19)} ${what} (load average ${load().join(" ")})`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

const errors: string[] = [];
let errorCount = 0;
const fail = (what: string) => {
  errorCount++;
  if (errors.length < 20) errors.push(what);
};

/** The coordinator's rows that its pruning bounds, read from its SQLite file beside workerd. */
function rowCounts(database: string, hot: string) {
  const db = new DatabaseSync(database, { readOnly: true });
  try {
    const one = (sql: string, ...params: string[]) => Number(Object.values(db.prepare(sql).get(...params) ?? {})[0] ?? 0);
    const hotId = db.prepare("SELECT host_id FROM commands WHERE host_name = ? LIMIT 1").get(hot)?.host_id;
    const pageSize = one("PRAGMA page_size");
    return {
      commands: one("SELECT count(*) FROM commands"),
      commands_acked: one("SELECT count(*) FROM commands WHERE acked = 1"),
      /** Delivered and acknowledged but not yet ended: in flight, never piling up. */
      commands_active: one("SELECT count(*) FROM commands WHERE state IN ('queued', 'delivered', 'running')"),
      output_rows: one("SELECT count(*) FROM command_output"),
      commands_with_output: one("SELECT count(DISTINCT command_id) FROM command_output"),
      outbox_rows: one("SELECT count(*) FROM outbox"),
      /** Finished commands the history's bounds deleted, all hosts together. */
      commands_pruned: one("SELECT coalesce(sum(commands), 0) FROM command_history_pruned"),
      hot_host_commands: hotId === undefined ? 0 : one("SELECT count(*) FROM commands WHERE host_id = ?", String(hotId)),
      hot_host_commands_with_output: hotId === undefined ? 0 : one("SELECT count(DISTINCT o.command_id) FROM command_output o JOIN commands c ON c.id = o.command_id WHERE c.host_id = ?", String(hotId)),
      /** Pages in use (the file keeps freed pages for reuse). */
      used_bytes: (one("PRAGMA page_count") - one("PRAGMA freelist_count")) * pageSize,
    };
  } finally {
    db.close();
  }
}
type RowCounts = ReturnType<typeof rowCounts>;

interface Sample {
  t_s: number;
  rss_mb: number;
  storage_bytes: number;
  rows: RowCounts;
  waiting_polls: number;
  dashboards: number;
  load_1: number;
}

async function sample(cp: Workerd, database: string, hot: string, t0: number): Promise<Sample> {
  const [rss, storage, coordinator] = await Promise.all([cp.rssBytes(), cp.coordinatorStorageBytes(), stats(cp.url)]);
  return {
    t_s: sinceStart(t0),
    rss_mb: round(rss / 1024 / 1024),
    storage_bytes: storage,
    rows: rowCounts(database, hot),
    waiting_polls: coordinator.waitingPolls,
    dashboards: coordinator.dashboards,
    load_1: round(os.loadavg()[0]!),
  };
}

/** A dashboard holding the live stream for the whole run, counting what it receives. */
function dashboard(url: string) {
  const counts = { opens: 0, reconnects: 0, messages: 0, unreadable: 0, by_type: {} as Record<string, number> };
  const commandsEnded = new Set<string>();
  const stream = new EventStream({
    url: `${url.replace(/^http/, "ws")}/api/events`,
    createSocket: (socketUrl) => {
      const socket = new WebSocket(socketUrl);
      // Beside the stream's own handler: what arrived but did not parse as a DashboardEvent, the stream skips silently.
      socket.addEventListener("message", (message) => {
        counts.messages++;
        let parsed = false;
        try {
          parsed = DashboardEvent.safeParse(JSON.parse(String(message.data))).success;
        } catch {
          parsed = false;
        }
        if (!parsed) {
          counts.unreadable++;
          fail(`dashboard: unreadable event ${String(message.data).slice(0, 200)}`);
        }
      });
      return socket as unknown as SocketLike;
    },
    onOpen: ({ reconnected }) => {
      counts.opens++;
      if (reconnected) {
        counts.reconnects++;
        fail("dashboard: the event stream closed and reconnected");
      }
    },
    onEvent: (event) => {
      counts.by_type[event.type] = (counts.by_type[event.type] ?? 0) + 1;
      if (event.type === "command" && event.command.state === "succeeded") commandsEnded.add(event.command.id);
    },
    // The dashboard's own ping: a quiet connection stays open and a dead one is noticed.
    pingIntervalMs: 30_000,
  });
  stream.start();
  return { stream, counts, commandsEnded };
}

interface Dispatched {
  sentAtMs: number;
  ms: number;
  commandId: string;
}

async function dispatchOne(cp: Workerd, swarm: Swarm, host: BenchHost, t0: number, dispatched: Dispatched[]) {
  const received = swarm.receipt(host.name);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${host.name}: no command received within ${RECEIPT_TIMEOUT_MS / 1000} s`)), RECEIPT_TIMEOUT_MS);
  });
  try {
    const queued = await enqueue(cp.url, host.name);
    const got = await Promise.race([received, timeout]);
    if (got.command !== queued.commandId) fail(`${host.name}: received ${got.command}, expected ${queued.commandId}`);
    dispatched.push({ sentAtMs: queued.sent - t0, ms: got.at - queued.sent, commandId: queued.commandId });
  } catch (error) {
    fail(error instanceof Error ? error.message : String(error));
  } finally {
    clearTimeout(timer);
  }
}

async function bareRoundTrip(url: string, t0: number, bare: Array<{ sentAtMs: number; ms: number }>) {
  const sent = now();
  try {
    const res = await request(`${url}/api/health`);
    if (res.status !== 200) throw new Error(`/api/health answered ${res.status}`);
    bare.push({ sentAtMs: sent - t0, ms: now() - sent });
  } catch (error) {
    fail(`bare round trip: ${error instanceof Error ? error.message : String(error)}`);
  }
}

const growth = (from: number, to: number) => round((to - from) / from);

async function main() {
  const started = Date.now();
  // Stamped before the run: the commit and working tree that ran, not what they became in 30 minutes.
  const stamp = await runInfo();
  const loadBefore = load();
  console.error(`soak: ${AGENTS} agents for ${MINUTES} min, a command every ${COMMAND_EVERY_MS / 1000} s, ${DASHBOARDS} dashboards (load average ${loadBefore.join(" ")})`);
  const cp = await startWorkerd({ vars: { POLL_TIMEOUT_SECONDS: String(POLL_SECONDS), COMMAND_HISTORY_LIMIT: String(HISTORY_LIMIT) } });
  let swarm: Swarm | null = null;
  const dashboards: Array<ReturnType<typeof dashboard>> = [];
  try {
    progress("creating hosts");
    const hosts = await createHosts(cp.url, AGENTS);
    const [hot, ...rest] = hosts as [BenchHost, ...BenchHost[]];
    const others = rest.slice(0, SPREAD_HOSTS);
    progress("starting agents");
    swarm = await Swarm.start(cp.url, hosts, processes, POLL_SECONDS, "as-agent");
    await waitForPolls(cp.url, AGENTS - Math.floor(AGENTS / 200), 200);
    for (let i = 0; i < DASHBOARDS; i++) dashboards.push(dashboard(cp.url));
    while ((await stats(cp.url)).dashboards < DASHBOARDS) await sleep(100);
    const database = await cp.coordinatorDatabase();
    const heapBefore = await cp.objectsHeap();
    progress("every poll held, dashboards connected; soaking");

    const t0 = now();
    const startedAt = Date.now();
    const dispatched: Dispatched[] = [];
    const bare: Array<{ sentAtMs: number; ms: number }> = [];
    const samples: Sample[] = [await sample(cp, database, hot.name, startedAt)];
    const windowLoad: number[] = [];
    let judgedStart: { sample: Sample; heap: { used_bytes: number } } | null = null;
    const inFlight = new Set<Promise<void>>();
    const track = (promise: Promise<void>) => {
      inFlight.add(promise);
      void promise.finally(() => inFlight.delete(promise));
    };

    const sampler = (async () => {
      for (let next = SAMPLE_MS; next <= DURATION_MS; next += SAMPLE_MS) {
        await sleep(startedAt + next - Date.now());
        const taken = await sample(cp, database, hot.name, startedAt);
        samples.push(taken);
        if (judgedStart === null && next >= JUDGED_FROM_MS) {
          judgedStart = { sample: taken, heap: await cp.objectsHeap() };
          progress(`judged span begins: RSS ${taken.rss_mb} MB, storage ${taken.storage_bytes} B, rows ${JSON.stringify(taken.rows)}`);
        }
        if (next % WINDOW_MS < SAMPLE_MS) {
          windowLoad.push(round(os.loadavg()[0]!));
          progress(`window ${windowLoad.length} done: ${dispatched.length} commands, ${errorCount} errors, RSS ${taken.rss_mb} MB`);
        }
      }
    })();

    let spread = 0;
    for (let i = 0; i * COMMAND_EVERY_MS < DURATION_MS; i++) {
      await sleep(startedAt + i * COMMAND_EVERY_MS - Date.now());
      const host = i % 2 === 0 ? hot : others[spread++ % others.length]!;
      track(dispatchOne(cp, swarm, host, t0, dispatched));
      // Half a second off the command, so the baseline does not queue behind the command it is compared with.
      track(sleep(COMMAND_EVERY_MS / 2).then(() => bareRoundTrip(cp.url, t0, bare)));
    }
    await sampler;
    const end = samples.at(-1)!;
    const heapEnd = await cp.objectsHeap();
    progress("commands stopped; waiting for the last ones to end");
    await Promise.all(inFlight);
    const commandsSent = Math.ceil(DURATION_MS / COMMAND_EVERY_MS);
    const drainDeadline = Date.now() + 60_000;
    while (Date.now() < drainDeadline && dashboards.some((d) => d.commandsEnded.size < dispatched.length)) await sleep(200);
    const swarmCounters = await swarm.counters();
    errorCount += swarmCounters.errors;
    errors.push(...swarm.errors.slice(0, 5));

    if (judgedStart === null) throw new Error("the run ended before its judged span began");
    const judged: { sample: Sample; heap: { used_bytes: number } } = judgedStart;
    const windows = Array.from({ length: 6 }, (_, w) => {
      const inWindow = <T extends { sentAtMs: number }>(list: T[]) => list.filter((d) => d.sentAtMs >= w * WINDOW_MS && d.sentAtMs < (w + 1) * WINDOW_MS);
      const ms = inWindow(dispatched).map((d) => d.ms);
      const bareMs = inWindow(bare).map((d) => d.ms);
      return {
        window: w + 1,
        from_s: (w * WINDOW_MS) / 1000,
        to_s: ((w + 1) * WINDOW_MS) / 1000,
        commands: ms.length,
        dispatch_p50_ms: ms.length ? round(percentile(ms, 50)) : null,
        dispatch_p99_ms: ms.length ? round(percentile(ms, 99)) : null,
        bare_rtt_p50_ms: bareMs.length ? round(percentile(bareMs, 50)) : null,
        bare_rtt_p99_ms: bareMs.length ? round(percentile(bareMs, 99)) : null,
        load_average_1min_at_end: windowLoad[w] ?? null,
      };
    });
    const first = windows[0]!;
    const last = windows.at(-1)!;
    const p99Ratio = first.dispatch_p99_ms && last.dispatch_p99_ms ? round(last.dispatch_p99_ms / first.dispatch_p99_ms) : null;
    const judgedSamples = samples.filter((s) => s.t_s >= judged.sample.t_s);
    const rssGrowth = growth(judged.sample.rss_mb, end.rss_mb);
    const storageGrowth = growth(judged.sample.storage_bytes, end.storage_bytes);
    const hotCommands = Math.ceil(commandsSent / 2);
    const rowsStart = judged.sample.rows;
    const rowsEnd = end.rows;
    const spreadPerHost = Math.ceil((commandsSent - hotCommands) / others.length);
    // What the pruning allows at most: the fleet's limit (worker/commands/history.ts) for the hosts that were sent commands, and the few in flight.
    const commandsBound = storedCommandsBound(1 + others.length, HISTORY) + 10;
    const pruning = {
      how: "worker/db/coordinator/commands.ts prune(): when a command of a host ends, its finished commands beyond the newest 200 are deleted, their output beyond the newest 50 first, and past COMMAND_HISTORY_LIMIT the fleet's oldest finished commands but each host's newest 20, a twentieth of the limit at a time (the acked mark is a column of the command row and goes with it); worker/db/coordinator/outbox.ts deletes an effect once carried out",
      command_history_limit: HISTORY_LIMIT,
      keep_commands_per_host: KEEP_COMMANDS_PER_HOST,
      keep_newest_per_host: HISTORY.perHostKept,
      keep_output_per_host: KEEP_OUTPUT_PER_HOST,
      hot_host: hot.name,
      hot_host_commands_sent: hotCommands,
      other_hosts_sent_commands: others.length,
      other_hosts_commands_sent_each_at_most: spreadPerHost,
      at_judged_start: rowsStart,
      at_end: rowsEnd,
      max_in_judged_span: Object.fromEntries((Object.keys(rowsEnd) as Array<keyof RowCounts>).map((key) => [key, Math.max(...judgedSamples.map((s) => s.rows[key]))])) as RowCounts,
      commands_bound: commandsBound,
    };
    const pruningOk =
      rowsEnd.hot_host_commands_with_output <= KEEP_OUTPUT_PER_HOST &&
      rowsEnd.hot_host_commands <= KEEP_COMMANDS_PER_HOST &&
      rowsEnd.commands <= commandsBound &&
      pruning.max_in_judged_span.commands <= commandsBound &&
      // The fleet's bound had something to do within the first third: the history was full when the judged span began.
      rowsStart.commands_pruned > 0 &&
      pruning.max_in_judged_span.commands_active <= 10 &&
      pruning.max_in_judged_span.outbox_rows <= AGENTS &&
      // The prune had something to do: the hot host was sent more than it keeps output for.
      hotCommands > KEEP_OUTPUT_PER_HOST;
    const dashboardResults = dashboards.map((d) => ({ ...d.counts, commands_ended_seen: d.commandsEnded.size }));
    const dashboardsSawEveryEnd = dashboardResults.every((d) => d.commands_ended_seen === dispatched.length);
    const allDispatch = dispatched.map((d) => d.ms);

    const result = {
      ...stamp,
      machine: { ...stamp.machine, load_average_1_5_15: load() },
      setup: "workerd through Miniflare (no wrangler dev proxy), the Durable Objects in an isolate of their own; agents over several client processes; dashboards over the dashboard's own EventStream; one machine for all",
      minutes: MINUTES,
      agents: AGENTS,
      client_processes: processes,
      poll_seconds: POLL_SECONDS,
      command_every_s: COMMAND_EVERY_MS / 1000,
      command_kind: "refresh",
      commands_sent: commandsSent,
      commands_received: dispatched.length,
      window_minutes: round(WINDOW_MS / 60_000),
      judged_from_minute: round(JUDGED_FROM_MS / 60_000),
      sample_seconds: SAMPLE_MS / 1000,
      load_average_1_5_15_before: loadBefore,
      load_average_1_5_15_after: load(),
      seconds: Math.round((Date.now() - started) / 1000),
      targets: TARGETS,

      rss_mb_at_judged_start: judged.sample.rss_mb,
      rss_mb_at_end: end.rss_mb,
      rss_mb_max_in_judged_span: Math.max(...judgedSamples.map((s) => s.rss_mb)),
      rss_growth_last_20min_ratio: rssGrowth,
      rss_growth_ok: rssGrowth <= TARGETS.growth_ratio_max,
      storage_bytes_at_judged_start: judged.sample.storage_bytes,
      storage_bytes_at_end: end.storage_bytes,
      storage_growth_last_20min_ratio: storageGrowth,
      storage_growth_ok: storageGrowth <= TARGETS.growth_ratio_max,
      /** The pages in use, without the write-ahead log and the free pages the file keeps for reuse. */
      storage_used_bytes_at_judged_start: rowsStart.used_bytes,
      storage_used_bytes_at_end: rowsEnd.used_bytes,
      storage_used_growth_last_20min_ratio: growth(rowsStart.used_bytes, rowsEnd.used_bytes),
      /** While the history filled (the first sample to the judged span's start): the pages in use per command stored, with its output and indexes. */
      storage_used_bytes_per_command_filling: round((rowsStart.used_bytes - samples[0]!.rows.used_bytes) / Math.max(1, rowsStart.commands - samples[0]!.rows.commands)),
      /** The Durable Objects' isolate after a full garbage collection: before the soak, at the judged span's start, at its end. */
      objects_heap_mb: { before: round(heapBefore.used_bytes / 1048576), judged_start: round(judged.heap.used_bytes / 1048576), end: round(heapEnd.used_bytes / 1048576) },
      objects_heap_growth_last_20min_ratio: growth(judged.heap.used_bytes, heapEnd.used_bytes),

      windows,
      dispatch_p50_ms: round(percentile(allDispatch, 50)),
      dispatch_p99_ms: round(percentile(allDispatch, 99)),
      bare_rtt_p50_ms: round(percentile(bare.map((b) => b.ms), 50)),
      dispatch_p99_first_window_ms: first.dispatch_p99_ms,
      dispatch_p99_last_window_ms: last.dispatch_p99_ms,
      dispatch_p99_last_over_first_ratio: p99Ratio,
      dispatch_p99_stable_ok: p99Ratio !== null && p99Ratio <= TARGETS.last_window_p99_over_first_max,
      /** The same ratio for the bare round trip: the machine's own drift between the two windows, for comparison. */
      bare_rtt_p99_last_over_first_ratio: first.bare_rtt_p99_ms && last.bare_rtt_p99_ms ? round(last.bare_rtt_p99_ms / first.bare_rtt_p99_ms) : null,

      errors: errorCount,
      error_examples: errors.slice(0, 10),
      errors_ok: errorCount === 0 && dispatched.length === commandsSent,
      agent_requests: swarmCounters.requests,

      pruning,
      pruning_ok: pruningOk,

      dashboards: dashboardResults,
      dashboards_saw_every_command_end: dashboardsSawEveryEnd,
      samples: samples.map((s) => ({ t_s: s.t_s, rss_mb: s.rss_mb, storage_bytes: s.storage_bytes, commands: s.rows.commands, output_rows: s.rows.output_rows, outbox_rows: s.rows.outbox_rows, hot_host_commands: s.rows.hot_host_commands, waiting_polls: s.waiting_polls, dashboards: s.dashboards, load_1: s.load_1 })),
    };
    await writeFile(new URL("./results/soak.json", import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
    const { samples: _samples, ...summary } = result;
    console.log(JSON.stringify(summary, null, 2));
  } finally {
    for (const d of dashboards) d.stream.stop();
    await swarm?.stop();
    await cp.stop();
  }
}

await main();
process.exit(0);
