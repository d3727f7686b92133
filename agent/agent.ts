/**
 * The NixFleet host agent: long-polls the control plane, runs the commands it
 * is given (one exclusive command at a time, while it keeps polling so a
 * `stop` arrives), streams their output and reports the host's state.
 *
 * Everything it needs is passed in — config, the host runner, fetch, logger,
 * clock — so tests run it against real git/nix and a fake control plane.
 */
import { randomBytes } from "node:crypto";
import { AgentConfig } from "../common/agent-config.ts";
import { PROTOCOL_VERSION, type CommandDelivery, type CommandKind, type OutputStream, type Report } from "../common/protocol.ts";
import { DEFAULT_BACKOFF, sleep, type BackoffPolicy } from "./backoff.ts";
import { CommandEventSender } from "./command-events.ts";
import { DesiredSystems } from "./desired.ts";
import { failed, type CommandContext, type CommandEnd, type CommandOutcome, type HostContext } from "./commands/context.ts";
import { runTests } from "./commands/test.ts";
import { ConnectionLog } from "./connection-state.ts";
import { ControlPlaneClient } from "./control-plane-client.ts";
import { DetachedJobs } from "./detached-jobs.ts";
import { executeCommand } from "./executor.ts";
import { requestOverNodeHttp, type HttpTransport } from "./http.ts";
import { JobStore, type FinishedEvent } from "./job-store.ts";
import { createLogger, type Logger } from "./logger.ts";
import { releaseMemory } from "./memory.ts";
import { platformFor, type HostPlatform } from "./platforms/index.ts";
import { Poller } from "./poller.ts";
import { recover } from "./recovery.ts";
import { ReportCollector, type ReportProbe } from "./report.ts";
import { SafetyNet } from "./safety-net/safety-net.ts";
import { createNodeRunner, type HostRunner } from "./runner.ts";
import { CommandScheduler, type ActiveCommand } from "./scheduler.ts";
import { AgentStartError, readToken } from "./startup.ts";

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
  /** Runs this agent package (`node`, its flags, the entry); the safety net's watchdog is `… watchdog <dir>`. */
  watchdogCommand?: readonly string[];
}

/** Commands after which main's desired system may be in the store, or another system runs. */
const SYSTEM_CHANGING_KINDS: ReadonlySet<CommandKind> = new Set(["build", "switch", "pull-switch", "rollback"]);


