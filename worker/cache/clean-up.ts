/**
 * The binary cache's clean-up rules (docs/cache.md "Keeping it small"), pure: which objects of the bucket
 * no kept closure reaches and are old enough to go. worker/cache/janitor.ts is the thin R2 and D1 side that
 * feeds them a bucket's listing, its narinfos and the fleet's roots in bounded batches.
 *
 * Mark and sweep: a narinfo is reached from a root store path or from a reached narinfo's `References:`,
 * a NAR from a reached narinfo's `URL:`. An object goes only when it is unreached and was uploaded before
 * the cut-off (the pass's start less the grace period): Nix uploads a NAR before its narinfo, and a young
 * narinfo's manifest may not be published yet, so every young narinfo is a root as well.
 */
import { StorePathHash, storePathHash } from "../../common/narinfo.ts";

/** One object of the bucket as R2 lists it. */
export interface CacheObject {
  readonly key: string;
  readonly size: number;
  /** When R2 stored it, in ms since the epoch (a multipart upload: when it was completed). */
  readonly uploaded: number;
}

export type CacheKey =
  | { readonly kind: "narinfo"; readonly hash: string }
  | { readonly kind: "nar" }
  | { readonly kind: "manifest"; readonly commit: string }
  /** The commit of the latest manifest of a git tree, for a merge commit's lookup by tree. */
  | { readonly kind: "manifest-tree"; readonly tree: string }
  /** Not a path this cache writes (worker/cache/bucket.ts): never deleted. */
  | { readonly kind: "other" };

/** What a key of the bucket is (worker/cache/bucket.ts names them). */
export function classifyKey(key: string): CacheKey {
  if (key.endsWith(".narinfo") && !key.includes("/")) {
    const hash = key.slice(0, -".narinfo".length);
    if (StorePathHash.safeParse(hash).success) return { kind: "narinfo", hash };
  }
  if (key.startsWith("nar/") && !key.slice(4).includes("/")) return { kind: "nar" };
  const manifest = /^manifests\/([0-9a-f]{40})\.json$/.exec(key);
  if (manifest) return { kind: "manifest", commit: manifest[1]! };
  const tree = /^manifest-trees\/([0-9a-f]{40})$/.exec(key);
  if (tree) return { kind: "manifest-tree", tree: tree[1]! };
  return { kind: "other" };
}

/** What a narinfo links to: its NAR (`URL:`, a key of the bucket) and the hashes of its `References:`. */
export interface NarinfoLinks {
  readonly narKey: string;
  readonly references: readonly string[];
}

/** A narinfo's links from its parsed fields; a reference is `<hash>-<name>`. */
export const linksOf = (info: { url: string; references: readonly string[] }): NarinfoLinks => ({
  narKey: info.url,
  references: info.references.map((reference) => reference.slice(0, 32)),
});

/** The hashes of store paths (roots come as full store paths; anything else is not one and is skipped). */
export function rootHashes(storePaths: Iterable<string>): string[] {
  const hashes = new Set<string>();
  for (const path of storePaths) {
    const hash = storePathHash(path);
    if (path.startsWith("/nix/store/") && StorePathHash.safeParse(hash).success) hashes.add(hash);
  }
  return [...hashes];
}

/** A manifest in the bucket: its commit and when it was uploaded. */
export interface StoredManifest {
  readonly commit: string;
  readonly uploaded: number;
}

/**
 * The manifests kept: those of the open update PRs' heads and of main's head, and the `keepCommits` newest
 * of the others by upload. The bucket does not know which commits are main's; the builders sign one per
 * commit they built, in the order main moved, so the newest uploads are main's last commits.
 */
export function keptManifests(
  manifests: readonly StoredManifest[],
  { keepCommits, openPullHeads, mainHead }: { keepCommits: number; openPullHeads: readonly string[]; mainHead: string | null },
): Set<string> {
  const always = new Set([...openPullHeads, ...(mainHead === null ? [] : [mainHead])]);
  const newest = manifests
    .filter((manifest) => !always.has(manifest.commit))
    .sort((a, b) => b.uploaded - a.uploaded || (a.commit < b.commit ? -1 : 1))
    .slice(0, keepCommits)
    .map((manifest) => manifest.commit);
  return new Set([...manifests.map((manifest) => manifest.commit).filter((commit) => always.has(commit)), ...newest]);
}

/** What the mark has reached so far, and what it still has to read. */
export interface MarkState {
  /** Narinfo hashes reached and read (or found missing). */
  readonly reached: Set<string>;
  /** NAR keys reached through a read narinfo's URL. */
  readonly nars: Set<string>;
  /** Hashes reached whose narinfo is not read yet. */
  readonly frontier: string[];
}

export function startMark(roots: Iterable<string>): MarkState {
  const state: MarkState = { reached: new Set(), nars: new Set(), frontier: [] };
  addToFrontier(state, roots);
  return state;
}

