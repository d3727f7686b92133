/**
 * The fleet's settings and their defaults. Until someone saves settings (the Settings page, `PUT
 * /api/settings`), they are the `wrangler.toml` vars read here; a var that does not parse is an error
 * naming it, never a silent default, because a typo in `ROLLBACK_STRATEGY` must not quietly turn
 * reverts off.
 */
import * as z from "zod";
import {
  DeployStrategy,
  MaintenanceWindow,
  NotificationChannel,
  MergeMethod,
  RollbackStrategy,
  SECRET_PLACEHOLDER,
  Settings,
  type SubmittedSettings,
} from "../common/protocol.ts";
import { newId } from "./ids.ts";

export const DEFAULT_SETTINGS: Settings = Settings.parse({});

export class SettingsError extends Error {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = "SettingsError";
    this.variable = variable;
  }
}

/** The Worker's `env` as it is (bindings that are not strings are ignored), or any map of vars. */
type Vars = object;

/** Unset and empty vars take the default. */
const present = (vars: Vars, name: string): string | null => {
  const value: unknown = Reflect.get(vars, name);
  if (typeof value !== "string" || value.trim() === "") return null;
  return value.trim();
};

function wholeNumber(vars: Vars, name: string, min: number, fallback: number): number {
  const raw = present(vars, name);
  if (raw === null) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || !Number.isSafeInteger(Number(raw))) {
    throw new SettingsError(name, `must be a whole number ≥ ${min}, got "${raw}"`);
  }
  return Number(raw);
}

/** A number ≥ 0, fractions allowed ("0.05" minutes = 3 seconds, for tests and the impatient). */
function minutes(vars: Vars, name: string, max: number, fallback: number): number {
  const raw = present(vars, name);
  if (raw === null) return fallback;
  if (!/^\d+(\.\d+)?$/.test(raw) || Number(raw) > max) throw new SettingsError(name, `must be a number of minutes from 0 to ${max}, got "${raw}"`);
  return Number(raw);
}

function oneOf<T extends string>(vars: Vars, name: string, schema: z.ZodType<T>, options: readonly T[], fallback: T): T {
  const raw = present(vars, name);
  if (raw === null) return fallback;
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new SettingsError(name, `must be one of ${options.join(", ")}, got "${raw}"`);
  return parsed.data;
}

function flag(vars: Vars, name: string, fallback: boolean): boolean {
  const raw = present(vars, name);
  if (raw === null) return fallback;
  if (raw === "true") return true;
  if (raw === "false") return false;
  throw new SettingsError(name, `must be true or false, got "${raw}"`);
}

/** A var holding a JSON list, each item parsed with `item`; `what` names the items in the error. */
function jsonList<T>(vars: Vars, name: string, item: z.ZodType<T>, what: string): T[] {
  const raw = present(vars, name);
  if (raw === null) return [];
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (error) {
    throw new SettingsError(name, `is not JSON (${(error as Error).message})`);
  }
  const parsed = z.array(item).safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? "" : ` at ${issue.path.join(".")}`;
    throw new SettingsError(name, `is not a list of ${what}${where}: ${issue?.message ?? "invalid"}`);
  }
  return parsed.data;
}

/** Channels given by a var hold their secrets in clear (the var is a secret then): the placeholder means nothing here. */
function channels(vars: Vars, name: string): NotificationChannel[] {
  const list = jsonList(vars, name, NotificationChannel, "notification channels");
  list.forEach((channel, index) => {
    const kept = [channel.url, "secret" in channel ? channel.secret : undefined, "token" in channel ? channel.token : undefined];
    if (kept.includes(SECRET_PLACEHOLDER)) throw new SettingsError(name, `channel ${index} (${channel.id}) holds "${SECRET_PLACEHOLDER}" in place of a value`);
  });
  const ids = list.map((channel) => channel.id);
  const repeated = ids.find((id, index) => ids.indexOf(id) !== index);
  if (repeated !== undefined) throw new SettingsError(name, `channel id ${repeated} is used twice`);
  return list;
}

