/**
 * A live fleet on this machine: the control plane (`wrangler dev` on workerd,
 * local D1, the real migrations), the GitHub emulator holding the fleet's
 * flake, and four real agent processes, each its own host with its own clone,
 * state and nixos-rebuild stand-in, enrolled through the API like a person
 * would. Every host runs the fleet's configuration; then the emulator opens a
 * flake.lock update PR with green CI that two hosts cannot take: db1 cannot
 * build it (the fleet build fails there, so Merge & Deploy is refused until db1
 * is left out), and web2 builds it but fails to activate it (its wave stops the
 * rollout, and the revert follows).
 *
 * Everything lives in one temporary directory; `stop()` ends every process
 * `start()` started and removes it.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, type WriteStream } from "node:fs";
import * as fs from "node:fs/promises";
import { createServer } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { z } from "zod";
import type { AgentConfigInput } from "../../common/agent-config.ts";
import { AGENT_NODE_FLAGS, buildAgent } from "../../scripts/build-agent.mjs";
import { buildUi } from "../../scripts/build-ui.mjs";
import { DEVELOPMENT_SETTINGS_ENCRYPTION_KEY } from "../../scripts/dev-settings-key.mjs";
import { startLocalDevFront } from "../../scripts/local-dev-front.mjs";
import { GitHubEmulator } from "../github-emulator/emulator.ts";
import { updatePullRequestText, type LockInputChange } from "../github-emulator/example-flake.ts";
import { fleetFlake } from "./fleet-repo.ts";
import { isolatedHostEnv } from "./host-env.ts";
import { installRebuildShim } from "./rebuild-shim.ts";

const exec = promisify(execFile);
const root = fileURLToPath(new URL("../..", import.meta.url));
const WRANGLER = path.join(root, "node_modules/wrangler/bin/wrangler.js");

const OWNER = "example";
const REPO = "fleet";
const RELEASE = "release 26.05.1";
const NEXT_RELEASE = "release 26.05.2";

export interface DemoHost {
  name: string;
  /** Rollout priority: the lowest is the canary. */
  priority: number;
  /** hosts/<name>.txt in the fleet's flake. */
  file: string;
}

/** web1 is the canary; db1 requires the release it runs now, so it cannot build the update. */
export const DEMO_HOSTS: readonly DemoHost[] = [
  { name: "web1", priority: 0, file: "web1: nginx" },
  { name: "db1", priority: 1, file: `db1: postgresql\nrequires ${RELEASE}` },
  { name: "web2", priority: 2, file: "web2: nginx" },
  { name: "desk1", priority: 3, file: "desk1: plasma" },
];

/** Builds the update, but its switch to it fails: a unit of the new release does not start there. */
export const FAILS_ACTIVATION = "web2";

/** Wrangler vars for a demo: short polls and soaks, so a rollout takes seconds. */
const DEMO_VARS = {
  POLL_TIMEOUT_SECONDS: "5",
  ROLLOUT_CANARY_SOAK_SECONDS: "5",
  ROLLOUT_SOAK_SECONDS: "0",
  ROLLOUT_WAVE_SIZE: "2",
};

export interface DemoOptions {
  port: number;
  /** Progress lines; default none. */
  log?: (line: string) => void;
  /** Aborting it during start() stops what was started; start() then rejects. */
  signal?: AbortSignal;
}

export interface RunningDemo {
  url: string;
  githubUrl: string;
  /** The temporary directory everything lives in (removed by stop()). */
  dir: string;
  updatePr: number;
  processes: { name: string; pid: number; log: string }[];
  /** Resolves, with what happened, when the control plane or an agent ends on its own. */
  lost: Promise<string>;
  stop(): Promise<void>;
}

export class DemoError extends Error {
  override name = "DemoError";
}

/** Whether `command --version` runs here. */
async function runs(command: string): Promise<boolean> {
  return exec(command, ["--version"]).then(
    () => true,
    () => false,
  );
}

