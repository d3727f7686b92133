/**
 * System from the desired system at main's head (docs/compartments.md "System"): green when the host
 * runs main's system, yellow with what a switch would build and fetch, red when main does not build
 * on the host (its evaluation failed, or a fleet build of main's tree failed there), gray with the
 * reason while it is not known. An evaluation of an older commit counts only when its tree is main's.
 */
import { describe, expect, it } from "vitest";
import { desiredClosureDiff } from "../../common/compartments/desired-closure-diff.ts";
import type { ClosureDiffEntry, DesiredChanges, DesiredClosureDiff, DesiredReport } from "../../common/protocol.ts";
import { buildCommand, minutesAgo, sha } from "./builders.ts";
import { B, COMMIT, G, R, SYSTEM, W, Y, compute, hostReport, hsb0, mainAt } from "./world.ts";

const TREE = { config: sha("tree of hsb0: enable restic backups"), lockB: sha("tree of #42's merge") } as const;
const evaluatedAt = minutesAgo(2);
const NIX_ERROR = "error: attribute 'resticc' missing\n\n       at /nix/store/…-source/hosts/hsb0.nix:12:5:";

const outPath = (
  commit: string,
  path: string,
  tree: string | null = null,
  changes: DesiredChanges | null = null,
  closureDiff?: DesiredClosureDiff,
): DesiredReport => ({
  source: "local",
  latest: { commit, tree, evaluatedAt, outPath: path, changes, ...(closureDiff === undefined ? {} : { closureDiff }) },
  evaluating: null,
});
const evalError = (commit: string, tree: string | null = null): DesiredReport => ({
  source: "local",
  latest: { commit, tree, evaluatedAt, error: NIX_ERROR },
  evaluating: null,
});

/** hsb0 running the system built from `built`, main at `head` (with its tree), reporting `desired`. */
function withDesired(desired: DesiredReport, built: "lockA" | "config" | "lockB" = "config", head: "config" | "lockB" = "config", extra: Parameters<typeof hsb0>[3] = {}) {
  return hsb0("config", built, head, {
    report: hostReport("config", built, { mainDesired: desired }),
    repo: mainAt(head, { headTree: TREE[head] }),
    ...extra,
  });
}

