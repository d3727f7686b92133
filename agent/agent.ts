/**
 * The NixFleet host agent: long-polls the control plane, runs the commands it
 * is given (one exclusive command at a time, while it keeps polling so a
 * `stop` arrives), streams their output and reports the host's state.
 *
 * Everything it needs is passed in — config, the host runner, fetch, logger,
 * clock — so tests run it against real git/nix and a fake control plane.
 */
import { randomBytes } from "node:crypto";
import * as fs from "node:fs/promises";
import { AgentConfig } from "../common/agent-config.ts";
import {
  EXCLUSIVE_COMMAND_KINDS,
  PROTOCOL_VERSION,
  type CommandDelivery,
  type CommandKind,
  type OutputStream,
  type PollRequest,
} from "../common/protocol.ts";
import { backoffDelay, DEFAULT_BACKOFF, sleep, type BackoffPolicy } from "./backoff.ts";
import { CommandEventSender } from "./command-events.ts";
import { failed, type CommandContext, type CommandEnd, type CommandOutcome, type HostContext } from "./commands/context.ts";
import { finishJob } from "./commands/switch.ts";
import { runTests } from "./commands/test.ts";
import { ControlPlaneClient } from "./control-plane-client.ts";
import { DetachedJobs } from "./detached-jobs.ts";
import { executeCommand } from "./executor.ts";
import { requestOverNodeHttp, type HttpTransport } from "./http.ts";
import { JobStore, type CommandRecord, type FinishedEvent } from "./job-store.ts";
import { createLogger, type Logger } from "./logger.ts";
import { releaseMemory } from "./memory.ts";
import { platformFor, type HostPlatform } from "./platforms/index.ts";
import { ReportCollector, reportFingerprint } from "./report.ts";
import { createNodeRunner, type HostRunner } from "./runner.ts";

export interface AgentOptions {
  /** Parsed with `AgentConfig`; an invalid config throws here, with zod's explanation. */
  config: unknown;
  runner?: HostRunner;
  fetch?: HttpTransport;
  logger?: Logger;
  /** Milliseconds since the epoch. */
  now?: () => number;
  random?: () => number;
  /** Backoff between failed polls and between event retries. */
  backoff?: BackoffPolicy;
  /** How often a detached job's log and exit file are looked at. */
  jobPollIntervalMs?: number;
  /** Called when a `restart-agent` command finished: the process should exit for its service manager to restart it. */
  onRestartRequested?: () => void;
}

/** Why the agent refuses to start; the message tells the operator what to fix. */
export class AgentStartError extends Error {
  override name = "AgentStartError";
}

interface ActiveCommand {
  id: string;
  kind: CommandKind;
  state: "queued" | "running";
  delivery: CommandDelivery | null;
  /** Aborted by a `stop` naming this command. */
  stop: AbortController;
  /** Settles when the command finished (or was left running at shutdown). */
  done: Promise<void>;
}

const ACTIVE_LIMIT = 20;
const ACKS_LIMIT = 50;

export class Agent {
  readonly config: AgentConfig;
  /** Resolves when a `restart-agent` command asks the process to exit (code 75). */
  readonly restartRequested: Promise<void>;

  readonly #platform: HostPlatform;
  readonly #runner: HostRunner;
  readonly #fetch: HttpTransport;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #backoff: BackoffPolicy;
  readonly #jobPollIntervalMs: number | undefined;
  readonly #onRestartRequested: (() => void) | undefined;
  readonly #session = randomBytes(12).toString("hex");
  readonly #startedAt: number;
  #resolveRestart: () => void = () => {};

  #shutdown = new AbortController();
  #running = false;
  #loop: Promise<void> | null = null;
  #token = "";
  #store: JobStore | null = null;
  #client: ControlPlaneClient | null = null;
  #events: CommandEventSender | null = null;
  #jobs: DetachedJobs | null = null;
  #reports: ReportCollector | null = null;

  readonly #active = new Map<string, ActiveCommand>();
  readonly #queue: ActiveCommand[] = [];
  readonly #acks = new Set<string>();
  /** Exclusive work in progress: a command, a resumed job, or tests after a switch. */
  #exclusiveBusy = 0;
  #pollAbort: AbortController | null = null;
  #reportNeeded = true;
  #wantReport = false;
  #acceptedFingerprint: string | null = null;
  readonly #background = new Set<Promise<unknown>>();

