/**
 * The dashboard's state and the pure functions that change it. Live events
 * are applied here; what they cannot tell (new compartments, a host's
 * details) comes back as effects: refetches the store runs.
 */
import {
  COMPARTMENT_NAMES,
  isFinalCommandState,
  type CommandView,
  type CompartmentName,
  type CompartmentState,
  type DashboardEvent,
  type FleetBuildView,
  type HostHold,
  type HostView,
  type MeResponse,
  type RepoState,
  type RolloutState,
  type RolloutView,
  type StoredOutputChunk,
  type UpdatePr,
} from "../../common/protocol.ts";
import type { ConnectionStatus } from "./events.ts";
import type { FleetResponse, HealthResponse, HostDetail } from "./schemas.ts";

/** The output of one command as far as the dashboard has it. */
export interface CommandOutput {
  commandId: string;
  /** Sorted by seq, no duplicates. */
  chunks: StoredOutputChunk[];
  truncated: boolean;
  /** The stored output has been read once (live chunks may still follow). */
  loaded: boolean;
  error: string | null;
}

export type Summary = Record<CompartmentName, Record<CompartmentState, number>>;

export interface FleetState {
  phase: "loading" | "ready" | "error";
  /** Why the fleet could not be loaded. */
  error: string | null;
  /** Sorted by name. */
  hosts: HostView[];
  summary: Summary;
  repo: RepoState | null;
  updatePrs: UpdatePr[];
  /** Hosts whose page is open: with their recent commands. */
  details: Record<string, HostDetail>;
  /** Why a host page could not be loaded, by host name. */
  detailErrors: Record<string, string>;
  outputs: Record<string, CommandOutput>;
  /** The rollouts the dashboard has heard of (the latest few, then every rollout event), newest first. */
  rollouts: RolloutView[];
  connection: ConnectionStatus;
  health: HealthResponse | null;
  /** The signed-in identity and its role; null until known (nothing is disabled meanwhile). */
  me: MeResponse | null;
  /** The stored settings' version as the last "settings" event told it; null until one arrives. */
  settingsVersion: number | null;
}

export type Effect = { type: "refresh-fleet" } | { type: "refresh-host"; host: string };

export interface Transition {
  state: FleetState;
  effects: Effect[];
}

export function initialFleetState(): FleetState {
  return {
    phase: "loading",
    error: null,
    hosts: [],
    summary: summarize([]),
    repo: null,
    updatePrs: [],
    details: {},
    detailErrors: {},
    outputs: {},
    rollouts: [],
    connection: "connecting",
    health: null,
    me: null,
    settingsVersion: null,
  };
}

/** Counts per state per compartment, every count present (the worker's summary, recomputed as hosts change). */
export function summarize(hosts: readonly Pick<HostView, "compartments">[]): Summary {
  const zero = (): Record<CompartmentState, number> => ({ green: 0, yellow: 0, red: 0, blue: 0, gray: 0 });
  const summary: Summary = { agent: zero(), git: zero(), lock: zero(), system: zero(), tests: zero() };
  for (const host of hosts) for (const name of COMPARTMENT_NAMES) summary[name][host.compartments[name].state] += 1;
  return summary;
}

const byName = (a: HostView, b: HostView) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

function withHosts(state: FleetState, hosts: HostView[]): FleetState {
  return { ...state, hosts, summary: summarize(hosts) };
}

/** The whole fleet as `GET /api/hosts` answered; details of removed hosts go. */
export function applyFleet(state: FleetState, fleet: FleetResponse): FleetState {
  const names = new Set(fleet.hosts.map((host) => host.name));
  const details = Object.fromEntries(Object.entries(state.details).filter(([name]) => names.has(name)));
  return {
    ...withHosts(state, [...fleet.hosts].sort(byName)),
    phase: "ready",
    error: null,
    repo: fleet.repo,
    updatePrs: fleet.updatePrs.map((pr) => (pr.fleetBuild === null ? withKnownBuild(state, pr) : pr)),
    details,
  };
}

/**
 * The fleet answer need not carry the update PRs' builds (`GET /api/update-prs`
 * does): a build the dashboard already has for the same head stays.
 */
function withKnownBuild(state: FleetState, pr: UpdatePr): UpdatePr {
  const known = state.updatePrs.find((p) => p.number === pr.number && p.headSha === pr.headSha)?.fleetBuild ?? null;
  return known === null ? pr : { ...pr, fleetBuild: known };
}

/** The offered update PR's build is not known yet: `GET /api/update-prs` says it. */
export function needsFleetBuild(state: FleetState): boolean {
  return pendingUpdatePr(state.updatePrs)?.fleetBuild === null;
}