/** Adds hashes to read; one already reached or waiting is not added twice. */
export function addToFrontier(state: MarkState, hashes: Iterable<string>): void {
  const waiting = new Set(state.frontier);
  for (const hash of hashes) {
    if (state.reached.has(hash) || waiting.has(hash)) continue;
    waiting.add(hash);
    state.frontier.push(hash);
  }
}

/**
 * Takes the narinfos read for hashes of the frontier (`null`: not in the cache, or not a narinfo this cache
 * can read): each is reached, its NAR too, and its references join the frontier.
 */
export function markRead(state: MarkState, read: ReadonlyMap<string, NarinfoLinks | null>): void {
  const next: string[] = [];
  const remaining = state.frontier.filter((hash) => !read.has(hash));
  state.frontier.length = 0;
  state.frontier.push(...remaining);
  for (const [hash, links] of read) {
    state.reached.add(hash);
    if (links === null) continue;
    state.nars.add(links.narKey);
    next.push(...links.references);
  }
  addToFrontier(state, next);
}

/** Why an object stays or goes. */
export interface SweepDecision {
  readonly delete: CacheObject[];
  readonly keep: CacheObject[];
}

/**
 * Of the objects listed, the ones to delete: unreached by the mark (a narinfo not reached, a NAR no reached
 * narinfo points to, a manifest not kept, a tree no kept manifest has) and uploaded before `cutoff`. Keys of
 * no known kind stay.
 */
export function sweep(
  objects: readonly CacheObject[],
  mark: Pick<MarkState, "reached" | "nars">,
  kept: { readonly manifests: ReadonlySet<string>; readonly trees: ReadonlySet<string> },
  cutoff: number,
): SweepDecision {
  const decision: SweepDecision = { delete: [], keep: [] };
  for (const object of objects) {
    const key = classifyKey(object.key);
    const reached =
      key.kind === "narinfo"
        ? mark.reached.has(key.hash)
        : key.kind === "nar"
          ? mark.nars.has(object.key)
          : key.kind === "manifest"
            ? kept.manifests.has(key.commit)
            : key.kind === "manifest-tree"
              ? kept.trees.has(key.tree)
              : true;
    (reached || object.uploaded >= cutoff ? decision.keep : decision.delete).push(object);
  }
  return decision;
}

/** The young narinfos of a listing: roots of the mark, as a push may still be on its way to the manifest that names them. */
export function youngNarinfos(objects: readonly CacheObject[], cutoff: number): string[] {
  return objects.flatMap((object) => {
    const key = classifyKey(object.key);
    return key.kind === "narinfo" && object.uploaded >= cutoff ? [key.hash] : [];
  });
}

/** The fleet's roots: store paths kept whatever commit they belong to, and the commits whose manifests are kept. */
export interface CacheRoots {
  /** Every host's running, booted and previous systems, their desired systems, CI's publications of main's last commits. */
  readonly storePaths: readonly string[];
  readonly openPullHeads: readonly string[];
  readonly mainHead: string | null;
}

export interface CleanUpPlan extends SweepDecision {
  readonly keptManifests: Set<string>;
}

/**
 * The whole clean-up over a bucket held in memory: the listing, every narinfo's links and every manifest's
 * tree and store paths by commit. The janitor runs the same steps in batches; this is the rule in one call.
 */
export function planCleanUp(input: {
  objects: readonly CacheObject[];
  narinfos: ReadonlyMap<string, NarinfoLinks>;
  manifests: ReadonlyMap<string, { readonly tree: string; readonly paths: readonly string[] }>;
  roots: CacheRoots;
  keepCommits: number;
  now: number;
  graceMs: number;
}): CleanUpPlan {
  const cutoff = input.now - input.graceMs;
  const stored = input.objects.flatMap((object) => {
    const key = classifyKey(object.key);
    return key.kind === "manifest" ? [{ commit: key.commit, uploaded: object.uploaded }] : [];
  });
  const kept = keptManifests(stored, { keepCommits: input.keepCommits, openPullHeads: input.roots.openPullHeads, mainHead: input.roots.mainHead });
  const fromManifests = [...kept].flatMap((commit) => input.manifests.get(commit)?.paths ?? []);
  const trees = new Set([...kept].flatMap((commit) => input.manifests.get(commit)?.tree ?? []));
  const mark = startMark([...rootHashes([...input.roots.storePaths, ...fromManifests]), ...youngNarinfos(input.objects, cutoff)]);
  while (mark.frontier.length > 0) {
    markRead(mark, new Map(mark.frontier.map((hash) => [hash, input.narinfos.get(hash) ?? null])));
  }
  return { ...sweep(input.objects, mark, { manifests: kept, trees }, cutoff), keptManifests: kept };
}
