/** The desired system in the protocol: what a host reports of main, and what CI publishes for small hosts. */
import { describe, expect, it } from "vitest";
import { DesiredPublication, DesiredReport, DesiredSystem, PollResponse } from "../../common/protocol.ts";

const commit = "0123456789abcdef0123456789abcdef01234567";
const outPath = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-h1-25.05";
const evaluatedAt = "2026-12-06T10:00:00.000Z";

describe("the desired system in the protocol", () => {
  it("is either a store path or nix's error, never both", () => {
    expect(DesiredSystem.parse({ commit, evaluatedAt, outPath })).toMatchObject({ outPath, tree: null, changes: null });
    expect(DesiredSystem.parse({ commit, evaluatedAt, error: "attribute 'h9' missing" })).toMatchObject({ error: "attribute 'h9' missing" });
    expect(DesiredSystem.safeParse({ commit, evaluatedAt, outPath, error: "both" }).success).toBe(false);
    expect(DesiredSystem.safeParse({ commit, evaluatedAt }).success).toBe(false);
  });

  it("refuses a path outside the Nix store and an abbreviated commit", () => {
    expect(DesiredSystem.safeParse({ commit, evaluatedAt, outPath: "/tmp/result" }).success).toBe(false);
    expect(DesiredSystem.safeParse({ commit: "0123abc", evaluatedAt, outPath }).success).toBe(false);
  });

  it("carries the closure diff against a running store path, bounded as a fleet build's; older agents' systems without it still parse", () => {
    const closureDiff = { entries: [{ name: "hello", old: ["1.0"], new: ["1.1"], sizeDelta: 28_672 }], omitted: 0, totalSizeDelta: 28_900, comparedWith: outPath.replace("h1", "h0") };
    expect(DesiredSystem.parse({ commit, evaluatedAt, outPath, changes: { toBuild: 0, toFetch: 0 }, closureDiff })).toMatchObject({ closureDiff });
    expect(DesiredSystem.parse({ commit, evaluatedAt, outPath })).not.toHaveProperty("closureDiff");
    expect(DesiredSystem.safeParse({ commit, evaluatedAt, outPath, closureDiff: { ...closureDiff, comparedWith: "/run/current-system" } }).success).toBe(false);
    const tooMany = Array.from({ length: 2001 }, (_, i) => ({ name: `p${i}`, old: ["1"], new: ["2"], sizeDelta: 0 }));
    expect(DesiredSystem.safeParse({ commit, evaluatedAt, outPath, closureDiff: { ...closureDiff, entries: tooMany } }).success).toBe(false);
    expect(DesiredSystem.safeParse({ commit, evaluatedAt, error: "attribute 'h9' missing", closureDiff }).success).toBe(false);
  });

  it("carries the dry run's download size in whole bytes; an older agent's counts without it parse as an unknown size", () => {
    expect(DesiredSystem.parse({ commit, evaluatedAt, outPath, changes: { toBuild: 0, toFetch: 3, downloadBytes: 4_498_391 } })).toMatchObject({ changes: { downloadBytes: 4_498_391 } });
    expect(DesiredSystem.parse({ commit, evaluatedAt, outPath, changes: { toBuild: 1, toFetch: 2 } })).toMatchObject({ changes: { toBuild: 1, toFetch: 2, downloadBytes: null } });
    for (const downloadBytes of [-1, 1.5, "4 MiB"]) expect(DesiredSystem.safeParse({ commit, evaluatedAt, outPath, changes: { toBuild: 0, toFetch: 1, downloadBytes } }).success).toBe(false);
  });

  it("a report's desired section says where it comes from and what is being evaluated", () => {
    const report = DesiredReport.parse({ source: "ci", latest: null });
    expect(report).toEqual({ source: "ci", latest: null, evaluating: null });
    expect(DesiredReport.safeParse({ source: "elsewhere", latest: null }).success).toBe(false);
  });

  it("a poll answer from an older control plane, without main, still parses", () => {
    const answer = { protocol: 1, commands: [], pollTimeoutSeconds: 25 };
    expect(PollResponse.parse(answer).main).toBeUndefined();
    expect(PollResponse.parse({ ...answer, main: { branch: "main", commit } }).main).toEqual({ branch: "main", commit });
  });

  it("CI's publication names at least one host, each with a store path", () => {
    expect(DesiredPublication.parse({ commit, hosts: { h1: outPath } }).hosts).toEqual({ h1: outPath });
    expect(DesiredPublication.safeParse({ commit, hosts: {} }).success).toBe(false);
    expect(DesiredPublication.safeParse({ commit, hosts: { h1: "not-a-path" } }).success).toBe(false);
    expect(DesiredPublication.safeParse({ commit, hosts: { h1: outPath }, extra: 1 }).success).toBe(false);
  });
});
