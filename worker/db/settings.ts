/**
 * The settings in force: the one place every reader gets them from. The row in D1 (written by
 * `PUT /api/settings`) when there is one, else the `wrangler.toml` vars (`settingsFromVars`, version 0),
 * which stay the defaults of a fresh install. The row is the truth; the coordinator's copy is derived from
 * it (worker/objects/coordinator.ts, `settingsChanged`).
 */
import { and, eq, sql } from "drizzle-orm";
import type { Settings, SubmittedSettings } from "../../common/protocol.ts";
import { newId } from "../ids.ts";
import {
  importSettingsKey,
  openSettings,
  redactSettings,
  redactStored,
  sealChannels,
  sealSettings,
  SettingsChangeError,
  SETTINGS_KEY_VARIABLE,
  StoredSettings,
} from "../settings-secrets.ts";
import { assignChannelIds, settingsFromVars } from "../settings.ts";
import { auditInsertWhen } from "./audit.ts";
import type { Database } from "./client.ts";
import { settings as settingsTable } from "./schema.ts";
import { readStoredJson } from "./stored-json.ts";

const ROW_ID = 1;

/** The stored row: its version, and its settings (null when the JSON no longer parses: logged, read as the vars). */
interface StoredRow {
  version: number;
  stored: StoredSettings | null;
}

async function readRow(db: Database): Promise<StoredRow | null> {
  const row = await db
    .select({ version: settingsTable.version, settings: settingsTable.settings })
    .from(settingsTable)
    .where(eq(settingsTable.id, ROW_ID))
    .get();
  if (!row) return null;
  return { version: row.version, stored: readStoredJson(StoredSettings, row.settings, "settings.settings") };
}

const keyText = (env: object): string | undefined => {
  const value: unknown = Reflect.get(env, SETTINGS_KEY_VARIABLE);
  return typeof value === "string" ? value : undefined;
};

/** The key for reading: an unusable one is logged and read as none (the channels are then left out, nothing else). */
async function readingKey(env: object): Promise<CryptoKey | null> {
  try {
    return await importSettingsKey(keyText(env));
  } catch (error) {
    console.error(`settings: ${error instanceof Error ? error.message : String(error)}; notification channels cannot be opened`);
    return null;
  }
}

/**
 * The settings in force, secrets opened: for the server only, never for a response (`settingsForDisplay`).
 * Without a row these are the vars (a bad var throws a `SettingsError` naming it). A corrupt row is logged
 * and read as the vars' defaults, under its own version so the next save replaces it.
 */
export async function currentSettings(env: object, db: Database): Promise<Settings> {
  const row = await readRow(db);
  if (!row) return settingsFromVars(env);
  if (!row.stored) return { ...settingsFromVars(env), version: row.version };
  return openSettings(row.stored, row.version, await readingKey(env));
}

/** What `GET /api/settings` shows: the settings in force with every secret redacted. Needs no key. */
export async function settingsForDisplay(env: object, db: Database): Promise<Settings> {
  const row = await readRow(db);
  if (row?.stored) return redactStored(row.stored, row.version);
  const defaults = redactSettings(settingsFromVars(env));
  return row ? { ...defaults, version: row.version } : defaults;
}

export type ReplaceOutcome =
  | { ok: true; settings: Settings }
  | { ok: false; currentVersion: number };

/**
 * Replaces the stored settings with `submitted` if `submitted.version` is still the stored version, and
 * audits the change (old → new, redacted) in the same batch. The version check and the write are one
 * statement (an INSERT that does nothing on an existing row, or an UPDATE … WHERE version = ?), so two
 * writers that read the same version cannot both win. A channel submitted without an id gets one
 * (`assignChannelIds`). Throws `SettingsChangeError` for a secret that cannot be stored or kept.
 */
export async function replaceSettings(env: object, db: Database, submission: SubmittedSettings, actor: string): Promise<ReplaceOutcome> {
  const submitted = assignChannelIds(submission);
  let key: CryptoKey | null;
  try {
    key = await importSettingsKey(keyText(env));
  } catch (error) {
    throw new SettingsChangeError(503, "settings_key_invalid", error instanceof Error ? error.message : String(error));
  }
  const row = await readRow(db);
  const currentVersion = row?.version ?? 0;
  // Refused early; the compare-and-set below is what guarantees it.
  if (submitted.version !== currentVersion) return { ok: false, currentVersion };

  let previous: Settings | null;
  let previousStored: StoredSettings;
  if (row?.stored) {
    previous = redactStored(row.stored, row.version);
    previousStored = row.stored;
  } else {
    let vars: Settings | null = null;
    try {
      vars = settingsFromVars(env);
    } catch (error) {
      // A bad var is what this write replaces: nothing to keep from it.
      console.warn("settings: the vars do not parse; the stored settings will replace them:", error);
    }
    previous = vars === null ? null : { ...redactSettings(vars), version: currentVersion };
    // The vars may name channels (with clear secrets): a placeholder for one of them keeps it, sealed now.
    previousStored = vars === null || vars.notifications.length === 0 ? { ...StoredSettings.parse({}) } : await sealSettings(vars, key);
  }

  const stored = await sealChannels(submitted, previousStored, key);
  const version = currentVersion + 1;
  const writeId = newId("set");
  const now = new Date().toISOString();
  const values = { version, settings: JSON.stringify(stored), writeId, updatedAt: now, updatedBy: actor };
  const write =
    row === null
      ? db.insert(settingsTable).values({ id: ROW_ID, ...values }).onConflictDoNothing().returning({ version: settingsTable.version })
      : db
          .update(settingsTable)
          .set(values)
          .where(and(eq(settingsTable.id, ROW_ID), eq(settingsTable.version, currentVersion)))
          .returning({ version: settingsTable.version });
  const next = redactStored(stored, version);
  const audit = auditInsertWhen(
    db,
    {
      at: now,
      actor,
      action: "settings.update",
      target: `version ${version}`,
      details: { fromVersion: currentVersion, toVersion: version, old: previous, new: next },
      result: "saved",
    },
    sql`EXISTS (SELECT 1 FROM ${settingsTable} WHERE ${settingsTable.writeId} = ${writeId})`,
  );
  const [written] = await db.batch([write, audit]);
  if (written.length === 1) return { ok: true, settings: next };
  // Another write came between the read and this one: nothing was written, nothing audited.
  return { ok: false, currentVersion: (await readRow(db))?.version ?? 0 };
}