/** One host as `GET /api/hosts/:name` answered: its row, and its page when open. */
export function applyHost(state: FleetState, detail: HostDetail, options: { keepDetail: boolean }): FleetState {
  const { commands: _commands, ...view } = detail;
  const exists = state.hosts.some((host) => host.name === view.name);
  const hosts = exists ? state.hosts.map((host) => (host.name === view.name ? view : host)) : [...state.hosts, view].sort(byName);
  const next = withHosts(state, hosts);
  if (!options.keepDetail) return next;
  const { [view.name]: _error, ...detailErrors } = state.detailErrors;
  return { ...next, details: { ...state.details, [view.name]: detail }, detailErrors };
}

export function removeHost(state: FleetState, name: string): FleetState {
  const { [name]: _detail, ...details } = state.details;
  return { ...withHosts(state, state.hosts.filter((host) => host.name !== name)), details };
}

/** The host's active command after `command` changed state. */
function nextActive(current: CommandView | null, command: CommandView): CommandView | null {
  if (!isFinalCommandState(command.state)) return command;
  return current?.id === command.id ? null : current;
}

/**
 * A command was created or changed state: its host's active command and
 * history move at once; the compartments follow from a refetch.
 */
export function applyCommand(state: FleetState, command: CommandView): Transition {
  const hosts = state.hosts.map((host) =>
    host.name === command.host ? { ...host, activeCommand: nextActive(host.activeCommand, command) } : host,
  );
  let details = state.details;
  const detail = details[command.host];
  if (detail) {
    const known = detail.commands.some((c) => c.id === command.id);
    const commands = known ? detail.commands.map((c) => (c.id === command.id ? command : c)) : [command, ...detail.commands];
    details = { ...details, [command.host]: { ...detail, commands, activeCommand: nextActive(detail.activeCommand, command) } };
  }
  return { state: { ...state, hosts, details }, effects: [{ type: "refresh-host", host: command.host }] };
}

/** Merges chunks into a command's output: by seq, each once, in order. */
export function mergeChunks(existing: readonly StoredOutputChunk[], incoming: readonly StoredOutputChunk[]): StoredOutputChunk[] {
  if (incoming.length === 0) return [...existing];
  const last = existing[existing.length - 1];
  // The common case, live chunks after what we have, stays linear.
  if (last === undefined || incoming.every((chunk, i) => chunk.seq > (i === 0 ? last.seq : incoming[i - 1]!.seq))) {
    return [...existing, ...incoming];
  }
  const bySeq = new Map<number, StoredOutputChunk>();
  for (const chunk of existing) bySeq.set(chunk.seq, chunk);
  for (const chunk of incoming) if (!bySeq.has(chunk.seq)) bySeq.set(chunk.seq, chunk);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

/** Output for a command the dashboard watches; chunks for other commands are not kept. */
export function applyOutput(
  state: FleetState,
  commandId: string,
  chunks: readonly StoredOutputChunk[],
  page?: { truncated: boolean; loaded: boolean },
): FleetState {
  const output = state.outputs[commandId];
  if (!output) return state;
  const merged = mergeChunks(output.chunks, chunks);
  const truncated = output.truncated || (page?.truncated ?? false) || chunks.some((c) => c.stream === "system" && c.data.includes("[output truncated"));
  return {
    ...state,
    outputs: {
      ...state.outputs,
      [commandId]: { ...output, chunks: merged, truncated, loaded: output.loaded || (page?.loaded ?? false), error: null },
    },
  };
}

/** A DashboardEvent applied to the state, with the refetches it calls for. */
export function applyEvent(state: FleetState, event: DashboardEvent): Transition {
  switch (event.type) {
    case "hello":
    case "pong":
      return { state, effects: [] };
    case "host": {
      if (event.removed) return { state: removeHost(state, event.host), effects: [] };
      const known = state.hosts.some((host) => host.name === event.host);
      if (!known) return { state, effects: [{ type: "refresh-fleet" }] };
      const online = event.online;
      const hosts =
        online === undefined
          ? state.hosts
          : state.hosts.map((host) => (host.name === event.host ? { ...host, online } : host));
      return { state: hosts === state.hosts ? state : withHosts(state, hosts), effects: [{ type: "refresh-host", host: event.host }] };
    }
    case "command":
      return applyCommand(state, event.command);
    case "output":
      return { state: applyOutput(state, event.commandId, event.chunks), effects: [] };
    case "repo":
      return { state, effects: [{ type: "refresh-fleet" }] };
    case "rollout":
      // The event carries the whole rollout: progress and the hosts' marks move without a refetch.
      return { state: applyRollout(state, event.rollout), effects: [] };
    case "settings":
      // The settings page compares it with the version it shows and offers a reload.
      return { state: { ...state, settingsVersion: event.version }, effects: [] };
    case "fleet-build":
      // The event carries the whole build: the banner's per-host lines fill in without a refetch.
      return { state: applyFleetBuild(state, event.build), effects: [] };
  }
}

/**
 * A fleet build as the server last described it (an event, a re-run's answer)
 * on its PR, when it is of the PR's head. A build a re-run superseded does
 * not replace its successor when its last event comes late.
 */
export function applyFleetBuild(state: FleetState, build: FleetBuildView): FleetState {
  let changed = false;
  const updatePrs = state.updatePrs.map((pr) => {
    if (pr.number !== build.pr || pr.headSha !== build.headSha) return pr;
    if (build.superseded && pr.fleetBuild !== null && pr.fleetBuild.id !== build.id) return pr;
    changed = true;
    return { ...pr, fleetBuild: build };
  });
  return changed ? { ...state, updatePrs } : state;
}

/** The open update PR that is offered (not superseded), newest first as the worker lists them. */
export function pendingUpdatePr(updatePrs: readonly UpdatePr[]): UpdatePr | null {
  return updatePrs.find((pr) => pr.state === "open" && !pr.superseded) ?? null;
}

const IN_PROGRESS: ReadonlySet<RolloutState> = new Set(["planned", "running", "soaking", "waiting-window"]);

/** Still deploying (or waiting to): it can be cancelled, and its hosts are marked in the table. */
export function rolloutInProgress(rollout: Pick<RolloutView, "state">): boolean {
  return IN_PROGRESS.has(rollout.state);
}

const newestFirst = (a: RolloutView, b: RolloutView) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : a.id < b.id ? 1 : -1);

