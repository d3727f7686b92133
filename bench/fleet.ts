/**
 * What bench/dispatch.ts and bench/soak.ts share: hosts created through the API, simulated agents spread
 * over client processes (bench/swarm-process.ts), the admin's requests with their Server-Timing marks,
 * the coordinator's counters, and the arithmetic of the results.
 */
import { fork, type ChildProcess } from "node:child_process";
import { Agent, request as undiciRequest } from "undici";
import { z } from "zod";
import { FromSwarm, serverMark, type FromParent } from "./fleet-protocol.ts";

export const now = () => performance.timeOrigin + performance.now();

const dispatcher = new Agent({ connections: 64, pipelining: 1, keepAliveTimeout: 120_000, headersTimeout: 0, bodyTimeout: 0 });

/**
 * The admin's (and the bare round trip's) requests, through undici's `request` as the client processes'
 * are (fetch's streams cost more per request than the parts of a dispatch the bench times). They ask for
 * no compression: in production Cloudflare's edge compresses a browser's answers, outside the Worker;
 * Miniflare does it inside workerd, on the thread that runs the Worker and the objects, and the client
 * inflates it (at load 20 the admin's answer took 6.6 ms from the audit write to the client compressed,
 * 2.4 ms not).
 */
export async function request(url: string, init: { method?: "GET" | "POST" | "PUT" | "DELETE"; headers?: Record<string, string>; body?: string } = {}) {
  const res = await undiciRequest(url, { ...init, headers: { ...init.headers, "accept-encoding": "identity" }, dispatcher });
  const text = await res.body.text();
  const timing = res.headers["server-timing"];
  return { status: res.statusCode, json: (text === "" ? null : JSON.parse(text)) as unknown, serverTiming: typeof timing === "string" ? timing : null };
}

export const adminHeaders = (url: string) => ({ origin: url, "content-type": "application/json" });

export const percentile = (values: number[], p: number) => {
  if (values.length === 0) throw new Error("percentile of no values");
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};
export const round = (n: number) => Math.round(n * 100) / 100;
export const median = (values: number[]) => round(percentile(values, 50));

const Stats = z.object({ counters: z.record(z.string(), z.number()), waitingPolls: z.number(), dashboards: z.number() });
export async function stats(url: string) {
  return Stats.parse((await request(`${url}/api/stats`)).json);
}

export async function waitForPolls(url: string, count: number, pauseMs = 20): Promise<void> {
  while ((await stats(url)).waitingPolls < count) await new Promise((resolve) => setTimeout(resolve, pauseMs));
}

/** `count` hosts named `bench-0…`, created as the dashboard creates them, `parallel` at a time. */
export interface BenchHost {
  name: string;
  token: string;
  /** The agent session its simulated agent polls with. */
  session: string;
}

export async function createHosts(url: string, count: number, parallel = 50): Promise<BenchHost[]> {
  const hosts: BenchHost[] = [];
  for (let i = 0; i < count; i += parallel) {
    const batch = Array.from({ length: Math.min(parallel, count - i) }, (_, j) => `bench-${i + j}`);
    hosts.push(
      ...(await Promise.all(
        batch.map(async (name) => {
          const res = await request(`${url}/api/hosts`, { method: "POST", headers: adminHeaders(url), body: JSON.stringify({ name, platform: "nixos" }) });
          return { name, token: z.object({ token: z.string() }).parse(res.json).token, session: crypto.randomUUID() };
        }),
      )),
    );
  }
  return hosts;
}

/** A command enqueued as the dashboard does, with the Worker's marks: when it arrived, was routed and enqueued (its audit entry stored with it). */
export async function enqueue(url: string, host: string, kind = "refresh") {
  const sent = now();
  const res = await request(`${url}/api/hosts/${host}/commands`, { method: "POST", headers: adminHeaders(url), body: JSON.stringify({ kind }) });
  return enqueueAnswer(host, { ...res, sent, answered: now() });
}

