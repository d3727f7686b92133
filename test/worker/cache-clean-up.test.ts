// The binary cache's scheduled clean-up against the real local R2 bucket and D1 (worker/cache/janitor.ts):
// what it deletes and keeps, in runs bounded by their R2 operations, its audit entry, and the size it counts
// for /metrics and the dashboard.
import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { NarInfo } from "../../common/narinfo.ts";
import { CacheUsageResponse, SettingsResponse, type SignedCacheManifest } from "../../common/protocol.ts";
import { lastCleanUp, runCacheCleanUp } from "../../worker/cache/janitor.ts";
import { openDatabase } from "../../worker/db/client.ts";
import { saveRepoState, savePullRequest } from "../../worker/db/github.ts";
import { savePublication } from "../../worker/db/desired.ts";
import { upsertReport } from "../../worker/db/reports.ts";
import worker from "../../worker/index.ts";
import { narInfoText, randomBase32, sampleNarInfo } from "./cache-helpers.ts";
import { REPOSITORY } from "./github-helpers.ts";
import { api, createHost, sampleReport } from "./helpers.ts";

const HOUR = 3_600_000;
const db = () => openDatabase(env.DB);

/** Stores an object; when R2 stored it. */
async function put(key: string, body: string): Promise<number> {
  const object = await env.CACHE.put(key, body);
  if (object === null) throw new Error(`R2 did not store ${key}`);
  return object.uploaded.getTime();
}

/** A store path's narinfo and NAR, put straight into the bucket (the upload route's checks are cache-uploads.test.ts's). */
async function putPath(name: string, references: NarInfo[] = [], options: { narinfo?: boolean } = {}): Promise<NarInfo & { uploaded: number[] }> {
  const info = sampleNarInfo({ storePath: `/nix/store/${randomBase32(32)}-${name}` });
  const own = info.storePath.slice("/nix/store/".length);
  info.references = [own, ...references.map((ref) => ref.storePath.slice("/nix/store/".length))];
  const uploaded = [await put(info.url, "nar!!")];
  if (options.narinfo !== false) uploaded.push(await put(`${own.slice(0, 32)}.narinfo`, narInfoText(info)));
  return { ...info, uploaded };
}

const keysOf = (info: NarInfo) => [`${info.storePath.slice(11, 43)}.narinfo`, info.url];

/** A commit's own git tree, for its manifest and the tree's pointer the Worker writes beside it. */
const treeOf = (commit: string) => `f${commit.slice(1)}`;

async function putManifest(commit: string, hosts: Record<string, string>): Promise<number> {
  const signed: SignedCacheManifest = { manifest: { commit, tree: treeOf(commit), created: new Date().toISOString(), hosts }, signatures: [] };
  await put(`manifest-trees/${treeOf(commit)}`, commit);
  return put(`manifests/${commit}.json`, JSON.stringify(signed));
}

async function bucketKeys(): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await env.CACHE.list(cursor === undefined ? {} : { cursor });
    keys.push(...page.objects.map((object) => object.key));
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor !== undefined);
  return keys.sort();
}

async function setCacheSettings(cache: { keepCommits: number }): Promise<void> {
  const current = SettingsResponse.parse(await (await api("/api/settings")).json()).settings;
  const res = await api("/api/settings", { method: "PUT", json: { ...current, cache: { ...current.cache, ...cache } } });
  expect(res.status, await res.clone().text()).toBe(200);
}

