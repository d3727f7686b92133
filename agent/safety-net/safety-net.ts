/**
 * The agent's half of the host's safety net (docs/hosts.md "When a switch goes
 * wrong on the host"): before activating, record the running system and arm
 * the watchdog (watchdog.ts); after activating, check the host's health and
 * confirm to the control plane on a fresh connection, or wait for the
 * watchdog's rollback and say so; at start, resolve what a previous process
 * (or boot) left pending.
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import type { AgentConfig } from "../../common/agent-config.ts";
import type { HostRollback, SafetyNetReport } from "../../common/protocol.ts";
import { plural } from "../../common/text.ts";
import { sleep } from "../backoff.ts";
import type { ArmInput, CommandOutcome, SwitchGuard } from "../commands/context.ts";
import type { Logger } from "../logger.ts";
import type { ReportProbe } from "../report.ts";
import type { HostPlatform } from "../platforms/platform.ts";
import type { HostRunner } from "../runner.ts";
import { monotonicMs, readBootId, SafetyNetDir, type ConfirmationWindow, type SafetyNetRecord } from "./record.ts";
import { noConfirmationReason, rollBack, windowClosesAt } from "./watchdog.ts";

/** `reported`: the confirmation carried the post-switch report; `probe`: what that report read from the host. */
export type ConfirmOutcome = { ok: true; reported: boolean; probe?: ReportProbe } | { ok: false; message: string };

export interface SafetyNetOptions {
  config: AgentConfig;
  platform: HostPlatform;
  runner: HostRunner;
  stateDir: string;
  logger: Logger;
  /**
   * The program that runs this agent package (`node`, the agent's entry, Node's flags): the
   * watchdog is `<watchdogCommand> watchdog <dir>`. Taken from the running — old — generation.
   */
  watchdogCommand: readonly string[];
  /** Aborted when the agent stops: a wait for the watchdog is left to the next process. */
  shutdown: AbortSignal;
  /** `POST /api/agent/confirm` on a fresh connection; ok only on the control plane's own answer. */
  confirm(commandId: string, system: string, signal: AbortSignal): Promise<ConfirmOutcome>;
}

/** Health checks after the activation: why the new system is not healthy, or null. */
export type HealthTests = (signal: AbortSignal) => Promise<string | null>;

const RETRY_CONFIRM_MS = 1_000;
/** Rolled-back records are the host's memory of bad systems: kept, up to this many. */
const KEEP_ROLLED_BACK = 50;
const KEEP_OTHERS = 5;

export class SafetyNet implements SwitchGuard {
  readonly #options: SafetyNetOptions;
  readonly #root: string;

  constructor(options: SafetyNetOptions) {
    this.#options = options;
    this.#root = path.join(options.stateDir, "safety-net");
  }

  get enabled(): boolean {
    return this.#options.config.safetyNet.enable;
  }

