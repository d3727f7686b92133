/**
 * `nixfleet doctor` (issue 24) against the real control plane (wrangler dev, local D1, the GitHub
 * emulator) behind a local stand-in for Cloudflare Access (test/support/access-front.ts): configured
 * right, every check passes; with the agents' Bypass policy missing, doctor names it and exits 1, and
 * an agent behind that front says in `nixfleet-agent status` what to fix.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { z } from "zod";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ACCESS_BLOCKED } from "../../common/answer-cause.ts";
import type { GitHubEmulator } from "../../tools/github-emulator/emulator.ts";
import {
  ACCESS_AUD,
  ACCESS_TEAM,
  SERVICE_TOKEN,
  startAccessFront,
  startAccessKeys,
  type AccessFront,
  type AccessKeys,
} from "../support/access-front.ts";
import { freePort, startControlPlane, type ControlPlane } from "../support/control-plane.ts";
import { killE2eAgents, spawnE2eAgent, tailOfLogs, type E2eAgent } from "../support/e2e-agent.ts";
import { startWithGitHub } from "../support/github-fleet.ts";
import { eventually } from "../support/wait.ts";

const exec = promisify(execFile);
const NIXFLEET = fileURLToPath(new URL("../../bin/nixfleet.js", import.meta.url));
const AGENT = fileURLToPath(new URL("../../bin/nixfleet-agent.js", import.meta.url));

let dir: string;
let keys: AccessKeys;
let cp: ControlPlane;
let emulator: GitHubEmulator;
/** Access as docs/operations.md sets it up: agents, webhooks and /metrics bypass it. */
let configured: AccessFront;
/** The most likely mistake: no Bypass for /api/agent/*. */
let noAgentBypass: AccessFront;
let hostTokenFile: string;
let hostToken: string;
const agents: E2eAgent[] = [];

/** Runs the real CLI; resolves with its exit code and output whatever the code. */
async function doctor(url: string, ...args: string[]): Promise<{ code: number; lines: string[] }> {
  const result = await exec(process.execPath, [NIXFLEET, "doctor", url, ...args], { env: { ...process.env, NO_COLOR: "1" } }).then(
    ({ stdout }) => ({ code: 0, stdout }),
    (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
  );
  return { code: result.code, lines: result.stdout.trimEnd().split("\n") };
}

const withServiceToken = ["--access-client-id", SERVICE_TOKEN.clientId, "--access-client-secret", SERVICE_TOKEN.clientSecret];

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-doctor-"));
  keys = await startAccessKeys();
  ({ emulator, controlPlane: cp } = await startWithGitHub({ workDir: path.join(dir, "github"), webhookSecret: "doctor-webhook-secret", token: "ghp_doctor" }, (github) =>
    startControlPlane({
      vars: {
        ...github,
        ACCESS_AUD,
        ACCESS_TEAM_DOMAIN: ACCESS_TEAM,
        ACCESS_JWKS_URL: keys.jwksUrl,
        ADMIN_EMAILS: `service:${SERVICE_TOKEN.clientId}`,
        METRICS_TOKEN: "doctor-metrics-token",
      },
    }),
  ));
  configured = await startAccessFront({ target: cp.url, bypass: ["/api/agent/*", "/webhooks/github", "/metrics"], keys });
  noAgentBypass = await startAccessFront({ target: cp.url, bypass: ["/webhooks/github", "/metrics"], keys });
  // GitHub's webhooks come through the front, as they would through Access.
  emulator.setWebhookUrl(`${configured.url}/webhooks/github`);
  await emulator.seed({ "flake.nix": "{ outputs = _: { }; }\n" });

  const added = await fetch(`${configured.url}/api/hosts`, {
    method: "POST",
    headers: { "content-type": "application/json", "cf-access-client-id": SERVICE_TOKEN.clientId, "cf-access-client-secret": SERVICE_TOKEN.clientSecret },
    body: JSON.stringify({ name: "doctor-probe", platform: "nixos" }),
  });
  expect(added.status, await added.clone().text()).toBe(201);
  hostToken = z.object({ token: z.string() }).parse(await added.json()).token;
  hostTokenFile = path.join(dir, "probe-token");
  await fs.writeFile(hostTokenFile, `${hostToken}\n`, { mode: 0o600 });
}, 180_000);