describe("the cache's clean-up on the real bucket", () => {
  it("deletes what no kept closure reaches and is old enough, keeps every kept closure and a NAR whose narinfo is still on its way, in bounded runs, audited and counted", async () => {
    await setCacheSettings({ keepCommits: 1 });
    const commit = (c: string) => c.repeat(40);
    // Kept closures: a host's running and previous systems, main's head's manifest, the newest other
    // manifest (N = 1), an open update PR's head's manifest, CI's publication.
    const glibc = await putPath("glibc-2.40");
    const running = await putPath("nixos-system-web1-running", [glibc]);
    const previous = await putPath("nixos-system-web1-previous", [glibc]);
    const mainSystem = await putPath("nixos-system-web1-main", [await putPath("hello-2.12", [glibc])]);
    const newestOther = await putPath("nixos-system-web1-newest");
    const pullSystem = await putPath("nixos-system-web1-pull");
    const published = await putPath("nixos-system-small-ci");
    await putManifest(commit("1"), { web1: mainSystem.storePath });
    await putManifest(commit("2"), { web1: newestOther.storePath });
    await putManifest(commit("3"), { web1: pullSystem.storePath });
    // Garbage: an old manifest past N with its system, a path nothing names, a NAR whose narinfo was refused.
    const olderSystem = await putPath("nixos-system-web1-older", [glibc]);
    await putManifest(commit("4"), { web1: olderSystem.storePath });
    const stale = await putPath("stale-1.0");
    // Old and unreached from the roots, but a young narinfo below references it.
    const reused = await putPath("reused-lib-1.0");
    const orphanNar = await putPath("refused-1.0", [], { narinfo: false });
    // The manifest order is by upload: commit 4 before 2, so 2 is the newest of the others.
    await env.CACHE.put(`manifests/${commit("2")}.json`, (await (await env.CACHE.get(`manifests/${commit("2")}.json`))!.text()));

    const host = await createHost("web1");
    const report = sampleReport({
      hostname: "web1",
      system: { current: { value: running.storePath }, builtFromCommit: null },
      generations: {
        value: [
          { number: 1, createdAt: "2026-12-01T00:00:00Z", storePath: stale.storePath.replace(/-stale/, "-gone"), label: null, current: false, booted: false },
          { number: 4, createdAt: "2026-12-05T00:00:00Z", storePath: previous.storePath, label: null, current: false, booted: true },
          { number: 5, createdAt: "2026-12-06T00:00:00Z", storePath: running.storePath, label: null, current: true, booted: false },
        ],
      },
    });
    await upsertReport(db(), { hostId: host.id, report, reportHash: "h", agentSession: "s", receivedAt: new Date().toISOString() });
    const head = { sha: commit("1"), message: "m", author: "a", committedAt: "2026-12-06T10:00:00Z" };
    await saveRepoState(db(), { repository: REPOSITORY, branch: "main", head, lockHash: "c".repeat(64), lockLastModified: {}, lockProblem: null, updatedAt: new Date().toISOString(), source: "schedule" });
    const at = new Date().toISOString();
    await savePullRequest(db(), {
      repository: REPOSITORY, number: 7, title: "flake.lock: update", url: "https://github.com/example/fleet/pull/7", state: "open", draft: false,
      headSha: commit("3"), headRef: "update", baseRef: "main", labels: ["automated"], isUpdatePr: true, mergeable: true, createdAt: at, updatedAt: at,
      mergedAt: null, mergeCommitSha: null, lockChanges: null, lockHeadSha: null, lockBaseHash: null, lockProblem: null, syncedAt: at,
    });
    await savePublication(db(), { commit: commit("5"), hosts: { small: published.storePath }, tree: null, by: "ci" }, at);

    // Young: everything uploaded after this instant is within the grace period when the pass starts.
    const oldUntil = Math.max(...(await env.CACHE.list()).objects.map((object) => object.uploaded.getTime()));
    while (Date.now() <= oldUntil) await new Promise((resolve) => setTimeout(resolve, 1));
    // A push on its way: the NAR is up, its narinfo not yet; and a young narinfo reusing an old path.
    const uploading = await putPath("nixos-system-web2-uploading", [], { narinfo: false });
    const pushed = await putPath("nixos-system-web2-pushed", [reused]);
    const cutoff = Math.min(...uploading.uploaded, ...pushed.uploaded);
    expect(cutoff).toBeGreaterThan(oldUntil);

    const before = await bucketKeys();
    const now = cutoff + 24 * HOUR;
    const runs = [];
    for (let run = 0; run < 40; run++) {
      const result = await runCacheCleanUp(env, db(), { now, budget: 6 });
      runs.push(result);
      if (result.outcome === "finished") break;
    }
    expect(runs.at(-1)?.outcome).toBe("finished");
    // Bounded: several runs, each within its budget (the kept manifests are read in the run that ends the listing).
    expect(runs.length).toBeGreaterThan(3);
    for (const run of runs) expect(run.operations).toBeLessThanOrEqual(6 + 3);

    const deleted = [...keysOf(olderSystem), `manifests/${commit("4")}.json`, `manifest-trees/${treeOf(commit("4"))}`, ...keysOf(stale), orphanNar.url].sort();
    const after = await bucketKeys();
    expect(before.filter((key) => !after.includes(key)).sort()).toEqual(deleted);
    for (const kept of [glibc, running, previous, mainSystem, newestOther, pullSystem, published, pushed]) for (const key of keysOf(kept)) expect(after).toContain(key);
    expect(after).toContain(uploading.url);
    expect(after).toContain(reused.url);
    expect(after).toEqual(expect.arrayContaining([commit("1"), commit("2"), commit("3")].flatMap((c) => [`manifests/${c}.json`, `manifest-trees/${treeOf(c)}`])));
    // The clean-up's own progress is the one object it adds.
    expect(after.filter((key) => !before.includes(key))).toEqual(["nixfleet/clean-up.json"]);

    // Audited with its counts, and counted for /metrics and the dashboard.
    const audit = await (await api("/api/audit?limit=10")).json<{ entries: { action: string; details: unknown }[] }>();
    const entry = audit.entries.find((e) => e.action === "cache.clean-up");
    expect(entry?.details).toMatchObject({ deletedObjects: deleted.length, keptObjects: after.length - 1 });
    const usage = CacheUsageResponse.parse(await (await api("/api/cache-usage")).json()).usage;
    expect(usage).toMatchObject({ objects: after.length - 1, deletedObjects: deleted.length, countedAt: new Date(now).toISOString() });
    const scrape = await (await exports.default.fetch(new Request("http://localhost/metrics", { headers: { authorization: "Bearer test-metrics-token" } }))).text();
    expect(scrape).toContain(`nixfleet_cache_objects ${after.length - 1}\n`);
    expect(scrape).toMatch(/\nnixfleet_cache_bytes \d+\n/);

    // The next pass is a day away.
    expect((await runCacheCleanUp(env, db(), { now: now + HOUR })).outcome).toBe("not-due");
    expect(await bucketKeys()).toEqual(after);
  });

  it("runs from the Worker's Cron Trigger, and deletes nothing uploaded within the grace period", async () => {
    const young = await putPath("nixos-system-web3-young");
    await env.CACHE.delete("nixfleet/clean-up.json");
    const startedAt = Date.now();
    const controller = createScheduledController({ scheduledTime: Date.now(), cron: "*/5 * * * *" });
    const ctx = createExecutionContext();
    worker.scheduled(controller, env, ctx);
    await waitOnExecutionContext(ctx);
    const usage = await lastCleanUp(env.CACHE);
    expect(Date.parse(usage?.countedAt ?? "")).toBeGreaterThanOrEqual(startedAt);
    expect(usage?.deletedObjects).toBe(0);
    expect(await bucketKeys()).toEqual(expect.arrayContaining(keysOf(young)));
  });
});
