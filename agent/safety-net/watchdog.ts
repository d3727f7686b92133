/**
 * The watchdog (`nixfleet-agent watchdog DIR`): a process of its own, started
 * detached before the switch from the running (old) generation's agent
 * package, like deploy-rs' separate waiter. It waits for the switch to end,
 * then for the agent's confirmation; when the window closes without one it
 * activates the RECORDED previous system — never "one generation back" — and
 * writes what it did. It reads only its record and the old system's files, so
 * a new generation whose agent crash-loops or cannot start at all is still
 * rolled back. A rollback is never itself under confirmation: the watchdog
 * ends after it.
 */
import * as fs from "node:fs/promises";
import { shortSha, storePathName } from "../../common/text.ts";
import type { HostRollback } from "../../common/protocol.ts";
import { createNodeRunner, describeFailure, type HostRunner } from "../runner.ts";
import { monotonicMs, readBootId, SafetyNetDir, type ConfirmationWindow, type SafetyNetRecord } from "./record.ts";

const LOOK_EVERY_MS = 200;

/** "no confirmation within 120 s after switching to 1a2b3c4". */
export function noConfirmationReason(record: SafetyNetRecord): string {
  const to = record.commit !== null ? shortSha(record.commit) : storePathName(record.next);
  return `no confirmation within ${record.confirmTimeoutSeconds} s after switching to ${to}`;
}

/** When the window closes, on the monotonic clock of the boot the window opened in. */
export const windowClosesAt = (record: SafetyNetRecord, window: ConfirmationWindow): number =>
  window.openedAtMonotonicMs + record.confirmTimeoutSeconds * 1000;

export interface WatchdogOptions {
  runner?: HostRunner;
  log?: (line: string) => void;
}

/** Runs the watchdog for one armed switch; resolves with what it decided. */
export async function runWatchdog(dirPath: string, options: WatchdogOptions = {}): Promise<"confirmed" | "rolled-back" | "rollback-failed" | "not-activated" | "no-record"> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`));
  const runner = options.runner ?? createNodeRunner();
  const dir = new SafetyNetDir(dirPath);
  const record = await dir.readRecord();
  if (record === null) {
    log(`no readable record in ${dirPath}: nothing to watch`);
    return "no-record";
  }
  const bootId = await readBootId(record.bootIdFile);
  log(`watching the switch to ${record.next}; previous system ${record.previous}; confirmation within ${record.confirmTimeoutSeconds} s of the activation`);
  let window: ConfirmationWindow | null = null;
  for (;;) {
    const decision = await dir.readDecision();
    if (decision !== null) {
      log(`decided by the ${decision.by}: ${decision.decision} (${decision.reason})`);
      if (decision.decision !== "rollback") return decision.decision;
      return (await dir.readRollback())?.outcome === "failed" ? "rollback-failed" : "rolled-back";
    }
    // The record is the watch: with its directory removed (the agent's state wiped, the agent uninstalled)
    // nothing is left to decide or to write to, and a watchdog left waiting would wait for ever.
    if ((await dir.readRecord()) === null) {
      log(`the record in ${dirPath} is gone: nothing to watch`);
      return "no-record";
    }
    if (window === null) {
      window = await dir.readWindow();
      if (window === null && (await activationEnded(record))) {
        window = await dir.openWindow(bootId);
        log(`the activation ended; the window closes in ${record.confirmTimeoutSeconds} s`);
      }
    }
    if (window !== null && monotonicMs() >= windowClosesAt(record, window)) {
      const reason = noConfirmationReason(record);
      const result = await rollBack(dir, record, runner, reason, "watchdog", log);
      return result === null ? "not-activated" : result.outcome === "rolled-back" ? "rolled-back" : "rollback-failed";
    }
    await sleep(LOOK_EVERY_MS);
  }
}

async function activationEnded(record: SafetyNetRecord): Promise<boolean> {
  if (record.activationExitFile === null) return true;
  if (await fs.access(record.activationExitFile).then(() => true, () => false)) return true;
  return Date.now() >= Date.parse(record.activationGiveUpAt);
}

/**
 * Claims the "rollback" decision and activates the recorded previous system. Null when the
 * host already runs it (nothing was activated) or the agent confirmed first. `evenIfRunning`:
 * after a reboot into the previous system the profile still names the unconfirmed one, which
 * the next boot would start, so it is activated all the same.
 */
export async function rollBack(
  dir: SafetyNetDir,
  record: SafetyNetRecord,
  runner: HostRunner,
  reason: string,
  by: "agent" | "watchdog",
  log: (line: string) => void,
  evenIfRunning = false,
): Promise<HostRollback | null> {
  const running = await runner.realPath(record.runningSystemLink).catch(() => null);
  if (running === record.previous && !evenIfRunning) {
    const claimed = await dir.decide({ decision: "not-activated", by, at: new Date().toISOString(), reason: `the host runs the previous system ${record.previous}` });
    if (claimed.won) log(`the host already runs the previous system ${record.previous}: nothing to roll back`);
    return null;
  }
  const claimed = await dir.decide({ decision: "rollback", by, at: new Date().toISOString(), reason });
  if (!claimed.won) {
    log(`not rolling back: the ${claimed.decision.by} decided ${claimed.decision.decision} first`);
    return claimed.decision.decision === "rollback" ? await dir.readRollback() : null;
  }
  log(`${reason}: activating the recorded previous system ${record.previous}`);
  log(`$ ${record.rollbackArgv.join(" ")}`);
  const ran = await runner.run(record.rollbackArgv, { onOutput: (_stream, data) => log(data.trimEnd()) });
  const after = await runner.realPath(record.runningSystemLink).catch(() => null);
  const back = after === record.previous;
  const error = back ? null : ran.exitCode !== 0 ? describeFailure("the rollback", ran) : `the rollback exited 0 but ${record.runningSystemLink} points to ${after ?? "nothing"}, not ${record.previous}`;
  const rollback: HostRollback = {
    commandId: record.commandId,
    from: record.next,
    to: record.previous,
    commit: record.commit,
    at: new Date().toISOString(),
    reason,
    outcome: back ? "rolled-back" : "failed",
    error: error?.slice(0, 2000) ?? null,
  };
  await dir.writeRollback(rollback);
  log(back ? `rolled back: the host runs ${record.previous} again` : `the rollback failed: ${error}`);
  return rollback;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
