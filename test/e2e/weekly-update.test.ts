/**
 * Spec 001's "Normal Weekly Update", driven through the real parts: the control
 * plane on workerd, the GitHub emulator (a real bare repository sending signed
 * webhooks), and a real agent process with its own clone, real Nix and the
 * nixos-rebuild shim. Each step checks the five colours the spec pictures.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { z } from "zod";
import { COMPARTMENT_NAMES, CommandView, HostView, UpdatePr, type CompartmentState } from "../../common/protocol.ts";
import type { GitHubEmulator } from "../../tools/github-emulator/emulator.ts";
import { fleetFlake } from "../../tools/fleet-kit/fleet-repo.ts";
import { isolatedHostEnv } from "../../tools/fleet-kit/host-env.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { adminApi } from "../support/admin-api.ts";
import { startControlPlane, type ControlPlane } from "../support/control-plane.ts";
import { enrollE2eAgent, killE2eAgents, type E2eAgent } from "../support/e2e-agent.ts";
import { startWithGitHub } from "../support/github-fleet.ts";
import { eventually } from "../support/wait.ts";
import { removeHostRoot } from "../support/host-root.ts";

vi.setConfig({ testTimeout: 120_000, hookTimeout: 180_000 });

const exec = promisify(execFile);
const SECRET = "weekly-webhook-secret";
const TOKEN = "github_pat_weekly";
const HOST = "hsb0";

let root: string;
let cp: ControlPlane;
let emulator: GitHubEmulator;
let agent: E2eAgent | undefined;
let env: NodeJS.ProcessEnv;
let pins: string;
let work: string;

type Colours = Record<(typeof COMPARTMENT_NAMES)[number], CompartmentState>;
const colours = (agent: CompartmentState, git: CompartmentState, lock: CompartmentState, system: CompartmentState, tests: CompartmentState): Colours => ({ agent, git, lock, system, tests });
const ALL_GREEN = colours("green", "green", "green", "green", "green");

const admin = adminApi(() => cp.url);

const host = () => admin(HostView, `/api/hosts/${HOST}`);

/** Waits until the host shows exactly these five colours; fails with the reasons it shows instead. */
async function expectColours(expected: Colours, timeoutMs = 45_000, also: (view: HostView) => boolean = () => true): Promise<HostView> {
  let last: HostView | null = null;
  const shown = (view: HostView | null) =>
    view === null ? "nothing yet" : COMPARTMENT_NAMES.map((name) => `${name}: ${view.compartments[name].state} — ${view.compartments[name].reason}`).join("\n");
  return eventually(
    `the colours ${JSON.stringify(expected)}`,
    async () => {
      const view = await host();
      last = view;
      return COMPARTMENT_NAMES.every((name) => view.compartments[name].state === expected[name]) && also(view) ? view : null;
    },
    { timeoutMs, intervalMs: 250, failFast: true, details: () => `shown:\n${shown(last)}\nagent log:\n${agent?.log.slice(-20).join("") ?? ""}` },
  );
}

async function runCommand(kind: string): Promise<CommandView> {
  const { command } = await admin(z.object({ command: CommandView }), `/api/hosts/${HOST}/commands`, { body: { kind } });
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
    ({ emulator, controlPlane: cp } = await startWithGitHub({ workDir: path.join(root, "github"), webhookSecret: SECRET, token: TOKEN }, (github) =>
      startControlPlane({ vars: { ...github, POLL_TIMEOUT_SECONDS: "5" } }),
    ));

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
    await admin(z.unknown(), "/api/repo/refresh", { body: {} });

    agent = await enrollE2eAgent({
      dir: path.join(root, "agent"),
      name: HOST,
      url: cp.url,
      repoUrl: emulator.cloneUrl,
      pollTimeoutSeconds: 5,
      tests: { commands: [{ name: "responds", command: "true" }] },
      autoTestAfterSwitch: false,
    });
  });

  afterAll(async () => {
    if (agent) await killE2eAgents([agent]);
    await emulator?.stop();
    await cp?.stop();
    if (root) await removeHostRoot(root);
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
    await admin(z.unknown(), `/api/update-prs/${pr.number}/merge`, { body: {} });
    await emulator.flushWebhooks();
    // The lock update changes what this host runs, and its agent evaluated main at once: System says so before the
    // pull, where spec 001 kept it green (docs/compartments.md "Where this changes spec 001's colours").
    const merged = await expectColours(colours("green", "yellow", "yellow", "yellow", "green"));
    expect(merged.compartments.system.reason).toMatch(/^switch needed: /);

    // Pull: the host has the new lock, but still runs the old system.
    expect((await runCommand("pull")).state).toBe("succeeded");
    await expectColours(colours("green", "green", "green", "yellow", "green"));

    // Switch: the new system runs, and its tests have run already: the host's safety net ran them before it
    // confirmed the switch (docs/hosts.md "When a switch goes wrong on the host"), where spec 001 shows them not run.
    expect((await runCommand("switch")).state).toBe("succeeded");
    await expectColours(ALL_GREEN);

    // Tests run and pass: all good.
    expect((await runCommand("test")).state).toBe("succeeded");
    await expectColours(ALL_GREEN);
  });
});
