/**
 * Spec 001's "Normal Weekly Update", driven through the real parts: the control
 * plane on workerd, the GitHub emulator (a real bare repository sending signed
 * webhooks), and a real agent process with its own clone, real Nix and the
 * nixos-rebuild shim. Each step checks the five colours the spec pictures.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { z } from "zod";
import type { AgentConfigInput } from "../../common/agent-config.ts";
import { COMPARTMENT_NAMES, CommandView, HostView, UpdatePr, type CompartmentState } from "../../common/protocol.ts";
import { GitHubEmulator } from "../../tools/github-emulator/emulator.ts";
import { fleetFlake } from "../../tools/fleet-kit/fleet-repo.ts";
import { isolatedHostEnv } from "../../tools/fleet-kit/host-env.ts";
import { installRebuildShim } from "../../tools/fleet-kit/rebuild-shim.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { startControlPlane, type ControlPlane } from "../support/control-plane.ts";

vi.setConfig({ testTimeout: 120_000, hookTimeout: 180_000 });

const exec = promisify(execFile);
const AGENT_BIN = fileURLToPath(new URL("../../bin/nixfleet-agent.js", import.meta.url));
const SECRET = "weekly-webhook-secret";
const TOKEN = "github_pat_weekly";
const HOST = "hsb0";

let root: string;
let cp: ControlPlane;
let emulator: GitHubEmulator;
let agent: ChildProcess | null = null;
const agentLog: string[] = [];
let env: NodeJS.ProcessEnv;
let pins: string;
let work: string;

type Colours = Record<(typeof COMPARTMENT_NAMES)[number], CompartmentState>;
const colours = (agent: CompartmentState, git: CompartmentState, lock: CompartmentState, system: CompartmentState, tests: CompartmentState): Colours => ({ agent, git, lock, system, tests });
const ALL_GREEN = colours("green", "green", "green", "green", "green");

async function admin<T extends z.ZodType>(schema: T, pathname: string, body?: unknown): Promise<z.infer<T>> {
  const res = await fetch(`${cp.url}${pathname}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { origin: cp.url, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json: unknown = await res.json();
  if (!res.ok) throw new Error(`${pathname}: ${res.status} ${JSON.stringify(json)}`);
  return schema.parse(json);
}

const host = () => admin(HostView, `/api/hosts/${HOST}`);

/** Waits until the host shows exactly these five colours; fails with the reasons it shows instead. */
async function expectColours(expected: Colours, timeoutMs = 45_000, also: (view: HostView) => boolean = () => true): Promise<HostView> {
  const deadline = Date.now() + timeoutMs;
  let last: HostView | null = null;
  for (;;) {
    last = await host();
    const shown = Object.fromEntries(COMPARTMENT_NAMES.map((name) => [name, last!.compartments[name].state]));
    if (COMPARTMENT_NAMES.every((name) => shown[name] === expected[name]) && also(last)) return last;
    if (Date.now() > deadline) {
      const reasons = COMPARTMENT_NAMES.map((name) => `${name}: ${last!.compartments[name].state} — ${last!.compartments[name].reason}`).join("\n");
      throw new Error(`expected ${JSON.stringify(expected)}\nshown:\n${reasons}\nagent log:\n${agentLog.slice(-20).join("")}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function runCommand(kind: string): Promise<CommandView> {
  const { command } = await admin(z.object({ command: CommandView }), `/api/hosts/${HOST}/commands`, { kind });
  for (;;) {
    const { command: current } = await admin(z.object({ command: CommandView }), `/api/commands/${command.id}`);
    if (["succeeded", "failed", "cancelled", "timed-out", "lost"].includes(current.state)) return current;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const git = (cwd: string, ...args: string[]) => exec("git", args, { cwd, env }).then((r) => r.stdout.trim());

describeWithNix("the weekly update through the real worker (spec 001)", () => {
  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-weekly-"));
    env = isolatedHostEnv(path.join(root, "env"));
    // The emulator binds its port before the control plane is told its URL (a port merely found free could be taken meanwhile), then learns where to send webhooks.
    emulator = new GitHubEmulator({ owner: "example", repo: "fleet", workDir: path.join(root, "github"), webhookSecret: SECRET, token: TOKEN });
    const githubUrl = await emulator.start();
    cp = await startControlPlane({
      vars: {
        POLL_TIMEOUT_SECONDS: "5",
        GITHUB_REPOSITORY: "example/fleet",
        GITHUB_WEBHOOK_SECRET: SECRET,
        GITHUB_TOKEN: TOKEN,
        GITHUB_API_URL: githubUrl,
      },
    });
    emulator.setWebhookUrl(`${cp.url}/webhooks/github`);

    // The fleet's configuration: a tiny flake whose one input is a local git repository, locked by real Nix.
    pins = path.join(root, "pins");
    await fs.mkdir(pins);
    await git(pins, "init", "--quiet", "--initial-branch", "main");
    await fs.writeFile(path.join(pins, "README"), "pins v1\n");
    await git(pins, "add", "-A");
    await git(pins, "commit", "--quiet", "-m", "pins v1");
    work = path.join(root, "work");
    await fs.mkdir(path.join(work, "hosts"), { recursive: true });
    // As with nixpkgs, the locked input goes into every system: a lock update changes what a host runs.
    const flake = fleetFlake(`git+file://${pins}`).replace(
      'content = builtins.readFile (./hosts + "/${name}.txt");',
      'content = builtins.readFile (./hosts + "/${name}.txt") + builtins.readFile (pins + "/README");',
    );
    expect(flake).toContain("pins + \"/README\"");
    await fs.writeFile(path.join(work, "flake.nix"), flake);
    await fs.writeFile(path.join(work, "hosts", `${HOST}.txt`), `${HOST} generation 1`);
    await git(work, "init", "--quiet", "--initial-branch", "main");
    await git(work, "add", "-A");
    await exec("nix", ["flake", "lock"], { cwd: work, env });
    await emulator.seed({
      "flake.nix": flake,
      "flake.lock": await fs.readFile(path.join(work, "flake.lock"), "utf8"),
      [`hosts/${HOST}.txt`]: `${HOST} generation 1`,
    });
    await admin(z.unknown(), "/api/repo/refresh", {});

    const { token } = await admin(z.object({ token: z.string() }), "/api/hosts", { name: HOST, platform: "nixos" });
    const agentDir = path.join(root, "agent");
    const agentEnv = isolatedHostEnv(agentDir);
    const shim = await installRebuildShim(path.join(agentDir, "shim"));
    await fs.writeFile(path.join(agentDir, "token"), `${token}\n`, { mode: 0o600 });
    const config: AgentConfigInput = {
      url: cp.url,
      tokenFile: path.join(agentDir, "token"),
      hostName: HOST,
      platform: "nixos",
      repoUrl: emulator.cloneUrl,
      branch: "main",
      stateDir: path.join(agentDir, "state"),
      pollTimeoutSeconds: 5,
      tests: { commands: [{ name: "responds", command: "true" }] },
      autoTestAfterSwitch: false,
      tools: { nixosRebuild: shim.nixosRebuild, detach: "setsid" },
      currentSystemLink: shim.currentSystemLink,
    };
    await fs.writeFile(path.join(agentDir, "agent.json"), JSON.stringify(config));
    agent = spawn(process.execPath, [AGENT_BIN, "run", "--config", path.join(agentDir, "agent.json")], { env: agentEnv, stdio: ["ignore", "pipe", "pipe"] });
    agent.stdout?.on("data", (data: Buffer) => agentLog.push(data.toString()));
    agent.stderr?.on("data", (data: Buffer) => agentLog.push(data.toString()));
  });

  afterAll(async () => {
    agent?.kill("SIGKILL");
    await emulator?.stop();
    await cp?.stop();
    if (root) await fs.rm(root, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  });

  it("walks an update PR through the six pictures", async () => {
    // The host gets to the fleet's state first: pull + switch + tests.
    expect((await runCommand("pull-switch")).state).toBe("succeeded");
    expect((await runCommand("test")).state).toBe("succeeded");
    await expectColours(ALL_GREEN);

    // The weekly workflow opens an update PR with a new flake.lock.
    await fs.writeFile(path.join(pins, "README"), "pins v2\n");
    await git(pins, "commit", "--quiet", "-am", "pins v2");
    await exec("nix", ["flake", "lock", "--update-input", "pins"], { cwd: work, env });
    const pr = await emulator.openPullRequest({
      head: "update_flake_lock_action",
      title: "flake.lock: Update",
      labels: ["automated"],
      files: { "flake.lock": await fs.readFile(path.join(work, "flake.lock"), "utf8") },
      message: "flake.lock: Update\n\nFlake lock file updates:\n• Updated input 'pins'",
    });
    await emulator.flushWebhooks();
    await expectColours(colours("green", "green", "yellow", "green", "green"));
    // The lock diff is read from GitHub after the webhook was answered; then the tooltip names the input.
    const pending = await expectColours(colours("green", "green", "yellow", "green", "green"), 45_000, (view) =>
      view.compartments.lock.reason.startsWith("Update PR pending: pins "),
    );
    expect(pending.compartments.lock.reason).toMatch(/^Update PR pending: pins [0-9a-f]{7} → [0-9a-f]{7}$/);

    // "Merge PR" in the dashboard: merged through the API; the push webhook moves the target.
    const updatePr = await admin(z.object({ updatePrs: z.array(UpdatePr) }), "/api/update-prs");
    expect(updatePr.updatePrs.map((p) => p.number)).toEqual([pr.number]);
    await admin(z.unknown(), `/api/update-prs/${pr.number}/merge`, {});
    await emulator.flushWebhooks();
    await expectColours(colours("green", "yellow", "yellow", "green", "green"));

    // Pull: the host has the new lock, but still runs the old system.
    expect((await runCommand("pull")).state).toBe("succeeded");
    await expectColours(colours("green", "green", "green", "yellow", "green"));

    // Switch: the new system runs; its tests have not run yet.
    expect((await runCommand("switch")).state).toBe("succeeded");
    await expectColours(colours("green", "green", "green", "green", "yellow"));

    // Tests run and pass: all good.
    expect((await runCommand("test")).state).toBe("succeeded");
    await expectColours(ALL_GREEN);
  });
});
