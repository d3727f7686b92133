/**
 * The dashboard's one store: loads the fleet, keeps it current from the live
 * events, and is what elements call to change anything. Elements subscribe
 * in connectedCallback and unsubscribe in disconnectedCallback.
 */
import type {
  CommandKind,
  CommandView,
  CreateHostRequest,
  FleetBuildView,
  MergeAndDeployRequest,
  PlanRolloutRequest,
  RolloutPlanView,
  RolloutView,
  SetHoldRequest,
  StartRolloutRequest,
  UpdatePrAutomation,
} from "../../common/protocol.ts";
import { ApiError, type CommandOptions, type DashboardApi } from "./api.ts";
import type { ConnectionStatus } from "./events.ts";
import {
  applyCommand,
  applyEvent,
  applyFleet,
  applyFleetBuild,
  applyHold,
  applyHost,
  applyOutput,
  applyRollout,
  applyRollouts,
  initialFleetState,
  needsFleetBuild,
  removeHost,
  type Effect,
  type FleetState,
  type Transition,
} from "./fleet-state.ts";
import type { DashboardEvent } from "../../common/protocol.ts";
import type { AuditEntry, CreateHostResponse, FleetResponse, RolloutDetail, RotateTokenResponse } from "./schemas.ts";

export interface LiveConnection {
  start(): void;
  stop(): void;
}

export interface LiveHandlers {
  onEvent(event: DashboardEvent): void;
  onOpen(info: { reconnected: boolean }): void;
  onStatus(status: ConnectionStatus): void;
}

export interface FleetStoreOptions {
  api: DashboardApi;
  /** Opens the live event connection (an EventStream in the browser); omitted, the store only fetches. */
  connect?: (handlers: LiveHandlers) => LiveConnection;
  /**
   * Runs what the first table does not need (who the dashboard acts as, the rollouts, the live connection) once
   * the first fleet answer has been applied; the browser's waits for the frame that shows it. Omitted: at once.
   */
  afterFirstFleet?: (run: () => void) => void;
}

/**
 * A live connection whose code is loaded when it is first started: the browser's event stream and the
 * schema of its events stay out of the first paint's bundle. A failed load is tried again on the next start.
 */
export function loadedOnStart(load: () => Promise<LiveConnection>): LiveConnection {
  let connection: LiveConnection | null = null;
  let loading: Promise<void> | null = null;
  let wanted = false;
  return {
    start() {
      wanted = true;
      if (connection) return connection.start();
      loading ??= load().then(
        (loaded) => {
          connection = loaded;
          if (wanted) loaded.start();
        },
        () => {
          loading = null;
        },
      );
    },
    stop() {
      wanted = false;
      connection?.stop();
    },
  };
}

