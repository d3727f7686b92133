/**
 * `npm run bench:agent`: what one real agent process costs its host. The
 * bundled agent, run as the Nix package runs it (with AGENT_NODE_FLAGS from
 * scripts/build-agent.mjs), against a locally running control plane
 * (wrangler dev on workerd, local D1, the real coordinator), with its own
 * clone of a real fleet repository and the
 * nixos-rebuild stand-in that builds with real Nix. Measured in the same run:
 *  - a bare Node process with one timer, run with the agent's V8 flags (the
 *    baseline the ratio is taken against: the same Node, configured alike)
 *    and one without them (what a default Node costs, for reference);
 *  - the agent's RSS idle after its first report, and again after 50
 *    commands (pull, switch, test in turn), each as the median of samples;
 *  - start (spawn) to its first poll reaching the control plane, the median
 *    of several starts;
 *  - CPU while idle over a window; the hour at the default 90 s poll is
 *    computed from it (keys ending in `_computed`);
 *  - the agent's open file descriptors idle and after the commands;
 *  - the bundled agent reaching the control plane over TLS (a local HTTPS
 *    proxy with a self-signed certificate from `openssl`), as in production;
 *  - for comparison, the same agent run from its TypeScript sources through
 *    Node's type stripping, without flags (how every agent ran before the
 *    bundle).
 * Writes bench/results/agent.json.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs/promises";
import { execFile } from "node:child_process";
import * as http from "node:http";
import * as https from "node:https";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { z } from "zod";
import { CommandView, HostView } from "../common/protocol.ts";
import { AGENT_NODE_FLAGS, buildAgent } from "../scripts/build-agent.mjs";
import { createFleetRepo } from "../tools/fleet-kit/fleet-repo.ts";
import { isolatedHostEnv } from "../tools/fleet-kit/host-env.ts";
import { adminApi } from "../test/support/admin-api.ts";
import { freePort, startControlPlane, type ControlPlane } from "../test/support/control-plane.ts";
import { writeE2eHost } from "../test/support/e2e-agent.ts";
import { eventuallyWith } from "../test/support/wait.ts";
import { runInfo } from "./run-info.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const COMMANDS = 50;
const COMMAND_CYCLE = ["pull", "switch", "test"] as const;
/** Short holds so the idle window sees several poll cycles; CPU is extrapolated to the default hold. */
const BENCH_POLL_SECONDS = 10;
const DEFAULT_POLL_SECONDS = 90;
const IDLE_CPU_WINDOW_MS = 60_000;
const SETTLE_MS = 5_000;
const RSS_SAMPLES = 10;
/** Start-up is measured this many times (the agent restarted in between); the median is reported. */
const STARTS = 7;
const RSS_SAMPLE_INTERVAL_MS = 500;
const CLOCK_TICKS = 100; // USER_HZ on Linux

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function rssMb(pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, "utf8");
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for ${pid}`);
  return Number(kb) / 1024;
}

async function medianRssMb(pid: number): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < RSS_SAMPLES; i++) {
    samples.push(await rssMb(pid));
    await sleep(RSS_SAMPLE_INTERVAL_MS);
  }
  return median(samples);
}

/** A self-signed certificate for 127.0.0.1 from the openssl command, or why there is none. */
async function selfSignedCertificate(dir: string): Promise<{ key: Buffer; cert: Buffer; certFile: string } | { missing: string }> {
  const keyFile = path.join(dir, "tls-key.pem");
  const certFile = path.join(dir, "tls-cert.pem");
  try {
    await promisify(execFile)("openssl", [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"],
      ...["-keyout", keyFile, "-out", certFile, "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
    ]);
  } catch (error) {
    return { missing: `no openssl to make a test certificate: ${String(error).split("\n")[0]}` };
  }
  return { key: await fs.readFile(keyFile), cert: await fs.readFile(certFile), certFile };
}

/** The process's open file descriptors by kind (socket, pipe, file …): what it holds on to. */
async function openFds(pid: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const fd of await fs.readdir(`/proc/${pid}/fd`)) {
    const target = await fs.readlink(`/proc/${pid}/fd/${fd}`).catch(() => "gone");
    const kind = /^(\w+):\[/.exec(target)?.[1] ?? (target.startsWith("/") ? "file" : target);
    counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return counts;
}

/** CPU seconds of the process itself, and of the children it waited for (git, nix, tests). */
async function cpuSeconds(pid: number): Promise<{ own: number; children: number }> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
  // Fields 14–17 of proc(5), counted from after the command name (field 3 is index 0).
  const [utime, stime, cutime, cstime] = fields.slice(11, 15) as [number, number, number, number];
  return { own: (utime + stime) / CLOCK_TICKS, children: (cutime + cstime) / CLOCK_TICKS };
}

/**
 * Forwards to the control plane and notes when each agent's polls arrive (by
 * token); over TLS when given a key and certificate, as a production control
 * plane is reached.
 */
async function startPollCounter(
  target: string,
  polls: Map<string, number[]>,
  tls?: { key: Buffer; cert: Buffer },
): Promise<{ url: string; close(): Promise<void> }> {
  const upstream = new URL(target);
  const handler: http.RequestListener = (req, res) => {
    if (req.url?.startsWith("/api/agent/poll")) {
      const token = req.headers.authorization ?? "";
      polls.set(token, [...(polls.get(token) ?? []), performance.now()]);
    }
    const forward = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on("error", () => res.destroy());
    req.pipe(forward);
  };
  const server = tls === undefined ? http.createServer(handler) : https.createServer(tls, handler);
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    url: `${tls === undefined ? "http" : "https"}://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Waits on the agent's traffic: a probe that throws ends the wait (the control plane said no). */
const until = eventuallyWith({ timeoutMs: 120_000, intervalMs: 100, failFast: true });