  #dir(commandId: string): SafetyNetDir {
    return new SafetyNetDir(path.join(this.#root, commandId));
  }

  /** Whether this command armed the safety net (its switch is then judged by `settle`). */
  async armed(commandId: string): Promise<boolean> {
    return (await this.#dir(commandId).readRecord()) !== null;
  }

  /** Records the previous system and starts the watchdog; null (said why) when there is nothing to guard. */
  async arm(input: ArmInput): Promise<SafetyNetDir | null> {
    const { config, platform, runner, logger } = this.#options;
    if (!this.enabled) {
      input.say("safety net: off (safetyNet.enable = false): this switch is not rolled back if the host is cut off");
      return null;
    }
    if (input.previous === null) {
      input.say("safety net: the running system cannot be read, so there is no previous system to go back to: not armed");
      return null;
    }
    if (input.previous === input.next) {
      input.say("safety net: the configuration builds the running system: nothing to guard");
      return null;
    }
    const failedUnitsBefore = await platform.listFailedUnits(runner, input.say).catch((error: unknown) => {
      input.say(`safety net: the failed units before the switch cannot be listed (${String(error)}): none are counted as failed before`);
      return [];
    });
    const dir = this.#dir(input.commandId);
    const record: SafetyNetRecord = {
      version: 1,
      commandId: input.commandId,
      commit: input.commit,
      platform: platform.name,
      previous: input.previous,
      next: input.next ?? "(not evaluated)",
      confirmTimeoutSeconds: config.safetyNet.confirmTimeoutSeconds,
      armedAt: new Date().toISOString(),
      activationExitFile: input.activationExitFile,
      activationGiveUpAt: input.activationGiveUpAt,
      rollbackArgv: platform.activateArgv(input.previous),
      runningSystemLink: platform.runningSystemLinks(runner)[0] ?? config.systemProfileLink,
      bootIdFile: config.bootIdFile,
      failedUnitsBefore,
    };
    await dir.writeRecord(record);
    input.say(`safety net: recorded the previous system ${record.previous} in ${dir.file("record.json")}`);
    const started = await this.#startWatchdog(dir);
    if (!started.ok) {
      input.say(`safety net: the watchdog could not start (${started.error}): the agent itself rolls back if it is not confirmed`);
      logger.error("the safety net's watchdog could not start", { command: input.commandId, problem: started.error });
    } else {
      input.say(`safety net: watchdog armed: unless this host confirms within ${record.confirmTimeoutSeconds} s of the activation, it goes back to ${record.previous}`);
    }
    return dir;
  }

  async #startWatchdog(dir: SafetyNetDir): Promise<{ ok: true } | { ok: false; error: string }> {
    const started = await this.#options.runner.startDetachedJob({
      name: `nixfleet-watchdog-${dir.id}`,
      argv: [...this.#options.watchdogCommand, "watchdog", dir.dir],
      cwd: this.#options.stateDir,
      logFile: dir.file("watchdog.log"),
      exitFile: dir.file("watchdog.exit"),
      mode: this.#options.config.tools.watchdogDetach ?? this.#options.config.tools.detach,
    });
    if (!started.ok) return started;
    await dir.writeWatchdog(started.handle);
    return { ok: true };
  }