/** What a started agent works with: made together in `start()`, so none of it is ever half there. */
interface Services {
  store: JobStore;
  client: ControlPlaneClient;
  events: CommandEventSender;
  jobs: DetachedJobs;
  reports: ReportCollector;
  desired: DesiredSystems;
  connection: ConnectionLog;
  safetyNet: SafetyNet;
}

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
  readonly #watchdogCommand: readonly string[];
  readonly #session = randomBytes(12).toString("hex");
  readonly #startedAt: number;
  readonly #scheduler: CommandScheduler;
  readonly #poller: Poller;
  readonly #background = new Set<Promise<unknown>>();
  #resolveRestart: () => void = () => {};

  #shutdown = new AbortController();
  #running = false;
  #loop: Promise<void> | null = null;
  #token = "";
  #services: Services | null = null;

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
    this.#watchdogCommand = options.watchdogCommand ?? [process.execPath, ...process.execArgv, ...process.argv.slice(1, 2)];
    this.#startedAt = this.#now();
    this.restartRequested = new Promise((resolve) => {
      this.#resolveRestart = resolve;
    });
    this.#scheduler = new CommandScheduler({
      execute: (entry) => this.#execute(entry),
      stopping: () => this.#shutdown.signal.aborted,
      onIdle: releaseMemory,
    });
    this.#poller = new Poller({
      config: this.config,
      logger: this.#logger,
      backoff: this.#backoff,
      random: this.#random,
      session: this.#session,
      activeCommands: () => this.#scheduler.ids(),
      receive: (deliveries) => this.#receive(deliveries),
      onUnauthorized: () => this.#rereadToken(),
      onMain: (main) => this.#onMain(main),
      onOutcome: (outcome) => this.#services?.connection.record(outcome),
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
    const services = this.#openServices(store);
    this.#services = services;
    this.#running = true;
    this.#logger.info("agent starting", {
      host: this.config.hostName,
      platform: this.#platform.name,
      url: this.config.url,
      session: this.#session,
      stateDir: this.config.stateDir,
    });
    // Before detached jobs are followed: a switch they report may have been rolled back meanwhile.
    await services.safetyNet.startup();
    await recover({
      store,
      jobs: services.jobs,
      scheduler: this.#scheduler,
      logger: this.#logger,
      shutdown: this.#shutdown.signal,
      isoNow: () => this.#isoNow(),
      hostContext: (id) => this.#hostContext(id),
      resendFinished: (id, event) => void this.#sendFinished(id, event),
      continueOutput: (id, seq) => services.events.setNextSeq(id, seq),
      finish: (id, outcome) => this.#finish(id, outcome),
      complete: (entry, end) => this.#complete(entry, end),
    });
    // A build or switch while the agent was down may have realised main's desired system or moved the running one.
    services.desired.systemsChanged();
    this.#loop = this.#poller.run({ client: services.client, reports: services.reports, shutdown: this.#shutdown.signal });
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
    await this.#services?.desired.settled();
    await this.#scheduler.settled();
    // Give queued events a moment; whatever is left is resent by the next process (finished
    // events are kept in the job store until the server stored them).
    await this.#services?.events.drain(2_000);
    this.#services?.events.stop();
    await Promise.allSettled([...this.#background]);
    await Promise.all([this.#services?.store.flush(), this.#services?.connection.flush()]);
    this.#logger.info("agent stopped");
  }

  #openServices(store: JobStore): Services {
    const client = new ControlPlaneClient({ url: this.config.url, token: () => this.#token, fetch: this.#fetch });
    const events = new CommandEventSender({ client, logger: this.#logger, random: this.#random, backoff: this.#backoff });
    const jobs = new DetachedJobs({
      store,
      runner: this.#runner,
      events,
      logger: this.#logger,
      mode: this.config.tools.detach,
      pollIntervalMs: this.#jobPollIntervalMs,
    });
    const safetyNet: SafetyNet = new SafetyNet({
      config: this.config,
      platform: this.#platform,
      runner: this.#runner,
      stateDir: this.config.stateDir,
      logger: this.#logger,
      watchdogCommand: this.#watchdogCommand,
      shutdown: this.#shutdown.signal,
      confirm: async (commandId, system, signal) => {
        const probe = await reports.probe().catch(() => undefined);
        const report: Report | undefined = probe === undefined ? undefined : reports.tryAssemble(probe);
        const answer = await client.confirm({ protocol: PROTOCOL_VERSION, agentSession: this.#session, commandId, system, report }, signal);
        return answer.ok ? { ok: true, reported: report !== undefined, probe } : answer;
      },
    });
    const desired = new DesiredSystems({
      host: { config: this.config, runner: this.#runner, platform: this.#platform, stateDir: store.stateDir, say: (line) => this.#logger.debug(line) },
      config: this.config,
      store,
      logger: this.#logger,
      random: this.#random,
      now: this.#now,
      onChange: () => this.#poller.requestReport(),
      shutdown: this.#shutdown.signal,
    });
    const reports: ReportCollector = new ReportCollector({
      config: this.config,
      platform: this.#platform,
      runner: this.#runner,
      store,
      cloneDir: store.cloneDir,
      agentStartedAt: this.#startedAt,
      now: this.#now,
      desired: () => desired.report(),
      safetyNet: () => safetyNet.report(),
    });
    const connection = new ConnectionLog(this.config.stateDir, this.#logger, this.#now);
    return { store, client, events, jobs, reports, desired, connection, safetyNet };
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
    const { store } = this.#started();
    for (const delivery of deliveries) {
      this.#poller.ack(delivery.id);
      if (this.#scheduler.has(delivery.id)) continue;
      const record = store.command(delivery.id);
      if (record !== undefined) {
        this.#logger.info("command delivered again; acknowledged, not run twice", { command: delivery.id, status: record.status });
        // The server may have missed the result: offer it again (a final command answers 409, which is fine).
        if (record.finished !== undefined && record.finished.type === "finished" && record.reported) {
          void this.#sendFinished(record.id, record.finished);
        }
        continue;
      }
      await store.recordReceived(delivery, this.#isoNow());
      this.#logger.info("command received", { command: delivery.id, kind: delivery.kind, target: delivery.target ?? undefined });
      this.#scheduler.admit(delivery);
    }
  }

  async #execute(entry: ActiveCommand): Promise<void> {
    const delivery = entry.delivery;
    if (delivery === null) return;
    const { store, events, jobs } = this.#started();
    entry.state = "running";
    this.#logger.info("command started", { command: entry.id, kind: entry.kind });
    events.started(entry.id, this.#isoNow());
    await store.markRunning(entry.id);
    const cancel = AbortSignal.any([entry.stop.signal, this.#shutdown.signal]);
    const ctx: CommandContext = {
      ...this.#hostContext(entry.id),
      delivery,
      cancel,
      shutdown: this.#shutdown.signal,
      jobs,
      stopCommand: (target) => this.#stopCommand(target),
      refreshReport: () => this.#poller.refreshReport(),
      fetchManifest: (commit, tree, signal) => this.#started().client.manifest(commit, tree, signal),
      announceReboot: (system) => events.rebooting(entry.id, { type: "rebooting", at: this.#isoNow(), system }),
      evaluated: (commit, system, main) => this.#started().desired.evaluated(commit, system, main),
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
    if (end.outcome === "left-running") {
      this.#scheduler.release(entry.id);
      this.#logger.info("agent stopping; the detached job goes on and the next agent process reports it", { command: entry.id });
      return;
    }
    // The end is recorded and queued before the slot is freed: an agent stopping meanwhile waits for it
    // (the scheduler's settled()) and sends it before it goes, instead of leaving it to the next process.
    const { delivered } = await this.#finish(entry.id, end).finally(() => this.#scheduler.release(entry.id));
    // The pull moved the clone to main's head as the origin has it: that head's desired system is wanted.
    if (end.outcome === "succeeded" && (entry.kind === "pull" || entry.kind === "pull-switch") && end.result.commitAfter) {
      this.#started().desired.mainAt(end.result.commitAfter);
    }
    // A build may have realised main's desired system; a switch changes what it is compared with.
    if (end.outcome === "succeeded" && SYSTEM_CHANGING_KINDS.has(entry.kind)) this.#started().desired.systemsChanged(end.result.build);
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
    const { store, reports, desired } = this.#started();
    // The report right after a switch travels with its end, so a rollout's gate judges both at once (read while the end is recorded, unless
    // the switch began it). Not kept with the event (a resend goes without it: the next poll's report and the server's re-check cover it).
    const kind = store.command(id)?.kind;
    const switched = kind === "switch" || kind === "pull-switch" || kind === "rollback";
    const realised = switched && outcome.outcome === "succeeded" && outcome.result.systemAfter ? desired.activated(outcome.result.systemAfter) : undefined;
    const probe = switched ? this.#endReportProbe(outcome) : undefined;
    const reported = probe?.then((read) => reports.assemble(read)).catch(() => undefined);
    await Promise.all([store.recordFinished(id, event), realised]);
    const report = await reported;
    if (report === undefined) this.#poller.requestReport();
    return { delivered: this.#sendFinished(id, report === undefined ? event : { ...event, report: { agentSession: this.#session, report } }) };
  }

  /**
   * What the report with a switch's end reads from the host. After a confirmation that carried the report, the same
   * reading with the safety net's decision read now (a few files): else the decision would follow by poll, a second
   * probe of the host and a second report to judge as a wave's hosts end together.
   */
  #endReportProbe(outcome: CommandOutcome): Promise<ReportProbe> | undefined {
    const { reports, safetyNet } = this.#started();
    if (outcome.reported !== true) return outcome.reportProbe ?? reports.probe();
    return outcome.reportProbe?.then(async (read) => ({ ...read, safetyNet: await safetyNet.report() }));
  }

  #sendFinished(id: string, event: FinishedEvent): Promise<void> {
    const { store, events } = this.#started();
    const sent = events.finished(id, event).then(async (delivery) => {
      if (delivery === "abandoned") return;
      // The report that went with the end is the host's latest at the server: the polls need not send it again.
      // Not cutting the held poll for it keeps a second probe of the host (and a second report to judge) out of
      // the moment a wave's hosts end together, where the finished events wait for the CPU. Refused, it is sent by poll.
      if (event.report !== undefined) {
        if (delivery === "stored") this.#poller.reportDelivered(event.report.report);
        else this.#poller.requestReport();
      }
      await store.markReported(id);
      if (store.command(id)?.detached) await store.pruneJobs();
    });
    this.#track(sent);
    return sent;
  }

  async #stopCommand(target: string | null): Promise<boolean> {
    const entry = target === null ? undefined : this.#scheduler.get(target);
    if (entry === undefined) return false;
    this.#logger.info("stopping command", { command: entry.id, state: entry.state });
    if (this.#scheduler.dequeue(entry)) {
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
    await this.#started().store.recordTestRun(outcome.run);
    const failing = outcome.run.results.filter((result) => !result.passed).map((result) => result.name);
    this.#logger.info("tests after the switch finished", { passed: failing.length === 0, failing: failing.join(",") || undefined });
    this.#poller.requestReport();
  }

  #onMain(main: { branch: string; commit: string }): void {
    // The control plane's main is the fleet's; a host that follows another branch wants that branch's system.
    if (main.branch !== this.config.branch) return;
    this.#services?.desired.mainAt(main.commit);
  }

  #requestRestart(): void {
    this.#logger.info("restart requested: exiting so the service manager starts the agent again");
    this.#resolveRestart();
    this.#onRestartRequested?.();
  }

  // -- plumbing ------------------------------------------------------------------------------

  #hostContext(commandId: string | null): HostContext {
    const { store, events } = this.#started();
    const output = (stream: OutputStream, data: string) => {
      if (commandId !== null) events.output(commandId, stream, data);
    };
    return {
      config: this.config,
      platform: this.#platform,
      runner: this.#runner,
      store,
      logger: this.#logger,
      output,
      safetyNet: this.#services?.safetyNet,
      probeReport: () => this.#started().reports.probe(),
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

  #started(): Services {
    if (this.#services === null) throw new Error("agent not started");
    return this.#services;
  }
}

function withTimeout(promise: Promise<unknown>, ms: number): Promise<unknown> {
  return Promise.race([promise, sleep(ms)]);
}