function spawnLogged(argv: string[], env: NodeJS.ProcessEnv, log: string[]): ChildProcess {
  const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ["ignore", "ignore", "pipe"] });
  child.stderr?.on("data", (data: Buffer) => {
    log.push(data.toString());
    if (log.length > 200) log.splice(0, log.length - 200);
  });
  return child;
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

const dir = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-bench-agent-"));
const node = process.execPath;
const children: ChildProcess[] = [];
let cp: ControlPlane | undefined;
const counters: Array<{ close(): Promise<void> }> = [];
const logs = new Map<string, string[]>();

try {
  console.error("agent benchmark: building the bundle, starting the control plane and the fleet repository…");
  await buildAgent();
  const bundle = path.join(root, "dist/agent/nixfleet-agent.mjs");
  const certificate = await selfSignedCertificate(dir);
  const tls = "missing" in certificate ? null : certificate;
  if (tls === null) console.error(`agent benchmark: no TLS variant (${"missing" in certificate ? certificate.missing : ""})`);
  const hosts = ["bundled", ...(tls !== null ? ["bundled-tls"] : []), "typescript"];
  const [controlPlane, fleet] = await Promise.all([
    startControlPlane({ vars: { POLL_TIMEOUT_SECONDS: String(BENCH_POLL_SECONDS) } }),
    createFleetRepo({ root: path.join(dir, "fleet"), hosts, env: isolatedHostEnv(path.join(dir, "fleet-env")) }),
  ]);
  cp = controlPlane;
  const admin = adminApi(cp.url);
  const polls = new Map<string, number[]>();
  const plain = await startPollCounter(cp.url, polls);
  counters.push(plain);
  const secure = tls !== null ? await startPollCounter(cp.url, polls, tls) : null;
  if (secure !== null) counters.push(secure);
  const pollsOf = (name: string) => polls.get(setup.get(name)!.token) ?? [];

  // The TypeScript variant: the sources through type stripping, as before the bundle.
  const sourceEntry = path.join(dir, "agent-from-source.mjs");
  await fs.writeFile(sourceEntry, `import { runCli } from ${JSON.stringify(path.join(root, "agent/cli.ts"))};\nrunCli();\n`);
  // The bundle as the Nix package runs it (its wrapper passes AGENT_NODE_FLAGS); the sources as bin/ ran them.
  const argvOf = (name: string) => (name === "typescript" ? [sourceEntry] : [...AGENT_NODE_FLAGS, bundle]);

  const setup = new Map<string, { configFile: string; env: NodeJS.ProcessEnv; token: string }>();
  for (const name of hosts) {
    const hostDir = path.join(dir, name);
    const { token } = await admin(z.object({ token: z.string() }), "/api/hosts", { body: { name, platform: "nixos" } });
    const host = await writeE2eHost({
      dir: hostDir,
      name,
      token,
      url: name === "bundled-tls" && secure !== null ? secure.url : plain.url,
      repoUrl: fleet.origin,
      branch: fleet.branch,
      pollTimeoutSeconds: BENCH_POLL_SECONDS,
      tests: { commands: [{ name: "responds", command: "true" }] },
    });
    const env = {
      ...host.env,
      // The TLS variant trusts the proxy's certificate as a host trusts its control plane's.
      ...(name === "bundled-tls" && tls !== null ? { NODE_EXTRA_CA_CERTS: tls.certFile } : {}),
    };
    const configFile = host.configFile;
    setup.set(name, { configFile, env, token: `Bearer ${token}` });
  }

  const idleScript = "setInterval(() => {}, 1000)";
  const bare = spawnLogged([node, ...AGENT_NODE_FLAGS, "-e", idleScript], process.env, []);
  const bareWithoutFlags = spawnLogged([node, "-e", idleScript], process.env, []);
  children.push(bare, bareWithoutFlags);

  const running = new Map<string, ChildProcess>();
  const startupsMs = new Map<string, number[]>();
  const bareStartupsMs: number[] = [];
  /** The baseline for start-up, under the same load: Node sending one request, the same way the agent does, and nothing else. */
  const bareStart = async () => {
    const token = `Bearer bare-node-${bareStartupsMs.length}`;
    const request = `process.getBuiltinModule("node:http").request(${JSON.stringify(`${plain.url}/api/agent/poll?wait=5`)}, { method: "POST", headers: { authorization: ${JSON.stringify(token)} } }).on("error", () => {}).end("{}")`;
    const at = performance.now();
    const child = spawnLogged([node, ...AGENT_NODE_FLAGS, "-e", request], process.env, []);
    await until("bare Node's request", () => polls.has(token), { timeoutMs: 60_000, intervalMs: 2 });
    bareStartupsMs.push(polls.get(token)![0]! - at);
    await stop(child);
  };
  for (const name of hosts) {
    const { configFile, env } = setup.get(name)!;
    const log: string[] = [];
    logs.set(name, log);
    // One agent at a time, so each start has the CPU to itself; the bundled one several times.
    for (let start = 0; start < (name === "bundled" ? STARTS : 1); start++) {
      await stop(running.get(name));
      if (name === "bundled") await bareStart();
      const pollsBefore = pollsOf(name).length;
      const at = performance.now();
      const child = spawnLogged([node, ...argvOf(name), "run", "--config", configFile], env, log);
      children.push(child);
      running.set(name, child);
      await until(`${name}'s first poll`, () => pollsOf(name).length > pollsBefore, { timeoutMs: 60_000, intervalMs: 2 });
      startupsMs.set(name, [...(startupsMs.get(name) ?? []), pollsOf(name)[pollsBefore]! - at]);
      await until(`${name}'s report`, async () => Boolean((await admin(HostView, `/api/hosts/${name}`)).report));
    }
  }

  await sleep(SETTLE_MS);
  const pid = (name: string) => running.get(name)!.pid!;
  console.error("agent benchmark: idle RSS and CPU…");
  const [bareRss, bareWithoutFlagsRss, idleRss, typescriptRss, tlsRss] = await Promise.all([
    medianRssMb(bare.pid!),
    medianRssMb(bareWithoutFlags.pid!),
    medianRssMb(pid("bundled")),
    medianRssMb(pid("typescript")),
    tls !== null ? medianRssMb(pid("bundled-tls")) : Promise.resolve(null),
  ]);

  const idleFds = await openFds(pid("bundled"));
  const pollsBefore = pollsOf("bundled").length;
  const [cpuBefore, bareCpuBefore] = await Promise.all([cpuSeconds(pid("bundled")), cpuSeconds(bare.pid!)]);
  await sleep(IDLE_CPU_WINDOW_MS);
  const [cpuAfter, bareCpuAfter] = await Promise.all([cpuSeconds(pid("bundled")), cpuSeconds(bare.pid!)]);
  const idleCycles = pollsOf("bundled").length - pollsBefore;
  // The variants have served their purpose: they must not share the CPU with the commands.
  await stop(running.get("typescript"));
  if (tls !== null) await stop(running.get("bundled-tls"));

  console.error(`agent benchmark: ${COMMANDS} commands…`);
  const outcomes: Record<string, number> = {};
  for (let i = 0; i < COMMANDS; i++) {
    const kind = COMMAND_CYCLE[i % COMMAND_CYCLE.length]!;
    // A new commit before each pull, so each pull fetches and each switch builds a new system.
    if (kind === "pull") await fleet.setHost("bundled", `bundled generation ${i}`);
    const { command } = await admin(z.object({ command: CommandView }), "/api/hosts/bundled/commands", { body: { kind } });
    const done = await until(`command ${i} (${kind})`, async () => {
      const view = (await admin(z.object({ command: CommandView }), `/api/commands/${command.id}`)).command;
      return ["succeeded", "failed", "cancelled", "timed-out", "lost"].includes(view.state) ? view : null;
    });
    const key = `${kind}:${done.state}`;
    outcomes[key] = (outcomes[key] ?? 0) + 1;
  }
  await sleep(SETTLE_MS);
  const afterRss = await medianRssMb(pid("bundled"));
  const afterFds = await openFds(pid("bundled"));

  const perCycle = (cpuAfter.own - cpuBefore.own) / Math.max(1, idleCycles);
  const perCycleWithChildren = (cpuAfter.own + cpuAfter.children - cpuBefore.own - cpuBefore.children) / Math.max(1, idleCycles);
  const cyclesPerHour = 3600 / DEFAULT_POLL_SECONDS;
  const output = {
    ...(await runInfo()),
    idle_rss_mb: round(idleRss),
    /** The baseline: bare Node with the agent's V8 flags, so the ratio compares like with like. */
    bare_node_same_flags_rss_mb: round(bareRss),
    ratio_to_bare_node_same_flags: round(idleRss / bareRss, 2),
    /** For reference: bare Node as it starts by default (no flags). */
    bare_node_without_flags_rss_mb: round(bareWithoutFlagsRss),
    ratio_to_bare_node_without_flags: round(idleRss / bareWithoutFlagsRss, 2),
    after_commands_rss_mb: round(afterRss),
    startup_to_first_poll_ms: Math.round(median(startupsMs.get("bundled")!)),
    /** Computed: the CPU of the measured idle window's poll cycles × the 40 cycles an hour holds at the default 90 s poll. */
    cpu_seconds_per_idle_hour_computed: round(perCycle * cyclesPerHour, 2),
    details: {
      agent_node_flags: AGENT_NODE_FLAGS.join(" "),
      growth_after_commands: round(afterRss / idleRss - 1, 3),
      commands: outcomes,
      /** Sockets, pipes and files held idle and after the commands: nothing a command opened stays open. */
      open_fds_idle: idleFds,
      open_fds_after_commands: afterFds,
      /** Every start measured (spawn → its first poll at the control plane); the median is above. */
      startups_ms: startupsMs.get("bundled")!.map((ms) => Math.round(ms)),
      /** Bare Node (same flags) spawned just before each of those starts, to its one request: what the load allows. */
      bare_node_startup_to_first_request_ms: Math.round(median(bareStartupsMs)),
      bare_node_startups_ms: bareStartupsMs.map((ms) => Math.round(ms)),
      /** The bundled agent reaching the control plane over TLS (as in production), idle, in this run. */
      tls_idle_rss_mb: tlsRss === null ? null : round(tlsRss),
      tls_ratio_to_bare_node_same_flags: tlsRss === null ? null : round(tlsRss / bareRss, 2),
      tls_startup_to_first_poll_ms: tls === null ? null : Math.round(startupsMs.get("bundled-tls")![0]!),
      ...("missing" in certificate ? { tls_missing: certificate.missing } : {}),
      /** The same agent from its TypeScript sources through Node's type stripping, idle, in this run. */
      typescript_sources_idle_rss_mb: round(typescriptRss),
      typescript_sources_startup_to_first_poll_ms: Math.round(startupsMs.get("typescript")![0]!),
      idle_cpu: {
        window_seconds: IDLE_CPU_WINDOW_MS / 1000,
        poll_hold_seconds: BENCH_POLL_SECONDS,
        poll_cycles: idleCycles,
        agent_cpu_seconds: round(cpuAfter.own - cpuBefore.own, 2),
        /** git and the like that the agent runs to collect each report. */
        children_cpu_seconds: round(cpuAfter.children - cpuBefore.children, 2),
        bare_node_same_flags_cpu_seconds: round(bareCpuAfter.own - bareCpuBefore.own, 2),
        /** The hold the hourly figures are computed for: each measured cycle's CPU (timers included) × 3600 / this. */
        computed_for_hold_seconds: DEFAULT_POLL_SECONDS,
        cpu_seconds_per_idle_hour_with_children_computed: round(perCycleWithChildren * cyclesPerHour, 2),
      },
    },
    targets: { ratio_to_bare_node_same_flags: 1.5, growth_after_commands: 0.1, startup_to_first_poll_ms: 500, cpu_seconds_per_idle_hour_computed: 1 },
  };
  await fs.mkdir(path.join(root, "bench/results"), { recursive: true });
  await fs.writeFile(path.join(root, "bench/results/agent.json"), `${JSON.stringify(output, null, 2)}\n`);
  console.log(JSON.stringify(output, null, 2));
} catch (error) {
  for (const [name, log] of logs) console.error(`--- ${name}\n${log.slice(-30).join("")}`);
  throw error;
} finally {
  for (const child of children) await stop(child);
  for (const counter of counters) await counter.close();
  await cp?.stop();
  await fs.rm(dir, { recursive: true, force: true });
}
