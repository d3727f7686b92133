/**
 * A small world around the pure engine: it keeps the rollout, the clock and the hosts' presence, feeds
 * events and collects actions, like the coordinator will. With `roundTrip` the rollout goes through
 * JSON.stringify/parse and the zod schema between every step, as a Durable Object restart would.
 */
import type { HostHold, MaintenanceWindow } from "../../common/protocol.ts";
import { Settings } from "../../common/protocol.ts";
import {
  Rollout,
  advance,
  createRollout,
  toRolloutView,
  type RolloutAction,
  type RolloutEvent,
} from "../../worker/rollouts/engine.ts";
import { planRollout, type PlanHost } from "../../worker/rollouts/plan.ts";

export const COMMIT = "c0ffee0000000000000000000000000000000001";
export const OTHER_COMMIT = "bad0000000000000000000000000000000000002";
export const T0 = new Date("2026-06-05T10:00:00Z");

export const commandIdOf = (host: string, n = 1) => `cmd_${host}-${String(n).padStart(10, "0")}`;

export function planHost(name: string, over: Partial<PlanHost> = {}): PlanHost {
  return { name, online: true, hold: null, autoUpdate: true, priority: 100, canary: false, ...over };
}

export function hold(over: Partial<HostHold> = {}): HostHold {
  return { reason: "kernel bisect", until: null, by: "alice@example.com", at: "2026-06-01T00:00:00Z", ...over };
}

export interface SettingsOver {
  canary?: number;
  waveSize?: number | null;
  soakSeconds?: number;
  canarySoakSeconds?: number;
  deployStrategy?: "all" | "online-only" | "none";
  rollbackStrategy?: "revert-pr" | "revert-commit" | "alert-only";
  rollbackHosts?: boolean;
  windows?: MaintenanceWindow[];
}

export function settings(over: SettingsOver = {}): Settings {
  return Settings.parse({
    automation: { deployStrategy: over.deployStrategy ?? "all" },
    rollout: {
      canary: over.canary ?? 1,
      waveSize: over.waveSize === undefined ? null : over.waveSize,
      soakSeconds: over.soakSeconds ?? 0,
      canarySoakSeconds: over.canarySoakSeconds ?? 0,
    },
    rollback: { strategy: over.rollbackStrategy ?? "revert-pr", rollbackHosts: over.rollbackHosts ?? false },
    windows: over.windows ?? [],
  });
}

export interface WorldOptions extends SettingsOver {
  hosts: PlanHost[];
  automatic?: boolean;
  ignoreWindows?: boolean;
  roundTrip?: boolean;
  now?: Date;
  id?: string;
}

export class World {
  rollout: Rollout;
  readonly settings: Settings;
  now: Date;
  readonly online: Record<string, boolean> = {};
  readonly holds: Record<string, HostHold | null> = {};
  readonly log: RolloutAction[] = [];
  readonly roundTrip: boolean;

  constructor(options: WorldOptions) {
    this.settings = settings(options);
    this.now = options.now ?? T0;
    this.roundTrip = options.roundTrip ?? false;
    for (const h of options.hosts) this.online[h.name] = h.online;
    const automatic = options.automatic ?? false;
    const plan = planRollout({ hosts: options.hosts, settings: this.settings, automatic, now: this.now });
    this.rollout = createRollout({
      id: options.id ?? "ro_1",
      commit: COMMIT,
      pr: 42,
      startedBy: "alice@example.com",
      automatic,
      ignoreWindows: options.ignoreWindows ?? false,
      plan,
      now: this.now,
    });
  }

  step(event: RolloutEvent): RolloutAction[] {
    const before = this.roundTrip ? Rollout.parse(JSON.parse(JSON.stringify(this.rollout))) : this.rollout;
    const ctx = {
      settings: this.settings,
      now: this.now,
      hosts: Object.fromEntries(
        Object.entries(this.online).map(([name, online]) => [name, { online, hold: this.holds[name] ?? null }]),
      ),
    };
    const { rollout, actions } = advance(before, event, ctx);
    this.rollout = rollout;
    this.log.push(...actions);
    return actions;
  }

  advanceClock(seconds: number): void {
    this.now = new Date(this.now.getTime() + seconds * 1000);
  }

  view() {
    return toRolloutView(this.rollout);
  }

  host(name: string) {
    const h = this.view().waves.flatMap((w) => w.hosts).find((x) => x.name === name);
    if (h === undefined) throw new Error(`${name} is not in the rollout`);
    return h;
  }

  /** Every host that got a `send`, in order. */
  sent(): string[] {
    return this.log.flatMap((a) => (a.type === "send" ? [a.host] : []));
  }

  ofType<T extends RolloutAction["type"]>(type: T): Extract<RolloutAction, { type: T }>[] {
    return this.log.filter((a): a is Extract<RolloutAction, { type: T }> => a.type === type);
  }

  queued(host: string): RolloutAction[] {
    return this.step({ type: "command-queued", host, commandId: commandIdOf(host) });
  }

  started(host: string): RolloutAction[] {
    return this.step({ type: "command-started", host, commandId: commandIdOf(host) });
  }

  finished(
    host: string,
    outcome: "succeeded" | "failed" | "cancelled" | "timed-out" | "lost" = "succeeded",
    over: { error?: string | null; commitAfter?: string | null } = {},
  ): RolloutAction[] {
    return this.step({
      type: "command-finished",
      host,
      commandId: commandIdOf(host),
      outcome,
      error: over.error ?? null,
      commitAfter: over.commitAfter === undefined ? (outcome === "succeeded" ? COMMIT : null) : over.commitAfter,
    });
  }

  health(
    host: string,
    over: { commit?: string | null; system?: "green" | "yellow" | "red" | "blue" | "gray"; tests?: "green" | "yellow" | "red" | "blue" | "gray"; testsConfigured?: boolean; reason?: string } = {},
  ): RolloutAction[] {
    return this.step({
      type: "host-health",
      host,
      commit: over.commit === undefined ? COMMIT : over.commit,
      system: over.system ?? "green",
      tests: over.tests ?? "green",
      testsConfigured: over.testsConfigured ?? true,
      reason: over.reason ?? "",
    });
  }

  /** The host's command runs to success at the rollout's commit and its next report is all green. */
  deploy(host: string): RolloutAction[] {
    return [...this.queued(host), ...this.started(host), ...this.finished(host), ...this.health(host)];
  }
}
