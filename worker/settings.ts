/**
 * The fleet's settings and their defaults. Until the settings page stores edited settings, they are
 * the `wrangler.toml` vars read here; a var that does not parse is an error naming it, never a silent
 * default, because a typo in `ROLLBACK_STRATEGY` must not quietly turn reverts off.
 */
import * as z from "zod";
import {
  DeployStrategy,
  MaintenanceWindow,
  RollbackStrategy,
  Settings,
} from "../common/protocol.ts";

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

function windows(vars: Vars, name: string): MaintenanceWindow[] {
  const raw = present(vars, name);
  if (raw === null) return [];
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (error) {
    throw new SettingsError(name, `is not JSON (${(error as Error).message})`);
  }
  const parsed = z.array(MaintenanceWindow).safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? "" : ` at ${issue.path.join(".")}`;
    throw new SettingsError(name, `is not a list of maintenance windows${where}: ${issue?.message ?? "invalid"}`);
  }
  return parsed.data;
}

/**
 * The settings the `wrangler.toml` vars give:
 * `ROLLOUT_CANARY_COUNT`, `ROLLOUT_WAVE_SIZE` (`auto` = a quarter of the hosts), `ROLLOUT_SOAK_SECONDS`,
 * `ROLLOUT_CANARY_SOAK_SECONDS`, `DEPLOY_STRATEGY`, `ROLLBACK_STRATEGY`, `ROLLBACK_HOSTS`,
 * `MAINTENANCE_WINDOWS` (a JSON list). Throws a `SettingsError` naming the first bad var.
 */
export function settingsFromVars(vars: Vars): Settings {
  const d = DEFAULT_SETTINGS;
  const waveSizeRaw = present(vars, "ROLLOUT_WAVE_SIZE");
  return Settings.parse({
    ...d,
    automation: {
      ...d.automation,
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
    windows: windows(vars, "MAINTENANCE_WINDOWS"),
  });
}
