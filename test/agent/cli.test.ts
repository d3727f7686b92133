import { spawn } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { AgentConfigInput } from "../../common/agent-config.ts";
import { Report } from "../../common/protocol.ts";
import { nixAvailable } from "../fixtures/nix/require-nix.ts";
import { createHarness, type Harness } from "./harness.ts";

const BIN = fileURLToPath(new URL("../../bin/nixfleet-agent.js", import.meta.url));

let h: Harness;

beforeEach(async () => {
  h = await createHarness({ lock: nixAvailable });
});

afterEach(async () => {
  await h.cleanup();
  expect(h.plane.protocolErrors).toEqual([]);
});

interface Spawned {
  code: Promise<number | null>;
  stdout: () => string;
  stderr: () => string;
  kill: (signal: NodeJS.Signals) => void;
}

function agentProcess(args: string[], env: NodeJS.ProcessEnv = h.env): Spawned {
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (data: string) => (stdout += data));
  child.stderr.setEncoding("utf8").on("data", (data: string) => (stderr += data));
  return {
    code: new Promise((resolve) => child.on("close", (code) => resolve(code))),
    stdout: () => stdout,
    stderr: () => stderr,
    kill: (signal) => child.kill(signal),
  };
}

async function writeConfig(overrides: Partial<AgentConfigInput> = {}): Promise<string> {
  const file = path.join(h.root, "agent.json");
  await fs.writeFile(file, JSON.stringify({ ...h.config, logLevel: "info", ...overrides }));
  return file;
}

describe("nixfleet-agent CLI", () => {
  it("status --json prints the report the agent would send, on a host it never ran on", async () => {
    const config = await writeConfig();
    const run = agentProcess(["status", "--json", "--config", config]);
    expect(await run.code).toBe(0);
    const report = Report.parse(JSON.parse(run.stdout()));
    expect(report.platform).toBe("nixos");
    expect(report.repo.commit.reason).toMatch(/no clone yet/);
  });

  it("status without --json prints a human summary, with the config path from NIXFLEET_AGENT_CONFIG", async () => {
    const config = await writeConfig();
    const run = agentProcess(["status"], { ...h.env, NIXFLEET_AGENT_CONFIG: config });
    expect(await run.code).toBe(0);
    expect(run.stdout()).toMatch(/^commit {6}unknown \(no clone yet/m);
    expect(run.stdout()).toMatch(/^tests {7}none configured$/m);
  });

  it("refuses to run without a token file, saying what to do", async () => {
    const config = await writeConfig({ tokenFile: path.join(h.root, "missing-token") });
    const run = agentProcess(["run", "--config", config]);
    expect(await run.code).toBe(78);
    expect(run.stderr()).toContain(`token file ${path.join(h.root, "missing-token")} does not exist`);
  });

  it("refuses to run with an empty token file", async () => {
    const empty = path.join(h.root, "empty-token");
    await fs.writeFile(empty, "\n");
    const run = agentProcess(["run", "--config", await writeConfig({ tokenFile: empty })]);
    expect(await run.code).toBe(78);
    expect(run.stderr()).toContain("is empty");
  });

  it("names the wrong field of an invalid config", async () => {
    const run = agentProcess(["status", "--config", await writeConfig({ hostName: "Not A Host" })]);
    expect(await run.code).toBe(78);
    expect(run.stderr()).toMatch(/invalid[\s\S]*hostName/);
  });

  it("asks for a config file when given none", async () => {
    const run = agentProcess(["status"]);
    expect(await run.code).toBe(64);
    expect(run.stderr()).toContain("no config file");
  });

  it("run: polls, and exits 75 after a restart-agent command so the service manager restarts it", async () => {
    const run = agentProcess(["run", "--config", await writeConfig()]);
    await h.plane.waitForPoll(() => true, "the agent process to poll");
    const id = h.plane.queue("restart-agent");
    expect(await run.code).toBe(75);
    expect(h.plane.finished(id)?.outcome).toBe("succeeded");
    expect(run.stderr()).toMatch(/INFO {2}restart requested/);
  });

  it("run: stops cleanly on SIGTERM", async () => {
    const run = agentProcess(["run", "--config", await writeConfig()]);
    await h.plane.waitForPoll(() => true, "the agent process to poll");
    run.kill("SIGTERM");
    expect(await run.code).toBe(0);
    expect(run.stderr()).toContain("SIGTERM received, stopping");
    expect(run.stderr()).toContain("agent stopped");
  });
});
