/**
 * The long poll: each poll carries the agent's acks and the commands it holds,
 * and the report when it changed or the server asked for it; delivered commands
 * go to the agent. Failures back off and never end the loop.
 */
import type { AgentConfig } from "../common/agent-config.ts";
import { PROTOCOL_VERSION, type CommandDelivery, type PollRequest, type Report } from "../common/protocol.ts";
import { backoffDelay, sleep, type BackoffPolicy } from "./backoff.ts";
import type { ControlPlaneClient, PollOutcome } from "./control-plane-client.ts";
import type { Logger } from "./logger.ts";
import { reportFingerprint, type ReportCollector } from "./report.ts";

const ACTIVE_LIMIT = 20;
const ACKS_LIMIT = 50;

export interface PollerOptions {
  config: AgentConfig;
  logger: Logger;
  backoff: BackoffPolicy;
  random: () => number;
  /** This process's session id. */
  session: string;
  /** The commands the agent holds, so the server knows they live. */
  activeCommands(): string[];
  receive(deliveries: CommandDelivery[]): Promise<void>;
  /** The server rejected the token: read it again (the operator may have replaced it). */
  onUnauthorized(): Promise<void>;
  /** The answer named main's head (the desired system is evaluated there). */
  onMain(main: { branch: string; commit: string }): void;
  /** Every poll's outcome, for the connection state `nixfleet-agent status` shows. */
  onOutcome?(outcome: PollOutcome): void;
}

/** What one started agent polls with. */
export interface PollSession {
  client: ControlPlaneClient;
  reports: ReportCollector;
  shutdown: AbortSignal;
}

export class Poller {
  readonly #options: PollerOptions;
  readonly #acks = new Set<string>();
  #pollAbort: AbortController | null = null;
  #reportNeeded = true;
  #wantReport = false;
  #acceptedFingerprint: string | null = null;
  /** Counts the reports the server stored another way: a poll answered after one of them says nothing of the newest. */
  #deliveredElsewhere = 0;

  constructor(options: PollerOptions) {
    this.#options = options;
  }

  /** Acknowledges a delivery with the next poll. */
  ack(id: string): void {
    this.#acks.add(id);
  }

  /** Sends the report with the next poll, cutting a poll that is being held so it goes now. */
  requestReport(): void {
    this.#reportNeeded = true;
    this.#pollAbort?.abort();
  }

  /**
   * The server stored `report` another way (with a command's end): the next poll sends the report only if it
   * says something else.
   */
  reportDelivered(report: Report): void {
    this.#acceptedFingerprint = reportFingerprint(report);
    this.#deliveredElsewhere++;
  }

  /** Sends the report with the next poll, without cutting the held one (a `refresh` command: its end cuts it). */
  refreshReport(): void {
    this.#reportNeeded = true;
  }

  /** Polls until `session.shutdown` is aborted. */
  async run(session: PollSession): Promise<void> {
    this.#reportNeeded = true;
    let failures = 0;
    while (!session.shutdown.aborted) {
      try {
        failures = await this.#pollOnce(session, failures);
      } catch (error) {
        // Nothing the server sends may crash the agent; an unexpected failure here is logged and retried.
        failures++;
        this.#options.logger.error("poll cycle failed unexpectedly", { problem: error instanceof Error ? (error.stack ?? error.message) : String(error) });
        await sleep(backoffDelay(this.#options.backoff, failures, this.#options.random), session.shutdown);
      }
    }
  }

  /** One poll: send, handle the answer or back off. Returns the new count of consecutive failures. */
  async #pollOnce(session: PollSession, failures: number): Promise<number> {
    const { config, logger, backoff, random } = this.#options;
    const { body, fingerprint } = await this.#pollRequest(session.reports);
    const deliveredElsewhere = this.#deliveredElsewhere;
    const controller = new AbortController();
    this.#pollAbort = controller;
    const outcome = await session.client.poll(body, config.pollTimeoutSeconds, AbortSignal.any([controller.signal, session.shutdown]));
    this.#pollAbort = null;
    this.#options.onOutcome?.(outcome);
    if (outcome.kind === "aborted") return failures;
    if (outcome.kind === "ok") {
      logger.debug("poll answered", { commands: outcome.response.commands.length, reportSent: body.report !== undefined });
      for (const id of body.acks) this.#acks.delete(id);
      if (body.report !== undefined && fingerprint !== null) {
        // Held across a command's end, this poll carried a report older than the one its end delivered.
        if (deliveredElsewhere === this.#deliveredElsewhere) this.#acceptedFingerprint = fingerprint;
        this.#reportNeeded = false;
      }
      this.#wantReport = outcome.response.wantReport;
      if (outcome.response.main) this.#options.onMain(outcome.response.main);
      if (outcome.response.commands.length > 0) await this.#options.receive(outcome.response.commands);
      return 0;
    }
    failures++;
    const wait = backoffDelay(backoff, failures, random);
    if (outcome.kind === "unauthorized") {
      logger.error("CONTROL PLANE REJECTED THE AGENT TOKEN: check the token file, or re-enrol the host", {
        tokenFile: config.tokenFile,
        answer: outcome.message,
        retryInMs: wait,
      });
      await this.#options.onUnauthorized();
    } else if (outcome.cause !== undefined) {
      // Access, a site that is not NixFleet, or TLS: named with its fix, and loud, since no retry will mend it.
      logger.error(outcome.message, { failures, retryInMs: wait });
    } else {
      logger.warn("poll failed; polling again", { problem: outcome.message, failures, retryInMs: wait });
    }
    await sleep(wait, session.shutdown);
    return failures;
  }

  async #pollRequest(reports: ReportCollector): Promise<{ body: PollRequest; fingerprint: string | null }> {
    const body: PollRequest = {
      protocol: PROTOCOL_VERSION,
      agentSession: this.#options.session,
      activeCommands: this.#options.activeCommands().slice(0, ACTIVE_LIMIT),
      acks: [...this.#acks].slice(0, ACKS_LIMIT),
    };
    let fingerprint: string | null = null;
    try {
      const report = await reports.collect();
      fingerprint = reportFingerprint(report);
      if (this.#reportNeeded || this.#wantReport || fingerprint !== this.#acceptedFingerprint) body.report = report;
    } catch (error) {
      this.#options.logger.error("could not collect the report; polling without it", { problem: String(error) });
    }
    return { body, fingerprint };
  }
}
