/**
 * The safety net's durable state, one directory per armed switch under
 * `<stateDir>/safety-net/<id>/`. Each file has one writer, or is created with
 * O_EXCL so the first of the agent and the watchdog wins:
 *
 * - `record.json`   (agent, before activating) what to go back to and how;
 * - `window.json`   (first to see the activation end) when the confirmation window opened;
 * - `decision.json` (O_EXCL: the agent's "confirmed" or the watchdog's "rollback");
 * - `rollback.json` (whoever won "rollback") what the rollback did;
 * - `watchdog.log`, `watchdog.exit`, `watchdog.json` the watchdog job and its handle.
 *
 * Everything is fsync'd (file, then directory) before it counts: a host that
 * loses power right after the activation still finds its record.
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import * as z from "zod";
import { HostRollback } from "../../common/protocol/reports.ts";
import { JobHandle } from "../runner.ts";

export const SafetyNetRecord = z.object({
  version: z.literal(1),
  commandId: z.string().nullable(),
  commit: z.string().nullable(),
  platform: z.string(),
  /** The running system before the switch: what a rollback activates. */
  previous: z.string().min(1),
  /** The system the switch activates. */
  next: z.string().min(1),
  confirmTimeoutSeconds: z.number().int().positive(),
  armedAt: z.string(),
  /** The switch job's exit file: the confirmation window opens when it appears. */
  activationExitFile: z.string().nullable(),
  /** Past this (wall clock) the window opens even without the exit file (a job that vanished). */
  activationGiveUpAt: z.string(),
  /** Points the profile at `previous` and activates it (the platform's `activateArgv`, taken before the switch). */
  rollbackArgv: z.array(z.string()).min(1),
  /** Read after a rollback to check the host runs `previous` again. */
  runningSystemLink: z.string().min(1),
  /** Where the boot id is read (config.bootIdFile): a window from another boot is stale. */
  bootIdFile: z.string().min(1),
  /** Units failed before the switch: only units failed since count against the new system. */
  failedUnitsBefore: z.array(z.string()).nullable(),
});
export type SafetyNetRecord = z.infer<typeof SafetyNetRecord>;

export const ConfirmationWindow = z.object({
  /** CLOCK_MONOTONIC milliseconds (shared by every process of one boot), when the activation ended. */
  openedAtMonotonicMs: z.number(),
  bootId: z.string().nullable(),
  openedAt: z.string(),
});
export type ConfirmationWindow = z.infer<typeof ConfirmationWindow>;

export const Decision = z.object({
  decision: z.enum(["confirmed", "rollback", "not-activated"]),
  by: z.enum(["agent", "watchdog"]),
  at: z.string(),
  reason: z.string(),
});
export type Decision = z.infer<typeof Decision>;

/** Monotonic milliseconds: `process.hrtime` is CLOCK_MONOTONIC on Linux, one clock for every process of a boot. */
export const monotonicMs = (): number => Number(process.hrtime.bigint() / 1_000_000n);

export async function readBootId(file: string): Promise<string | null> {
  return fs.readFile(file, "utf8").then((text) => text.trim() || null, () => null);
}

/** The files of one armed switch. */
export class SafetyNetDir {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  get id(): string {
    return path.basename(this.dir);
  }

  file(name: "record.json" | "window.json" | "decision.json" | "rollback.json" | "watchdog.json" | "watchdog.log" | "watchdog.exit"): string {
    return path.join(this.dir, name);
  }

  async writeRecord(record: SafetyNetRecord): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    await writeDurably(this.file("record.json"), SafetyNetRecord.parse(record));
  }

  readRecord(): Promise<SafetyNetRecord | null> {
    return readJson(this.file("record.json"), SafetyNetRecord);
  }

  readWindow(): Promise<ConfirmationWindow | null> {
    return readJson(this.file("window.json"), ConfirmationWindow);
  }

  /** Opens the window once; the window that is there wins. */
  async openWindow(bootId: string | null): Promise<ConfirmationWindow> {
    const window: ConfirmationWindow = { openedAtMonotonicMs: monotonicMs(), bootId, openedAt: new Date().toISOString() };
    if (await createExclusively(this.file("window.json"), window)) return window;
    return (await this.readWindow()) ?? window;
  }

  /** After a reboot the monotonic clock starts again: the pending record gets a fresh window. */
  async reopenWindow(bootId: string | null): Promise<ConfirmationWindow> {
    const window: ConfirmationWindow = { openedAtMonotonicMs: monotonicMs(), bootId, openedAt: new Date().toISOString() };
    await writeDurably(this.file("window.json"), window);
    return window;
  }

  readDecision(): Promise<Decision | null> {
    return readJson(this.file("decision.json"), Decision);
  }

  /** The decision that stands: ours when we were first, else the one already taken. */
  async decide(decision: Decision): Promise<{ won: boolean; decision: Decision }> {
    if (await createExclusively(this.file("decision.json"), decision)) return { won: true, decision };
    const standing = await this.readDecision();
    return { won: false, decision: standing ?? decision };
  }

  readRollback(): Promise<HostRollback | null> {
    return readJson(this.file("rollback.json"), HostRollback);
  }

  writeRollback(rollback: HostRollback): Promise<void> {
    return writeDurably(this.file("rollback.json"), HostRollback.parse(rollback));
  }

  readWatchdog(): Promise<JobHandle | null> {
    return readJson(this.file("watchdog.json"), JobHandle);
  }

  writeWatchdog(handle: JobHandle): Promise<void> {
    return writeDurably(this.file("watchdog.json"), handle);
  }
}

/** Writes to a temporary file, fsyncs it, renames it over `file` and fsyncs the directory. */
export async function writeDurably(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  const handle = await fs.open(tmp, "w");
  try {
    await handle.writeFile(`${JSON.stringify(value)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(tmp, file);
  await syncDirectory(path.dirname(file));
}

/** Creates `file` only if it does not exist (O_EXCL), durably; false when it existed. */
async function createExclusively(file: string, value: unknown): Promise<boolean> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, "wx");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  }
  try {
    await handle.writeFile(`${JSON.stringify(value)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await syncDirectory(path.dirname(file));
  return true;
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, "r");
  try {
    await handle.sync();
  } catch {
    // Some filesystems refuse fsync on a directory (EINVAL); the rename is then as durable as they make it.
  } finally {
    await handle.close();
  }
}

/** A file that is missing or damaged reads as null: a half-written file never counts as a decision. */
async function readJson<T extends z.ZodType>(file: string, schema: T): Promise<z.infer<T> | null> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch {
    return null;
  }
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
