import { DurableObject } from "cloudflare:workers";
import { isActiveCommand } from "../../common/commands.ts";
import { compartmentsOfCommand } from "../../common/compartments.ts";
import { ACTIVATION_KINDS, type CommandEvent, type DashboardEvent, type HostHold, type PollRequest, type PollResponse, type Report, type Role, type Settings, type SwitchConfirmation } from "../../common/protocol.ts";
import { refuse, type Outcome, type Refusal } from "../outcome.ts";
import { isDue, OneAlarm, type WakingClock } from "../coordinator/alarm.ts";
import { CATALOGUE_READ_TRIES, readUnlessChanged } from "../coordinator/catalogue.ts";
import { wireComponents, type Components } from "../coordinator/components.ts";
import { acceptDashboard, answerDashboard, broadcastTo, closeDashboard } from "../coordinator/dashboards.ts";
import { effectHandlers } from "../coordinator/effect-handlers.ts";
import { auditEffect } from "../coordinator/effects.ts";
import { adoptNamedHolds } from "../coordinator/holds.ts";
import { coordinatorMetrics, fleetLive, hostLive } from "../coordinator/live.ts";
import type { CoordinatorHost, HostRef, Reaction } from "../coordinator/host.ts";
import { Outbox, type EffectHandlers } from "../coordinator/outbox.ts";
import { fleetBuildScope, planFor, type FleetView } from "../coordinator/plan-hosts.ts";
import { Reactions } from "../coordinator/reactions.ts";
import { reportHash } from "../coordinator/reports.ts";
import type { StartRolloutInput } from "../coordinator/rollout-runner.ts";
import { step, type Step, type StepOf } from "../coordinator/step.ts";
import { answersSent } from "../coordinator/waiting-polls.ts";
import { openDatabase, type Database } from "../db/client.ts";
import { openCoordinatorStorage, type CoordinatorStorage } from "../db/coordinator-storage.ts";
import { publishedForCommits, readCommitDesired } from "../db/desired.ts";
import { listHosts, type Host } from "../db/hosts.ts";
import { getReport, listLockAges, listReports, upsertReport } from "../db/reports.ts";
import { historyBounds } from "../commands/history.ts";
import { commandParameters, rollbackGeneration, type ParameterRequest } from "../commands/command-parameters.ts";
import { commandAuditEntry, type CommandRequestAudited } from "../commands/command-audit.ts";
import { refuseRolledBackSwitch } from "../commands/host-rollback.ts";
import { mayReboot, refuseRebootOutsideWindow } from "../commands/reboot-window.ts";
import type { WorkerEnv } from "../env.ts";
import type { GitHubRateLimit } from "../github/client.ts";
import { newId } from "../ids.ts";

export { MAX_OUTPUT_BYTES_PER_COMMAND } from "../commands/rules.ts";
export type { CommandOutput } from "../coordinator/dispatch.ts";
export type { CoordinatorMetrics } from "../coordinator/metrics.ts";

type PlanInput = Pick<StartRolloutInput, "commit" | "hosts" | "automatic" | "buildOf" | "includeFailedBuilds"> & { pr: number | null };

/**
 * The fleet's coordinator: the one Durable Object that holds every waiting agent poll (one object for
 * the fleet, so an idle fleet bills one object's duration, not N), and the only writer of a command's
 * state and of the host catalogue in D1. A shell over the feature components of worker/coordinator/
 * (docs/architecture.md, "One writer, no races"): it wires them, owns the WebSocket hub and the one
 * alarm, and routes the reactions between features. Its async entry points read (D1, the catalogue)
 * before a step and leave the effects to the outbox after it; the steps themselves cannot await.
 */
export class Coordinator extends DurableObject<WorkerEnv> {
  private readonly db: Database;
  private readonly stores: CoordinatorStorage;
  private readonly c: Components;
  private readonly outbox: Outbox;
  private readonly reactions: Reactions;
  private readonly effects: EffectHandlers;
  private readonly alarmClock: OneAlarm;
  private readonly scheduleAlarm = (): Promise<void> => this.alarmClock.schedule();
  /**
   * Hosts judged by their latest report since a command of theirs ended (in memory: after a restart every
   * pending re-check runs): their `health-recheck` has nothing left to do.
   */
  private readonly judgedSinceEnd = new Set<string>();