/**
 * The settings the `wrangler.toml` vars give:
 * `ROLLOUT_CANARY_COUNT`, `ROLLOUT_WAVE_SIZE` (`auto` = a quarter of the hosts), `ROLLOUT_SOAK_SECONDS`,
 * `ROLLOUT_CANARY_SOAK_SECONDS`, `DEPLOY_STRATEGY`, `ROLLBACK_STRATEGY`, `ROLLBACK_HOSTS`,
 * `MAINTENANCE_WINDOWS` (a JSON list), `NOTIFICATION_CHANNELS` (a JSON list of channels, for operators
 * who configure by vars; set it as a secret when its URLs carry tokens), `FLEET_BUILD_ON_UPDATE_PR`,
 * `FLEET_BUILD_OFFLINE_HOSTS_BLOCK`, `FLEET_BUILD_COUNT_EXCLUDED_HOSTS` (docs/fleet-build.md),
 * `AUTOMATION_ENABLED`, `AUTOMATION_MERGE_DELAY_MINUTES` (fractions allowed), `AUTOMATION_MERGE_METHOD`,
 * `AUTOMATION_REQUIRE_CI`, `AUTOMATION_CI_MISSING_AFTER_MINUTES`, `AUTOMATION_REQUIRE_FLEET_BUILD` (default: whether
 * fleet builds run, `FLEET_BUILD_ON_UPDATE_PR`), `FLAKE_UPDATES_ENABLED`.
 * Throws a `SettingsError` naming the first bad var.
 */
export function settingsFromVars(vars: Vars): Settings {
  const d = DEFAULT_SETTINGS;
  const waveSizeRaw = present(vars, "ROLLOUT_WAVE_SIZE");
  const buildOnUpdatePr = flag(vars, "FLEET_BUILD_ON_UPDATE_PR", d.fleetBuild.buildOnUpdatePr);
  return Settings.parse({
    ...d,
    flakeUpdates: { enabled: flag(vars, "FLAKE_UPDATES_ENABLED", d.flakeUpdates.enabled) },
    automation: {
      enabled: flag(vars, "AUTOMATION_ENABLED", d.automation.enabled),
      mergeDelayMinutes: minutes(vars, "AUTOMATION_MERGE_DELAY_MINUTES", 7 * 24 * 60, d.automation.mergeDelayMinutes),
      mergeMethod: oneOf(vars, "AUTOMATION_MERGE_METHOD", MergeMethod, MergeMethod.options, d.automation.mergeMethod),
      requireCi: flag(vars, "AUTOMATION_REQUIRE_CI", d.automation.requireCi),
      ciMissingAfterMinutes: minutes(vars, "AUTOMATION_CI_MISSING_AFTER_MINUTES", 7 * 24 * 60, d.automation.ciMissingAfterMinutes),
      // Waiting for a fleet build that never runs would hold every update back: on only where builds run.
      requireFleetBuild: flag(vars, "AUTOMATION_REQUIRE_FLEET_BUILD", buildOnUpdatePr),
      deployStrategy: oneOf(vars, "DEPLOY_STRATEGY", DeployStrategy, DeployStrategy.options, d.automation.deployStrategy),
    },
    rollout: {
      canary: wholeNumber(vars, "ROLLOUT_CANARY_COUNT", 0, d.rollout.canary),
      waveSize: waveSizeRaw === null || waveSizeRaw === "auto" ? null : wholeNumber(vars, "ROLLOUT_WAVE_SIZE", 1, 1),
      soakSeconds: wholeNumber(vars, "ROLLOUT_SOAK_SECONDS", 0, d.rollout.soakSeconds),
      canarySoakSeconds: wholeNumber(vars, "ROLLOUT_CANARY_SOAK_SECONDS", 0, d.rollout.canarySoakSeconds),
    },
    rollback: {
      strategy: oneOf(vars, "ROLLBACK_STRATEGY", RollbackStrategy, RollbackStrategy.options, d.rollback.strategy),
      rollbackHosts: flag(vars, "ROLLBACK_HOSTS", d.rollback.rollbackHosts),
    },
    fleetBuild: {
      buildOnUpdatePr,
      offlineHostsBlock: flag(vars, "FLEET_BUILD_OFFLINE_HOSTS_BLOCK", d.fleetBuild.offlineHostsBlock),
      countExcludedHosts: flag(vars, "FLEET_BUILD_COUNT_EXCLUDED_HOSTS", d.fleetBuild.countExcludedHosts),
    },
    windows: jsonList(vars, "MAINTENANCE_WINDOWS", MaintenanceWindow, "maintenance windows"),
    notifications: channels(vars, "NOTIFICATION_CHANNELS"),
  });
}


/**
 * A `PUT /api/settings` body as settings: a channel sent without an `id` is new and gets a fresh random
 * `ch_…` one (an API user need not invent ids); a channel with an id keeps it, and with it its kept secrets.
 */
export function assignChannelIds(submitted: SubmittedSettings): Settings {
  return { ...submitted, notifications: submitted.notifications.map((channel) => ({ ...channel, id: channel.id ?? newId("ch") })) };
}