function enqueueAnswer(host: string, res: { sent: number; answered: number; status: number; json: unknown; serverTiming: string | null }) {
  if (res.status !== 202) throw new Error(`enqueue on ${host} failed: ${res.status} ${JSON.stringify(res.json)}`);
  const mark = (name: string) => serverMark(res.serverTiming, name);
  const marks = { arrived: mark("arrived"), routed: mark("routed"), enqueued: mark("enqueued") };
  return { sent: res.sent, answered: res.answered, marks, commandId: z.object({ command: z.object({ id: z.string() }) }).parse(res.json).command.id };
}

/**
 * Simulated agents over `processes` forked client processes, and, when `probes` are given, one more
 * process holding only those agents: the ones a benchmark dispatches to and times, in an event loop no
 * other agents' polls keep busy (a real agent is alone on its host), which also takes the bare round trips.
 */
export class Swarm {
  readonly errors: string[] = [];
  private readonly children: ChildProcess[];
  private readonly probe: ChildProcess | null;
  /** Per host, the receipts asked for, answered in order: a busy host may have several commands on the way. */
  private readonly waiters = new Map<string, Array<(message: Extract<FromSwarm, { type: "received" }>) => void>>();
  private readonly counterReplies: Array<(counters: { requests: number; errors: number }) => void> = [];
  private readonly bareReplies: Array<(reply: Extract<FromSwarm, { type: "bare" }>) => void> = [];
  private readonly enqueueReplies: Array<(reply: Extract<FromSwarm, { type: "enqueued" }>) => void> = [];
  private readonly profileReplies: Array<(profile: unknown) => void> = [];

  private constructor(children: ChildProcess[], probe: ChildProcess | null) {
    this.children = probe ? [...children, probe] : children;
    this.probe = probe;
    for (const child of this.children) {
      child.on("message", (raw) => {
        const message = FromSwarm.parse(raw);
        if (message.type === "received") this.waiters.get(message.host)?.shift()?.(message);
        else if (message.type === "error") this.errors.push(`${message.host}: ${message.message}`);
        else if (message.type === "counters") this.counterReplies.shift()?.(message);
        else if (message.type === "bare") this.bareReplies.shift()?.(message);
        else if (message.type === "enqueued") this.enqueueReplies.shift()?.(message);
        else if (message.type === "profile") this.profileReplies.shift()?.(message.profile);
      });
    }
  }

  /**
   * `startBatch`: how many agents begin polling at once; the next batch begins once (nearly) every poll so far
   * is held. All at once, 9,000 first polls queued in workerd for the Worker's isolate, and its event loop
   * spent itself handing that isolate's lock from waiter to waiter (`AsyncLockQueue::whenThreadIdle` in
   * `perf`), so it stopped reading sockets and accepting connections: about 7,650 agents in, 1,282 connections
   * left in the listen queue, no system call for minutes (`strace -c`). A fleet after a restart comes back
   * no faster than its agents' jittered retries (agent/backoff.ts) spread it.
   */
  static async start(url: string | string[], hosts: BenchHost[], processes: number, pollSeconds: number, commandEvents: "finished" | "as-agent" = "finished", probes: BenchHost[] = [], startBatch = Number.POSITIVE_INFINITY): Promise<Swarm> {
    // Several URLs (bench/fronts.ts): client process i polls through the i-th, modulo their number; the
    // probes, and the counting of held polls, through the first.
    const urls = typeof url === "string" ? [url] : url;
    const home = urls[0]!;
    const forkOne = async () => {
      const child = fork(new URL("./swarm-process.ts", import.meta.url), { stdio: ["ignore", "inherit", "inherit", "ipc"] });
      await new Promise<void>((resolve, reject) => {
        child.once("message", () => resolve());
        child.once("exit", (code) => reject(new Error(`a client process exited (${code}) before it was ready`)));
      });
      return child;
    };
    const probeNames = new Set(probes.map((probe) => probe.name));
    const others = hosts.filter((host) => !probeNames.has(host.name));
    const children = await Promise.all(Array.from({ length: processes }, forkOne));
    const probe = probes.length > 0 ? await forkOne() : null;
    for (let from = 0; from < others.length; from += startBatch) {
      const batch = others.slice(from, from + startBatch);
      children.forEach((child, index) => {
        const message: FromParent = { type: "start", url: urls[index % urls.length]!, pollSeconds, commandEvents, agents: batch.filter((_, i) => i % processes === index) };
        child.send(message);
      });
      const started = from + batch.length;
      if (started < others.length) await waitForPolls(home, started - Math.floor(started / 200), 200);
    }
    probe?.send({ type: "start", url: home, pollSeconds, commandEvents, agents: probes } satisfies FromParent);
    return new Swarm(children, probe);
  }