  constructor(ctx: DurableObjectState, env: WorkerEnv) {
    super(ctx, env);
    this.db = openDatabase(env.DB);
    const history = historyBounds(env.COMMAND_HISTORY_LIMIT);
    if (history.problem) console.error(history.problem);
    this.stores = openCoordinatorStorage(ctx.storage.sql, history.bounds);
    const now = () => Date.now();
    this.outbox = new Outbox(this.stores.outbox, now);
    this.reactions = new Reactions((reaction) => this.route(reaction));
    const host: CoordinatorHost = {
      now,
      broadcast: (event) => this.broadcast(event),
      effect: (effect) => this.outbox.add(effect),
      react: (reaction) => this.reactions.raise(reaction),
      rearm: () => ctx.waitUntil(this.scheduleAlarm()),
    };
    const c = (this.c = wireComponents(host, this.stores, ctx.storage, env, this.db));
    this.effects = effectHandlers({
      env,
      db: this.db,
      run: (body) => this.run(body),
      ...c,
      health: (...args) => this.health(...args),
      recheckMoot: (hostId) => {
        const moot = this.judgedSinceEnd.has(hostId);
        if (moot) this.c.metrics.counters.rechecksMoot++;
        return moot;
      },
      latestReport: (hostId) => c.reports.latestOf(hostId),
      startRollout: (input) => this.startRollout(input),
      published: () => this.broadcast({ type: "repo" }),
    });
    this.alarmClock = new OneAlarm(ctx.storage, () => [...this.clocks(), this.outbox]);
    void ctx.blockConcurrencyWhile(async () => {
      await Promise.all([this.alarmClock.load(), c.metrics.load(), c.settings.load(), adoptNamedHolds(this.stores.holds, this.db)]);
      await this.scheduleAlarm();
    });
    // Not inside blockConcurrencyWhile: the first polls need not wait for D1.
    ctx.waitUntil(this.loadLockClock().catch((error: unknown) => console.error("lock clock: could not read the reports", error)));
  }

  // Agent side

  async poll(tokenHash: string, request: PollRequest, waitSeconds: number): Promise<Outcome<{ response: PollResponse }>> {
    this.c.metrics.polled(Boolean(request.report), Date.now());
    const host = await this.c.catalogue.authenticate(tokenHash);
    if (!host) return refuse(401, "unauthorized", "unknown or revoked agent token");
    if (request.report) await this.acceptReport(host, request.agentSession, request.report);
    await this.c.mainHead.ensureLoaded();
    // From here to the answer (or the wait) nothing is awaited: a command queued meanwhile is either seen below or finds this poll waiting.
    if (this.c.catalogue.isRemoving(host.id)) return refuse(401, "unauthorized", "this host is being removed");
    this.run(() => this.c.presence.seen(host, waitSeconds));
    const { wantReport } = this.run(() => this.c.dispatch.settlePoll(host.id, request));
    const ready = this.run(() => this.c.dispatch.deliverable(host.id));
    // The agent's own protocol version, so an older agent can read the answer.
    // Main is read when the answer goes out: a held poll answered because main moved says where it is now.
    const respond = (commands: PollResponse["commands"]) => ({
      ok: true as const,
      response: { protocol: request.protocol, commands, wantReport, pollTimeoutSeconds: waitSeconds, main: this.c.mainHead.current() },
    });
    if (ready.length > 0 || wantReport || waitSeconds === 0) {
      if (ready.length > 0) await this.scheduleAlarm();
      return respond(ready);
    }
    return respond(await this.c.waiting.hold(host.id, waitSeconds, () => void this.scheduleAlarm()));
  }

  /** `POST /api/agent/confirm`: the new agent, on a fresh connection after a switch, keeps the new system. */
  async confirmSwitch(tokenHash: string, request: SwitchConfirmation): Promise<Outcome<{ commandId: string }>> {
    const host = await this.c.catalogue.authenticate(tokenHash);
    if (!host) return refuse(401, "unauthorized", "unknown or revoked agent token");
    if (request.report) await this.acceptReport(host, request.agentSession, request.report);
    return this.run(() => this.c.dispatch.confirm(host, request.commandId, request.system));
  }

