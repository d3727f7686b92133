/**
 * The fleet's target as GET / and GET /api/hosts read it before their first byte (worker/db/desired.ts
 * `loadFleetTargetWithPublished`): the followed branch's state, the update PRs with their CI state, and what was
 * published at main's head or its tree, from one D1 batch. The D1 binding is the real one; the test only counts
 * the round trips that pass through it.
 */
import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { loadFleetTargetWithPublished, savePublication } from "../../worker/db/desired.ts";
import { openDatabase } from "../../worker/db/client.ts";
import { loadFleetTarget, saveCommitCheck, savePullRequest, saveRepoState, type PullRequestRecord } from "../../worker/db/github.ts";
import { REPOSITORY, resetGitHubTables } from "./github-helpers.ts";

const MAIN = "4d".repeat(20);
const TREE = "7e".repeat(20);
const OLDER = "1a".repeat(20);
/** When the control plane last read the branch: GitHub's timestamps have whole seconds, ours milliseconds. */
const STATE_READ_AT = "2026-12-06T10:00:00.500Z";
const path = (name: string) => `/nix/store/${"0".repeat(32)}-nixos-system-${name}`;

/** The real D1 binding, counting what goes to the database: a batch, or a statement run on its own. */
function countingD1(d1: D1Database): { d1: D1Database; trips: string[] } {
  const trips: string[] = [];
  const real = new WeakMap<object, D1PreparedStatement>();
  const statement = (target: D1PreparedStatement): D1PreparedStatement => {
    const wrapped = new Proxy(target, {
      get(on, key) {
        const value: unknown = Reflect.get(on, key);
        if (typeof value !== "function") return value;
        if (key === "bind") return (...values: unknown[]) => statement(on.bind(...values));
        if (key === "all" || key === "raw" || key === "run" || key === "first") {
          return (...args: unknown[]) => {
            trips.push(`statement ${String(key)}`);
            return (value as (...a: unknown[]) => unknown).apply(on, args);
          };
        }
        return (value as (...a: unknown[]) => unknown).bind(on);
      },
    });
    real.set(wrapped, target);
    return wrapped;
  };
  const counted = new Proxy(d1, {
    get(on, key) {
      if (key === "prepare") return (query: string) => statement(on.prepare(query));
      if (key === "batch") {
        return (statements: D1PreparedStatement[]) => {
          trips.push(`batch of ${statements.length}`);
          return on.batch(statements.map((s) => real.get(s) ?? s));
        };
      }
      const value: unknown = Reflect.get(on, key);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(on) : value;
    },
  });
  return { d1: counted, trips };
}

function pull(number: number, fields: Partial<PullRequestRecord>): PullRequestRecord {
  return {
    repository: REPOSITORY,
    number,
    title: `flake.lock: Update #${number}`,
    url: `https://github.com/${REPOSITORY}/pull/${number}`,
    state: "open",
    draft: false,
    headSha: String(number).padStart(2, "0").repeat(20),
    headRef: `update-${number}`,
    baseRef: "main",
    labels: [],
    isUpdatePr: true,
    mergeable: true,
    createdAt: `2026-12-0${number}T08:00:00Z`,
    updatedAt: `2026-12-0${number}T08:00:00Z`,
    mergedAt: null,
    mergeCommitSha: null,
    lockChanges: null,
    lockHeadSha: null,
    lockBaseHash: null,
    lockProblem: null,
    syncedAt: "2026-12-06T09:00:00.000Z",
    ...fields,
  };
}

async function saveMain(sha: string, tree: string | null) {
  await saveRepoState(openDatabase(env.DB), {
    repository: REPOSITORY,
    branch: "main",
    head: { sha, message: "hosts: small", author: "Codertocat", committedAt: "2026-12-06T09:30:00Z", tree },
    lockHash: "c".repeat(64),
    lockLastModified: {},
    lockProblem: null,
    updatedAt: STATE_READ_AT,
    source: "schedule",
  });
}

beforeEach(async () => {
  await resetGitHubTables();
  await env.DB.prepare("delete from desired_publications").run();
});