async function freePort(): Promise<number> {
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

interface Child {
  name: string;
  process: ChildProcess;
  logFile: string;
  log: WriteStream;
}

const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });

/** Ends a child's whole process group (wrangler's workerd, an agent's git and nix): TERM, then KILL. */
async function endGroup(child: ChildProcess, graceMs: number): Promise<void> {
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, name);
    } catch {
      // the group is gone already
    }
  };
  if (child.exitCode === null && child.signalCode === null) {
    signal("SIGTERM");
    const timer = setTimeout(() => signal("SIGKILL"), graceMs);
    await exited(child);
    clearTimeout(timer);
  }
  // What is left of the group once its leader is gone (a workerd that outlived wrangler).
  signal("SIGKILL");
}

/**
 * Processes whose command line names `dir`: the switches an agent started in sessions of their own
 * (they outlive an agent by design) and anything else started for one host of this demo.
 */
async function processesUnder(dir: string): Promise<number[]> {
  const { stdout } = await exec("ps", ["-ww", "-eo", "pid=,args="]);
  return stdout
    .split("\n")
    .filter((line) => line.includes(dir))
    .map((line) => Number(line.trim().split(/\s+/, 1)[0]))
    .filter((pid) => pid !== process.pid && Number.isInteger(pid) && pid > 0);
}