  async commandEvent(tokenHash: string, commandId: string, event: CommandEvent): Promise<Outcome<{ state: string }>> {
    this.c.metrics.counters.commandEvents++;
    const host = await this.c.catalogue.authenticate(tokenHash);
    if (!host) return refuse(401, "unauthorized", "unknown or revoked agent token");
    // Read after the last await: the state the step sees is the current one.
    const outcome = this.run(() => this.c.dispatch.event(host.id, commandId, event));
    // A reboot's verification deadline is earlier than the switch's own: the alarm moves with it.
    if (outcome.ok && event.type === "rebooting") await this.scheduleAlarm();
    if (outcome.ok && event.type === "finished") {
      await this.scheduleAlarm();
      await this.judgeAfterEnd(host, event.report);
    }
    return outcome;
  }

  /**
   * A command's end, its report with it (or, after a confirmed switch, the confirmation's report already
   * stored): a rollout verifying the host judges it now, not at the next poll or the outbox's re-check.
   */
  private async judgeAfterEnd(host: HostRef, sent: { agentSession: string; report: Report } | undefined): Promise<void> {
    if (sent !== undefined && (await this.acceptReport(host, sent.agentSession, sent.report))) return;
    if (!this.c.rollouts.verifying(host.name)) return;
    const stored = this.c.reports.latestOf(host.id) ?? (await getReport(this.db, host.id));
    if (stored) await this.health(host, stored.report, stored.receivedAt);
  }

  /**
   * Judges a changed report, then stores it in D1 (the catalogue's latest report) before the poll's
   * synchronous part. Judged first: a wave's hosts ending at once would otherwise queue their D1 writes
   * ahead of the last host's verdict; D1 has the report before the agent's request is answered. False
   * when it was stored already (nothing judged again).
   */
  private async acceptReport(host: HostRef, session: string, report: Report): Promise<boolean> {
    const hash = await reportHash(report);
    if (this.c.reports.isStored(host.id, session, hash)) return false;
    const receivedAt = new Date().toISOString();
    if (!this.c.catalogue.isRemoving(host.id)) await this.health(host, report, receivedAt);
    await upsertReport(this.db, { hostId: host.id, report, reportHash: hash, agentSession: session, receivedAt });
    if (this.c.catalogue.isRemoving(host.id)) return true;
    this.c.metrics.counters.reportsStored++;
    this.run(() => this.c.reports.stored(host, session, hash, report, receivedAt));
    const due = this.c.lockClock.nextWakeAt();
    if (due !== null && this.alarmClock.isLaterThan(due)) await this.scheduleAlarm();
    return true;
  }

  /**
   * A host's report judged against the fleet's target (the coordinator's copy, read from D1 only when a
   * GitHub change dropped it): a rollout verifying it judges its System and Tests, then its incidents go on.
   */
  private async health(host: HostRef, report: Report, receivedAt: string): Promise<void> {
    const target = this.c.fleetTarget.current() ?? (await this.c.fleetTarget.read());
    const verifying = this.c.rollouts.verifying(host.name);
    const published = verifying && report.desired?.source === "ci" ? await publishedForCommits(this.db, host.name, this.c.rollouts.verifyingCommits(host.name), target.repo?.head ?? null) : undefined;
    // Both judges see the host's newest commands, read and parsed once; again only when the rollout's step changed commands (a rollback it sent).
    let commands = this.c.dispatch.judgedCommands(host.id);
    const changes = this.c.dispatch.commandChanges();
    if (verifying) this.run(() => this.c.rollouts.health(host, report, receivedAt, target, commands, published));
    if (this.c.dispatch.commandChanges() !== changes) commands = this.c.dispatch.judgedCommands(host.id);
    this.run(() => this.c.incidents.observe(host, report, receivedAt, target, commands));
    this.judgedSinceEnd.add(host.id);
    this.c.metrics.counters.hostJudgements++;
  }

  // Admin side

