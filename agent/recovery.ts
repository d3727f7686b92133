/**
 * What a new agent process does with what the previous one left: results it
 * had not delivered are sent again, detached switch/rollback jobs are followed
 * to their end, and attached commands that died with it are closed.
 */
import { failed, type CommandEnd, type CommandOutcome, type HostContext } from "./commands/context.ts";
import { finishJob } from "./commands/switch.ts";
import type { DetachedJobs } from "./detached-jobs.ts";
import type { CommandRecord, FinishedEvent, JobStore } from "./job-store.ts";
import type { Logger } from "./logger.ts";
import { pendingReboot, verifyReboot, type PendingReboot } from "./reboots.ts";
import type { ActiveCommand, CommandScheduler } from "./scheduler.ts";

/** The slice of the agent recovery works through. */
export interface RecoveryHost {
  store: JobStore;
  jobs: DetachedJobs;
  scheduler: CommandScheduler;
  logger: Logger;
  /** Aborted when the agent stops: a followed job is then left running for the next process. */
  shutdown: AbortSignal;
  isoNow(): string;
  hostContext(commandId: string): HostContext;
  /** Offers a finished event to the control plane again. */
  resendFinished(id: string, event: FinishedEvent): void;
  /** Records an end the job itself did not give (it never started, the agent failed following it). */
  finish(id: string, outcome: CommandOutcome): Promise<unknown>;
  /** Numbers a resumed command's output from `seq` on, above what the previous process sent. */
  continueOutput(id: string, seq: number): void;
  /** Hands a resumed job's end to the agent, as any command's end. */
  complete(entry: ActiveCommand, end: CommandEnd): Promise<void>;
}

export async function recover(host: RecoveryHost): Promise<void> {
  const { store, logger } = host;
  for (const record of store.unreported()) {
    if (record.finished === undefined || record.finished.type !== "finished") continue;
    logger.info("resending the result of a command finished before a restart", { command: record.id });
    host.resendFinished(record.id, record.finished);
  }
  for (const record of store.unfinished()) {
    const reboot = await pendingReboot(store.stateDir, record.id);
    if (reboot !== null) {
      resumeReboot(host, record, reboot);
      continue;
    }
    if (record.detached) {
      resumeJob(host, record);
      continue;
    }
    // An attached command died with the previous agent process. The control plane sees that this
    // session does not hold it and ends it `lost` (it, not we, writes a command's state); we only
    // close our own record so it is never resumed or reported.
    const reason =
      record.status === "received"
        ? "the agent restarted before running this command"
        : "the agent restarted while this command ran; it did not finish";
    logger.warn("command interrupted by the previous agent process; the control plane ends it lost", { command: record.id, reason });
    await store.recordFinished(record.id, { type: "finished", at: host.isoNow(), outcome: "failed", exitCode: null, error: reason, result: {} });
    await store.markReported(record.id);
  }
  await store.pruneJobs();
}

const RESUMED_REBOOT_OUTPUT_SEQ = 10_000_000;

/** A reboot this agent's predecessor started: the command is held (so the control plane does not end it lost) until judged. */
function resumeReboot(host: RecoveryHost, record: CommandRecord, reboot: PendingReboot): void {
  // The rebooted process kept no count of the chunks it sent; it sent far fewer than this (the worker keeps 1 MiB of a command's output).
  host.continueOutput(record.id, RESUMED_REBOOT_OUTPUT_SEQ);
  host.scheduler.occupy(record.id, record.kind, async (entry) => {
    host.logger.info("verifying the reboot a previous agent process started", { command: record.id, intended: reboot.intended });
    const outcome = await verifyReboot(host.hostContext(record.id), reboot).catch((error: unknown) => failed(`internal error while verifying the reboot: ${String(error)}`));
    await host.complete(entry, outcome);
  });
}

function resumeJob(host: RecoveryHost, record: CommandRecord): void {
  const { store, jobs, logger } = host;
  host.scheduler.occupy(record.id, record.kind, async (entry) => {
    try {
      const meta = await store.readJobMeta(record.id);
      if (meta === null) {
        await host.finish(record.id, failed("the agent restarted before this command's job started"));
        return;
      }
      logger.info("resuming a detached job started by a previous agent process", { command: record.id, kind: record.kind });
      const end = await jobs.follow(meta, { cancel: entry.stop.signal, shutdown: host.shutdown });
      const outcome = (await finishJob(host.hostContext(record.id), jobs, meta, end)) ?? { outcome: "left-running" as const };
      await host.complete(entry, outcome);
    } catch (error) {
      logger.error("resuming a detached job failed", { command: record.id, problem: String(error) });
      await host.finish(record.id, failed(`internal error while resuming: ${String(error)}`));
    }
  });
}
