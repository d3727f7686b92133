import { describe, expect, it } from "vitest";
import { commandDuration, lockDiffNote, presenceLabel, shortSha } from "../../ui/common/format.ts";

const now = Date.parse("2025-12-10T12:00:00Z");
const ago = (ms: number) => new Date(now - ms).toISOString();

describe("commandDuration", () => {
  it("runs from start to finish, or to now while the command runs, and is null before it started", () => {
    const started = { startedAt: ago(90_000), deliveredAt: ago(95_000), finishedAt: ago(30_000) };
    expect(commandDuration(started, now)).toBe(60_000);
    expect(commandDuration({ ...started, finishedAt: null }, now)).toBe(90_000);
    expect(commandDuration({ startedAt: null, deliveredAt: ago(5_000), finishedAt: null }, now)).toBe(5_000);
    expect(commandDuration({ startedAt: null, deliveredAt: null, finishedAt: null }, now)).toBeNull();
  });
});

describe("presenceLabel", () => {
  it("reads online, offline with the age of the last contact, or never connected", () => {
    expect(presenceLabel({ online: true, lastSeenAt: ago(1000) }, now)).toBe("online");
    expect(presenceLabel({ online: false, lastSeenAt: ago(3 * 3_600_000) }, now)).toBe("offline · 3 h ago");
    expect(presenceLabel({ online: false, lastSeenAt: null }, now)).toBe("never connected");
  });
});

describe("short forms", () => {
  it("shortens shas, with a dash for none", () => {
    expect(shortSha("0123456789abcdef0123456789abcdef01234567")).toBe("0123456");
    expect(shortSha(null)).toBe("—");
  });
});

describe("lockDiffNote", () => {
  const change = { input: "nixpkgs", kind: "updated" as const, old: null, new: null, compareUrl: null, commits: null };
  it("says the lock changes are being read rather than that there are none", () => {
    expect(lockDiffNote({ lockDiff: "pending", lockDiffProblem: null, lockChanges: [] })).toBe("Reading this PR's flake.lock changes…");
  });
  it("says why the lock changes could not be read", () => {
    expect(lockDiffNote({ lockDiff: "failed", lockDiffProblem: "flake.lock not found at the PR's head", lockChanges: [] })).toBe(
      "This PR's flake.lock changes could not be read: flake.lock not found at the PR's head",
    );
  });
  it("says there are no changes only once they were read, and nothing when there are some", () => {
    expect(lockDiffNote({ lockDiff: "ready", lockDiffProblem: null, lockChanges: [] })).toBe("No input changes found in this PR's flake.lock.");
    expect(lockDiffNote({ lockDiff: "ready", lockDiffProblem: null, lockChanges: [change] })).toBeNull();
  });
});