  /**
   * After the switch job ended: confirm (health check, then the control plane) within the
   * window, or end the command with the watchdog's rollback. Returns the outcome unchanged
   * when this command armed nothing, null when the agent is stopping.
   */
  async settle(
    commandId: string,
    outcome: CommandOutcome,
    say: (line: string) => void,
    healthTests: HealthTests,
  ): Promise<CommandOutcome | null> {
    const io = { say, healthTests, shutdown: this.#options.shutdown };
    const dir = this.#dir(commandId);
    const record = await dir.readRecord();
    if (record === null) return outcome;
    const window = await this.#window(dir);
    const closesAt = windowClosesAt(record, window);
    let decision = await dir.readDecision();
    if (decision === null) {
      const unhealthy = outcome.outcome !== "succeeded" ? `the switch did not succeed: ${outcome.error ?? outcome.outcome}` : await this.#health(record, io, closesAt);
      if (unhealthy === null) {
        io.say("safety net: healthy; confirming to the control plane on a new connection…");
        const confirmed = await this.#confirmUntil(record, dir, closesAt, io);
        if (confirmed !== null) {
          const claim = await dir.decide({ decision: "confirmed", by: "agent", at: new Date().toISOString(), reason: "the control plane answered the confirmation" });
          if (claim.won) {
            io.say(`safety net: confirmed; ${record.next} stays`);
            if (!confirmed.reported) return outcome;
            return { ...outcome, reported: true, ...(confirmed.probe === undefined ? {} : { reportProbe: Promise.resolve(confirmed.probe) }) };
          }
        }
      } else {
        io.say(`safety net: not confirming: ${unhealthy}`);
        const running = await this.#options.runner.realPath(record.runningSystemLink).catch(() => null);
        if (running === record.previous) {
          await dir.decide({ decision: "not-activated", by: "agent", at: new Date().toISOString(), reason: "the host still runs the previous system" });
          io.say("safety net: the host still runs the previous system: nothing to roll back");
          return outcome;
        }
      }
      io.say(`safety net: waiting for the watchdog to roll back (the window closes ${Math.max(0, Math.ceil((closesAt - monotonicMs()) / 1000))} s from now)`);
    }
    const rollback = await this.#awaitRollback(dir, record, closesAt, io.shutdown);
    if (rollback === "stopping") return null;
    decision = await dir.readDecision();
    if (rollback === null) {
      // The decision was confirmed or nothing was activated: the switch's own outcome stands.
      if (decision?.decision === "confirmed") io.say("safety net: confirmed");
      return outcome;
    }
    await this.#say(dir, io.say);
    const result = { ...outcome.result, systemAfter: rollback.to, hostRollback: rollback };
    const text = rollback.outcome === "rolled-back" ? `rolled back on the host: ${rollback.reason}` : `the host tried to roll back (${rollback.reason}) and failed: ${rollback.error ?? "unknown error"}`;
    return { outcome: "failed", exitCode: outcome.exitCode, error: text.slice(0, 4000), result };
  }

  async #window(dir: SafetyNetDir): Promise<ConfirmationWindow> {
    return (await dir.readWindow()) ?? (await dir.openWindow(await readBootId(this.#options.config.bootIdFile)));
  }

  /** No unit failed that was not failed before, and the configured health tests pass. */
  async #health(record: SafetyNetRecord, io: { say(line: string): void; healthTests: HealthTests }, closesAt: number): Promise<string | null> {
    const { platform, runner } = this.#options;
    const now = await platform.listFailedUnits(runner, io.say).catch((error: unknown) => `cannot list failed units: ${String(error)}`);
    if (typeof now === "string") return now;
    if (now !== null) {
      const before = new Set(record.failedUnitsBefore ?? []);
      const newlyFailed = now.filter((unit) => !before.has(unit));
      if (newlyFailed.length > 0) return `${plural(newlyFailed.length, "unit")} failed since the switch: ${newlyFailed.slice(0, 10).join(", ")}`;
      io.say(`safety net: no unit failed since the switch${now.length > 0 ? ` (${plural(now.length, "unit")} failed before it, still failed)` : ""}`);
    }
    // Tests still running when the window closes could not confirm anyway: they are stopped.
    const window = AbortSignal.timeout(Math.max(1, closesAt - monotonicMs()));
    const failing = await io.healthTests(window);
    return window.aborted ? "the health tests did not finish within the confirmation window" : failing;
  }

  async #confirmUntil(
    record: SafetyNetRecord,
    dir: SafetyNetDir,
    closesAt: number,
    io: { say(line: string): void; shutdown: AbortSignal },
  ): Promise<Extract<ConfirmOutcome, { ok: true }> | null> {
    let attempts = 0;
    let lastProblem = "";
    while (monotonicMs() < closesAt && !io.shutdown.aborted) {
      if ((await dir.readDecision()) !== null) return null;
      const remaining = closesAt - monotonicMs();
      const answer = await this.#options.confirm(record.commandId ?? dir.id, record.next, AbortSignal.any([io.shutdown, AbortSignal.timeout(Math.max(1, remaining))]));
      attempts++;
      if (answer.ok) return answer;
      if (answer.message !== lastProblem) io.say(`safety net: the confirmation did not go through: ${answer.message}`);
      lastProblem = answer.message;
      await sleep(Math.min(RETRY_CONFIRM_MS, Math.max(0, closesAt - monotonicMs())), io.shutdown);
    }
    io.say(`safety net: no confirmation within the window after ${plural(attempts, "attempt")}`);
    return null;
  }

  /**
   * Waits for the decision and, when it is a rollback, its result. The watchdog decides at the
   * window's end; if it is gone, the agent rolls back itself a little after that.
   */
  async #awaitRollback(dir: SafetyNetDir, record: SafetyNetRecord, closesAt: number, shutdown: AbortSignal): Promise<HostRollback | null | "stopping"> {
    const grace = 5_000;
    for (;;) {
      const decision = await dir.readDecision();
      if (decision !== null && decision.decision !== "rollback") return null;
      if (decision !== null) {
        const rollback = await dir.readRollback();
        if (rollback !== null) return rollback;
      } else if (monotonicMs() >= closesAt + grace && !(await this.#watchdogAlive(dir))) {
        return rollBack(dir, record, this.#options.runner, noConfirmationReason(record), "agent", (line) => this.#options.logger.info(line));
      }
      if (shutdown.aborted) return "stopping";
      await sleep(200, shutdown);
    }
  }

  async #watchdogAlive(dir: SafetyNetDir): Promise<boolean> {
    const handle = await dir.readWatchdog();
    if (handle === null) return false;
    if (await fs.access(dir.file("watchdog.exit")).then(() => true, () => false)) return false;
    return this.#options.runner.isJobAlive(handle).catch(() => true);
  }

  /** The watchdog's log into the command's output: the record, the decision and the rollback. */
  async #say(dir: SafetyNetDir, say: (line: string) => void): Promise<void> {
    const log = await fs.readFile(dir.file("watchdog.log"), "utf8").catch(() => "");
    for (const line of log.trimEnd().split("\n").slice(-40)) if (line !== "") say(`watchdog: ${line}`);
  }

