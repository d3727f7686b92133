/**
 * The settings a rollout step uses, derived from D1 (worker/db/settings.ts, the truth): steps run
 * without awaiting anything, so they cannot read D1 themselves. Refreshed from D1 by every plan and
 * start, and by `settingsChanged` after each PUT /api/settings; kept in storage so an evicted object
 * resumes with it. Without notification channels: their secrets stay out of this object's storage.
 */
import type { Settings } from "../../common/protocol.ts";
import { refuse, type Refusal } from "../outcome.ts";
import type { Database } from "../db/client.ts";
import { currentSettings } from "../db/settings.ts";
import type { WorkerEnv } from "../env.ts";
import { DEFAULT_SETTINGS, settingsFromVars } from "../settings.ts";

const SETTINGS_COPY_KEY = "settings-copy";

export class SettingsCopy {
  private copy: Settings | null = null;
  /**
   * The vars' settings, derived once: the vars do not change while the object lives, and every alarm
   * arbitration asks for them (the incidents' clock). Parsed anew on each call, they were over half of an
   * enqueue's CPU in the object while no copy was stored (bench:dispatch --profile).
   */
  private fromVars: Settings | null = null;

  private readonly storage: DurableObjectStorage;

  private readonly env: WorkerEnv;

  private readonly db: Database;

  constructor(storage: DurableObjectStorage, env: WorkerEnv, db: Database) {
    this.storage = storage;
    this.env = env;
    this.db = db;
  }

  async load(): Promise<void> {
    this.copy = (await this.storage.get<Settings>(SETTINGS_COPY_KEY)) ?? null;
  }

  /** The settings in force, read from D1 now (the copy is refreshed with them); a bad var is a refusal naming it. */
  async refresh(): Promise<Settings | Refusal> {
    let settings: Settings;
    try {
      settings = await currentSettings(this.env, this.db);
    } catch (error) {
      return refuse(409, "settings_invalid", error instanceof Error ? error.message : String(error));
    }
    // Two refreshes may finish out of order: an older version never replaces a newer one.
    if (this.copy === null || settings.version >= this.copy.version) {
      this.copy = { ...settings, notifications: [] };
      void this.storage.put(SETTINGS_COPY_KEY, this.copy);
    }
    return settings;
  }

  /** The settings of a step of an already running rollout: the copy; without one, the vars (a bad var is logged, the defaults keep it moving). */
  current(): Settings {
    return this.copy ?? (this.fromVars ??= this.readVars());
  }

  private readVars(): Settings {
    try {
      return settingsFromVars(this.env);
    } catch (error) {
      console.error("rollout settings:", error instanceof Error ? error.message : String(error), "— using the defaults until the settings are saved");
      return DEFAULT_SETTINGS;
    }
  }
}