  /**
   * A person's command: queued, or refused. Its audit entry is stored in the step that stores the command
   * (one commit, as durable as the command) and carried to D1 by the outbox, so the agent's answer and
   * the person's 202 wait for no D1 write (docs/architecture.md, "The audit log").
   */
  async enqueue(hostName: string, request: CommandRequestAudited & { commit?: string | null } & ParameterRequest, by: { actor: string; role: Role | null }) {
    this.c.metrics.counters.enqueues++;
    const admitted = await this.admitCommand(hostName, request);
    // An unknown host has no entry: nothing was tried on anything.
    if ("ok" in admitted && admitted.code === "host_not_found") return admitted;
    const held = this.c.waiting.size;
    const outcome = this.run(() => {
      const queued = "ok" in admitted ? admitted : this.c.dispatch.enqueue(admitted.host, request.kind, by.actor, { commit: request.commit ?? null, rolloutId: null, parameters: admitted.parameters, activation: admitted.activation }).value;
      const entry = commandAuditEntry(request, queued, "ok" in admitted ? null : admitted.generation);
      this.outbox.add(auditEffect(Date.now(), by.actor, entry.action, hostName, entry.details, { result: entry.result, role: by.role }));
      return step(queued);
    });
    // The entry written, the step's run has the alarm ring for it, which then arbitrates the command's deadline too.
    if (this.c.waiting.size < held) await answersSent();
    return outcome;
  }

  /** The host, its report, its settings read and checked: a refusal, or what the command is queued with. */
  private async admitCommand(hostName: string, options: CommandRequestAudited & { commit?: string | null } & ParameterRequest) {
    const { kind } = options;
    const host = await this.c.catalogue.hostNamed(hostName);
    if (!host) return refuse(404, "host_not_found", `no host named ${hostName}`);
    const activation = options.activation ?? null;
    // Checked here, not in the shared schema: the dashboard's first paint carries that schema and stays small.
    if (activation !== null && !ACTIVATION_KINDS.has(kind)) return refuse(400, "invalid_request", `only switch and pull-switch take an activation mode, not ${kind}`);
    const switches = kind === "switch" || kind === "pull-switch";
    const report = switches || options.generation !== undefined ? ((await getReport(this.db, host.id))?.report ?? null) : null;
    if (switches && options.force !== true) {
      const rolledBack = refuseRolledBackSwitch(host.name, report, kind, options.commit ?? null);
      if (rolledBack) return rolledBack;
    }
    const rollbackTo = options.generation === undefined ? null : rollbackGeneration(host.name, report, options.generation);
    if (rollbackTo !== null && !rollbackTo.ok) return rollbackTo;
    const rebooting = mayReboot(kind, activation, report?.activation);
    const settings = kind === "gc" || rebooting ? await this.c.settings.refresh() : null;
    if (settings !== null && "ok" in settings) return settings;
    if (rebooting && settings !== null) {
      const outside = refuseRebootOutsideWindow({ hostName: host.name, kind, activation, hostActivation: report?.activation, force: options.force === true }, settings.windows, new Date());
      if (outside) return outside;
    }
    const generation = rollbackTo === null ? null : { number: rollbackTo.generation.number, system: rollbackTo.generation.storePath };
    return { host, activation, parameters: commandParameters(kind, options, settings), generation };
  }

  async createHost(host: Host, token: { id: string; tokenHash: string }): Promise<Outcome<{ host: Host }>> { return this.c.catalogue.create(host, token); }

  async rotateToken(hostName: string, token: { id: string; tokenHash: string }, at: string): Promise<Outcome<{ host: HostRef }>> {
    const host = await this.c.catalogue.hostNamed(hostName);
    if (!host) return refuse(404, "host_not_found", `no host named ${hostName}`);
    await this.c.catalogue.rotate(host, token, at);
    // Its commands go on: only the key changed.
    this.c.waiting.end(host.id);
    return { ok: true, host };
  }

  /** Removes the host, its tokens, commands and output; refused for its agent from the first step. */
  async removeHost(hostName: string): Promise<Outcome<{ host: HostRef }>> {
    const host = await this.c.catalogue.hostNamed(hostName);
    if (!host || !(await this.c.catalogue.remove(host, () => this.run(() => this.forgetHost(host))))) return refuse(404, "host_not_found", `no host named ${hostName}`);
    this.broadcast({ type: "host", host: host.name, removed: true });
    await this.scheduleAlarm();
    return { ok: true, host };
  }

