/**
 * The small words (common/text.ts) that the worker, the compartments and the dashboard share: counts,
 * ages, durations, clock times, the telling line of an error.
 */
import { describe, expect, it } from "vitest";
import {
  errorLines,
  formatBytes,
  formatAge,
  formatDuration,
  plural,
  pluralWord,
  roughDuration,
  storePathName,
  utcClock,
  utcDay,
} from "../../common/text.ts";

const now = Date.parse("2025-12-10T12:00:00Z");
const ago = (ms: number) => new Date(now - ms).toISOString();

describe("plural", () => {
  it("counts one thing in the singular and any other number in the plural, irregular plurals given", () => {
    expect(plural(1, "host")).toBe("1 host");
    expect(plural(0, "host")).toBe("0 hosts");
    expect(plural(3, "host")).toBe("3 hosts");
    expect(plural(2, "try", "tries")).toBe("2 tries");
    expect(plural(1, "try", "tries")).toBe("1 try");
    expect(pluralWord(1, "is", "are")).toBe("is");
    expect(pluralWord(2, "is", "are")).toBe("are");
  });
});

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

describe("roughDuration", () => {
  it("keeps one unit, rounded down: minutes under an hour, hours under two days, then days", () => {
    expect(roughDuration(30_000)).toBe("less than a minute");
    expect(roughDuration(-5_000)).toBe("less than a minute");
    expect(roughDuration(59 * 60_000 + 59_000)).toBe("59 min");
    expect(roughDuration(3 * 3_600_000 + 59 * 60_000)).toBe("3 h");
    expect(roughDuration(47 * 3_600_000)).toBe("47 h");
    expect(roughDuration(5 * 86_400_000)).toBe("5 days");
  });
  it("spells the units out for a sentence, one of a unit in the singular", () => {
    expect(roughDuration(60_000, "long")).toBe("1 minute");
    expect(roughDuration(45 * 60_000, "long")).toBe("45 minutes");
    expect(roughDuration(90 * 60_000, "long")).toBe("1 hour");
    expect(roughDuration(4 * 3_600_000, "long")).toBe("4 hours");
    expect(roughDuration(50 * 3_600_000, "long")).toBe("2 days");
  });
});

describe("clock times", () => {
  it("writes UTC clock times with the date only when it is not today's", () => {
    expect(utcClock("2025-12-10T09:05:00Z", now)).toBe("09:05 UTC");
    expect(utcClock("2025-12-09T23:59:00Z", now)).toBe("2025-12-09 23:59 UTC");
    expect(utcDay("2025-12-10T23:59:00Z")).toBe("2025-12-10");
    expect(utcDay(null)).toBe("—");
  });
});

describe("errors and store paths", () => {
  it("reads an error's lines without colours or blank lines", () => {
    expect(errorLines("\u001b[31;1merror:\u001b[0m it broke\r\n\n  second  \n")).toEqual(["error: it broke", "second"]);
    expect(errorLines(null)).toEqual([]);
  });
  it("names a store path by what follows its hash", () => {
    expect(storePathName("/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-hsb0-25.05")).toBe("nixos-system-hsb0-25.05");
    expect(storePathName("/run/current-system")).toBe("/run/current-system");
  });
});

describe("sizes", () => {
  it("writes free and needed space in binary units, one decimal below 10 and none above", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(38 * 1024 ** 2)).toBe("38 MiB");
    expect(formatBytes(38.4 * 1024 ** 2)).toBe("38 MiB");
    expect(formatBytes(1.2 * 1024 ** 3)).toBe("1.2 GiB");
    expect(formatBytes(2 * 1024 ** 3)).toBe("2 GiB");
    expect(formatBytes(1023.9 * 1024 ** 2)).toBe("1 GiB");
    expect(formatBytes(-5)).toBe("0 B");
  });
});