afterAll(async () => {
  await killE2eAgents(agents);
  await configured?.close();
  await noAgentBypass?.close();
  await cp?.stop();
  await emulator?.stop();
  await keys?.close();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe("nixfleet doctor", () => {
  it("passes every check on a deployment configured as docs/operations.md says, and exits 0", async () => {
    const closedPort = await freePort();
    await eventually("the seed's push webhook to arrive", async () => {
      const { lines } = await doctor(configured.url, ...withServiceToken);
      return lines.some((line) => line.startsWith("✓ webhooks arrive"));
    });
    const { code, lines } = await doctor(configured.url, ...withServiceToken, "--host-token", hostTokenFile, "--workers-dev", `http://127.0.0.1:${closedPort}`);
    expect(lines.map((line) => line.replace(/:.*/, ""))).toEqual([
      "✓ /api/health answers",
      "✓ the dashboard is behind Access",
      "✓ the admin API is behind Access",
      "✓ agents reach the Worker past Access",
      "✓ GitHub's webhooks reach the Worker past Access",
      "✓ /metrics is protected",
      "✓ the workers.dev hostname is off",
      "✓ GitHub is configured and answers",
      "✓ D1 is at the code's migration",
      "✓ webhooks arrive",
      "✓ a host polls",
    ]);
    expect(lines).toContain("✓ agents reach the Worker past Access: /api/agent/poll?wait=0 answers the Worker's own 401");
    expect(lines).toContain("✓ GitHub is configured and answers: example/fleet answers");
    expect(code).toBe(0);
  });

  it("without a service token checks what it can and lists the checks it skipped", async () => {
    const { code, lines } = await doctor(configured.url);
    expect(lines[0]).toBe("✗ /api/health answers: Cloudflare Access's login — fix: pass --access-client-id and --access-client-secret, or add /api/health to the Access application's Bypass policy (docs/operations.md#cloudflare-access)");
    expect(lines.filter((line) => line.startsWith("– "))).toEqual([
      "– the workers.dev hostname is off: skipped, pass --workers-dev https://<name>.<subdomain>.workers.dev to check it",
      "– a host polls: skipped, pass --host-token FILE to poll as a host",
    ]);
    expect(code).toBe(1);
  });

  it("names the missing Bypass policy for /api/agent/* and exits 1", async () => {
    const { code, lines } = await doctor(noAgentBypass.url, ...withServiceToken, "--host-token", hostTokenFile);
    const failed = lines.filter((line) => line.startsWith("✗"));
    expect(failed).toEqual([
      "✗ agents reach the Worker past Access: /api/agent/poll?wait=0 answers Cloudflare Access's login: the Bypass policy is missing — fix: add /api/agent/* to the Access application's Bypass policy (docs/operations.md#cloudflare-access)",
      "✗ a host polls: Cloudflare Access's login — fix: add /api/agent/* to the Access application's Bypass policy (docs/operations.md#cloudflare-access)",
    ]);
    expect(code).toBe(1);
  });

  it("fails the workers.dev check when that hostname serves the Worker without Access", async () => {
    const { code, lines } = await doctor(configured.url, ...withServiceToken, "--workers-dev", cp.url);
    expect(lines).toContain(
      "✗ the workers.dev hostname is off: it serves the Worker without Access (401 unauthorized) — fix: set workers_dev = false (`npx nixfleet setup` does) and deploy",
    );
    expect(code).toBe(1);
  });
});

describe("an agent behind Access without the bypass", () => {
  it("logs and shows in nixfleet-agent status that Access stopped it and which policy to add", async () => {
    const agent = await spawnE2eAgent({
      dir: path.join(dir, "host"),
      name: "doctor-probe",
      token: hostToken,
      url: noAgentBypass.url,
      repoUrl: path.join(dir, "no-repo"),
      pollTimeoutSeconds: 5,
    });
    agents.push(agent);
    const status = await eventually(
      "nixfleet-agent status to name Access",
      async () => {
        const { stdout } = await exec(process.execPath, [AGENT, "status", "--config", agent.configFile], { env: agent.env });
        return stdout.split("\n").find((line) => line.startsWith("server") && line.includes("NOT REACHED"));
      },
      { timeoutMs: 60_000, intervalMs: 500, details: () => tailOfLogs([agent], 20), giveUpWhen: () => (agent.process.exitCode === null ? null : "the agent exited") },
    );
    expect(status).toMatch(new RegExp(`^server {6}NOT REACHED since \\S+ \\(never reached\\): ${escape(ACCESS_BLOCKED)}$`));
    expect(agent.log.join("")).toContain(`ERROR ${ACCESS_BLOCKED}`);
  });
});

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
