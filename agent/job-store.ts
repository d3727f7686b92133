/**
 * The agent's persisted state under `stateDir`, so a restart (including one
 * caused by the agent's own switch) neither runs a command twice nor forgets
 * one it started:
 *
 *   commands.json        the last commands seen (idempotency) and unreported results
 *   jobs/<id>/meta.json  a detached switch/rollback: how to find it and what it started from
 *   jobs/<id>/output.log the job's stdout+stderr
 *   jobs/<id>/exit       its exit status, written by the job's wrapper when it ends
 *   jobs/<id>/progress.json  how much of the log the server has stored
 *   jobs/<id>/cancelled  a `stop` ended it
 *   systems.json         system path → commit it was built from; commit → system it builds;
 *                        the desired-system evaluations by (tree, flake.lock hash, attribute) and the latest
 *   tests-last.json      the last test run, for the report
 *   repo/                the agent's own clone of the configuration repository
 *
 * Every file is parsed with zod when read; a damaged file is logged and
 * replaced, never trusted.
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import * as z from "zod";
import { CommandEvent, CommandId, CommandKind, DesiredSystem, Platform, Sha1, TestRun, type CommandDelivery } from "../common/protocol.ts";
import type { Logger } from "./logger.ts";
import { JobHandle } from "./runner.ts";

/** How many command ids are remembered to recognise a redelivery. */
export const SEEN_COMMANDS_LIMIT = 500;
const SYSTEMS_LIMIT = 50;

export type FinishedEvent = Extract<CommandEvent, { type: "finished" }>;
const FinishedEventSchema = CommandEvent.refine((event) => event.type === "finished", "not a finished event");

export const CommandRecord = z.object({
  id: CommandId,
  kind: CommandKind,
  target: CommandId.nullable(),
  receivedAt: z.string(),
  status: z.enum(["received", "running", "finished"]),
  /** Runs as a detached job that may outlive this agent process. */
  detached: z.boolean().default(false),
  /** Kept to resend until the server stored it, and to answer a redelivery. */
  finished: FinishedEventSchema.optional(),
  /** The server stored the finished event (or said it no longer wants it). */
  reported: z.boolean().default(false),
});
export type CommandRecord = z.infer<typeof CommandRecord>;

const CommandsFile = z.object({ commands: z.array(CommandRecord) });

export const JobMeta = z.object({
  commandId: CommandId,
  kind: CommandKind,
  /** What the job does; a pull-switch's job is a `switch`. */
  action: z.enum(["switch", "rollback"]),
  platform: Platform,
  handle: JobHandle,
  startedAt: z.string(),
  /** The clone's HEAD the job builds from (switch). */
  commit: Sha1.nullable(),
  systemBefore: z.string().nullable(),
  /** What the clone's configuration evaluated to before the switch started: the link must point here after it. */
  systemExpected: z.string().nullable().default(null),
  /** For pull-switch: what the pull did before the switch started. */
  pull: z.object({ commitBefore: Sha1.nullable(), commitAfter: Sha1.nullable() }).optional(),
  /**
   * A substitute switch: the signed manifest that named `systemExpected`; a rollback to a generation: the one
   * that generation's system came from. The host's once the job succeeds.
   */
  manifest: z.object({ commit: Sha1, created: z.iso.datetime() }).optional(),
});
export type JobMeta = z.infer<typeof JobMeta>;

export const JobProgress = z.object({
  /** Bytes of output.log the server has stored. */
  offset: z.number().int().nonnegative(),
  /** The seq the next output chunk gets. */
  seq: z.number().int().nonnegative(),
});
export type JobProgress = z.infer<typeof JobProgress>;

/** What makes two evaluations the same: a host evaluates a tree once. */
export const EvaluationKey = z.object({
  tree: Sha1,
  /** sha256 of flake.lock at that tree, or "none" without one. */
  lockHash: z.string().min(1).max(64),
  /** The flake output evaluated, e.g. `#nixosConfigurations.h1.config.system.build.toplevel`. */
  attr: z.string().min(1).max(500),
});
export type EvaluationKey = z.infer<typeof EvaluationKey>;