  /**
   * `enqueue`, sent from the probe process: its times are on the probe's clock, the one its agents'
   * receipts are on, so a dispatch to a probe is timed by one process.
   */
  async enqueueFromProbe(url: string, host: string, kind = "refresh") {
    if (!this.probe) throw new Error("an enqueue from the probe process needs a swarm started with probes");
    const reply = new Promise<Extract<FromSwarm, { type: "enqueued" }>>((resolve) => this.enqueueReplies.push(resolve));
    this.probe.send({ type: "enqueue", url, host, kind } satisfies FromParent);
    return enqueueAnswer(host, await reply);
  }

  /** Starts a CPU profile of the probe process, or stops it and returns it (the DevTools Protocol's Profiler.Profile). */
  async profileProbe(action: "start" | "stop"): Promise<unknown> {
    if (!this.probe) throw new Error("a profile of the probe process needs a swarm started with probes");
    const reply = new Promise<unknown>((resolve) => this.profileReplies.push(resolve));
    this.probe.send({ type: "profile", action } satisfies FromParent);
    return reply;
  }

  /** One bare round trip to `url` (a GET) from the probe process, timed as its agents' polls are: ms. */
  async bare(url: string): Promise<number> {
    if (!this.probe) throw new Error("a bare round trip from the probe process needs a swarm started with probes");
    const reply = new Promise<Extract<FromSwarm, { type: "bare" }>>((resolve) => this.bareReplies.push(resolve));
    this.probe.send({ type: "bare", url } satisfies FromParent);
    const { ms, error } = await reply;
    if (ms === null) throw new Error(`bare round trip from the probe process: ${error ?? "failed"}`);
    return ms;
  }

  /**
   * Resolves with the next command `host`'s agent receives that no earlier receipt took; ask before
   * enqueueing (the agent may have it before the admin has the answer).
   */
  receipt(host: string): Promise<Extract<FromSwarm, { type: "received" }>> {
    return new Promise((resolve) => {
      const queue = this.waiters.get(host) ?? [];
      queue.push(resolve);
      this.waiters.set(host, queue);
    });
  }

  /** Descriptors each client process holds open now (/proc/<pid>/fd), in process order. */
  async descriptors(): Promise<number[]> {
    const { readdir } = await import("node:fs/promises");
    return Promise.all(this.children.map(async (child) => (await readdir(`/proc/${child.pid}/fd`)).length));
  }

  /** Every agent's requests and errors so far, summed over the processes. */
  async counters(): Promise<{ requests: number; errors: number }> {
    const replies = await Promise.all(
      this.children.map((child) => {
        const reply = new Promise<{ requests: number; errors: number }>((resolve) => this.counterReplies.push(resolve));
        child.send({ type: "counters" } satisfies FromParent);
        return reply;
      }),
    );
    return replies.reduce((sum, c) => ({ requests: sum.requests + c.requests, errors: sum.errors + c.errors }), { requests: 0, errors: 0 });
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.children.map(async (child) => {
        if (child.exitCode !== null) return;
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.send({ type: "stop" } satisfies FromParent);
        await exited;
      }),
    );
  }
}
