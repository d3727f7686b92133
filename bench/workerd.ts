/**
 * The control plane on workerd without wrangler's dev proxy, for the benchmarks that hold thousands of
 * connections (bench/dispatch.ts, bench/soak.ts) and those whose figures the proxy, which production does not
 * have, would stretch (bench/rollout.ts, bench/ui.ts): wrangler bundles the Worker as `wrangler deploy`
 * would, wrangler applies the migrations to a local D1, and Miniflare runs the bundle with
 * wrangler.toml's bindings. A client's connection is then two descriptors in workerd, where the dev proxy
 * held about four (an earlier 5,000-agent run through `wrangler dev` ran out of them).
 *
 * The second descriptor is workerd's own, not Miniflare's: its HTTP listener duplicates every socket it
 * accepts (fcntl F_DUPFD_CLOEXEC in `workerd_server::listen::hangup`, seen with `strace -k`) and registers
 * the copy with epoll for write readiness alone, to hear the client hang up. workerd serving a config of
 * our own, with no Miniflare, holds two per connection as well, and no socket option turns the copy off.
 * At its descriptor limit workerd does not refuse a connection, it exits (`overloaded: accept(): Too many
 * open files`). So bench/dispatch.ts puts fronts before it (bench/fronts.ts: they hold the agents'
 * connections and reach this process over one Cap'n Proto connection each), and does not start a size
 * whose connections cannot fit in its fronts.
 *
 * The Durable Objects run in a Worker of their own ("nixfleet-objects", the same bundle), so their
 * isolate is apart from the one that answers HTTP requests, as in production, where a Durable Object's
 * isolate holds no Worker requests: its heap, read through workerd's inspector, is the objects' alone.
 */
import { execFile, spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { convertV4MiniflareOptions, Log, LogLevel, Miniflare, type V4DurableObject } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { z } from "zod";
import { DevToolsSession, startProfile, stopProfile, type CpuProfile } from "./cpu-profile.ts";
import { DEVELOPMENT_SETTINGS_ENCRYPTION_KEY } from "../scripts/dev-settings-key.mjs";
import { wranglerEnv } from "../test/support/control-plane.ts";
import { isolatedWranglerConfig } from "../test/support/isolated-wrangler-config.ts";
import { type Front, GATEWAY_WORKER, gatewayWorker, startFronts } from "./fronts.ts";
import { cpuSecondsOf, type Descriptors, descriptorsOf, rssOf, workerdChildren } from "./proc.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const wrangler = join(root, "node_modules/wrangler/bin/wrangler.js");
const OBJECTS_WORKER = "nixfleet-objects";

export interface Workerd {
  /** Where the bench's own requests go: the first front's URL when there are fronts, else workerd's. */
  url: string;
  /** Where agents connect: each front's URL, or workerd's alone. */
  agentUrls: string[];
  /** The fronts (bench/fronts.ts) in front of workerd, if any were asked for. */
  fronts: Front[];
  stateDir: string;
  /** The Durable Objects' isolate heap (V8's used and total bytes), after a full garbage collection. */
  objectsHeap(): Promise<{ used_bytes: number; total_bytes: number }>;
  /** workerd's resident set, from /proc. */
  rssBytes(): Promise<number>;
  /** CPU seconds workerd's process has used so far (user + system, every thread), from /proc/<pid>/stat. */
  cpuSeconds(): Promise<number>;
  /**
   * Descriptors workerd holds open now and its limit (/proc/<pid>/fd, /proc/<pid>/limits), and how many of
   * them are sockets against how many distinct sockets they point to (workerd holds each connection twice, above).
   */
  descriptors(): Promise<Descriptors>;
  /** Bytes of the coordinator's SQLite storage on disk (its database and write-ahead log). */
  coordinatorStorageBytes(): Promise<number>;
  /** The coordinator's SQLite database file, for a reader to count its rows (bench/soak.ts). */
  coordinatorDatabase(): Promise<string>;
  /** Starts a CPU profile of the Worker's isolate, the objects' and Miniflare's entry worker's; `stop` ends them, by name. */
  profileIsolates(): Promise<{ stop(): Promise<Record<string, CpuProfile>> }>;
  stop(): Promise<void>;
}

async function runWrangler(args: string[], cwd: string): Promise<void> {
  const child = spawn(process.execPath, [wrangler, ...args], { cwd: root, env: wranglerEnv(), stdio: ["ignore", "pipe", "pipe"] });
  const log: string[] = [];
  child.stdout.on("data", (data: Buffer) => log.push(data.toString()));
  child.stderr.on("data", (data: Buffer) => log.push(data.toString()));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`wrangler ${args.join(" ")} (in ${cwd}) failed:\n${log.join("")}`);
}

