import { describe, expect, it } from "vitest";
import { commandDuration, formatAge, formatDay, formatDuration, lockDiffNote, presenceLabel, shortSha, storePathName } from "../../ui/common/format.ts";

const now = Date.parse("2025-12-10T12:00:00Z");
const ago = (ms: number) => new Date(now - ms).toISOString();

describe("formatAge", () => {
  it("says just now for the last 45 seconds and for clock skew into the future", () => {
    expect(formatAge(ago(10_000), now)).toBe("just now");
    expect(formatAge(ago(-60_000), now)).toBe("just now");
  });
  it("counts minutes under an hour, hours under two days, days after", () => {
    expect(formatAge(ago(4 * 60_000), now)).toBe("4 min ago");
    expect(formatAge(ago(3 * 3_600_000 + 59 * 60_000), now)).toBe("3 h ago");
    expect(formatAge(ago(47 * 3_600_000), now)).toBe("47 h ago");
    expect(formatAge(ago(5 * 86_400_000), now)).toBe("5 days ago");
  });
  it("says never for a missing or unreadable time", () => {
    expect(formatAge(null, now)).toBe("never");
    expect(formatAge("not a date", now)).toBe("never");
  });
});

describe("formatDuration", () => {
  it("uses the two largest units that matter", () => {
    expect(formatDuration(850)).toBe("850 ms");
    expect(formatDuration(12_400)).toBe("12 s");
    expect(formatDuration(184_000)).toBe("3 min 4 s");
    expect(formatDuration(180_000)).toBe("3 min");
    expect(formatDuration(3_720_000)).toBe("1 h 2 min");
    expect(formatDuration(86_400_000 + 4 * 3_600_000)).toBe("1 day 4 h");
    expect(formatDuration(3 * 86_400_000)).toBe("3 days");
  });
});

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
  it("shortens shas and store paths and dates", () => {
    expect(shortSha("0123456789abcdef0123456789abcdef01234567")).toBe("0123456");
    expect(shortSha(null)).toBe("—");
    expect(storePathName("/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-hsb0-25.05")).toBe("nixos-system-hsb0-25.05");
    expect(storePathName("/run/current-system")).toBe("/run/current-system");
    expect(formatDay("2025-12-10T23:59:00Z")).toBe("2025-12-10");
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