describe("System against main's desired system", () => {
  it("is green when the running store path is main's desired outPath", () => {
    const c = compute(withDesired(outPath(COMMIT.config, SYSTEM.config, TREE.config)));
    expect(c.system).toMatchObject({ state: G, reason: "running main's system", action: null });
  });

  it("is yellow with the dry run's counts when main builds another system, and offers a switch", () => {
    const c = compute(withDesired(outPath(COMMIT.config, SYSTEM.config, TREE.config, { toBuild: 3, toFetch: 41, downloadBytes: 12_897_485 }), "lockA"));
    expect(c.system).toMatchObject({ state: Y, reason: "switch needed: not in the cache, 3 paths to build and 41 to fetch (12 MiB)", action: "switch" });
  });

  it.each([
    ["all of it in the cache: the download", { toBuild: 0, toFetch: 3, downloadBytes: 4_498_391 }, "in the cache, 4.3 MiB to download (3 paths)"],
    ["one path in the cache", { toBuild: 0, toFetch: 1, downloadBytes: 10_486 }, "in the cache, 10 KiB to download (1 path)"],
    ["in the cache, from an agent that does not report the size", { toBuild: 0, toFetch: 2, downloadBytes: null }, "in the cache, 2 paths to fetch"],
    ["nothing in the cache", { toBuild: 1, toFetch: 0, downloadBytes: 0 }, "not in the cache, 1 path to build"],
    ["partly in the cache, the size unknown", { toBuild: 2, toFetch: 5, downloadBytes: null }, "not in the cache, 2 paths to build and 5 to fetch"],
  ] satisfies Array<[string, DesiredChanges, string]>)("says whether main's system is in the cache and what it downloads: %s", (_name, changes, words) => {
    const c = compute(withDesired(outPath(COMMIT.config, SYSTEM.config, TREE.config, changes), "lockA"));
    expect(c.system).toMatchObject({ state: Y, reason: `switch needed: ${words}`, action: "switch" });
  });

  it("says main's system is ready to activate when the dry run has nothing to build or fetch (a fleet build realised it)", () => {
    const c = compute(withDesired(outPath(COMMIT.config, SYSTEM.config, TREE.config, { toBuild: 0, toFetch: 0, downloadBytes: 0 }), "lockA"));
    expect(c.system).toMatchObject({ state: Y, action: "switch" });
    expect(c.system.reason).toMatch(/^switch needed: main's system .+ is built here, ready to activate$/);
  });

  it("names main's system when the dry run's counts are not known", () => {
    const c = compute(withDesired(outPath(COMMIT.config, SYSTEM.config), "lockA"));
    expect(c.system.reason).toBe("switch needed: main builds nixos-system-hsb0-25.05.20251214.3f1a9c2-restic");
  });

  it("is red with nix's first error line when main does not evaluate on the host", () => {
    const c = compute(withDesired(evalError(COMMIT.config, TREE.config)));
    expect(c.system).toMatchObject({ state: R, reason: "main does not build on this host: attribute 'resticc' missing", action: null });
  });

  it("is red when a fleet build of main's tree failed on the host, matched by tree though the build's commit is the PR head", () => {
    const prHead = sha("update_flake_lock_action head");
    const failedBuilds = [{ commit: prHead, tree: TREE.lockB, error: "error: builder for '/nix/store/…-linux-6.6.8.drv' failed with exit code 2" }];
    const c = compute(withDesired(outPath(COMMIT.lockB, SYSTEM.lockB, TREE.lockB), "config", "lockB", { failedBuilds }));
    expect(c.system.state).toBe(R);
    expect(c.system.reason).toBe(`main does not build on this host: its build of ${prHead.slice(0, 7)} failed: builder for '/nix/store/…-linux-6.6.8.drv' failed with exit code 2`);
    // A failed build of another tree says nothing about main.
    const otherTree = [{ ...failedBuilds[0]!, tree: sha("some other tree") }];
    expect(compute(withDesired(outPath(COMMIT.lockB, SYSTEM.lockB, TREE.lockB), "config", "lockB", { failedBuilds: otherTree })).system.state).toBe(Y);
  });

  it("is red from a failed fleet build of main's tree even before the host has evaluated main", () => {
    const failedBuilds = [{ commit: sha("pr head"), tree: TREE.lockB, error: null }];
    const c = compute(withDesired({ source: "local", latest: null, evaluating: null }, "config", "lockB", { failedBuilds }));
    expect(c.system).toMatchObject({ state: R, reason: `main does not build on this host: its build of ${sha("pr head").slice(0, 7)} failed: no error message` });
  });

  it("is gray while the host has not evaluated main, and says when it is evaluating", () => {
    const short = COMMIT.lockB.slice(0, 7);
    expect(compute(withDesired({ source: "local", latest: null, evaluating: null }, "config", "lockB")).system).toMatchObject({
      state: W,
      reason: `unknown: waiting for the host's evaluation of ${short}`,
    });
    expect(compute(withDesired({ source: "local", latest: null, evaluating: COMMIT.lockB }, "config", "lockB")).system.reason).toBe(
      `unknown: the host is evaluating ${short}`,
    );
  });

  it("counts an evaluation of an older commit as unknown for main, and says so", () => {
    const c = compute(withDesired(outPath(COMMIT.config, SYSTEM.config, TREE.config), "config", "lockB"));
    expect(c.system).toMatchObject({
      state: W,
      reason: `unknown: waiting for the host's evaluation of ${COMMIT.lockB.slice(0, 7)}; its last evaluation is of ${COMMIT.config.slice(0, 7)}, an older commit`,
    });
    // Not even a failed older evaluation makes main red.
    expect(compute(withDesired(evalError(COMMIT.config, TREE.config), "config", "lockB")).system.state).toBe(W);
  });

  it("counts an evaluation of an older commit whose tree is main's tree as main's", () => {
    const sameTree = outPath(COMMIT.config, SYSTEM.lockB, TREE.lockB);
    expect(compute(withDesired(sameTree, "lockB", "lockB")).system).toMatchObject({ state: G, reason: "running main's system" });
  });

  it("takes a ci host's desired system from CI's publication for main's commit, and waits for it otherwise", () => {
    const ci: DesiredReport = { source: "ci", latest: null, evaluating: null };
    const published = { commit: COMMIT.config, outPath: SYSTEM.config };
    expect(compute(withDesired(ci, "config", "config", { desiredPublished: published })).system).toMatchObject({ state: G, reason: "running main's system" });
    expect(compute(withDesired(ci, "lockA", "config", { desiredPublished: published })).system).toMatchObject({
      state: Y,
      reason: "switch needed: main builds nixos-system-hsb0-25.05.20251214.3f1a9c2-restic",
    });
    const waiting = `unknown: waiting for CI's evaluation of ${COMMIT.lockB.slice(0, 7)}`;
    expect(compute(withDesired(ci, "config", "lockB", { desiredPublished: published })).system).toMatchObject({ state: W, reason: waiting });
    expect(compute(withDesired(ci, "config", "lockB")).system.reason).toBe(waiting);
  });

  it("keeps the command-driven states: a switch under way is blue, a failed switch red", () => {
    const running = buildCommand({ kind: "switch", state: "running", createdAt: minutesAgo(1) });
    expect(compute(withDesired(outPath(COMMIT.config, SYSTEM.config), "config", "config", { commands: [running] })).system).toMatchObject({ state: B, reason: "switching…" });
    const failed = buildCommand({ kind: "switch", state: "failed", createdAt: minutesAgo(5), error: "error: collision between two packages" });
    expect(compute(withDesired(outPath(COMMIT.config, SYSTEM.config), "lockA", "config", { commands: [failed] })).system).toMatchObject({
      state: R,
      reason: "switch failed: collision between two packages",
    });
  });

  it("adds the reboot note to main's system like to any current one", () => {
    const report = hostReport("config", "config", {
      mainDesired: outPath(COMMIT.config, SYSTEM.config),
      reboot: { value: { needed: true, changed: ["kernel"], kernel: { booted: "6.6.1", next: "6.6.8" } } },
    });
    expect(compute(hsb0("config", "config", "config", { report })).system).toMatchObject({ state: Y, reason: "reboot needed: kernel 6.6.1 → 6.6.8" });
  });

  it("keeps the clone-based rule for an agent that reports no desired system", () => {
    expect(compute(hsb0("config", "config", "config")).system).toMatchObject({ state: G, reason: `running ${COMMIT.config.slice(0, 7)}, the clone's commit` });
  });
});

const version = (name: string, old: string, now: string): ClosureDiffEntry => ({ name, old: old === "" ? [] : [old], new: now === "" ? [] : [now], sizeDelta: 0 });
const sizeOnly = (name: string, sizeDelta: number): ClosureDiffEntry => ({ name, old: [], new: [], sizeDelta });
/** Main's config system, built on hsb0 and compared with the lock-A system it runs. */
const builtHere = (entries: ClosureDiffEntry[], omitted = 0, comparedWith: string = SYSTEM.lockA) =>
  withDesired(outPath(COMMIT.config, SYSTEM.config, TREE.config, { toBuild: 0, toFetch: 0, downloadBytes: 0 }, { entries, omitted, totalSizeDelta: 4096, comparedWith }), "lockA");

describe("System's line once main's system is built on the host (its closure diff against the running system)", () => {
  it.each([
    [
      "names the first version changes and counts the rest",
      [version("linux", "6.6.1", "6.6.8"), version("hello", "1.0", "1.1"), sizeOnly("glibc", 12_288)],
      0,
      "switch needed: 3 packages change (linux 6.6.1 → 6.6.8, hello 1.0 → 1.1 and 1 more), built here",
    ],
    ["says one package in the singular", [version("openssl", "3.0.14", "3.0.15")], 0, "switch needed: 1 package changes (openssl 3.0.14 → 3.0.15), built here"],
    ["says what is added and removed", [version("restic", "", "0.17.3"), version("borg", "1.2", "")], 0, "switch needed: 2 packages change (restic 0.17.3 (added), borg 1.2 (removed)), built here"],
    ["counts the entries the agent left out to stay bounded", [version("linux", "6.6.1", "6.6.8")], 1999, "switch needed: 2000 packages change (linux 6.6.1 → 6.6.8 and 1999 more), built here"],
    ["counts size-only changes without naming them", [sizeOnly("glibc", 12_288), sizeOnly("mesa", -40_960)], 0, "switch needed: 2 packages change (sizes only), built here"],
    [
      "stops naming before the line grows long, but names the first change however long",
      [version("python3.12-a-rather-long-package-name-indeed", "2024.10.15-unstable", "2024.12.01-unstable"), version("hello", "1.0", "1.1")],
      0,
      "switch needed: 2 packages change (python3.12-a-rather-long-package-name-indeed 2024.10.15-unstable → 2024.12.01-unstable and 1 more), built here",
    ],
  ])("%s", (_what, entries, omitted, reason) => {
    expect(compute(builtHere(entries, omitted)).system).toMatchObject({ state: Y, reason, action: "switch" });
  });

  it("says main's system is ready to activate when nix lists no package change", () => {
    expect(compute(builtHere([])).system.reason).toMatch(/^switch needed: main's system .+-restic is built here, ready to activate; no package changes its version$/);
  });

  it("ignores a diff made against a system that no longer runs, and the dashboard is not given it", () => {
    const host = builtHere([version("linux", "6.6.1", "6.6.8")], 0, SYSTEM.lockB);
    expect(compute(host).system.reason).toMatch(/^switch needed: main's system .+ is built here, ready to activate$/);
    expect(desiredClosureDiff(host.report)).toBeNull();
  });

  it("gives the dashboard the diff the line is about, and none once main's system runs", () => {
    const entries = [version("linux", "6.6.1", "6.6.8")];
    expect(desiredClosureDiff(builtHere(entries).report)).toEqual({ entries, omitted: 0, totalSizeDelta: 4096, comparedWith: SYSTEM.lockA });
    const running = hostReport("config", "config", { mainDesired: outPath(COMMIT.config, SYSTEM.config, TREE.config, { toBuild: 0, toFetch: 0, downloadBytes: 0 }, { entries, omitted: 0, totalSizeDelta: 0, comparedWith: SYSTEM.lockA }) });
    expect(compute(hsb0("config", "config", "config", { report: running })).system.state).toBe(G);
    expect(desiredClosureDiff(running)).toBeNull();
  });
});