export type Listener = (state: FleetState) => void;

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export class FleetStore {
  readonly api: DashboardApi;
  private readonly connectLive: FleetStoreOptions["connect"];
  private readonly afterFirstFleet: FleetStoreOptions["afterFirstFleet"];
  /** Counts start() calls; a deferred start-up step that finds a newer one (or a stop) leaves it alone. */
  private starts = 0;
  private started = false;
  private current: FleetState = initialFleetState();
  private appliedFleet: FleetResponse | null = null;
  private readonly listeners = new Set<Listener>();
  private live: LiveConnection | null = null;
  private readonly hostWatchers = new Map<string, number>();
  private readonly outputWatchers = new Map<string, number>();
  /** Refetches in flight by key; `again` when another was asked for meanwhile. */
  private readonly inFlight = new Map<string, { again: boolean; done: Promise<void> }>();

  constructor(options: FleetStoreOptions) {
    this.api = options.api;
    this.connectLive = options.connect;
    this.afterFirstFleet = options.afterFirstFleet;
  }

  get state(): FleetState {
    return this.current;
  }

  /** Calls the listener now and on every change; returns the unsubscribe. */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    listener(this.current);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    const thisStart = ++this.starts;
    void this.api.health().then(
      (health) => this.set({ ...this.current, health }),
      () => undefined, // The fleet load says what is wrong; health only decides the banner.
    );
    // Carried by the page, the identity costs no request and no zod: the first frame disables what the role may not do.
    const meCarried = this.api.carriesMe;
    if (meCarried) this.loadMe();
    this.refreshFleet();
    // The first table waits for nothing else. The requests below would otherwise be answered, parsed and
    // rendered on the same main thread (and, on one machine, by the same server) while it is built and painted
    // (bench:ui, docs/architecture.md#the-dashboards-first-paint). Nothing is missed meanwhile: the live
    // connection's opening reads the fleet again.
    const rest = () => {
      if (!this.started || this.starts !== thisStart) return;
      if (!meCarried) this.loadMe();
      this.refreshRollouts();
      if (this.connectLive) {
        this.live = this.connectLive({
          onEvent: (event) => this.dispatch(applyEvent(this.current, event)),
          onOpen: () => this.resynchronise(),
          onStatus: (connection) => this.set({ ...this.current, connection }),
        });
        this.live.start();
      }
    };
    const after = this.afterFirstFleet;
    if (after === undefined) return rest();
    void (this.inFlight.get("fleet")?.done ?? Promise.resolve()).then(() => after(rest));
  }

  private loadMe(): void {
    void this.api.me().then(
      (me) => this.set({ ...this.current, me }),
      () => undefined, // Unknown, nothing is disabled: the server still refuses what the role may not do.
    );
  }

  stop(): void {
    this.started = false;
    this.live?.stop();
    this.live = null;
  }

  /** Resolves once no refetch is running (tests, and the bench, wait on it). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight.values()].map((entry) => entry.done));
  }

  refreshFleet(): void {
    this.schedule("fleet", async () => {
      try {
        // Awaited before reading `current`: events may have changed it meanwhile.
        const fleet = await this.api.fleet();
        // The same answer as the one applied last: the server has not changed since, nothing to redo.
        if (fleet === this.appliedFleet && this.current.phase === "ready" && this.current.error === null) return;
        this.appliedFleet = fleet;
        this.set(applyFleet(this.current, fleet));
        if (needsFleetBuild(this.current)) this.refreshFleetBuilds();
      } catch (err) {
        this.set({ ...this.current, phase: this.current.phase === "ready" ? "ready" : "error", error: message(err) });
      }
    });
  }

  /** The update PRs' fleet builds, for the banner before its next event. */
  refreshFleetBuilds(): void {
    this.schedule("fleet-builds", async () => {
      try {
        const updatePrs = await this.api.updatePrs();
        // Read after the answer: an event meanwhile is newer than it, so only builds not known yet are filled in.
        let state = this.current;
        for (const { number, fleetBuild } of updatePrs) {
          const known = state.updatePrs.find((pr) => pr.number === number)?.fleetBuild ?? null;
          if (fleetBuild !== null && known === null) state = applyFleetBuild(state, fleetBuild);
        }
        this.set(state);
      } catch {
        // The events still bring the next change of the build; the banner says "not built yet" meanwhile.
      }
    });
  }

  /** The latest rollouts, so a running one shows its progress before its next event. */
  refreshRollouts(): void {
    this.schedule("rollouts", async () => {
      try {
        // Awaited before reading `current`, like the fleet: other answers may have landed meanwhile.
        const rollouts = await this.api.rollouts({ limit: 5 });
        this.set(applyRollouts(this.current, rollouts));
      } catch {
        // The progress then starts with the next rollout event; the fleet load reports what is wrong.
      }
    });
  }

  refreshHost(name: string): void {
    this.schedule(`host:${name}`, async () => {
      try {
        const detail = await this.api.host(name);
        this.set(applyHost(this.current, detail, { keepDetail: this.hostWatchers.has(name) }));
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) {
          this.set({ ...removeHost(this.current, name), detailErrors: { ...this.current.detailErrors, [name]: err.message } });
        } else if (this.hostWatchers.has(name)) {
          this.set({ ...this.current, detailErrors: { ...this.current.detailErrors, [name]: message(err) } });
        }
      }
    });
  }

  /** Keeps a host's details (recent commands) loaded and current until the returned release is called. */
  watchHost(name: string): () => void {
    this.hostWatchers.set(name, (this.hostWatchers.get(name) ?? 0) + 1);
    this.refreshHost(name);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.hostWatchers.get(name) ?? 1) - 1;
      if (left > 0) {
        this.hostWatchers.set(name, left);
        return;
      }
      this.hostWatchers.delete(name);
      const { [name]: _detail, ...details } = this.current.details;
      this.set({ ...this.current, details });
    };
  }

  /** Loads a command's stored output and keeps appending its live chunks until released. */
  watchOutput(commandId: string): () => void {
    const count = this.outputWatchers.get(commandId) ?? 0;
    this.outputWatchers.set(commandId, count + 1);
    if (count === 0) {
      this.set({
        ...this.current,
        outputs: { ...this.current.outputs, [commandId]: { commandId, chunks: [], truncated: false, loaded: false, error: null } },
      });
      this.loadOutput(commandId);
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.outputWatchers.get(commandId) ?? 1) - 1;
      if (left > 0) {
        this.outputWatchers.set(commandId, left);
        return;
      }
      this.outputWatchers.delete(commandId);
      const { [commandId]: _output, ...outputs } = this.current.outputs;
      this.set({ ...this.current, outputs });
    };
  }

  /**
   * One command by its id, for a link to one the host page's list does not hold (older than its newest);
   * null when the coordinator no longer keeps it (pruned) or never had it.
   */
  async command(id: string): Promise<CommandView | null> {
    try {
      return await this.api.command(id);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return null;
      throw err;
    }
  }

  /** Queues a command; resolves with it, or throws the worker's refusal (`host_busy`, …) as an ApiError. */
  async sendCommand(host: string, kind: CommandKind, options: CommandOptions = {}): Promise<CommandView> {
    const command = await this.api.sendCommand(host, kind, options);
    this.dispatch(applyCommand(this.current, command));
    return command;
  }

  async createHost(request: CreateHostRequest): Promise<CreateHostResponse> {
    const created = await this.api.createHost(request);
    this.set(applyHost(this.current, created.host, { keepDetail: this.hostWatchers.has(created.host.name) }));
    return created;
  }

  async removeHost(name: string): Promise<void> {
    await this.api.removeHost(name);
    this.set(removeHost(this.current, name));
  }

  rotateToken(name: string): Promise<RotateTokenResponse> {
    return this.api.rotateToken(name);
  }

  audit(options: { limit?: number; before?: number } = {}): Promise<AuditEntry[]> {
    return this.api.audit(options);
  }

  planRollout(request: PlanRolloutRequest): Promise<RolloutPlanView> {
    return this.api.planRollout(request);
  }

  /** Starts a rollout (superseding a running one); its progress shows at once. */
  async startRollout(request: Partial<StartRolloutRequest>): Promise<RolloutView> {
    return this.took(await this.api.startRollout(request));
  }

  async mergeAndDeploy(pr: number, request: Partial<MergeAndDeployRequest>): Promise<RolloutView> {
    return this.took(await this.api.mergeAndDeploy(pr, request));
  }

  /** Re-runs the update PR's fleet build; its hosts' lines show at once, the events fill them in. */
  async buildUpdatePr(pr: number): Promise<FleetBuildView> {
    const build = await this.api.buildUpdatePr(pr);
    this.set(applyFleetBuild(this.current, build));
    return build;
  }

  /** Merge now / Skip this PR: dashboards refetch on the `repo` event the change sends. */
  mergeUpdatePrNow(pr: number): Promise<UpdatePrAutomation> {
    return this.api.mergeUpdatePrNow(pr);
  }

  skipUpdatePr(pr: number): Promise<UpdatePrAutomation> {
    return this.api.skipUpdatePr(pr);
  }

  async cancelRollout(id: string): Promise<RolloutView> {
    return this.took(await this.api.cancelRollout(id));
  }

  rollouts(options: { limit?: number; before?: string } = {}): Promise<RolloutView[]> {
    return this.api.rollouts(options);
  }

  rolloutDetail(id: string): Promise<RolloutDetail> {
    return this.api.rollout(id);
  }

  async setHold(host: string, request: SetHoldRequest): Promise<void> {
    const hold = await this.api.setHold(host, request);
    this.set(applyHold(this.current, host, hold));
  }

  async releaseHold(host: string): Promise<void> {
    await this.api.releaseHold(host);
    this.set(applyHold(this.current, host, null));
  }

  // ---------------------------------------------------------------------------

  private took(rollout: RolloutView): RolloutView {
    this.set(applyRollout(this.current, rollout));
    return rollout;
  }

  /** Every (re)connect may follow a gap: read again what the events would have said. */
  private resynchronise(): void {
    this.refreshFleet();
    this.refreshRollouts();
    for (const name of this.hostWatchers.keys()) this.refreshHost(name);
    for (const commandId of this.outputWatchers.keys()) this.loadOutput(commandId);
  }

  private loadOutput(commandId: string): void {
    this.schedule(`output:${commandId}`, async () => {
      try {
        // Pages follow the stored order: live chunks merged meanwhile may be ahead of it.
        let after = -1;
        let more = true;
        while (more && this.outputWatchers.has(commandId)) {
          const page = await this.api.commandOutput(commandId, after);
          after = page.chunks.at(-1)?.seq ?? after;
          more = page.more && page.chunks.length > 0;
          this.set(applyOutput(this.current, commandId, page.chunks, { truncated: page.truncated, loaded: !more }));
        }
      } catch (err) {
        const output = this.current.outputs[commandId];
        if (output) this.set({ ...this.current, outputs: { ...this.current.outputs, [commandId]: { ...output, error: message(err) } } });
      }
    });
  }

  private dispatch(transition: Transition): void {
    this.set(transition.state);
    for (const effect of transition.effects) this.run(effect);
  }

  private run(effect: Effect): void {
    switch (effect.type) {
      case "refresh-fleet":
        return this.refreshFleet();
      case "refresh-host":
        return this.refreshHost(effect.host);
    }
  }

  /**
   * One refetch per key at a time. Asked again while one runs, it runs once
   * more afterwards, so the last answer is never older than the last event.
   */
  private schedule(key: string, task: () => Promise<void>): void {
    const running = this.inFlight.get(key);
    if (running) {
      running.again = true;
      return;
    }
    const entry = { again: false, done: Promise.resolve() };
    this.inFlight.set(key, entry);
    entry.done = (async () => {
      try {
        do {
          entry.again = false;
          await task();
        } while (entry.again);
      } finally {
        this.inFlight.delete(key);
      }
    })();
  }

  private set(state: FleetState): void {
    if (state === this.current) return;
    this.current = state;
    for (const listener of this.listeners) listener(state);
  }
}
