import { describe, expect, it } from "vitest";
import type { ClosureDiff } from "../../common/protocol.ts";
import { buildMark, closureSummary, currentBuild, describeClosureEntry, failedBuildHosts, hostBuild, hostBuildNote } from "../../ui/common/fleet-build.ts";
import { hostBuildDetail } from "../../ui/common/fleet-build-lines.ts";
import { formatSize, formatSizeDelta } from "../../ui/common/format.ts";
import { fleetBuild, updatePr } from "./fixtures.ts";

const MiB = 1024 * 1024;
const now = Date.parse("2025-12-01T10:05:00.000Z");

const diff = (entries: ClosureDiff["entries"], totalSizeDelta: number, omitted = 0): ClosureDiff => ({ entries, totalSizeDelta, omitted });
const openssl = { name: "openssl", old: ["3.0.14"], new: ["3.0.15"], sizeDelta: 2 * 1024 };
const firefox = { name: "firefox", old: ["131.0"], new: ["132.0"], sizeDelta: 12 * MiB };

describe("sizes", () => {
  it("in binary units with one decimal, like nix store diff-closures", () => {
    expect(formatSize(512)).toBe("512 B");
    expect(formatSize(8 * 1024)).toBe("8.0 KiB");
    expect(formatSize(Math.round(12.4 * MiB))).toBe("12.4 MiB");
    expect(formatSize(3 * 1024 * MiB)).toBe("3.0 GiB");
  });
  it("a change carries its sign, and no change says so", () => {
    expect(formatSizeDelta(Math.round(12.4 * MiB))).toBe("+12.4 MiB");
    expect(formatSizeDelta(-3 * 1024)).toBe("-3.0 KiB");
    expect(formatSizeDelta(0)).toBe("±0 B");
  });
});

describe("one package's change", () => {
  it("versions before and after, added, removed, a path without a version, or only the size", () => {
    expect(describeClosureEntry(openssl)).toBe("openssl 3.0.14 → 3.0.15");
    expect(describeClosureEntry({ name: "libfoo", old: [], new: ["1.2"], sizeDelta: 0 })).toBe("libfoo 1.2 (added)");
    expect(describeClosureEntry({ name: "libbar", old: ["0.9"], new: [], sizeDelta: 0 })).toBe("libbar 0.9 (removed)");
    expect(describeClosureEntry({ name: "etc", old: [""], new: ["1"], sizeDelta: 0 })).toBe("etc ε → 1");
    expect(describeClosureEntry({ name: "python3", old: ["3.11.9", "3.12.4"], new: ["3.12.5"], sizeDelta: 0 })).toBe("python3 3.11.9, 3.12.4 → 3.12.5");
    expect(describeClosureEntry({ name: "glibc", old: ["2.39"], new: ["2.39"], sizeDelta: 1024 * 1024 })).toBe("glibc +1.0 MiB");
  });
});

describe("what the update changes, in one line", () => {
  it("names the version changes with the closure's size change", () => {
    expect(closureSummary(diff([openssl, firefox], Math.round(12.4 * MiB)))).toBe("openssl 3.0.14 → 3.0.15, firefox 131.0 → 132.0 (+12.4 MiB)");
  });
  it("leaves size-only changes to the full diff and counts what it does not name, omitted entries too", () => {
    const sizeOnly = { name: "glibc", old: ["2.39"], new: ["2.39"], sizeDelta: 40 * 1024 };
    const more = ["a", "b", "c"].map((name) => ({ name, old: ["1"], new: ["2"], sizeDelta: 0 }));
    expect(closureSummary(diff([sizeOnly, openssl, ...more], 4096, 2))).toBe("openssl 3.0.14 → 3.0.15, a 1 → 2, b 1 → 2 and 3 more (+4.0 KiB)");
  });
  it("says when no version changes", () => {
    expect(closureSummary(diff([], -8192))).toBe("no package version changes (-8.0 KiB)");
  });
});