export async function startDemo(options: DemoOptions): Promise<RunningDemo> {
  const say = options.log ?? (() => {});
  for (const tool of ["nix", "git"]) {
    if (!(await runs(tool))) {
      throw new DemoError(
        tool === "nix"
          ? "the demo builds each host's system with real Nix, and `nix` is not on PATH: install it (Debian/Ubuntu: apt-get install nix-bin; elsewhere: https://nixos.org/download)"
          : "the demo clones the fleet with git, and `git` is not on PATH: install it",
      );
    }
  }

  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-demo-"));
  const logs = path.join(dir, "logs");
  await fs.mkdir(logs);
  const children: Child[] = [];
  let emulator: GitHubEmulator | null = null;
  let front: { close(): Promise<void> } | null = null;
  let stopped = false;
  let stopping: Promise<void> | null = null;

  const shutdown = async (): Promise<void> => {
    // Agents first (they would only retry against a control plane going away), then the rest.
    const agents = children.filter((c) => c.name.startsWith("agent "));
    await Promise.all(agents.map((c) => endGroup(c.process, 5000)));
    await Promise.all(children.filter((c) => !agents.includes(c)).map((c) => endGroup(c.process, 5000)));
    for (const pid of await processesUnder(dir).catch(() => [])) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // ended meanwhile
      }
    }
    await emulator?.stop().catch(() => {});
    await front?.close();
    for (const child of children) child.log.end();
    await fs.rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
  };
  const stop = (): Promise<void> => {
    stopped = true;
    stopping ??= shutdown();
    return stopping;
  };
  if (options.signal?.aborted) {
    await stop();
    throw new DemoError("stopped");
  }
  options.signal?.addEventListener("abort", () => void stop(), { once: true });

  const launch = (name: string, args: string[], env: NodeJS.ProcessEnv, cwd = root): Child => {
    if (stopped) throw new DemoError("stopped");
    const logFile = path.join(logs, `${name.replace(/\s+/g, "-")}.log`);
    const log = createWriteStream(logFile);
    // A process group of its own: stop() ends it with everything it started, and a Ctrl-C in the
    // terminal reaches only this process, which then stops the fleet in order.
    const child = spawn(process.execPath, args, { cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    const entry = { name, process: child, logFile, log };
    children.push(entry);
    return entry;
  };
  const tail = async (child: Child) => (await fs.readFile(child.logFile, "utf8").catch(() => "")).split("\n").slice(-25).join("\n");

  try {
    const url = `http://localhost:${options.port}`;
    const api = `http://127.0.0.1:${options.port}`;
    const secret = randomBytes(16).toString("hex");
    const token = `github_pat_demo_${randomBytes(8).toString("hex")}`;
    emulator = new GitHubEmulator({ owner: OWNER, repo: REPO, workDir: path.join(dir, "github"), webhookUrl: `${api}/webhooks/github`, webhookSecret: secret, token });
    const githubUrl = await emulator.start();
    say(`GitHub emulator for ${OWNER}/${REPO}: ${githubUrl}`);

    // Private builds: the checkout's dist/ may be served or copied by an `npm start` or a test meanwhile.
    say("building the dashboard and the agent");
    const assets = path.join(dir, "ui");
    const agentBundle = path.join(dir, "agent");
    await Promise.all([buildUi({ outdir: assets }), buildAgent({ outdir: agentBundle })]);

    const wranglerEnv = { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0" };
    const state = path.join(dir, "control-plane");
    // The fleet's flake is prepared while the control plane starts.
    const fleet = prepareFleet(dir);
    // Awaited below; a failure before then must not surface as an unhandled rejection.
    fleet.catch(() => {});
    say("applying the D1 migrations");
    const migrate = launch("migrations", [WRANGLER, "d1", "migrations", "apply", "DB", "--local", "--persist-to", state], wranglerEnv);
    await exited(migrate.process);
    if (migrate.process.exitCode !== 0) throw new DemoError(`the D1 migrations failed:\n${await tail(migrate)}`);

    // As for `npm start`: wrangler dev on an internal port, behind the local front on the public one.
    const devPort = await freePort();
    const frontSecret = randomBytes(32).toString("base64url");
    front = await startLocalDevFront({ port: options.port, targetPort: devPort, secret: frontSecret });
    const vars = Object.entries({ ...DEMO_VARS, LOCAL_FRONT_SECRET: frontSecret, GITHUB_REPOSITORY: `${OWNER}/${REPO}`, GITHUB_WEBHOOK_SECRET: secret, GITHUB_TOKEN: token, GITHUB_API_URL: githubUrl, SETTINGS_ENCRYPTION_KEY: DEVELOPMENT_SETTINGS_ENCRYPTION_KEY }).flatMap(([key, value]) => ["--var", `${key}:${value}`]);
    say(`starting the control plane on port ${options.port}`);
    const controlPlane = launch(
      "control plane",
      [WRANGLER, "dev", "--port", String(devPort), "--ip", "127.0.0.1", "--inspector-port", String(await freePort()), "--persist-to", state, "--assets", assets, "--show-interactive-dev-session=false", ...vars],
      wranglerEnv,
    );
    const call = async <T extends z.ZodType>(schema: T, pathname: string, body?: unknown): Promise<z.infer<T>> => {
      const res = await fetch(`${api}${pathname}`, {
        method: body === undefined ? "GET" : "POST",
        headers: { origin: api, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const json: unknown = await res.json();
      if (!res.ok) throw new DemoError(`${pathname}: ${res.status} ${JSON.stringify(json)}`);
      return schema.parse(json);
    };
    const until = async <T>(what: string, probe: () => Promise<T | null | false>, timeoutMs: number): Promise<T> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (stopped) throw new DemoError("stopped");
        if (controlPlane.process.exitCode !== null) throw new DemoError(`wrangler dev exited (${controlPlane.process.exitCode}):\n${await tail(controlPlane)}`);
        const value = await probe().catch(() => null);
        if (value) return value;
        if (Date.now() > deadline) throw new DemoError(`timed out waiting for ${what}; logs in ${logs}`);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    };
    await until("the control plane to answer", async () => (await fetch(`${api}/api/health`)).ok, 90_000);

    const { work, pins, env: gitEnv } = await fleet;
    await emulator.seed(await readTree(work), "Initial fleet configuration");
    await emulator.flushWebhooks();
    await call(z.unknown(), "/api/repo/refresh", {});

    say(`enrolling ${DEMO_HOSTS.map((h) => h.name).join(", ")} and starting their agents`);
    for (const host of DEMO_HOSTS) {
      const hostDir = path.join(dir, "hosts", host.name);
      const env = isolatedHostEnv(hostDir);
      const shim = await installRebuildShim(path.join(hostDir, "nixos-rebuild"));
      if (host.name === FAILS_ACTIVATION) await shim.failActivationWhen(NEXT_RELEASE);
      const { token: hostToken } = await call(z.object({ token: z.string() }), "/api/hosts", { name: host.name, platform: "nixos" });
      const tokenFile = path.join(hostDir, "token");
      await fs.writeFile(tokenFile, `${hostToken}\n`, { mode: 0o600 });
      const config: AgentConfigInput = {
        url: api,
        tokenFile,
        hostName: host.name,
        platform: "nixos",
        repoUrl: emulator.cloneUrl,
        branch: "main",
        stateDir: path.join(hostDir, "state"),
        pollTimeoutSeconds: Number(DEMO_VARS.POLL_TIMEOUT_SECONDS),
        tools: { nixosRebuild: shim.nixosRebuild, activateSystem: shim.activateSystem, detach: "setsid" },
        currentSystemLink: shim.currentSystemLink,
        bootedSystemLink: shim.bootedSystemLink,
        tests: { commands: [{ name: "system responds", command: "true" }] },
        autoTestAfterSwitch: true,
        // A demo host evaluates main the moment it moves: the System column is exact at once, not after a fleet-wide spread.
        desired: { evaluate: "local", maxDelaySeconds: 0 },
        rollout: { priority: host.priority },
      };
      const configFile = path.join(hostDir, "agent.json");
      await fs.writeFile(configFile, JSON.stringify(config, null, 2));
      // The bundle with its Node flags, as the Nix package runs it.
      launch(`agent ${host.name}`, [...AGENT_NODE_FLAGS, path.join(agentBundle, "nixfleet-agent.mjs"), "run", "--config", configFile], env, hostDir);
    }

    const HostsAnswer = z.object({ hosts: z.array(z.looseObject({ name: z.string(), online: z.boolean(), report: z.unknown() })) });
    await until(
      "four hosts to report",
      async () => {
        const { hosts } = await call(HostsAnswer, "/api/hosts");
        return hosts.filter((h) => h.online && h.report).length === DEMO_HOSTS.length;
      },
      60_000,
    );
    // Every host gets the fleet's configuration, as on the day it was installed.
    say("every host: Pull + Switch to main");
    const Command = z.object({ command: z.looseObject({ id: z.string(), state: z.string() }) });
    const switches = [];
    for (const host of DEMO_HOSTS) switches.push({ host: host.name, id: (await call(Command, `/api/hosts/${host.name}/commands`, { kind: "pull-switch" })).command.id });

    // The scheduled lock update: the pinned release moves on; db1 requires the one it has.
    const { number } = await openUpdatePr(emulator, work, pins, gitEnv);
    say(`update PR #${number} opened by the emulator; CI green`);
    for (const { host, id } of switches) {
      const { command } = await until(
        `${host}'s Pull + Switch`,
        async () => {
          const answer = await call(Command, `/api/commands/${id}`);
          return ["succeeded", "failed", "cancelled", "timed-out", "lost"].includes(answer.command.state) ? answer : null;
        },
        60_000,
      );
      if (command.state !== "succeeded") say(`${host}: Pull + Switch ${command.state} (see the host's page)`);
    }

    const lost = new Promise<string>((resolve) => {
      for (const child of children) {
        child.process.once("exit", (code, signal) => {
          const how = signal ?? `exit code ${code}`;
          if (!stopped) void tail(child).then((end) => resolve(`${child.name} ended on its own (${how}); the end of its log:\n${end}`));
        });
      }
    });
    return {
      url,
      lost,
      githubUrl,
      dir,
      updatePr: number,
      processes: children.filter((c) => c.process.exitCode === null).map((c) => ({ name: c.name, pid: c.process.pid!, log: c.logFile })),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The fleet's flake in a working clone, locked by real Nix; `pins` stands for nixpkgs. */
async function prepareFleet(dir: string): Promise<{ work: string; pins: string; env: NodeJS.ProcessEnv }> {
  const env = isolatedHostEnv(path.join(dir, "fleet-env"));
  const git = (cwd: string, ...args: string[]) => exec("git", args, { cwd, env });
  const pins = path.join(dir, "pins");
  await fs.mkdir(pins);
  await git(pins, "init", "--quiet", "--initial-branch", "main");
  await fs.writeFile(path.join(pins, "README"), `${RELEASE}\n`);
  await git(pins, "add", "-A");
  await git(pins, "commit", "--quiet", "-m", RELEASE);
  const work = path.join(dir, "fleet");
  await fs.mkdir(path.join(work, "hosts"), { recursive: true });
  await fs.writeFile(path.join(work, "flake.nix"), fleetFlake(`git+file://${pins}`, { pinsInSystem: true }).replace("NixFleet test fleet", "NixFleet demo fleet"));
  for (const host of DEMO_HOSTS) await fs.writeFile(path.join(work, "hosts", `${host.name}.txt`), host.file);
  await git(work, "init", "--quiet", "--initial-branch", "main");
  await git(work, "add", "-A");
  await exec("nix", ["flake", "lock"], { cwd: work, env });
  return { work, pins, env };
}

async function readTree(work: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const file of ["flake.nix", "flake.lock", ...DEMO_HOSTS.map((h) => `hosts/${h.name}.txt`)]) files[file] = await fs.readFile(path.join(work, file), "utf8");
  return files;
}

const LockedPins = z.object({ nodes: z.object({ pins: z.object({ locked: z.object({ rev: z.string(), lastModified: z.number() }), original: z.object({ url: z.string() }) }) }) });

/** What `nix flake update` in a scheduled workflow does: a new flake.lock on a PR labelled `automated`, then CI. */
async function openUpdatePr(emulator: GitHubEmulator, work: string, pins: string, env: NodeJS.ProcessEnv): Promise<{ number: number }> {
  const git = (cwd: string, ...args: string[]) => exec("git", args, { cwd, env });
  await fs.writeFile(path.join(pins, "README"), `${NEXT_RELEASE}\n`);
  await git(pins, "commit", "--quiet", "-am", NEXT_RELEASE);
  const before = LockedPins.parse(JSON.parse(await fs.readFile(path.join(work, "flake.lock"), "utf8")));
  await exec("nix", ["flake", "lock", "--update-input", "pins"], { cwd: work, env });
  const lock = await fs.readFile(path.join(work, "flake.lock"), "utf8");
  const after = LockedPins.parse(JSON.parse(lock));
  const date = (seconds: number) => new Date(seconds * 1000).toISOString().slice(0, 10);
  const change: LockInputChange = {
    input: "pins",
    url: before.nodes.pins.original.url,
    oldRev: before.nodes.pins.locked.rev,
    newRev: after.nodes.pins.locked.rev,
    oldDate: date(before.nodes.pins.locked.lastModified),
    newDate: date(after.nodes.pins.locked.lastModified),
  };
  const text = updatePullRequestText([change]);
  const pr = await emulator.openPullRequest({
    head: "update_flake_lock_action",
    title: text.title,
    body: text.body,
    labels: ["automated"],
    files: { "flake.lock": lock },
    message: text.message,
    author: { name: "github-actions[bot]", email: "41898282+github-actions[bot]@users.noreply.github.com" },
    user: "github-actions[bot]",
  });
  await emulator.setCheckRun(pr.head.sha, { name: "build", status: "completed", conclusion: "success" });
  await emulator.flushWebhooks();
  return { number: pr.number };
}
