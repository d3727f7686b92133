/**
 * The binary cache's clean-up rules (worker/cache/clean-up.ts), without workerd: a bucket's listing, its
 * narinfos' links and the fleet's roots in, the objects to delete out.
 */
import { describe, expect, it } from "vitest";
import { type CacheObject, type CacheRoots, type NarinfoLinks, classifyKey, keptManifests, markRead, planCleanUp, startMark } from "../../worker/cache/clean-up.ts";

const HOUR = 3_600_000;
const NOW = Date.parse("2026-12-07T12:00:00Z");
const GRACE = 24 * HOUR;

const NIX_BASE32 = "0123456789abcdfghijklmnpqrsvwxyz";
const names = new Map<string, string>();
/** The name's own digits in Nix's base 32 (its number among the names used), padded to `length`. */
function digits(name: string, length: number): string {
  if (!names.has(name)) names.set(name, names.size.toString(32).split("").map((digit) => NIX_BASE32[parseInt(digit, 32)]).join(""));
  return names.get(name)!.padStart(length, "0");
}
const hash = (name: string) => digits(name, 32);
const path = (name: string) => `/nix/store/${hash(name)}-${name}`;
const narKey = (name: string) => `nar/${digits(name, 52)}.nar.xz`;
const commit = (n: number) => n.toString(16).padStart(40, "a");
/** A commit's git tree unless a test gives another: two commits share one only when a test says so. */
const treeOf = (sha: string) => `b${sha.slice(1)}`;

/** A bucket in memory: paths with their references, each narinfo and NAR of the given age in hours. */
function bucket(paths: Record<string, { refs?: string[]; ageHours?: number; narAgeHours?: number; noNarinfo?: boolean }>, manifests: Record<string, { hosts: string[]; ageHours?: number; tree?: string }> = {}) {
  const objects: CacheObject[] = [];
  const narinfos = new Map<string, NarinfoLinks>();
  for (const [name, spec] of Object.entries(paths)) {
    const age = spec.ageHours ?? 48;
    objects.push({ key: narKey(name), size: 1000, uploaded: NOW - (spec.narAgeHours ?? age) * HOUR });
    if (spec.noNarinfo) continue;
    objects.push({ key: `${hash(name)}.narinfo`, size: 300, uploaded: NOW - age * HOUR });
    narinfos.set(hash(name), { narKey: narKey(name), references: (spec.refs ?? []).map(hash) });
  }
  const manifestPaths = new Map<string, { tree: string; paths: string[] }>();
  const pointers = new Map<string, number>();
  for (const [sha, spec] of Object.entries(manifests)) {
    const uploaded = NOW - (spec.ageHours ?? 48) * HOUR;
    const tree = spec.tree ?? treeOf(sha);
    objects.push({ key: `manifests/${sha}.json`, size: 500, uploaded });
    // The Worker rewrites a tree's pointer with each manifest of that tree: it is as old as the newest.
    pointers.set(tree, Math.max(pointers.get(tree) ?? 0, uploaded));
    manifestPaths.set(sha, { tree, paths: spec.hosts.map(path) });
  }
  for (const [tree, uploaded] of pointers) objects.push({ key: `manifest-trees/${tree}`, size: 40, uploaded });
  return { objects, narinfos, manifests: manifestPaths };
}

const noRoots: CacheRoots = { storePaths: [], openPullHeads: [], mainHead: null };

function plan(b: ReturnType<typeof bucket>, roots: Partial<CacheRoots> = {}, keepCommits = 10) {
  const result = planCleanUp({ ...b, roots: { ...noRoots, ...roots }, keepCommits, now: NOW, graceMs: GRACE });
  return { deleted: result.delete.map((o) => o.key).sort(), kept: result.keep.map((o) => o.key).sort(), keptManifests: [...result.keptManifests].sort() };
}

const keysOf = (...names: string[]) => names.flatMap((name) => [`${hash(name)}.narinfo`, narKey(name)]).sort();

