/** What a command implementation gets from the agent, and what it hands back. */
import type { AgentConfig } from "../../common/agent-config.ts";
import type { CommandDelivery, CommandResult, DesiredSystem, OutputStream } from "../../common/protocol.ts";
import type { ManifestOutcome } from "../control-plane-client.ts";
import type { DetachedJobs } from "../detached-jobs.ts";
import type { JobStore } from "../job-store.ts";
import type { Logger } from "../logger.ts";
import type { HostPlatform } from "../platforms/platform.ts";
import type { ReportProbe } from "../report.ts";
import type { HostRunner } from "../runner.ts";

export interface CommandOutcome {
  outcome: "succeeded" | "failed" | "cancelled";
  exitCode: number | null;
  error: string | null;
  result: CommandResult;
  /** Work the agent does once the finished event is out (kept out of the command itself). */
  then?: "restart-agent" | "run-tests";
  /** The safety net's confirmation carried the post-switch report: the finished event need not carry it again. */
  reported?: true;
  /** The host read for the report the finished event carries, begun once the job ended (while its result was verified). */
  reportProbe?: Promise<ReportProbe>;
}

/** A detached job goes on after the agent stopped; the next agent process reports its end. */
export interface LeftRunning {
  outcome: "left-running";
}

export type CommandEnd = CommandOutcome | LeftRunning;

/** The parts every host-touching step needs. */
export interface HostContext {
  config: AgentConfig;
  /** What differs between NixOS, nix-darwin and Home Manager. */
  platform: HostPlatform;
  runner: HostRunner;
  store: JobStore;
  logger: Logger;
  /** Output of the command's processes, streamed to the control plane. */
  output(stream: OutputStream, data: string): void;
  /** A line of the agent's own narration (`$ git fetch …`, verification results). */
  say(line: string): void;
  /** Guards a switch on the host (safety-net/); absent where the agent does not switch (status). */
  safetyNet?: SwitchGuard;
  /** Reads the host for a report (report.ts), to be assembled later; absent where nothing is reported (status). */
  probeReport?: () => Promise<ReportProbe>;
}

/** What a switch tells the safety net before it activates. */
export interface ArmInput {
  commandId: string;
  commit: string | null;
  previous: string | null;
  next: string | null;
  /** The switch job's exit file, where the window opens. */
  activationExitFile: string;
  /** The switch command's deadline: the window opens by then even if the job vanished. */
  activationGiveUpAt: string;
  say(line: string): void;
}

/** The safety net as a switch sees it (agent/safety-net/safety-net.ts). */
export interface SwitchGuard {
  /** Records the previous system and starts the watchdog, before the activation. */
  arm(input: ArmInput): Promise<unknown>;
  /** Whether this command armed it. */
  armed(commandId: string): Promise<boolean>;
  /** After the switch job ended: the outcome confirmed, or the rollback's; null when the agent stops. */
  settle(commandId: string, outcome: CommandOutcome, say: (line: string) => void, healthTests: (signal: AbortSignal) => Promise<string | null>): Promise<CommandOutcome | null>;
}

export interface CommandContext extends HostContext {
  delivery: CommandDelivery;
  /** Aborted by a `stop` for this command: kill what it runs. */
  cancel: AbortSignal;
  /** Aborted when the agent itself stops: detached jobs keep running. */
  shutdown: AbortSignal;
  jobs: DetachedJobs;
  /** Stops another command (the `stop` command); true when something was killed. */
  stopCommand(target: string | null): Promise<boolean>;
  /** A builder's signed manifest for `commit`, from the control plane (substitute mode). */
  /** The signed manifest of `commit`, or else of a commit with the same `tree` (a merge of an update PR's head). */
  fetchManifest(commit: string, tree: string | null, signal: AbortSignal): Promise<ManifestOutcome>;
  /** Re-collect the report and send it with the next poll. */
  refreshReport(): void;
  /**
   * Tells the control plane the host reboots into `system` for this command (after the output so far);
   * resolves "stored" once it acknowledged, "dropped" when it refused, "abandoned" when the agent stops.
   */
  announceReboot(system: string): Promise<"stored" | "dropped" | "abandoned">;
  /**
   * The switch evaluated the clean clone at `commit` (`main`: the pull before it brought the clone to
   * main's head): the desired system is known now, for the report that follows the switch.
   */
  evaluated(commit: string, system: DesiredSystem, main: boolean): Promise<void>;
}

export const succeeded = (result: CommandResult = {}, exitCode: number | null = 0): CommandOutcome => ({
  outcome: "succeeded",
  exitCode,
  error: null,
  result,
});

export const failed = (error: string, result: CommandResult = {}, exitCode: number | null = null): CommandOutcome => ({
  outcome: "failed",
  exitCode,
  error: error.slice(0, 4000),
  result,
});

export const cancelled = (result: CommandResult = {}): CommandOutcome => ({
  outcome: "cancelled",
  exitCode: null,
  error: "stopped by a stop command",
  result,
});
