/**
 * The agent as the Nix package installs it: dist/agent/nixfleet-agent.mjs
 * (built by the test run's global setup) copied alone into an empty
 * directory, run by Node 24 with the package's Node flags (low-memory V8,
 * no JIT) and type stripping switched off, against the
 * real control plane (wrangler dev, local D1, the coordinator) with a real
 * fleet repository and the nixos-rebuild stand-in that builds with real Nix.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { z } from "zod";
import { CommandView, HostView } from "../../common/protocol.ts";
import { AGENT_NODE_FLAGS } from "../../scripts/build-agent.mjs";
import { createFleetRepo, type FleetRepo } from "../../tools/fleet-kit/fleet-repo.ts";
import { isolatedHostEnv } from "../../tools/fleet-kit/host-env.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { adminApi } from "../support/admin-api.ts";
import { startControlPlane, type ControlPlane } from "../support/control-plane.ts";
import { writeE2eHost } from "../support/e2e-agent.ts";
import { eventuallyWith } from "../support/wait.ts";

vi.setConfig({ testTimeout: 120_000, hookTimeout: 180_000 });

const BUNDLE = fileURLToPath(new URL("../../dist/agent/nixfleet-agent.mjs", import.meta.url));
const HOST = "bundled";
const POLL_SECONDS = 5;

let root: string;
let cp: ControlPlane;
let fleet: FleetRepo;
let agent: ChildProcess | null = null;
const log: string[] = [];

const admin = adminApi(() => cp.url);

const eventually = eventuallyWith({ timeoutMs: 60_000, intervalMs: 200, failFast: true, details: () => log.slice(-30).join("") });

async function run(kind: string): Promise<CommandView> {
  const { command } = await admin(z.object({ command: CommandView }), `/api/hosts/${HOST}/commands`, { body: { kind } });
  return eventually(`${kind} to finish`, async () => {
    const view = (await admin(z.object({ command: CommandView }), `/api/commands/${command.id}`)).command;
    return ["succeeded", "failed", "cancelled", "timed-out", "lost"].includes(view.state) ? view : null;
  });
}

describeWithNix("the bundled agent, alone in a directory, against the local control plane", () => {
  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-bundled-"));
    [cp, fleet] = await Promise.all([
      startControlPlane({ vars: { POLL_TIMEOUT_SECONDS: String(POLL_SECONDS) } }),
      createFleetRepo({ root: path.join(root, "fleet"), hosts: [HOST], env: isolatedHostEnv(path.join(root, "fleet-env")) }),
    ]);
    const { token } = await admin(z.object({ token: z.string() }), "/api/hosts", { body: { name: HOST, platform: "nixos" } });
    const host = await writeE2eHost({
      dir: path.join(root, HOST),
      name: HOST,
      token,
      url: cp.url,
      repoUrl: fleet.origin,
      branch: fleet.branch,
      pollTimeoutSeconds: POLL_SECONDS,
      tests: { commands: [{ name: "responds", command: "true" }] },
    });

    // Only the bundle: no node_modules, no sources beside it or above it.
    const installed = path.join(root, "lib", "nixfleet-agent.mjs");
    await fs.mkdir(path.dirname(installed));
    await fs.copyFile(BUNDLE, installed);
    // With the Node flags the package's wrapper passes.
    agent = spawn(process.execPath, [...AGENT_NODE_FLAGS, "--no-experimental-strip-types", installed, "run", "--config", host.configFile], {
      cwd: root,
      env: host.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    agent.stdout?.on("data", (data: Buffer) => log.push(data.toString()));
    agent.stderr?.on("data", (data: Buffer) => log.push(data.toString()));
  }, 180_000);

  afterAll(async () => {
    if (agent !== null && agent.exitCode === null) agent.kill("SIGKILL");
    await cp?.stop();
    if (root) await fs.rm(root, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  });

  it("comes online and reports", async () => {
    const view = await eventually("the first report", async () => {
      const current = await admin(HostView, `/api/hosts/${HOST}`);
      return current.online && current.report ? current : null;
    });
    expect(view.report?.platform).toBe("nixos");
    expect(view.report?.agentVersion).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("pulls, switches and tests, and its next report shows the new commit and system", async () => {
    const head = await fleet.setHost(HOST, "bundled generation 2");
    const expectedSystem = await fleet.systemPath(HOST);
    const pull = await run("pull");
    expect(pull.state, pull.error ?? "").toBe("succeeded");
    expect(pull.result?.commitAfter).toBe(head);
    const switched = await run("switch");
    expect(switched.state, switched.error ?? "").toBe("succeeded");
    expect(switched.result?.systemAfter).toBe(expectedSystem);
    const tested = await run("test");
    expect(tested.state, tested.error ?? "").toBe("succeeded");

    await eventually("the report of the new commit and system", async () => {
      const report = (await admin(HostView, `/api/hosts/${HOST}`)).report;
      return report?.repo.commit.value === head && report.system.current.value === expectedSystem ? report : null;
    });
  });

  it("stops cleanly on SIGTERM", async () => {
    const child = agent!;
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(log.join("")).toContain("agent stopped");
  });
});