  /**
   * At agent start, before detached jobs are followed: a pending record whose watchdog is gone is
   * resolved. Past its window (same boot) it is rolled back now; after a reboot it gets a fresh
   * window if the host booted the new system, and is rolled back first otherwise.
   */
  async startup(): Promise<void> {
    const { logger, runner, config } = this.#options;
    const bootId = await readBootId(config.bootIdFile);
    for (const dir of await this.#dirs()) {
      const record = await dir.readRecord();
      if (record === null || (await dir.readDecision()) !== null) continue;
      const window = await dir.readWindow();
      // A watchdog of an earlier boot went with it: its handle may name a process group whose id the new boot gave
      // to something else, so it is not asked after.
      const rebooted = window !== null && window.bootId !== bootId;
      if (!rebooted && (await this.#watchdogAlive(dir))) continue;
      const log = (line: string) => logger.info(`safety net: ${line}`, { command: record.commandId ?? undefined });
      if (rebooted) {
        const running = await runner.realPath(record.runningSystemLink).catch(() => null);
        if (running === record.next) {
          log("the host rebooted into the unconfirmed system: a fresh confirmation window");
          await dir.reopenWindow(bootId);
          await this.#startWatchdog(dir);
        } else {
          await rollBack(dir, record, runner, `the host rebooted into ${running ?? "an unreadable system"}, not the unconfirmed ${record.next}`, "agent", log, true);
        }
        continue;
      }
      if (window === null ? await this.#closedUnseen(record) : monotonicMs() >= windowClosesAt(record, window)) {
        log("the confirmation window closed while no agent or watchdog ran: rolling back now");
        await rollBack(dir, record, runner, noConfirmationReason(record), "agent", log);
        continue;
      }
      log("re-arming the watchdog of a pending switch");
      await this.#startWatchdog(dir);
    }
    await this.#prune();
  }

  /**
   * Nobody saw the activation end (the agent and its watchdog were gone by then): the switch
   * job's exit file is the only witness, and its wall-clock age the only measure left.
   */
  async #closedUnseen(record: SafetyNetRecord): Promise<boolean> {
    if (record.activationExitFile === null) return false;
    const ended = await fs.stat(record.activationExitFile).then((stat) => stat.mtimeMs, () => null);
    return ended !== null && Date.now() - ended >= record.confirmTimeoutSeconds * 1000;
  }

  /** The report's `safetyNet`. */
  async report(): Promise<SafetyNetReport> {
    const rollbacks: HostRollback[] = [];
    let pending: SafetyNetReport["pending"] = null;
    for (const dir of await this.#dirs()) {
      const rollback = await dir.readRollback();
      if (rollback !== null) {
        rollbacks.push(rollback);
        continue;
      }
      if ((await dir.readDecision()) !== null) continue;
      const record = await dir.readRecord();
      if (record !== null) pending = { commandId: record.commandId, from: record.previous, to: record.next, since: record.armedAt };
    }
    rollbacks.sort((a, b) => a.at.localeCompare(b.at));
    return {
      enabled: this.enabled,
      confirmTimeoutSeconds: this.#options.config.safetyNet.confirmTimeoutSeconds,
      pending,
      lastRollback: rollbacks.at(-1) ?? null,
      rejected: rollbacks
        .filter((rollback) => rollback.outcome === "rolled-back")
        .slice(-KEEP_ROLLED_BACK)
        .map((rollback) => ({ storePath: rollback.from, commit: rollback.commit, at: rollback.at })),
    };
  }

  async #dirs(): Promise<SafetyNetDir[]> {
    const names = await fs.readdir(this.#root).catch(() => []);
    return names.filter((name) => !name.includes(".")).sort().map((name) => new SafetyNetDir(path.join(this.#root, name)));
  }

  async #prune(): Promise<void> {
    const settled: { dir: SafetyNetDir; rolledBack: boolean; at: number }[] = [];
    for (const dir of await this.#dirs()) {
      const decision = await dir.readDecision();
      if (decision === null) continue;
      settled.push({ dir, rolledBack: decision.decision === "rollback", at: Date.parse(decision.at) });
    }
    settled.sort((a, b) => b.at - a.at);
    const drop = [...settled.filter((s) => s.rolledBack).slice(KEEP_ROLLED_BACK), ...settled.filter((s) => !s.rolledBack).slice(KEEP_OTHERS)];
    await Promise.all(drop.map((s) => fs.rm(s.dir.dir, { recursive: true, force: true })));
  }
}
