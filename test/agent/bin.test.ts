/**
 * bin/nixfleet-agent.js chooses what to run: the bundle when it is there and
 * not older than the agent's sources, else the sources. Checked on a copy of
 * the checkout's layout whose bundle and sources only say which one ran.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, beforeEach, expect, it } from "vitest";
import { watchdogCommandOf } from "../../agent/cli.ts";

const exec = promisify(execFile);
const BIN = fileURLToPath(new URL("../../bin/nixfleet-agent.js", import.meta.url));

let root: string;
const bundle = () => path.join(root, "dist", "agent", "nixfleet-agent.mjs");
const ran = async () => (await exec(process.execPath, [path.join(root, "bin", "nixfleet-agent.js"), "--version"])).stdout.trim();

async function setMtime(file: string, seconds: number): Promise<void> {
  const at = new Date(seconds * 1000);
  await fs.utimes(file, at, at);
}

beforeEach(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-bin-"));
  for (const dir of ["bin", "dist/agent", "agent/commands", "common"]) await fs.mkdir(path.join(root, dir), { recursive: true });
  await fs.copyFile(BIN, path.join(root, "bin", "nixfleet-agent.js"));
  await fs.writeFile(bundle(), 'process.stdout.write(`bundle ${process.argv.slice(2).join(" ")}\\n`);\n');
  await fs.writeFile(
    path.join(root, "agent", "cli.ts"),
    'export function runCli(): void {\n  process.stdout.write(`sources ${process.argv.slice(2).join(" ")}\\n`);\n}\n',
  );
  await fs.writeFile(path.join(root, "agent", "commands", "pull.ts"), "export {};\n");
  await fs.writeFile(path.join(root, "common", "protocol.ts"), "export {};\n");
  for (const file of ["agent/cli.ts", "agent/commands/pull.ts", "common/protocol.ts"]) await setMtime(path.join(root, file), 1_000);
  await setMtime(bundle(), 2_000);
});

afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

it("runs the bundle, with the arguments, when it is newer than every source", async () => {
  expect(await ran()).toBe("bundle --version");
});

it("runs the sources when a source file, however deep, changed after the bundle was built", async () => {
  await setMtime(path.join(root, "agent", "commands", "pull.ts"), 3_000);
  expect(await ran()).toBe("sources --version");
  await setMtime(path.join(root, "agent", "commands", "pull.ts"), 1_000);
  await setMtime(path.join(root, "common", "protocol.ts"), 3_000);
  expect(await ran()).toBe("sources --version");
});

it("runs the sources when there is no bundle", async () => {
  await fs.rm(bundle());
  expect(await ran()).toBe("sources --version");
});

it("starts the safety net's watchdog from its own bundle beside the agent's when there is one, else from the agent's entry", async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-watchdog-entry-"));
  try {
    const agentBundle = path.join(dir, "nixfleet-agent.mjs");
    await fs.writeFile(agentBundle, "");
    expect(watchdogCommandOf(agentBundle, agentBundle).at(-1)).toBe(agentBundle);
    await fs.writeFile(path.join(dir, "nixfleet-watchdog.mjs"), "");
    const command = watchdogCommandOf(agentBundle, agentBundle);
    expect(command[0]).toBe(process.execPath);
    expect(command.at(-1)).toBe(path.join(dir, "nixfleet-watchdog.mjs"));
    // Started through bin/nixfleet-agent.js, which imports the bundle: still the watchdog's bundle.
    expect(watchdogCommandOf("/src/bin/nixfleet-agent.js", agentBundle).at(-1)).toBe(path.join(dir, "nixfleet-watchdog.mjs"));
    // Run from the sources (agent/cli.ts), the watchdog is the entry's own `watchdog`.
    expect(watchdogCommandOf("/src/bin/nixfleet-agent.js", "/src/agent/cli.ts").at(-1)).toBe("/src/bin/nixfleet-agent.js");
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