/**
 * A rollout as the server last described it (an event, a start, a cancel):
 * it replaces the one with its id, and its hosts' rows show their part in it.
 */
export function applyRollout(state: FleetState, rollout: RolloutView): FleetState {
  const rollouts = [rollout, ...state.rollouts.filter((r) => r.id !== rollout.id)].sort(newestFirst);
  const parts = new Map<string, HostView["rollout"]>();
  if (rolloutInProgress(rollout)) {
    for (const wave of rollout.waves) for (const host of wave.hosts) parts.set(host.name, { id: rollout.id, state: host.state, wave: wave.index });
  }
  let changed = false;
  const hosts = state.hosts.map((host) => {
    const part = parts.get(host.name) ?? (host.rollout?.id === rollout.id ? null : host.rollout);
    if (part === host.rollout || (part && host.rollout && part.id === host.rollout.id && part.state === host.rollout.state && part.wave === host.rollout.wave)) {
      return host;
    }
    changed = true;
    return { ...host, rollout: part };
  });
  return { ...state, rollouts, hosts: changed ? hosts : state.hosts };
}

/** A page of `GET /api/rollouts`, newest first: each replaces the one with its id. */
export function applyRollouts(state: FleetState, rollouts: readonly RolloutView[]): FleetState {
  const ids = new Set(rollouts.map((r) => r.id));
  return { ...state, rollouts: [...rollouts, ...state.rollouts.filter((r) => !ids.has(r.id))].sort(newestFirst) };
}

/** The rollouts the fleet page shows: every one in progress, else the newest if it ended within the last hour. */
export function currentRollouts(rollouts: readonly RolloutView[], now: number): RolloutView[] {
  const running = rollouts.filter(rolloutInProgress);
  if (running.length > 0) return running;
  const last = rollouts[0];
  const ended = last ? Date.parse(last.finishedAt ?? last.startedAt) : NaN;
  return last && now - ended < 3_600_000 ? [last] : [];
}

/** A host's hold set or released, on its row and its open page at once. */
export function applyHold(state: FleetState, name: string, hold: HostHold | null): FleetState {
  const detail = state.details[name];
  return {
    ...state,
    hosts: state.hosts.map((host) => (host.name === name ? { ...host, hold } : host)),
    details: detail ? { ...state.details, [name]: { ...detail, hold } } : state.details,
  };
}

/**
 * The update history's pages with what the live events said since: a rollout
 * the events know replaces its paged copy, and one started after the newest
 * paged one goes on top, so the history moves without a reload.
 */
export function withLiveRollouts(paged: readonly RolloutView[], live: readonly RolloutView[]): RolloutView[] {
  const byId = new Map(live.map((r) => [r.id, r]));
  const newest = paged[0];
  const newer = live.filter((r) => !paged.some((p) => p.id === r.id) && (newest === undefined || newestFirst(r, newest) < 0));
  return [...newer, ...paged.map((r) => byId.get(r.id) ?? r)];
}