describe("each host's line on the banner", () => {
  it("a built host: how long and how much bigger; a building one: how long so far; the others: why", () => {
    const build = fleetBuild([
      { name: "web1", state: "built", durationMs: 41_000, closureDiff: diff([firefox], Math.round(12.4 * MiB)) },
      { name: "web2", state: "building", startedAt: "2025-12-01T10:04:48.000Z" },
      { name: "web3", state: "failed", reason: "error: hash mismatch", commandId: "cmd_web3build000001" },
      { name: "web4", state: "offline", reason: "offline when the build started: built when it comes back" },
      { name: "web5", state: "built", durationMs: 9_000, closureDiff: null, closureDiffProblem: "no running system" },
    ]);
    const detail = (name: string) => hostBuildDetail(hostBuild(build, name)!, now);
    expect(detail("web1")).toBe("in 41 s (+12.4 MiB)");
    expect(detail("web2")).toBe("12 s so far");
    expect(detail("web3")).toBe("error: hash mismatch");
    expect(detail("web4")).toBe("offline when the build started: built when it comes back");
    expect(detail("web5")).toBe("in 9 s");
    expect(hostBuild(build, "db1")).toBeNull();
  });
});

describe("what the update means for one host (Lock tooltip, host page)", () => {
  it("built: the update builds and what it changes", () => {
    const host = hostBuild(fleetBuild([{ name: "web1", state: "built", closureDiff: diff([openssl, firefox], Math.round(12.4 * MiB)) }]), "web1");
    expect(hostBuildNote(host)).toBe("The update builds on this host; it changes: openssl 3.0.14 → 3.0.15, firefox 131.0 → 132.0 (+12.4 MiB).");
  });
  it("built without a diff says why the changes are unknown", () => {
    const host = hostBuild(fleetBuild([{ name: "web1", state: "built", closureDiff: null, closureDiffProblem: "no running system to compare with" }]), "web1");
    expect(hostBuildNote(host)).toBe("The update builds on this host (what it changes is unknown: no running system to compare with).");
  });
  it("failed, building, waiting, offline and cancelled each say so, with the reason", () => {
    const build = fleetBuild([
      { name: "a", state: "failed", reason: "error: builder failed" },
      { name: "b", state: "building" },
      { name: "c", state: "waiting", reason: "waiting for switch to end" },
      { name: "d", state: "offline" },
      { name: "e", state: "cancelled", reason: "a newer head" },
    ]);
    const note = (name: string) => hostBuildNote(hostBuild(build, name));
    expect(note("a")).toBe("The update does not build on this host: error: builder failed.");
    expect(note("b")).toBe("The update is building on this host.");
    expect(note("c")).toBe("The update's build on this host is waiting: waiting for switch to end.");
    expect(note("d")).toBe("The update has not been built on this host: offline.");
    expect(note("e")).toBe("The update's build on this host was cancelled: a newer head.");
    expect(hostBuildNote(null)).toBeNull();
  });
});

describe("the build that answers the PR", () => {
  it("is the build of the PR's current head, never an older head's", () => {
    const build = fleetBuild([{ name: "web1", state: "built" }]);
    expect(currentBuild(updatePr({ fleetBuild: build }))).toEqual(build);
    expect(currentBuild(updatePr({ fleetBuild: build, headSha: "b".repeat(40) }))).toBeNull();
    expect(currentBuild(updatePr())).toBeNull();
    expect(currentBuild(null)).toBeNull();
  });
});

describe("the deploy confirmation's marks", () => {
  it("built with its size, failed, in progress, not built; the failed hosts listed", () => {
    const build = fleetBuild([
      { name: "a", state: "built", closureDiff: diff([], 2 * MiB) },
      { name: "b", state: "failed", reason: "error" },
      { name: "c", state: "building" },
      { name: "d", state: "queued" },
      { name: "e", state: "offline" },
      { name: "f", state: "failed", counted: false, reason: "error" },
    ]);
    const mark = (name: string) => buildMark(hostBuild(build, name));
    expect(mark("a")).toEqual({ text: "✓ built, +2.0 MiB", tone: "good" });
    expect(mark("b")).toEqual({ text: "✗ build failed", tone: "bad" });
    expect(mark("c")).toEqual({ text: "building…", tone: "busy" });
    expect(mark("d")).toEqual({ text: "build queued", tone: "busy" });
    expect(mark("e")).toEqual({ text: "not built (offline)", tone: "warn" });
    expect(buildMark(null)).toBeNull();
    // A host that does not count toward the verdict is still left out of the deploy when its build failed.
    expect(failedBuildHosts(build)).toEqual(["b", "f"]);
    expect(failedBuildHosts(null)).toEqual([]);
  });
});