  private forgetHost(host: HostRef): Step<undefined> {
    this.c.dispatch.forgetHost(host.id);
    this.c.holds.forget(host);
    this.c.presence.forget(host.id);
    this.c.lockClock.forget(host.id);
    this.c.reports.forgetHost(host.id);
    this.c.incidents.forgetHost(host.id);
    this.judgedSinceEnd.delete(host.id);
    this.reactions.raise({ type: "host-removed", hostId: host.id });
    return step();
  }

  /** What a rollout would do now: its waves and the hosts left out, nothing sent. */
  async planRollout(input: PlanInput) {
    const [[settings, fleet], at] = await Promise.all([this.readFleet(), readCommitDesired(this.db, input.commit)]);
    if ("ok" in settings) return settings;
    const gate = this.c.fleetBuilds.gate(input.buildOf, input.includeFailedBuilds ?? false);
    const plan = planFor(fleet, settings, input, gate.failedBuilds, Date.now(), at);
    return { ok: true as const, plan: { commit: input.commit, pr: input.pr, waves: plan.waves, leftOut: plan.leftOut, unchanged: plan.unchanged, fleetBuild: gate.build } };
  }

  /** Starts a rollout of `commit`; a running one is superseded (its unstarted hosts cancelled). */
  async startRollout(input: StartRolloutInput) {
    const [[settings, fleet], at] = await Promise.all([this.readFleet(), readCommitDesired(this.db, input.commit)]);
    if ("ok" in settings) return settings;
    // From here on nothing is awaited until the rollout is stored and started.
    const plan = planFor(fleet, settings, input, this.c.fleetBuilds.gate(input.buildOf, input.includeFailedBuilds ?? false).failedBuilds, Date.now(), at);
    if (plan.waves.length === 0 && plan.unchanged.length === 0) {
      const why = plan.leftOut.map((h) => `${h.name}: ${h.reason}`).join("; ");
      return refuse(409, "nothing_to_deploy", `no host is in this rollout${why ? ` (${why})` : ""}`);
    }
    const id = newId("ro");
    this.run(() => this.c.rollouts.supersede(id));
    const started = this.run(() => this.c.rollouts.start(id, input, plan, fleet.hosts, fleet.reports));
    await this.scheduleAlarm();
    return { ok: true as const, rollout: this.c.rollouts.get(id)?.rollout ?? started };
  }

  async cancelRollout(id: string, actor: string) {
    const outcome = this.run(() => this.c.rollouts.cancel(id, actor));
    if (!outcome.ok) return outcome;
    await this.scheduleAlarm();
    return { ok: true as const, rollout: this.c.rollouts.get(id)?.rollout ?? outcome.rollout };
  }

  /**
   * A person's revert of a finished rollout's commit. Answers once the revert is carried out (the outbox
   * drained), so the answer says what GitHub did: a revert commit and its rollout, a revert PR, or why not.
   */
  async revertRollout(id: string, strategy: "revert-pr" | "revert-commit", actor: string) {
    const outcome = this.run(() => this.c.rollouts.requestRevert(id, strategy, actor));
    if (!outcome.ok) return outcome;
    await this.carryOutEffects();
    return { ok: true as const, rollout: this.c.rollouts.get(id)?.rollout ?? outcome.rollout };
  }

  async getRollout(id: string) { return this.c.rollouts.get(id); }
  async listRollouts(limit: number, beforeId: string | null) { return this.c.rollouts.list(limit, beforeId); }
  /** The Update history's links: hosts that turned red within the window after these rollouts switched them. */
  async rolloutIncidents(ids: string[]) { return this.c.incidents.linksOf(ids); }

  /** Holds a host out of every rollout and automatic action (a running rollout skips it when its turn comes). */
  async setHold(hostName: string, request: { reason: string; until: string | null }, actor: string): Promise<Outcome<{ hold: HostHold }>> {
    const host = await this.c.catalogue.hostNamed(hostName);
    if (!host) return refuse(404, "host_not_found", `no host named ${hostName}`);
    return { ok: true, hold: this.run(() => this.c.holds.set(host, { reason: request.reason, until: request.until, by: actor, at: new Date().toISOString() })) };
  }

