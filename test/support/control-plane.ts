/**
 * Runs the real control plane (wrangler dev on workerd, local D1 with the real
 * migrations, real Durable Objects) on a free port, for end-to-end, browser
 * and benchmark runs. Each instance has its own state directory.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { cp, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DEVELOPMENT_SETTINGS_ENCRYPTION_KEY } from "../../scripts/dev-settings-key.mjs";

const root = fileURLToPath(new URL("../..", import.meta.url));
const wrangler = join(root, "node_modules/wrangler/bin/wrangler.js");

export interface ControlPlane {
  url: string;
  stateDir: string;
  /** Everything wrangler printed, for a failing test's message. */
  logs(): string;
  /** Kills wrangler dev (SIGKILL) and starts it again on the same port with the same state. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * The environment for wrangler without the developer's CLOUDFLARE_* and WRANGLER_* settings: they choose
 * the config's environment (CLOUDFLARE_ENV), which files and variables become bindings
 * (CLOUDFLARE_INCLUDE_PROCESS_ENV, CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV), accounts and local connection
 * strings. WRANGLER_LOG only sets how much wrangler prints.
 */
export function wranglerEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(CLOUDFLARE|WRANGLER)_/.test(key) || key === "WRANGLER_LOG"));
  return { ...env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0" };
}

/**
 * `envFile` is an empty file: given `--env-file`, wrangler reads it instead of the `.dev.vars` beside
 * wrangler.toml and the `.env` files in its working directory (wrangler 4.164: getVarsForDev for the
 * Worker's bindings, the CLI's start for its own settings), so the developer's `.dev.vars` (docs/github.md
 * has one written for the demo) gives the control plane under test no binding.
 */
function runWrangler(args: string[], envFile: string, log: string[], detached = false): ChildProcess {
  const child = spawn(process.execPath, [wrangler, ...args, "--env-file", envFile], {
    cwd: root,
    // Its own process group, so a simulated crash kills workerd with it.
    detached,
    env: wranglerEnv(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.on("data", (data: Buffer) => log.push(data.toString()));
  child.stderr?.on("data", (data: Buffer) => log.push(data.toString()));
  return child;
}

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once("exit", (code) => resolve(code));
  });

/**
 * Where the local D1 with every migration applied is kept between control planes: one directory per
 * set of migrations, wrangler.toml and wrangler version, so a changed migration never meets an old copy.
 */
async function migratedD1Cache(): Promise<string> {
  const hash = createHash("sha256");
  const migrations = join(root, "migrations");
  for (const name of (await readdir(migrations)).sort()) hash.update(`${name}\0`).update(await readFile(join(migrations, name))).update("\0");
  hash.update(await readFile(join(root, "wrangler.toml")));
  hash.update(await readFile(join(root, "node_modules/wrangler/package.json")));
  return join(tmpdir(), `nixfleet-d1-migrated-${hash.digest("hex").slice(0, 16)}`);
}

/**
 * Gives `stateDir` the local D1 with every migration applied. `wrangler d1 migrations apply` is a wrangler
 * process of its own, about 15 s of a 20 s start on the loaded 2-core test machine: it runs once per
 * set of migrations, and every later control plane starts from a copy of what it left.
 */
async function applyMigrations(stateDir: string, envFile: string, log: string[]): Promise<void> {
  const cache = await migratedD1Cache();
  const d1 = join(stateDir, "v3", "d1");
  if (await stat(join(cache, "d1")).then(() => true, () => false)) {
    await cp(join(cache, "d1"), d1, { recursive: true });
    return;
  }
  const migrate = runWrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", stateDir], envFile, log);
  if ((await exited(migrate)) !== 0) throw new Error(`migrations failed:\n${log.join("")}`);
  // Published whole or not at all: a control plane starting meanwhile sees no cache, or a complete one.
  const staging = await mkdtemp(join(tmpdir(), "nixfleet-d1-staging-"));
  await cp(d1, join(staging, "d1"), { recursive: true });
  // Another control plane may have published it first: then its copy stands and this one goes.
  await rename(staging, cache).catch(() => rm(staging, { recursive: true, force: true }));
}

export async function startControlPlane(options: { vars?: Record<string, string>; timeoutMs?: number } = {}): Promise<ControlPlane> {
  const stateDir = await mkdtemp(join(tmpdir(), "nixfleet-cp-"));
  const log: string[] = [];
  // A private copy of the dashboard: wrangler dev reloads the Worker when its assets change, and
  // another test file may rebuild dist/ui while this control plane runs.
  const assets = join(stateDir, "assets");
  await cp(join(root, "dist/ui"), assets, { recursive: true });
  const envFile = join(stateDir, "empty.env");
  await writeFile(envFile, "");
  await applyMigrations(stateDir, envFile, log);

  // The published development key (local only) unless the test sets its own.
  const vars = Object.entries({ SETTINGS_ENCRYPTION_KEY: DEVELOPMENT_SETTINGS_ENCRYPTION_KEY, ...options.vars }).flatMap(([key, value]) => ["--var", `${key}:${value}`]);
  const launch = async (port: number): Promise<ChildProcess> => {
    const url = `http://127.0.0.1:${port}`;
    const inspectorPort = await freePort();
    const dev = runWrangler(
      ["dev", "--port", String(port), "--ip", "127.0.0.1", "--inspector-port", String(inspectorPort), "--persist-to", stateDir, "--assets", assets, "--show-interactive-dev-session=false", ...vars],
      envFile,
      log,
      true,
    );
    const deadline = Date.now() + (options.timeoutMs ?? 90_000);
    // Health answered from the port proves nothing alone: another file's wrangler may have taken the port
    // between freePort() and this one's bind, and answers for it. Only this process's own line says it is ours.
    const ready = `Ready on ${url}`;
    const logged = log.length;
    for (;;) {
      if (dev.exitCode !== null) throw new Error(`wrangler dev exited (${dev.exitCode}):\n${log.join("")}`);
      try {
        const res = await fetch(`${url}/api/health`);
        if (res.ok && log.slice(logged).join("").includes(ready)) return dev;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        dev.kill("SIGKILL");
        throw new Error(`wrangler dev did not answer /api/health in time:\n${log.join("")}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  };
  // A port found free may be taken by another process before wrangler binds it: then another is tried.
  const launchOnFreePort = async (attempt = 1): Promise<{ port: number; dev: ChildProcess }> => {
    const port = await freePort();
    const logged = log.length;
    try {
      return { port, dev: await launch(port) };
    } catch (error) {
      if (attempt === 3 || !log.slice(logged).join("").includes("Address already in use")) throw error;
      return launchOnFreePort(attempt + 1);
    }
  };
  const started = await launchOnFreePort();
  const port = started.port;
  let dev = started.dev;

  return {
    url: `http://127.0.0.1:${port}`,
    stateDir,
    logs: () => log.join(""),
    async restart() {
      // Killed, not stopped (wrangler and its workerd): what a crash does. Same port, same state.
      const gone = exited(dev);
      process.kill(-dev.pid!, "SIGKILL");
      await gone;
      dev = await launch(port);
    },
    async stop() {
      if (dev.exitCode === null) {
        dev.kill("SIGTERM");
        const timer = setTimeout(() => dev.kill("SIGKILL"), 5000);
        await exited(dev);
        clearTimeout(timer);
      }
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}