describe("the clean-up's walk", () => {
  it("keeps a root's whole closure through References and URL, and deletes the old paths nothing reaches", () => {
    const b = bucket({ system: { refs: ["glibc", "hello", "system"] }, hello: { refs: ["glibc"] }, glibc: { refs: ["glibc"] }, old: { refs: ["oldlib"] }, oldlib: {} });
    const result = plan(b, { storePaths: [path("system")] });
    expect(result.kept).toEqual(keysOf("system", "hello", "glibc"));
    expect(result.deleted).toEqual(keysOf("old", "oldlib"));
  });

  it("keeps unreachable objects younger than the grace period, and a young narinfo's closure with it", () => {
    const b = bucket({
      // A push on its way: the narinfo is up, its manifest not yet; it reuses an old path already in the cache.
      pushed: { refs: ["reused"], ageHours: 2 },
      reused: {},
      // Nix uploads the NAR first: a NAR whose narinfo is still being uploaded.
      uploading: { noNarinfo: true, narAgeHours: 0.1 },
      // Exactly at the cut-off is not older than it.
      edge: { ageHours: 24 },
      stale: { ageHours: 24.01 },
    });
    const result = plan(b);
    expect(result.kept).toEqual([...keysOf("pushed", "reused", "edge"), narKey("uploading")].sort());
    expect(result.deleted).toEqual(keysOf("stale"));
  });

  it("deletes an old NAR whose narinfo never came (a refused upload), and an old narinfo whose NAR is missing", () => {
    const b = bucket({ orphanNar: { noNarinfo: true }, system: { refs: [] } });
    b.objects.push({ key: `${hash("lost")}.narinfo`, size: 300, uploaded: NOW - 48 * HOUR });
    b.narinfos.set(hash("lost"), { narKey: narKey("lost"), references: [] });
    const result = plan(b, { storePaths: [path("system")] });
    expect(result.deleted).toEqual([narKey("orphanNar"), `${hash("lost")}.narinfo`].sort());
    expect(result.kept).toEqual(keysOf("system"));
  });

  it("keeps the manifests of main's last N commits, open update PRs' heads and main's head, with their systems; older ones go with theirs", () => {
    const manifests: Record<string, { hosts: string[]; ageHours: number }> = {};
    const paths: Record<string, { refs?: string[] }> = {};
    for (let n = 1; n <= 5; n++) {
      manifests[commit(n)] = { hosts: [`sys${n}`], ageHours: 100 - n };
      paths[`sys${n}`] = { refs: ["glibc"] };
    }
    manifests[commit(9)] = { hosts: ["prsys"], ageHours: 200 };
    paths.prsys = {};
    paths.glibc = {};
    const b = bucket(paths, manifests);
    // N = 2: commits 5 and 4 are the newest; 1 is main's head (re-signed long ago); 9 an open update PR's head.
    const result = plan(b, { openPullHeads: [commit(9)], mainHead: commit(1) }, 2);
    expect(result.keptManifests).toEqual([commit(1), commit(4), commit(5), commit(9)].sort());
    expect(result.deleted).toEqual(
      [...keysOf("sys2", "sys3"), ...[2, 3].flatMap((n) => [`manifests/${commit(n)}.json`, `manifest-trees/${treeOf(commit(n))}`])].sort(),
    );
    expect(result.kept).toContain(`${hash("glibc")}.narinfo`);
  });

  it("keeps a tree's pointer while a kept manifest has that tree, and deletes it, once old, with the last one", () => {
    // Commit 2 is a merge commit with its PR head's (commit 1's) tree; commit 3's tree is its own.
    const shared = treeOf(commit(1));
    const b = bucket({ sys: {} }, { [commit(1)]: { hosts: ["sys"], ageHours: 300 }, [commit(2)]: { hosts: ["sys"], ageHours: 100, tree: shared }, [commit(3)]: { hosts: ["sys"], ageHours: 200 } });
    const onlyTheMerge = plan(b, { mainHead: commit(2) }, 0);
    expect(onlyTheMerge.keptManifests).toEqual([commit(2)]);
    expect(onlyTheMerge.kept).toContain(`manifest-trees/${shared}`);
    expect(onlyTheMerge.deleted).toEqual([`manifests/${commit(1)}.json`, `manifests/${commit(3)}.json`, `manifest-trees/${treeOf(commit(3))}`].sort());
    // Nothing kept: every pointer old enough goes with its manifests.
    expect(plan(b, {}, 0).deleted).toEqual(expect.arrayContaining([`manifest-trees/${shared}`, `manifest-trees/${treeOf(commit(3))}`]));
  });

  it("keeps a host's running and previous systems whatever commit they came from", () => {
    const b = bucket({ running: { refs: ["lib"] }, previous: { refs: ["lib"] }, lib: {}, other: {} });
    const result = plan(b, { storePaths: [path("running"), path("previous"), "not a store path"] });
    expect(result.deleted).toEqual(keysOf("other"));
  });

  it("never deletes a key of no kind it knows (the clean-up's own progress, anything else)", () => {
    const b = bucket({});
    b.objects.push({ key: "nixfleet/clean-up.json", size: 10, uploaded: 0 }, { key: "log/whatever", size: 10, uploaded: 0 });
    expect(plan(b).deleted).toEqual([]);
  });

  it.each([
    { key: `${hash("x")}.narinfo`, kind: "narinfo" },
    { key: narKey("x"), kind: "nar" },
    { key: `manifests/${commit(1)}.json`, kind: "manifest" },
    { key: "manifests/abc.json", kind: "other" },
    { key: `manifest-trees/${treeOf(commit(1))}`, kind: "manifest-tree" },
    { key: "manifest-trees/abc", kind: "other" },
    { key: "nixfleet/clean-up.json", kind: "other" },
    { key: "short.narinfo", kind: "other" },
  ])("classifies $key as $kind", ({ key, kind }) => {
    expect(classifyKey(key).kind).toBe(kind);
  });

  it("reaches the same closure however the reads are split into batches (the janitor reads a few at a time)", () => {
    const links = new Map<string, NarinfoLinks>();
    for (let i = 0; i < 60; i++) links.set(hash(`p${i}`), { narKey: narKey(`p${i}`), references: [hash(`p${(i * 7) % 60}`), hash(`p${(i + 1) % 61}`)] });
    const whole = startMark([hash("p0")]);
    while (whole.frontier.length > 0) markRead(whole, new Map(whole.frontier.map((h) => [h, links.get(h) ?? null])));
    for (const size of [1, 3, 25]) {
      const batched = startMark([hash("p0")]);
      while (batched.frontier.length > 0) markRead(batched, new Map(batched.frontier.slice(0, size).map((h) => [h, links.get(h) ?? null])));
      expect([...batched.reached].sort()).toEqual([...whole.reached].sort());
      expect([...batched.nars].sort()).toEqual([...whole.nars].sort());
    }
    expect(whole.reached.size).toBe(61);
  });

  it("counts N among the other manifests by upload time, newest first", () => {
    const stored = [1, 2, 3].map((n) => ({ commit: commit(n), uploaded: n }));
    expect([...keptManifests(stored, { keepCommits: 1, openPullHeads: [], mainHead: null })]).toEqual([commit(3)]);
    expect([...keptManifests(stored, { keepCommits: 1, openPullHeads: [commit(3)], mainHead: null })].sort()).toEqual([commit(2), commit(3)]);
  });
});