  async releaseHold(hostName: string): Promise<Outcome<{ released: boolean }>> {
    const host = await this.c.catalogue.hostNamed(hostName);
    if (!host) return refuse(404, "host_not_found", `no host named ${hostName}`);
    return { ok: true, released: this.run(() => this.c.holds.release(host)) };
  }

  /** PUT /api/settings stored a new version: refresh the copy from D1 (a late call never brings back an older version) and tell open dashboards. */
  async settingsChanged(): Promise<void> {
    const settings = await this.c.settings.refresh();
    if (!("ok" in settings)) this.broadcast({ type: "settings", version: settings.version });
  }

  async startFleetBuild(input: { pr: number; headSha: string; headTree?: string | null; actor: string; force?: boolean }) {
    const [settings, fleet] = await this.readFleet();
    if ("ok" in settings) return settings;
    // From here on nothing is awaited until the build is stored and its commands queued.
    const result = this.run(() => this.c.fleetBuilds.start(input, fleetBuildScope(fleet), settings));
    if (result.started) await this.scheduleAlarm();
    return { ok: true as const, build: this.c.fleetBuilds.view(result.build.id) ?? result.build, started: result.started };
  }

  async cancelFleetBuilds(pr: number, actor: string): Promise<{ cancelled: string[] }> {
    const cancelled = this.run(() => this.c.fleetBuilds.cancelFor(pr, actor));
    if (cancelled.length > 0) await this.scheduleAlarm();
    return { cancelled };
  }

  async fleetBuildsFor(prs: number[]) { return this.c.fleetBuilds.latestOf(prs); }

  /** The settings in force (read from D1, the copy refreshed), every host with its latest report, presence and hold: what a plan starts from. */
  private async readFleet(): Promise<[Settings | Refusal, FleetView]> {
    const [settings, hosts, reports] = await Promise.all([this.c.settings.refresh(), listHosts(this.db), listReports(this.db)]);
    const now = Date.now();
    return [settings, { hosts, reports, isOnline: (id) => this.c.presence.isOnline(id, now), holds: this.c.holds.all() }];
  }

  // Reads for the dashboard, /metrics and the benchmarks: commands are read through the object, their only home.

  async fleetLive(commandsPerHost: number) { return fleetLive(this.c, commandsPerHost); }
  async hostLive(hostId: string, limit: number) { return hostLive(this.c, hostId, limit); }
  async getCommand(id: string) { return this.c.dispatch.view(id); }

  /** Before the audit log is read (GET /api/audit): the entries not yet carried to D1 go now, so a 202 is followed by its entry. */
  async carryAudit(): Promise<void> {
    await this.outbox.flush("audit", this.effects);
    await this.scheduleAlarm();
  }
  async commandOutput(id: string, afterSeq: number, limit: number) { return this.c.dispatch.output(id, afterSeq, limit); }

  async stats(): Promise<{ counters: Record<string, number>; waitingPolls: number; activeCommands: number; dashboards: number }> {
    return { counters: { ...this.c.metrics.counters, fleetTargetReads: this.c.fleetTarget.reads }, waitingPolls: this.c.waiting.size, activeCommands: this.c.dispatch.activeCommands().length, dashboards: this.ctx.getWebSockets().length };
  }

  async metrics() { return coordinatorMetrics(this.c, this.stores); }

  /** The rate limit of a GitHub answer (worker/github/context.ts); an older reading than the one kept is ignored. */
  async recordGitHubRateLimit(rate: GitHubRateLimit): Promise<void> { await this.c.metrics.recordRateLimit(rate); }

  /**
   * Tell dashboards that something about a host changed (a webhook moved the target, say). A repository
   * change also drops the copy of the fleet's target (every writer of D1's GitHub state calls this after
   * writing) and is told to held polls when main moved.
   */
  async notify(event: DashboardEvent): Promise<void> {
    if (event.type === "repo") this.c.fleetTarget.changed();
    this.broadcast(event);
    if (event.type === "repo") await this.c.mainHead.reread();
  }

