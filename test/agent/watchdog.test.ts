/**
 * The safety net's watchdog on its own (agent/safety-net/watchdog.ts), without Nix: a switch whose
 * activation has not ended keeps it waiting, and a record that disappears (the agent's state wiped or
 * the agent uninstalled) ends it, touching nothing. Its rollbacks are tested with real Nix in safety-net.test.ts.
 */
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { SafetyNetDir } from "../../agent/safety-net/record.ts";
import { runWatchdog } from "../../agent/safety-net/watchdog.ts";
import { eventually } from "../support/wait.ts";

let root: string;
beforeEach(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-watchdog-"));
});
afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

it("ends without activating anything when its record's directory is removed while it waits", async () => {
  const dir = new SafetyNetDir(path.join(root, "state", "safety-net", "cmd_gone"));
  // The rollback would leave this file behind: it must never run.
  const rolledBack = path.join(root, "rolled-back");
  await dir.writeRecord({
    version: 1,
    commandId: "cmd_gone",
    commit: null,
    platform: "nixos",
    previous: "/nix/store/aaaa-nixos-system-previous",
    next: "/nix/store/bbbb-nixos-system-next",
    confirmTimeoutSeconds: 1,
    armedAt: new Date().toISOString(),
    // The activation never ends, and is not given up on for an hour: the watchdog waits.
    activationExitFile: path.join(root, "switch.exit"),
    activationGiveUpAt: new Date(Date.now() + 3_600_000).toISOString(),
    rollbackArgv: ["sh", "-c", `touch '${rolledBack}'`],
    runningSystemLink: path.join(root, "current-system"),
    bootIdFile: path.join(root, "boot_id"),
    failedUnitsBefore: null,
  });
  const lines: string[] = [];
  let ended: string | null = null;
  const watching = runWatchdog(dir.dir, { log: (line) => lines.push(line) }).then((result) => (ended = result));
  await eventually("the watchdog to start watching", async () => lines.some((line) => line.startsWith("watching the switch to")));
  // Still waiting a while later: the activation has not ended, so no window is open.
  await new Promise((resolve) => setTimeout(resolve, 600));
  expect(ended).toBeNull();

  await fs.rm(path.join(root, "state"), { recursive: true, force: true });
  expect(await watching).toBe("no-record");
  expect(lines.at(-1)).toBe(`the record in ${dir.dir} is gone: nothing to watch`);
  await expect(fs.access(rolledBack)).rejects.toThrow();
});