/** wrangler's Durable Object bindings, as unstable_getMiniflareWorkerOptions gives them (its published type loses them). */
const DurableObjectBindings = z.record(z.string(), z.union([z.string(), z.looseObject({ className: z.string(), scriptName: z.string().optional(), useSQLite: z.boolean().optional() })]));
const InspectorTargets = z.array(z.object({ id: z.string(), webSocketDebuggerUrl: z.string() }));
const HeapUsage = z.object({ result: z.object({ usedSize: z.number(), totalSize: z.number() }) });

/**
 * Chrome DevTools Protocol calls, one after another, on a fresh connection to the target; the last one's answer.
 * `nudge` (a request that runs the isolate, which reads its inspector's messages then) is sent with each call and
 * every second until it is answered.
 */
async function inspect(url: string, methods: string[], nudge: () => Promise<unknown>, timeoutMs = 20_000): Promise<unknown> {
  const socket = new WebSocket(url);
  try {
    await new Promise((resolve, reject) => {
      socket.addEventListener("open", resolve);
      socket.addEventListener("error", () => reject(new Error(`inspector ${url} did not open`)));
    });
    let answer: unknown = null;
    for (const [index, method] of methods.entries()) {
      const nudging = setInterval(() => void nudge().catch(() => undefined), 1000);
      answer = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`inspector: no answer to ${method} within ${timeoutMs / 1000} s`)), timeoutMs);
        socket.addEventListener("message", function listener(message) {
          const data = JSON.parse(String(message.data)) as { id?: number };
          if (data.id !== index + 1) return;
          clearTimeout(timer);
          clearInterval(nudging);
          socket.removeEventListener("message", listener);
          resolve(data);
        });
        socket.send(JSON.stringify({ id: index + 1, method, params: {} }));
        void nudge().catch(() => undefined);
      }).finally(() => clearInterval(nudging));
    }
    return answer;
  } finally {
    socket.close();
  }
}

/**
 * Where workerd keeps D1 and the objects' SQLite: a tmpfs when the machine has one (/dev/shm), whatever
 * TMPDIR says. On the shared disk every commit waits for an fsync behind the other helpers' I/O (a held
 * poll's answer took 15 ms from the Worker to the agent there, 3 ms on tmpfs, in the same hour), which is
 * the disk's figure, not the coordinator's; production's storage is neither.
 */
async function stateParent(): Promise<string> {
  const { stdout } = await promisify(execFile)("stat", ["-f", "-c", "%T", "/dev/shm"]).catch(() => ({ stdout: "" }));
  return stdout.trim() === "tmpfs" ? "/dev/shm" : tmpdir();
}

/**
 * `fronts`: how many front processes hold the clients' connections (bench/fronts.ts); 0, the clients
 * connect to workerd itself.
 */