  constructor(options: AgentOptions) {
    this.config = AgentConfig.parse(options.config);
    this.#platform = platformFor(this.config);
    this.#logger = options.logger ?? createLogger({ level: this.config.logLevel });
    this.#runner = options.runner ?? createNodeRunner({ extraPath: this.config.extraPath });
    this.#fetch = options.fetch ?? requestOverNodeHttp;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.#jobPollIntervalMs = options.jobPollIntervalMs;
    this.#onRestartRequested = options.onRestartRequested;
    this.#startedAt = this.#now();
    this.restartRequested = new Promise((resolve) => {
      this.#resolveRestart = resolve;
    });
  }

  /** This process's session id, sent with every poll. */
  get session(): string {
    return this.#session;
  }

  /** Reads the token, opens the state, resumes detached jobs and starts polling. */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#token = await readToken(this.config.tokenFile);
    this.#shutdown = new AbortController();
    const store = await JobStore.open(this.config.stateDir, this.#logger).catch((error: unknown) => {
      throw new AgentStartError(`cannot use the state directory ${this.config.stateDir}: ${String(error)}`);
    });
    this.#store = store;
    this.#client = new ControlPlaneClient({ url: this.config.url, token: () => this.#token, fetch: this.#fetch });
    this.#events = new CommandEventSender({ client: this.#client, logger: this.#logger, random: this.#random, backoff: this.#backoff });
    this.#jobs = new DetachedJobs({
      store,
      runner: this.#runner,
      events: this.#events,
      logger: this.#logger,
      mode: this.config.tools.detach,
      pollIntervalMs: this.#jobPollIntervalMs,
    });
    this.#reports = new ReportCollector({
      config: this.config,
      platform: this.#platform,
      runner: this.#runner,
      store,
      cloneDir: store.cloneDir,
      agentStartedAt: this.#startedAt,
      now: this.#now,
    });
    this.#running = true;
    this.#reportNeeded = true;
    this.#logger.info("agent starting", {
      host: this.config.hostName,
      platform: this.#platform.name,
      url: this.config.url,
      session: this.#session,
      stateDir: this.config.stateDir,
    });
    await this.#recover(store);
    this.#loop = this.#pollLoop();
  }

  /**
   * Stops polling and ends attached commands. Detached switch/rollback jobs keep
   * running: the next agent process follows them and reports their result.
   */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#logger.info("agent stopping");
    this.#shutdown.abort();
    await this.#loop;
    await Promise.allSettled([...this.#active.values()].map((entry) => entry.done));
    // Give queued events a moment; whatever is left is resent by the next process (finished
    // events are kept in the job store until the server stored them).
    await this.#events?.drain(2_000);
    this.#events?.stop();
    await Promise.allSettled([...this.#background]);
    await this.#store?.flush();
    this.#logger.info("agent stopped");
  }

  // -- startup ----------------------------------------------------------------------

  async #recover(store: JobStore): Promise<void> {
    for (const record of store.unreported()) {
      if (record.finished === undefined || record.finished.type !== "finished") continue;
      this.#logger.info("resending the result of a command finished before a restart", { command: record.id });
      this.#sendFinished(record.id, record.finished);
    }
    for (const record of store.unfinished()) {
      if (record.detached) {
        this.#resumeJob(record);
        continue;
      }
      // An attached command died with the previous agent process. The control plane sees that this
      // session does not hold it and ends it `lost` (it, not we, writes a command's state); we only
      // close our own record so it is never resumed or reported.
      const reason =
        record.status === "received"
          ? "the agent restarted before running this command"
          : "the agent restarted while this command ran; it did not finish";
      this.#logger.warn("command interrupted by the previous agent process; the control plane ends it lost", { command: record.id, reason });
      await store.recordFinished(record.id, { type: "finished", at: this.#isoNow(), outcome: "failed", exitCode: null, error: reason, result: {} });
      await store.markReported(record.id);
    }
    await store.pruneJobs();
  }

  #resumeJob(record: CommandRecord): void {
    const stop = new AbortController();
    const entry: ActiveCommand = { id: record.id, kind: record.kind, state: "running", delivery: null, stop, done: Promise.resolve() };
    this.#active.set(record.id, entry);
    this.#exclusiveBusy++;
    entry.done = (async () => {
      try {
        const store = this.#requireStore();
        const meta = await store.readJobMeta(record.id);
        if (meta === null) {
          await this.#finish(record.id, failed("the agent restarted before this command's job started"));
          return;
        }
        this.#logger.info("resuming a detached job started by a previous agent process", { command: record.id, kind: record.kind });
        const jobs = this.#requireJobs();
        const end = await jobs.follow(meta, { cancel: stop.signal, shutdown: this.#shutdown.signal });
        const outcome = (await finishJob(this.#hostContext(record.id), jobs, meta, end)) ?? { outcome: "left-running" as const };
        await this.#complete(entry, outcome);
      } catch (error) {
        this.#logger.error("resuming a detached job failed", { command: record.id, problem: String(error) });
        await this.#finish(record.id, failed(`internal error while resuming: ${String(error)}`));
      } finally {
        this.#active.delete(record.id);
        this.#exclusiveBusy--;
        this.#pump();
      }
    })();
  }

  // -- polling --------------------------------------------------------------------------

  async #pollLoop(): Promise<void> {
    let failures = 0;
    const client = this.#requireClient();
    while (!this.#shutdown.signal.aborted) {
      try {
        failures = await this.#pollOnce(client, failures);
      } catch (error) {
        // Nothing the server sends may crash the agent; an unexpected failure here is logged and retried.
        failures++;
        this.#logger.error("poll cycle failed unexpectedly", { problem: error instanceof Error ? (error.stack ?? error.message) : String(error) });
        await sleep(backoffDelay(this.#backoff, failures, this.#random), this.#shutdown.signal);
      }
    }
  }

  /** One poll: send, handle the answer or back off. Returns the new count of consecutive failures. */
  async #pollOnce(client: ControlPlaneClient, failures: number): Promise<number> {
    const { body, fingerprint } = await this.#pollRequest();
    const controller = new AbortController();
    this.#pollAbort = controller;
    const outcome = await client.poll(body, this.config.pollTimeoutSeconds, AbortSignal.any([controller.signal, this.#shutdown.signal]));
    this.#pollAbort = null;
    if (outcome.kind === "aborted") return failures;
    if (outcome.kind === "ok") {
      this.#logger.debug("poll answered", { commands: outcome.response.commands.length, reportSent: body.report !== undefined });
      for (const id of body.acks) this.#acks.delete(id);
      if (body.report !== undefined && fingerprint !== null) {
        this.#acceptedFingerprint = fingerprint;
        this.#reportNeeded = false;
      }
      this.#wantReport = outcome.response.wantReport;
      if (outcome.response.commands.length > 0) await this.#receive(outcome.response.commands);
      return 0;
    }
    failures++;
    const wait = backoffDelay(this.#backoff, failures, this.#random);
    if (outcome.kind === "unauthorized") {
      this.#logger.error("CONTROL PLANE REJECTED THE AGENT TOKEN: check the token file, or re-enrol the host", {
        tokenFile: this.config.tokenFile,
        answer: outcome.message,
        retryInMs: wait,
      });
      await this.#rereadToken();
    } else {
      this.#logger.warn("poll failed; polling again", { problem: outcome.message, failures, retryInMs: wait });
    }
    await sleep(wait, this.#shutdown.signal);
    return failures;
  }

  async #pollRequest(): Promise<{ body: PollRequest; fingerprint: string | null }> {
    const body: PollRequest = {
      protocol: PROTOCOL_VERSION,
      agentSession: this.#session,
      activeCommands: [...this.#active.keys()].slice(0, ACTIVE_LIMIT),
      acks: [...this.#acks].slice(0, ACKS_LIMIT),
    };
    let fingerprint: string | null = null;
    try {
      const report = await this.#requireReports().collect();
      fingerprint = reportFingerprint(report);
      if (this.#reportNeeded || this.#wantReport || fingerprint !== this.#acceptedFingerprint) body.report = report;
    } catch (error) {
      this.#logger.error("could not collect the report; polling without it", { problem: String(error) });
    }
    return { body, fingerprint };
  }

  /** Sends the report with the next poll, cutting a poll that is being held so it goes now. */
  #requestReport(): void {
    this.#reportNeeded = true;
    this.#pollAbort?.abort();
  }

  async #rereadToken(): Promise<void> {
    try {
      this.#token = await readToken(this.config.tokenFile);
    } catch (error) {
      this.#logger.error("cannot re-read the token file", { problem: String(error) });
    }
  }

  // -- commands ---------------------------------------------------------------------------

  async #receive(deliveries: CommandDelivery[]): Promise<void> {
    const store = this.#requireStore();
    for (const delivery of deliveries) {
      this.#acks.add(delivery.id);
      if (this.#active.has(delivery.id)) continue;
      const record = store.command(delivery.id);
      if (record !== undefined) {
        this.#logger.info("command delivered again; acknowledged, not run twice", { command: delivery.id, status: record.status });
        // The server may have missed the result: offer it again (a final command answers 409, which is fine).
        if (record.finished !== undefined && record.finished.type === "finished" && record.reported) {
          this.#sendFinished(record.id, record.finished);
        }
        continue;
      }
      await store.recordReceived(delivery, this.#isoNow());
      this.#logger.info("command received", { command: delivery.id, kind: delivery.kind, target: delivery.target ?? undefined });
      const entry: ActiveCommand = {
        id: delivery.id,
        kind: delivery.kind,
        state: "queued",
        delivery,
        stop: new AbortController(),
        done: Promise.resolve(),
      };
      this.#active.set(delivery.id, entry);
      if (EXCLUSIVE_COMMAND_KINDS.has(delivery.kind)) {
        this.#queue.push(entry);
        this.#pump();
      } else {
        entry.done = this.#execute(entry);
      }
    }
  }

  /** Starts the next exclusive command when nothing exclusive runs. */
  #pump(): void {
    if (this.#exclusiveBusy > 0 || this.#shutdown.signal.aborted) return;
    const next = this.#queue.shift();
    if (next === undefined) return;
    this.#exclusiveBusy++;
    next.done = this.#execute(next).finally(() => {
      this.#exclusiveBusy--;
      this.#pump();
      if (this.#exclusiveBusy === 0) releaseMemory();
    });
  }

  async #execute(entry: ActiveCommand): Promise<void> {
    const delivery = entry.delivery;
    if (delivery === null) return;
    const store = this.#requireStore();
    entry.state = "running";
    this.#logger.info("command started", { command: entry.id, kind: entry.kind });
    this.#requireEvents().started(entry.id, this.#isoNow());
    await store.markRunning(entry.id);
    const cancel = AbortSignal.any([entry.stop.signal, this.#shutdown.signal]);
    const ctx: CommandContext = {
      ...this.#hostContext(entry.id),
      delivery,
      cancel,
      shutdown: this.#shutdown.signal,
      jobs: this.#requireJobs(),
      stopCommand: (target) => this.#stopCommand(target),
      refreshReport: () => {
        this.#reportNeeded = true;
      },
    };
    let end: CommandEnd;
    try {
      end = await executeCommand(ctx);
    } catch (error) {
      this.#logger.error("command crashed", { command: entry.id, problem: error instanceof Error ? (error.stack ?? error.message) : String(error) });
      end = failed(`internal error in the agent: ${String(error)}`);
    }
    if (end.outcome === "cancelled" && this.#shutdown.signal.aborted && !entry.stop.signal.aborted) {
      end = failed("the agent stopped while this command ran");
    }
    await this.#complete(entry, end);
  }

  async #complete(entry: ActiveCommand, end: CommandEnd): Promise<void> {
    this.#active.delete(entry.id);
    if (end.outcome === "left-running") {
      this.#logger.info("agent stopping; the detached job goes on and the next agent process reports it", { command: entry.id });
      return;
    }
    const { delivered } = await this.#finish(entry.id, end);
    if (end.then === "restart-agent") {
      // The result must reach the server before the process goes away (bounded: a dead server must not block the restart).
      await withTimeout(delivered, 15_000);
      this.#requestRestart();
    } else if (end.then === "run-tests") {
      await this.#testAfterSwitch();
    }
  }

  /**
   * Records a command's end, queues its finished event and has the report
   * follow. Returns once recorded; `delivered` settles when the server
   * stored the event (or will never).
   */
  async #finish(id: string, outcome: CommandOutcome): Promise<{ delivered: Promise<void> }> {
    const event: FinishedEvent = {
      type: "finished",
      at: this.#isoNow(),
      outcome: outcome.outcome,
      exitCode: outcome.exitCode,
      error: outcome.error,
      result: outcome.result,
    };
    const fields = { command: id, outcome: outcome.outcome, exitCode: outcome.exitCode, error: outcome.error?.split("\n")[0] };
    if (outcome.outcome === "succeeded") this.#logger.info("command finished", fields);
    else this.#logger.warn("command finished", fields);
    await this.#requireStore().recordFinished(id, event);
    this.#requestReport();
    return { delivered: this.#sendFinished(id, event) };
  }

  #sendFinished(id: string, event: FinishedEvent): Promise<void> {
    const sent = this.#requireEvents()
      .finished(id, event)
      .then(async (delivery) => {
        if (delivery === "abandoned") return;
        await this.#store?.markReported(id);
        if (this.#store?.command(id)?.detached) await this.#store.pruneJobs();
      });
    this.#track(sent);
    return sent;
  }

  async #stopCommand(target: string | null): Promise<boolean> {
    const entry = target === null ? undefined : this.#active.get(target);
    if (entry === undefined) return false;
    this.#logger.info("stopping command", { command: entry.id, state: entry.state });
    if (entry.state === "queued") {
      const index = this.#queue.indexOf(entry);
      if (index >= 0) this.#queue.splice(index, 1);
      this.#active.delete(entry.id);
      await this.#finish(entry.id, { outcome: "cancelled", exitCode: null, error: "stopped by a stop command before it started", result: {} });
      return true;
    }
    entry.stop.abort();
    await entry.done;
    return true;
  }

  /**
   * `autoTestAfterSwitch`: the tests are not part of the switch command.
   * Commands stay single-purpose (a failing test must not turn a good switch
   * red); the tests run here, in the exclusive slot right after the switch's
   * finished event, and the Tests compartment learns the result from the next
   * report (`tests.last`). Not after a rollback: the dashboard asks for a run.
   */
  async #testAfterSwitch(): Promise<void> {
    this.#logger.info("running the host's tests after the switch (autoTestAfterSwitch)");
    const outcome = await runTests(
      { ...this.#hostContext(null), say: (line) => this.#logger.debug(line), output: () => {} },
      this.#shutdown.signal,
    );
    if (outcome.kind !== "ran" || outcome.cancelled) return;
    await this.#requireStore().recordTestRun(outcome.run);
    const failing = outcome.run.results.filter((result) => !result.passed).map((result) => result.name);
    this.#logger.info("tests after the switch finished", { passed: failing.length === 0, failing: failing.join(",") || undefined });
    this.#requestReport();
  }

  #requestRestart(): void {
    this.#logger.info("restart requested: exiting so the service manager starts the agent again");
    this.#resolveRestart();
    this.#onRestartRequested?.();
  }

  // -- plumbing ------------------------------------------------------------------------------

  #hostContext(commandId: string | null): HostContext {
    const events = this.#requireEvents();
    const output = (stream: OutputStream, data: string) => {
      if (commandId !== null) events.output(commandId, stream, data);
    };
    return {
      config: this.config,
      platform: this.#platform,
      runner: this.#runner,
      store: this.#requireStore(),
      logger: this.#logger,
      output,
      say: (line) => {
        this.#logger.debug(line, { command: commandId ?? undefined });
        output("system", `${line}\n`);
      },
    };
  }

  #track(promise: Promise<unknown>): void {
    this.#background.add(promise);
    void promise.finally(() => this.#background.delete(promise));
  }

  #isoNow(): string {
    return new Date(this.#now()).toISOString();
  }

  #requireStore(): JobStore {
    if (this.#store === null) throw new Error("agent not started");
    return this.#store;
  }
  #requireClient(): ControlPlaneClient {
    if (this.#client === null) throw new Error("agent not started");
    return this.#client;
  }
  #requireEvents(): CommandEventSender {
    if (this.#events === null) throw new Error("agent not started");
    return this.#events;
  }
  #requireJobs(): DetachedJobs {
    if (this.#jobs === null) throw new Error("agent not started");
    return this.#jobs;
  }
  #requireReports(): ReportCollector {
    if (this.#reports === null) throw new Error("agent not started");
    return this.#reports;
  }
}

/** Reads the agent token; the message says what to fix when it cannot. */
export async function readToken(file: string): Promise<string> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      throw new AgentStartError(`token file ${file} does not exist: put the host's agent token (from the dashboard) in it`);
    }
    throw new AgentStartError(`cannot read token file ${file}: ${code ?? String(error)}`);
  }
  const token = text.trim();
  if (token === "") throw new AgentStartError(`token file ${file} is empty: put the host's agent token (from the dashboard) in it`);
  return token;
}

function withTimeout(promise: Promise<unknown>, ms: number): Promise<unknown> {
  return Promise.race([promise, sleep(ms)]);
}
