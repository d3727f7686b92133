/**
 * The binary cache's scheduled clean-up, the I/O around worker/cache/clean-up.ts: each Cron Trigger run
 * (every 5 minutes) carries a pass on by at most `budget` R2 operations and keeps its progress in the
 * bucket (CLEAN_UP_STATE_KEY), so however big the bucket, no run exceeds a Worker invocation's limits.
 * A pass lists the bucket page by page, reads the manifests it keeps and the narinfos the roots reach, then
 * deletes what is unreached and old in batches; a new pass starts a day after the last one finished.
 */
import * as z from "zod";
import { parseNarInfo, storePathHash } from "../../common/narinfo.ts";
import { CacheUsage, SignedCacheManifest } from "../../common/protocol.ts";
import { writeAudit } from "../db/audit.ts";
import { loadCacheRoots } from "../db/cache-roots.ts";
import type { Database } from "../db/client.ts";
import { settingsForDisplay } from "../db/settings.ts";
import { readStoredJson } from "../db/stored-json.ts";
import type { WorkerEnv } from "../env.ts";
import { CacheBucket, CLEAN_UP_STATE_KEY, manifestKey, narinfoKey, R2_BATCH } from "./bucket.ts";
import {
  type CacheObject,
  classifyKey,
  keptManifests,
  linksOf,
  markRead,
  type MarkState,
  type NarinfoLinks,
  rootHashes,
  startMark,
  sweep,
} from "./clean-up.ts";

/** How often a pass starts: the cache grows by a fleet's builds a day, not by the minute. */
export const CLEAN_UP_EVERY_MS = 24 * 3_600_000;
/** R2 operations one run may make, far below a Cron Trigger's 10,000 subrequests on Workers Paid. */
export const RUN_BUDGET = 1_000;
/** Narinfos read at once. */
const READS_AT_ONCE = 25;

const Totals = z.object({ objects: z.number().int().nonnegative(), bytes: z.number().nonnegative() });

const Pass = z.object({
  startedAt: z.number(),
  /** Objects uploaded before it may go; the pass's start less the grace period. */
  cutoff: z.number(),
  keepCommits: z.number().int(),
  phase: z.enum(["list", "mark", "delete"]),
  cursor: z.string().nullable(),
  listed: Totals,
  /** Old objects of a known kind: [key, size, uploaded]. */
  candidates: z.array(z.tuple([z.string(), z.number(), z.number()])),
  manifests: z.array(z.object({ commit: z.string(), uploaded: z.number() })),
  young: z.array(z.string()),
  kept: z.array(z.string()),
  /** The git trees of the kept manifests: their `manifest-trees/` pointers stay. */
  keptTrees: z.array(z.string()).default([]),
  reached: z.array(z.string()),
  nars: z.array(z.string()),
  frontier: z.array(z.string()),
  /** The delete phase's keys and sizes, left to delete. */
  doomed: z.array(z.tuple([z.string(), z.number()])),
  deletedObjects: z.number().int(),
  deletedBytes: z.number(),
});
type Pass = z.infer<typeof Pass>;

/** `last`: the last finished pass, what the bucket held after it (for /metrics and the dashboard). */
const CleanUpState = z.object({ pass: Pass.nullable(), last: CacheUsage.nullable() });
type CleanUpState = z.infer<typeof CleanUpState>;

/** The last finished pass's figures, or null before the first (one R2 read). */
export async function lastCleanUp(r2: R2Bucket): Promise<CacheUsage | null> {
  return (await readState(new CacheBucket(r2))).last;
}

async function readState(bucket: CacheBucket): Promise<CleanUpState> {
  const object = await bucket.get(CLEAN_UP_STATE_KEY);
  const stored = object === null ? null : readStoredJson(CleanUpState, await object.text(), CLEAN_UP_STATE_KEY);
  return stored ?? { pass: null, last: null };
}

export interface CleanUpRun {
  /** What the run did: nothing (a pass is not due), or the phase the pass is in after it, or `finished`. */
  readonly outcome: "not-due" | Pass["phase"] | "finished";
  readonly operations: number;
}

/**
 * One run of the clean-up. `now` and `budget` are the tests' to choose; the Cron Trigger passes neither.
 */