export async function startWorkerd(options: { vars?: Record<string, string>; fronts?: number; dashboard?: boolean } = {}): Promise<Workerd> {
  const stateDir = await mkdtemp(join(await stateParent(), "nixfleet-workerd-"));
  const bundleDir = join(stateDir, "bundle");
  // With `dashboard`, the Worker serves the built dashboard (dist/ui, which the caller builds) as wrangler.toml's
  // assets binding says; otherwise an empty assets directory keeps wrangler from needing dist/ui.
  const assets = options.dashboard ? join(root, "dist/ui") : join(stateDir, "assets");
  if (!options.dashboard) {
    await mkdir(assets);
    await writeFile(join(assets, "index.html"), "");
  }
  await runWrangler(["deploy", "--dry-run", "--outdir", bundleDir, "--assets", assets], root);
  await runWrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", stateDir], root);

  const { workerOptions } = unstable_getMiniflareWorkerOptions(isolatedWranglerConfig(join(root, "wrangler.toml")));
  // The bundle is one module: wrangler's module rules and root path describe the sources, not it.
  const { assets: assetOptions, modulesRules: _rules, rootPath: _root, durableObjects, ...bindings } = workerOptions;
  const source = { modules: true, scriptPath: join(bundleDir, "index.js"), modulesRoot: bundleDir };
  const vars = { ...(workerOptions.bindings ?? {}), SETTINGS_ENCRYPTION_KEY: DEVELOPMENT_SETTINGS_ENCRYPTION_KEY, ...options.vars };
  const objects: Record<string, string | V4DurableObject> = DurableObjectBindings.parse(durableObjects ?? {});
  const objectsElsewhere: Record<string, V4DurableObject> = Object.fromEntries(
    Object.entries(objects).map(([name, binding]) => [name, typeof binding === "string" ? { className: binding, scriptName: OBJECTS_WORKER } : { ...binding, scriptName: OBJECTS_WORKER }]),
  );
  const log = new Log(LogLevel.WARN);
  const compatibilityDate = z.string().parse(workerOptions.compatibilityDate);
  const frontCount = options.fronts ?? 0;
  const gateway = frontCount > 0 ? [await gatewayWorker("nixfleet", compatibilityDate)] : [];
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      host: "127.0.0.1",
      port: 0,
      inspectorPort: 0,
      // No request to Cloudflare for the `cf` object: nothing leaves this machine.
      cf: false,
      log,
      resourcePersistencePath: join(stateDir, "v3"),
      workers: [
        { ...bindings, ...source, name: "nixfleet", bindings: vars, durableObjects: objectsElsewhere, ...(options.dashboard && assetOptions ? { assets: { ...assetOptions, directory: assets } } : {}) },
        { ...bindings, ...source, name: OBJECTS_WORKER, bindings: vars, durableObjects: objects },
        ...gateway,
      ],
    }),
  );
  const workerdUrl = (await mf.ready).origin;
  const inspector = await mf.getInspectorURL();
  const targets = InspectorTargets.parse(await (await fetch(new URL("/json", inspector.href.replace(/^ws/, "http")))).json());
  const objectsTarget = targets.find((target) => target.id === `core:user:${OBJECTS_WORKER}`);
  if (!objectsTarget) throw new Error(`workerd's inspector lists no ${OBJECTS_WORKER}: ${targets.map((t) => t.id).join(", ")}`);

  // The fronts start after this, so workerd is this process's only one yet.
  const [pid, ...others] = await workerdChildren();
  if (!pid || others.length > 0) throw new Error(`expected one workerd child process, found ${others.length + (pid ? 1 : 0)}`);
  const fronts = frontCount > 0 ? await startFronts(await mf.unsafeGetDirectURL(GATEWAY_WORKER), frontCount, compatibilityDate).catch(async (error: unknown) => {
    await mf.dispose();
    throw error;
  }) : [];
  const url = fronts[0]?.url ?? workerdUrl;
  const doDir = join(stateDir, "v3", "do", `${OBJECTS_WORKER}-Coordinator`);

  return {
    url,
    agentUrls: fronts.length > 0 ? fronts.map((front) => front.url) : [workerdUrl],
    fronts,
    stateDir,
    async objectsHeap() {
      // A fresh connection when one goes unanswered: on a loaded machine some runs lost the answer to
      // collectGarbage for a whole minute on one connection (how, unknown), and one miss cost the run.
      for (let attempt = 1; ; attempt++) {
        try {
          const usage = HeapUsage.parse(await inspect(objectsTarget.webSocketDebuggerUrl, ["HeapProfiler.collectGarbage", "Runtime.getHeapUsage"], () => fetch(`${workerdUrl}/api/stats`).then((r) => r.text()))).result;
          return { used_bytes: usage.usedSize, total_bytes: usage.totalSize };
        } catch (error) {
          if (attempt === 3) throw error;
          console.error(`  the objects' heap: ${error instanceof Error ? error.message : String(error)}; asking again on a fresh connection`);
        }
      }
    },
    rssBytes: () => rssOf(pid),
    cpuSeconds: () => cpuSecondsOf(pid),
    descriptors: () => descriptorsOf(pid),
    async coordinatorStorageBytes() {
      const { stat } = await import("node:fs/promises");
      let bytes = 0;
      for (const name of await readdir(doDir)) if (!name.startsWith("metadata")) bytes += (await stat(join(doDir, name))).size;
      return bytes;
    },
    async coordinatorDatabase() {
      const databases = (await readdir(doDir)).filter((name) => name.endsWith(".sqlite") && !name.startsWith("metadata"));
      if (databases.length !== 1) throw new Error(`expected one coordinator database in ${doDir}, found ${databases.join(", ") || "none"}`);
      return join(doDir, databases[0]!);
    },
    async profileIsolates() {
      const nudge = () => fetch(`${workerdUrl}/api/stats`).then((r) => r.text());
      const sessions = await Promise.all(
        targets.filter((target) => target.id.startsWith("core:user:") || target.id === "core:entry").map(async (target) => {
          const session = await DevToolsSession.open(target.webSocketDebuggerUrl);
          const nudged = { call: (method: string, params?: Record<string, unknown>) => session.call(method, params, nudge) };
          await startProfile(nudged);
          return { name: target.id.replace(/^core:user:/, ""), session: nudged, close: () => session.close() };
        }),
      );
      return {
        async stop() {
          const profiles: Record<string, CpuProfile> = {};
          for (const { name, session, close } of sessions) {
            profiles[name] = await stopProfile(session);
            close();
          }
          return profiles;
        },
      };
    },
    async stop() {
      await Promise.all(fronts.map((front) => front.stop()));
      await mf.dispose();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}