describe("the fleet target before the first byte", () => {
  it("reads the branch, the update PRs with their CI and main's publications in one round trip", async () => {
    const db = openDatabase(env.DB);
    await saveMain(MAIN, TREE);
    // Open update PRs, newest first: #3 is the offer, #2 superseded by it; #5 is an ordinary PR, #4 targets another branch.
    await savePullRequest(db, pull(2, {}));
    await savePullRequest(db, pull(3, {}));
    await savePullRequest(db, pull(5, { isUpdatePr: false }));
    await savePullRequest(db, pull(4, { baseRef: "staging" }));
    // Merged in the same second the branch was read (so before it) and a second after it: only the later one is news.
    await savePullRequest(db, pull(1, { state: "merged", mergedAt: "2026-12-06T10:00:00Z", mergeCommitSha: OLDER }));
    await savePullRequest(db, pull(6, { state: "merged", mergedAt: "2026-12-06T10:00:01Z", mergeCommitSha: "66".repeat(20) }));
    await saveCommitCheck(db, REPOSITORY, { sha: pull(3, {}).headSha, kind: "check_run", name: "build", outcome: "success", ordinal: 1, updatedAt: "2026-12-06T09:00:00Z" });
    await saveCommitCheck(db, REPOSITORY, { sha: pull(2, {}).headSha, kind: "check_run", name: "build", outcome: "failure", ordinal: 1, updatedAt: "2026-12-06T09:00:00Z" });
    await savePublication(db, { commit: MAIN, hosts: { "by-commit": path("a") }, tree: TREE, by: "ci" }, "2026-12-06T10:01:00.000Z");
    await savePublication(db, { commit: "9b".repeat(20), hosts: { "by-tree": path("b") }, tree: TREE, by: "ci" }, "2026-12-06T10:02:00.000Z");
    await savePublication(db, { commit: OLDER, hosts: { elsewhere: path("c") }, tree: null, by: "ci" }, "2026-12-06T10:03:00.000Z");

    const { d1, trips } = countingD1(env.DB);
    const target = await loadFleetTargetWithPublished(openDatabase(d1));
    expect(trips).toEqual(["batch of 4"]);

    expect(target.repo).toMatchObject({ repository: REPOSITORY, branch: "main", head: { sha: MAIN, tree: TREE } });
    expect(target.updatePrs.map((pr) => [pr.number, pr.state, pr.superseded, pr.ciState])).toEqual([
      [6, "merged", false, "unknown"],
      [3, "open", false, "success"],
      [2, "open", true, "failure"],
    ]);
    expect([...target.published].sort()).toEqual([
      ["by-commit", path("a")],
      ["by-tree", path("b")],
    ]);
    // The same target without the publications, in one round trip too.
    const alone = countingD1(env.DB);
    const { published: _published, ...withoutPublished } = target;
    expect(await loadFleetTarget(openDatabase(alone.d1))).toEqual(withoutPublished);
    expect(alone.trips).toEqual(["batch of 3"]);
  });

  it("takes the publications of the head the same read names, and none while main's head is unknown", async () => {
    const db = openDatabase(env.DB);
    await saveMain(MAIN, TREE);
    await savePublication(db, { commit: MAIN, hosts: { small: path("a") }, tree: TREE, by: "ci" }, "2026-12-06T10:01:00.000Z");
    expect([...(await loadFleetTargetWithPublished(db)).published]).toEqual([["small", path("a")]]);
    // Main moved to a commit of another tree: what was published for the old head is not the new one's.
    await saveMain(OLDER, null);
    expect((await loadFleetTargetWithPublished(db)).published.size).toBe(0);
    await saveMain(MAIN, null);
    expect([...(await loadFleetTargetWithPublished(db)).published]).toEqual([["small", path("a")]]);
  });

  it("with no branch state yet, offers the open update PRs already heard of, and nothing merged", async () => {
    const db = openDatabase(env.DB);
    await savePullRequest(db, pull(2, {}));
    await savePullRequest(db, pull(3, { baseRef: "staging" }));
    await savePullRequest(db, pull(6, { state: "merged", mergedAt: "2026-12-06T10:00:01Z" }));
    await savePublication(db, { commit: MAIN, hosts: { small: path("a") }, tree: TREE, by: "ci" }, "2026-12-06T10:01:00.000Z");
    const target = await loadFleetTargetWithPublished(db);
    expect(target.repo).toBeNull();
    expect(target.updatePrs.map((pr) => [pr.number, pr.superseded])).toEqual([
      [3, false],
      [2, true],
    ]);
    expect(target.published.size).toBe(0);
  });
});