export async function runCacheCleanUp(env: WorkerEnv, db: Database, options: { now?: number; budget?: number } = {}): Promise<CleanUpRun> {
  const now = options.now ?? Date.now();
  const bucket = new CacheBucket(env.CACHE);
  const state = await readState(bucket);
  let operations = 1;
  const spend = (count: number) => {
    operations += count;
  };
  const left = () => (options.budget ?? RUN_BUDGET) - operations - 1;

  if (state.pass === null) {
    if (state.last !== null && now - Date.parse(state.last.countedAt) < CLEAN_UP_EVERY_MS) return { outcome: "not-due", operations };
    const { cache } = await settingsForDisplay(env, db);
    state.pass = newPass(now, now - cache.graceHours * 3_600_000, cache.keepCommits);
  }
  const pass = state.pass;

  while (pass.phase === "list" && left() > 0) {
    const page = await bucket.list(pass.cursor);
    spend(1);
    listPage(pass, page.objects);
    pass.cursor = page.cursor;
    if (page.cursor === null) {
      const read = await startMarking(pass, bucket, db);
      spend(read);
    }
  }
  while (pass.phase === "mark" && left() > 0) {
    const mark = markOf(pass);
    const batch = mark.frontier.slice(0, Math.min(READS_AT_ONCE, left()));
    const read = new Map(await Promise.all(batch.map(async (hash) => [hash, await readLinks(bucket, hash)] as const)));
    spend(batch.length);
    markRead(mark, read);
    saveMark(pass, mark);
    if (mark.frontier.length === 0) startDeleting(pass, mark);
  }
  while (pass.phase === "delete" && pass.doomed.length > 0 && left() > 0) {
    const batch = pass.doomed.splice(0, R2_BATCH);
    await bucket.delete(batch.map(([key]) => key));
    spend(1);
    pass.deletedObjects += batch.length;
    pass.deletedBytes += batch.reduce((sum, [, size]) => sum + size, 0);
  }

  let outcome: CleanUpRun["outcome"] = pass.phase;
  if (pass.phase === "delete" && pass.doomed.length === 0) {
    state.last = {
      countedAt: new Date(now).toISOString(),
      objects: pass.listed.objects - pass.deletedObjects,
      bytes: pass.listed.bytes - pass.deletedBytes,
      deletedObjects: pass.deletedObjects,
      deletedBytes: pass.deletedBytes,
    };
    state.pass = null;
    outcome = "finished";
    await writeAudit(db, {
      at: state.last.countedAt,
      actor: "cache clean-up",
      action: "cache.clean-up",
      target: null,
      details: {
        deletedObjects: pass.deletedObjects,
        deletedBytes: pass.deletedBytes,
        keptObjects: state.last.objects,
        keptBytes: state.last.bytes,
        narinfosReached: pass.reached.length,
        manifestsKept: pass.kept.length,
        startedAt: new Date(pass.startedAt).toISOString(),
      },
      result: "ok",
      role: null,
    });
  }
  await bucket.put(CLEAN_UP_STATE_KEY, JSON.stringify(state), "application/json");
  return { outcome, operations: operations + 1 };
}

function newPass(now: number, cutoff: number, keepCommits: number): Pass {
  return {
    startedAt: now,
    cutoff,
    keepCommits,
    phase: "list",
    cursor: null,
    listed: { objects: 0, bytes: 0 },
    candidates: [],
    manifests: [],
    young: [],
    kept: [],
    keptTrees: [],
    reached: [],
    nars: [],
    frontier: [],
    doomed: [],
    deletedObjects: 0,
    deletedBytes: 0,
  };
}

function listPage(pass: Pass, objects: readonly CacheObject[]): void {
  for (const object of objects) {
    const key = classifyKey(object.key);
    if (key.kind === "other") continue;
    pass.listed.objects += 1;
    pass.listed.bytes += object.size;
    if (key.kind === "manifest") pass.manifests.push({ commit: key.commit, uploaded: object.uploaded });
    if (object.uploaded < pass.cutoff) pass.candidates.push([object.key, object.size, object.uploaded]);
    else if (key.kind === "narinfo") pass.young.push(key.hash);
  }
}

/** The listing is whole: the roots from D1 and the kept manifests (read here) start the mark. Returns the R2 reads made. */
async function startMarking(pass: Pass, bucket: CacheBucket, db: Database): Promise<number> {
  const roots = await loadCacheRoots(db, pass.keepCommits);
  const kept = keptManifests(pass.manifests, { keepCommits: pass.keepCommits, openPullHeads: roots.openPullHeads, mainHead: roots.mainHead });
  const manifests = (await Promise.all([...kept].map((commit) => readManifest(bucket, commit)))).filter((manifest) => manifest !== null);
  const mark = startMark([...rootHashes([...roots.storePaths, ...manifests.flatMap((manifest) => Object.values(manifest.hosts))]), ...pass.young]);
  pass.kept = [...kept];
  pass.keptTrees = [...new Set(manifests.map((manifest) => manifest.tree))];
  pass.phase = "mark";
  saveMark(pass, mark);
  if (mark.frontier.length === 0) startDeleting(pass, mark);
  return kept.size;
}

async function readManifest(bucket: CacheBucket, commit: string): Promise<SignedCacheManifest["manifest"] | null> {
  const object = await bucket.get(manifestKey(commit));
  if (object === null) return null;
  return readStoredJson(SignedCacheManifest, await object.text(), manifestKey(commit))?.manifest ?? null;
}

/** A narinfo's links, or null when it is gone or does not parse (then nothing beyond it is reached through it). */
async function readLinks(bucket: CacheBucket, hash: string): Promise<NarinfoLinks | null> {
  const object = await bucket.get(narinfoKey(hash));
  if (object === null) return null;
  try {
    const info = parseNarInfo(await object.text());
    return storePathHash(info.storePath) === hash ? linksOf(info) : null;
  } catch {
    console.error(`cache clean-up: ${narinfoKey(hash)} does not parse; nothing is reached through it`);
    return null;
  }
}

const markOf = (pass: Pass): MarkState => ({ reached: new Set(pass.reached), nars: new Set(pass.nars), frontier: [...pass.frontier] });

function saveMark(pass: Pass, mark: MarkState): void {
  pass.reached = [...mark.reached];
  pass.nars = [...mark.nars];
  pass.frontier = [...mark.frontier];
}

function startDeleting(pass: Pass, mark: MarkState): void {
  const objects = pass.candidates.map(([key, size, uploaded]) => ({ key, size, uploaded }));
  pass.doomed = sweep(objects, mark, { manifests: new Set(pass.kept), trees: new Set(pass.keptTrees) }, pass.cutoff).delete.map((object) => [object.key, object.size]);
  pass.candidates = [];
  pass.phase = "delete";
}