const SystemsFile = z.object({
  builtFrom: z.array(z.object({ system: z.string(), commit: Sha1 })).default([]),
  desired: z.array(z.object({ commit: Sha1, system: z.string() })).default([]),
  evaluations: z.array(z.object({ key: EvaluationKey, system: DesiredSystem })).default([]),
  desiredLatest: DesiredSystem.nullable().default(null),
  /**
   * The signed manifest of the system the host last went to by a substitute switch, or by a rollback to a
   * generation: a host never takes one older (common/cache-manifest.ts).
   */
  manifest: z.object({ commit: Sha1, created: z.iso.datetime() }).nullable().default(null),
  /** system path → the signed manifest that named it, so a rollback to a generation takes the host's manifest back with it. */
  manifests: z.array(z.object({ system: z.string(), commit: Sha1, created: z.iso.datetime() })).default([]),
});
type SystemsFile = z.infer<typeof SystemsFile>;

export class JobStore {
  readonly stateDir: string;
  readonly cloneDir: string;
  readonly jobsDir: string;
  readonly #logger: Logger;
  #commands: CommandRecord[] = [];
  #systems: SystemsFile = { builtFrom: [], desired: [], evaluations: [], desiredLatest: null, manifest: null, manifests: [] };
  #lastTestRun: TestRun | null = null;
  #writes: Promise<void> = Promise.resolve();

  private constructor(stateDir: string, logger: Logger) {
    this.stateDir = stateDir;
    this.cloneDir = path.join(stateDir, "repo");
    this.jobsDir = path.join(stateDir, "jobs");
    this.#logger = logger;
  }

  /** Opens (creating if needed) the state directory and loads what it holds. */
  static async open(stateDir: string, logger: Logger): Promise<JobStore> {
    const store = new JobStore(stateDir, logger);
    await fs.mkdir(store.jobsDir, { recursive: true });
    store.#commands = (await store.#readJson("commands.json", CommandsFile))?.commands ?? [];
    store.#systems = (await store.#readJson("systems.json", SystemsFile)) ?? { builtFrom: [], desired: [], evaluations: [], desiredLatest: null, manifest: null, manifests: [] };
    store.#lastTestRun = await store.#readJson("tests-last.json", TestRun);
    return store;
  }

  /** Reads the state without creating anything (for `status` on a machine the agent never ran on). */
  static async openReadOnly(stateDir: string, logger: Logger): Promise<JobStore> {
    const store = new JobStore(stateDir, logger);
    store.#systems = (await store.#readJson("systems.json", SystemsFile)) ?? { builtFrom: [], desired: [], evaluations: [], desiredLatest: null, manifest: null, manifests: [] };
    store.#lastTestRun = await store.#readJson("tests-last.json", TestRun);
    return store;
  }

  // -- commands ---------------------------------------------------------------

  hasSeen(id: string): boolean {
    return this.#commands.some((record) => record.id === id);
  }

  command(id: string): CommandRecord | undefined {
    return this.#commands.find((record) => record.id === id);
  }