  // Dashboards: WebSockets with the hibernation API, so idle dashboards cost nothing.

  override async fetch(request: Request): Promise<Response> { return acceptDashboard(this.ctx, request); }
  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> { answerDashboard(ws, message); }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> { closeDashboard(ws, code); }

  private broadcast(event: DashboardEvent): void { broadcastTo(this.ctx.getWebSockets(), event); }

  // Steps, reactions, effects and the one alarm

  /** Runs a step and the reactions it raised, then starts the outbox on the effects they wrote (after this turn: never inside a step). */
  private run<T>(body: StepOf<T>): T {
    const value = this.reactions.run(body);
    const written = this.outbox.takeWritten();
    if (written === "now") this.ctx.waitUntil(Promise.resolve().then(() => this.carryOutEffects()));
    // Only later effects (an audit entry, due in 100 ms; a health re-check, in 250 ms): the alarm rings by the earliest and arbitrates the clocks the step moved.
    else if (written !== null) this.ctx.waitUntil(this.alarmClock.ringBy(written));
    return value;
  }

  /** The composition root across features: who hears of what. No feature calls another. */
  private route(reaction: Reaction): void {
    const { c } = this;
    switch (reaction.type) {
      case "command-changed": {
        const { record } = reaction;
        if (record.kind === "build") c.fleetBuilds.commandChanged(record);
        c.rollouts.commandChanged(record);
        // Routed after the rollout events the change raised, so the rollouts have heard of it first.
        if (!isActiveCommand(record)) this.reactions.raise({ type: "host-freed", record });
        return;
      }
      case "host-freed": {
        const { record } = reaction;
        // The agent's report may have come before this end (its events and its polls travel apart): the host
        // is judged again by its latest report, now that the command ended — by a rollout verifying it, and
        // for its incidents when the command moves a compartment (a build, a refresh or a stop moves none).
        // A finished event is judged right after this step (judgeAfterEnd): the re-check, carried later, then finds it done.
        if (c.rollouts.verifying(record.hostName) || compartmentsOfCommand(record.kind).length > 0) {
          this.judgedSinceEnd.delete(record.hostId);
          this.outbox.add({ type: "health-recheck", hostId: record.hostId, hostName: record.hostName });
        }
        c.rollouts.hostFreed(record);
        // After the rollouts: a deploy that waited for the host goes before a build that did.
        c.fleetBuilds.queueWaiting(record.hostId, "free");
        return;
      }
      case "host-online":
        return void c.fleetBuilds.queueWaiting(reaction.hostId, "online");
      case "host-removed":
        return void c.fleetBuilds.hostRemoved(reaction.hostId);
      case "report-stored":
        return void c.lockClock.set(reaction.host.id, reaction.host.name, reaction.report.lock.lastModified);
      case "rollout-event":
        return void c.rollouts.step(reaction.rolloutId, reaction.event);
    }
  }

  private async carryOutEffects(): Promise<void> {
    await this.outbox.drain(this.effects).catch((error: unknown) => console.error("outbox: a run failed", error));
    await this.scheduleAlarm();
  }

  private clocks(): WakingClock[] {
    return [this.c.dispatch, this.c.presence, this.c.rollouts, this.c.lockClock, this.c.incidents];
  }

  override async alarm(): Promise<void> {
    this.c.metrics.counters.alarms++;
    this.alarmClock.fired();
    const now = Date.now();
    for (const clock of this.clocks()) if (isDue(clock, now)) this.run(() => clock.wake(now));
    await (isDue(this.outbox, now) ? this.carryOutEffects() : this.scheduleAlarm());
  }

  /** Reads every host's lock from D1 once per start (read again when a removal overtakes the read), then fills the clock. */
  private async loadLockClock(): Promise<void> {
    const read = await readUnlessChanged(() => this.c.lockClock.epoch, () => listLockAges(this.db));
    if (!read) return console.error(`lock clock: hosts kept being removed during ${CATALOGUE_READ_TRIES} reads; the next stored reports fill it`);
    this.run(() => this.c.lockClock.fill(read.value));
    this.c.metrics.counters.lockClockLoads++;
    await this.scheduleAlarm();
  }
}