  async recordReceived(delivery: CommandDelivery, at: string): Promise<void> {
    this.#commands.push({
      id: delivery.id,
      kind: delivery.kind,
      target: delivery.target,
      receivedAt: at,
      status: "received",
      detached: false,
      reported: false,
    });
    this.#pruneCommands();
    await this.#saveCommands();
  }

  async markRunning(id: string, detached = false): Promise<void> {
    const record = this.command(id);
    if (record === undefined) return;
    record.status = "running";
    record.detached = record.detached || detached;
    await this.#saveCommands();
  }

  async recordFinished(id: string, event: FinishedEvent): Promise<void> {
    const record = this.command(id);
    if (record === undefined) return;
    record.status = "finished";
    record.finished = event;
    await this.#saveCommands();
  }

  async markReported(id: string): Promise<void> {
    const record = this.command(id);
    if (record === undefined || record.reported) return;
    record.reported = true;
    await this.#saveCommands();
  }

  /** Finished commands whose result the server has not stored yet. */
  unreported(): CommandRecord[] {
    return this.#commands.filter((record) => record.status === "finished" && !record.reported);
  }

  /** Commands a previous agent process received or ran but never finished. */
  unfinished(): CommandRecord[] {
    return this.#commands.filter((record) => record.status !== "finished");
  }

  #pruneCommands(): void {
    // Drop the oldest settled records first; never one that still owes the server a result.
    let excess = this.#commands.length - SEEN_COMMANDS_LIMIT;
    if (excess <= 0) return;
    this.#commands = this.#commands.filter((record) => {
      if (excess > 0 && record.status === "finished" && record.reported) {
        excess--;
        return false;
      }
      return true;
    });
  }

  #saveCommands(): Promise<void> {
    return this.#write("commands.json", { commands: this.#commands });
  }

  // -- detached jobs ----------------------------------------------------------

  jobDir(id: string): string {
    return path.join(this.jobsDir, id);
  }

  jobFiles(id: string): { log: string; exit: string; cancelled: string } {
    const dir = this.jobDir(id);
    return { log: path.join(dir, "output.log"), exit: path.join(dir, "exit"), cancelled: path.join(dir, "cancelled") };
  }

  async prepareJob(id: string): Promise<void> {
    await fs.mkdir(this.jobDir(id), { recursive: true });
  }

  async writeJobMeta(meta: JobMeta): Promise<void> {
    await this.#write(path.join("jobs", meta.commandId, "meta.json"), meta);
  }

  async readJobMeta(id: string): Promise<JobMeta | null> {
    return this.#readJson(path.join("jobs", id, "meta.json"), JobMeta);
  }

  async listJobIds(): Promise<string[]> {
    const entries = await fs.readdir(this.jobsDir, { withFileTypes: true }).catch(() => []);
    return entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name).sort();
  }

  /** The job's exit status: a number once it ended, null while the file is absent. */
  async readJobExit(id: string): Promise<number | null> {
    const text = await fs.readFile(this.jobFiles(id).exit, "utf8").catch(() => null);
    if (text === null) return null;
    const code = Number.parseInt(text.trim(), 10);
    return Number.isInteger(code) ? code : 255;
  }

  async markJobCancelled(id: string): Promise<void> {
    await fs.writeFile(this.jobFiles(id).cancelled, new Date().toISOString());
  }

  async isJobCancelled(id: string): Promise<boolean> {
    return fs
      .access(this.jobFiles(id).cancelled)
      .then(() => true)
      .catch(() => false);
  }

  async readJobProgress(id: string): Promise<JobProgress> {
    return (await this.#readJson(path.join("jobs", id, "progress.json"), JobProgress)) ?? { offset: 0, seq: 0 };
  }

  writeJobProgress(id: string, progress: JobProgress): Promise<void> {
    return this.#write(path.join("jobs", id, "progress.json"), progress);
  }

  /**
   * Removes job directories (switch logs can be large): kept are jobs whose
   * command is unfinished or unreported, and the `keepFinished` most recent others.
   */
  async pruneJobs(keepFinished = 20): Promise<void> {
    const order = new Map(this.#commands.map((record, index) => [record.id, index]));
    const settled = (await this.listJobIds())
      .filter((id) => {
        const record = this.command(id);
        return record === undefined || (record.status === "finished" && record.reported);
      })
      .sort((a, b) => (order.get(b) ?? -1) - (order.get(a) ?? -1));
    for (const id of settled.slice(keepFinished)) await fs.rm(this.jobDir(id), { recursive: true, force: true });
  }

  // -- systems and tests --------------------------------------------------------

  /** The commit a system path was built from, when this agent switched to it. */
  builtFromCommit(system: string | null): string | null {
    if (system === null) return null;
    return this.#systems.builtFrom.find((entry) => entry.system === system)?.commit ?? null;
  }

  async recordBuilt(system: string, commit: string): Promise<void> {
    this.#systems.builtFrom = [{ system, commit }, ...this.#systems.builtFrom.filter((e) => e.system !== system)].slice(0, SYSTEMS_LIMIT);
    await this.#write("systems.json", this.#systems);
  }

  /** The system a commit builds, when the agent has evaluated it. */
  desiredSystem(commit: string | null): string | null {
    if (commit === null) return null;
    return this.#systems.desired.find((entry) => entry.commit === commit)?.system ?? null;
  }

  async recordDesired(commit: string, system: string): Promise<void> {
    this.#systems.desired = [{ commit, system }, ...this.#systems.desired.filter((e) => e.commit !== commit)].slice(0, SYSTEMS_LIMIT);
    await this.#write("systems.json", this.#systems);
  }

  /** The evaluation already made of this key, if any. */
  cachedEvaluation(key: EvaluationKey): DesiredSystem | null {
    const same = (other: EvaluationKey) => other.tree === key.tree && other.lockHash === key.lockHash && other.attr === key.attr;
    return this.#systems.evaluations.find((entry) => same(entry.key))?.system ?? null;
  }

  async recordEvaluation(key: EvaluationKey, system: DesiredSystem): Promise<void> {
    const others = this.#systems.evaluations.filter((e) => !(e.key.tree === key.tree && e.key.lockHash === key.lockHash && e.key.attr === key.attr));
    this.#systems.evaluations = [{ key, system }, ...others].slice(0, SYSTEMS_LIMIT);
    await this.#write("systems.json", this.#systems);
  }

  /** What was learnt once `system.outPath` was in the store (nothing to build, the closure diff), for every evaluation of it. */
  async recordRealised(system: Extract<DesiredSystem, { outPath: string }>): Promise<void> {
    const learnt = { changes: system.changes, ...(system.closureDiff === undefined ? {} : { closureDiff: system.closureDiff }) };
    const update = (other: DesiredSystem): DesiredSystem => ("outPath" in other && other.outPath === system.outPath ? { ...other, ...learnt } : other);
    this.#systems.evaluations = this.#systems.evaluations.map((entry) => ({ ...entry, system: update(entry.system) }));
    if (this.#systems.desiredLatest !== null) this.#systems.desiredLatest = update(this.#systems.desiredLatest);
    await this.#write("systems.json", this.#systems);
  }

  /** The newest desired system the agent has of main, kept so a restarted agent reports it at once. */
  desiredLatest(): DesiredSystem | null {
    return this.#systems.desiredLatest;
  }

  async recordDesiredLatest(system: DesiredSystem): Promise<void> {
    this.#systems.desiredLatest = system;
    await this.#write("systems.json", this.#systems);
  }

  /** The manifest of the system the host last went to by a substitute switch or a rollback to a generation, or null. */
  runningManifest(): { commit: string; created: string } | null {
    return this.#systems.manifest;
  }

  /** The signed manifest a substitute switch took `system` from, when this agent did. */
  manifestOf(system: string): { commit: string; created: string } | null {
    const entry = this.#systems.manifests.find((e) => e.system === system);
    return entry === undefined ? null : { commit: entry.commit, created: entry.created };
  }

  /** `system` now runs (or boots next) from `manifest`: it becomes the host's manifest, and the one `system` is known by. */
  async recordManifest(manifest: { commit: string; created: string }, system: string | null): Promise<void> {
    this.#systems.manifest = { commit: manifest.commit, created: manifest.created };
    if (system !== null) {
      const others = this.#systems.manifests.filter((e) => e.system !== system);
      this.#systems.manifests = [{ system, commit: manifest.commit, created: manifest.created }, ...others].slice(0, SYSTEMS_LIMIT);
    }
    await this.#write("systems.json", this.#systems);
  }

  lastTestRun(): TestRun | null {
    return this.#lastTestRun;
  }

  async recordTestRun(run: TestRun): Promise<void> {
    this.#lastTestRun = run;
    await this.#write("tests-last.json", run);
  }

  /** Resolves once every write queued so far is on disk. */
  flush(): Promise<void> {
    return this.#writes;
  }

  // -- files ----------------------------------------------------------------------

  async #readJson<T extends z.ZodType>(relative: string, schema: T): Promise<z.infer<T> | null> {
    const file = path.join(this.stateDir, relative);
    let text: string;
    try {
      text = await fs.readFile(file, "utf8");
    } catch {
      return null;
    }
    try {
      const parsed = schema.safeParse(JSON.parse(text));
      if (parsed.success) return parsed.data;
      this.#logger.warn("state file does not match its schema; starting it afresh", { file, problem: z.prettifyError(parsed.error) });
    } catch (error) {
      this.#logger.warn("state file is not JSON; starting it afresh", { file, problem: String(error) });
    }
    return null;
  }

  /** Writes are queued so two updates never interleave, and land by rename so a crash leaves the old file. */
  #write(relative: string, value: unknown): Promise<void> {
    const file = path.join(this.stateDir, relative);
    const text = `${JSON.stringify(value, null, 2)}\n`;
    const write = async () => {
      const tmp = `${file}.${process.pid}.tmp`;
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(tmp, text);
      await fs.rename(tmp, file);
    };
    const next = this.#writes.then(write, write);
    this.#writes = next.catch((error: unknown) => {
      this.#logger.error("could not write agent state", { file, problem: String(error) });
    });
    return this.#writes;
  }
}
