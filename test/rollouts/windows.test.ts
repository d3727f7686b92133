/**
 * Maintenance windows on their own wall clock: inside or not, the next opening across Vienna's DST
 * changes (last Sunday of March and of October 2026), midnight-crossing windows, which windows govern
 * a host, the texts, and the schema.
 */
import { describe, expect, it } from "vitest";
import { MaintenanceWindow } from "../../common/protocol.ts";
import {
  describeOpening,
  describeWindow,
  isInsideWindow,
  isOpen,
  nextOpening,
  nextOpeningOf,
  windowsForHost,
} from "../../worker/rollouts/windows.ts";

type Day = MaintenanceWindow["days"][number];
const win = (days: Day[], start: string, end: string, timeZone = "Europe/Vienna", hosts?: string[]): MaintenanceWindow =>
  MaintenanceWindow.parse({ days, start, end, timeZone, ...(hosts === undefined ? {} : { hosts }) });
const at = (iso: string) => new Date(iso);

describe("isInsideWindow", () => {
  const sat = win(["sat"], "02:00", "04:00");
  const overnight = win(["fri"], "23:00", "02:00");
  it.each([
    { name: "summer: Sat 02:00 CEST is 00:00Z", window: sat, instant: "2026-06-06T00:00:00Z", inside: true },
    { name: "summer: a minute before the start", window: sat, instant: "2026-06-05T23:59:00Z", inside: false },
    { name: "summer: the end is exclusive", window: sat, instant: "2026-06-06T02:00:00Z", inside: false },
    { name: "summer: the last minute is inside", window: sat, instant: "2026-06-06T01:59:59Z", inside: true },
    { name: "winter: Sat 02:00 CET is 01:00Z", window: sat, instant: "2026-01-10T01:00:00Z", inside: true },
    { name: "winter: 00:30Z is still 01:30 local", window: sat, instant: "2026-01-10T00:30:00Z", inside: false },
    { name: "another day at the same time", window: sat, instant: "2026-06-07T00:30:00Z", inside: false },
    { name: "crossing midnight: Fri 23:30 local", window: overnight, instant: "2026-06-05T21:30:00Z", inside: true },
    { name: "crossing midnight: Sat 01:30 local belongs to Friday's window", window: overnight, instant: "2026-06-05T23:30:00Z", inside: true },
    { name: "crossing midnight: Sat 02:00 local is the end", window: overnight, instant: "2026-06-06T00:00:00Z", inside: false },
    { name: "crossing midnight: Fri 01:30 local belongs to Thursday, not listed", window: overnight, instant: "2026-06-04T23:30:00Z", inside: false },
    { name: "UTC window", window: win(["mon", "tue"], "22:00", "06:00", "UTC"), instant: "2026-06-09T05:59:00Z", inside: true },
  ])("$name → $inside", ({ window, instant, inside }) => {
    expect(isInsideWindow(window, at(instant))).toBe(inside);
  });
});

describe("nextOpening across DST (Europe/Vienna, 2026-03-29 and 2026-10-25)", () => {
  it.each([
    { name: "Sat 02:00 the week before spring-forward opens at 01:00Z (CET)", window: win(["sat"], "02:00", "04:00"), from: "2026-03-21T12:00:00Z", opens: "2026-03-28T01:00:00Z" },
    { name: "Sat 02:00 the week after spring-forward opens at 00:00Z (CEST)", window: win(["sat"], "02:00", "04:00"), from: "2026-03-29T12:00:00Z", opens: "2026-04-04T00:00:00Z" },
    { name: "Sun 04:00 on the change day is after it: 02:00Z", window: win(["sun"], "04:00", "05:00"), from: "2026-03-28T12:00:00Z", opens: "2026-03-29T02:00:00Z" },
    { name: "Sun 02:30 is skipped by the clock: the window opens when the gap ends, 03:00 local = 01:00Z", window: win(["sun"], "02:30", "04:00"), from: "2026-03-28T12:00:00Z", opens: "2026-03-29T01:00:00Z" },
    { name: "Sun 02:00–02:30 lies wholly in the gap: it opens the Sunday after", window: win(["sun"], "02:00", "02:30"), from: "2026-03-28T12:00:00Z", opens: "2026-04-05T00:00:00Z" },
    { name: "Sun 02:30 happens twice at fall-back: the first, 00:30Z (CEST)", window: win(["sun"], "02:30", "04:00"), from: "2026-10-24T12:00:00Z", opens: "2026-10-25T00:30:00Z" },
    { name: "Sat 02:00 the week after fall-back: 01:00Z (CET)", window: win(["sat"], "02:00", "04:00"), from: "2026-10-24T12:00:00Z", opens: "2026-10-31T01:00:00Z" },
    { name: "a midnight-crossing window over fall-back opens Sat 23:00 CEST = 21:00Z", window: win(["sat"], "23:00", "03:00"), from: "2026-10-24T12:00:00Z", opens: "2026-10-24T21:00:00Z" },
    { name: "later the same day", window: win(["fri"], "22:00", "23:00"), from: "2026-06-05T10:00:00Z", opens: "2026-06-05T20:00:00Z" },
    { name: "inside now: now", window: win(["fri"], "11:00", "13:00"), from: "2026-06-05T10:00:00Z", opens: "2026-06-05T10:00:00Z" },
  ])("$name", ({ window, from, opens }) => {
    const next = nextOpening([window], at(from));
    expect(next?.toISOString()).toBe(new Date(opens).toISOString());
    expect(isInsideWindow(window, next!)).toBe(true);
  });

  it("picks the window that opens first, and says which", () => {
    const later = win(["sun"], "02:00", "04:00");
    const sooner = win(["sat"], "05:00", "06:00", "America/New_York");
    const next = nextOpeningOf([later, sooner], at("2026-06-05T10:00:00Z"));
    expect(next?.at.toISOString()).toBe("2026-06-06T09:00:00.000Z");
    expect(next?.window).toBe(sooner);
  });

  it("no windows: always open", () => {
    expect(isOpen([], at("2026-06-05T10:00:00Z"))).toBe(true);
    expect(nextOpening([], at("2026-06-05T10:00:00Z"))?.toISOString()).toBe("2026-06-05T10:00:00.000Z");
  });
});

describe("a host's windows", () => {
  const fleet = win(["sat"], "02:00", "04:00");
  const own = win(["sun"], "03:00", "05:00", "UTC", ["hsb0"]);
  it.each([
    { name: "a window naming the host replaces the fleet's", host: "hsb0", windows: [fleet, own], expected: [own] },
    { name: "other hosts get the fleet's", host: "hsb1", windows: [fleet, own], expected: [fleet] },
    { name: "no fleet window: hosts not named are always open", host: "hsb1", windows: [own], expected: [] },
  ])("$name", ({ host, windows, expected }) => {
    expect(windowsForHost(windows, host)).toEqual(expected);
  });
});

describe("texts", () => {
  it.each([
    { window: win(["sat"], "02:00", "04:00"), text: "Sat 02:00–04:00 Europe/Vienna" },
    { window: win(["sun", "sat"], "02:00", "04:00"), text: "Sat, Sun 02:00–04:00 Europe/Vienna" },
    { window: win(["fri", "mon", "wed", "tue", "thu"], "22:00", "06:00", "UTC"), text: "Mon–Fri 22:00–06:00 UTC" },
    { window: win(["mon", "tue", "thu"], "01:00", "02:00", "UTC"), text: "Mon, Tue, Thu 01:00–02:00 UTC" },
  ])("describes $text", ({ window, text }) => {
    expect(describeWindow(window)).toBe(text);
  });

  it("names an opening on the window's own clock", () => {
    const window = win(["sat"], "02:00", "04:00");
    expect(describeOpening(window, nextOpening([window], at("2026-06-05T10:00:00Z"))!)).toBe("Sat 02:00 Europe/Vienna");
    const gap = win(["sun"], "02:30", "04:00");
    expect(describeOpening(gap, nextOpening([gap], at("2026-03-28T12:00:00Z"))!)).toBe("Sun 03:00 Europe/Vienna");
  });
});

describe("the MaintenanceWindow schema", () => {
  it.each([
    { name: "an unknown time zone", input: { days: ["sat"], start: "02:00", end: "04:00", timeZone: "Europe/Atlantis" }, message: /IANA time zone/ },
    { name: "a time past 23:59", input: { days: ["sat"], start: "24:00", end: "04:00", timeZone: "UTC" }, message: /HH:MM/ },
    { name: "a time without leading zero", input: { days: ["sat"], start: "2:00", end: "04:00", timeZone: "UTC" }, message: /HH:MM/ },
    { name: "no days", input: { days: [], start: "02:00", end: "04:00", timeZone: "UTC" }, message: /at least one day/ },
    { name: "an unknown day", input: { days: ["saturday"], start: "02:00", end: "04:00", timeZone: "UTC" }, message: /./ },
    { name: "start equal to end", input: { days: ["sat"], start: "02:00", end: "02:00", timeZone: "UTC" }, message: /same time/ },
    { name: "an unknown field", input: { days: ["sat"], start: "02:00", end: "04:00", timeZone: "UTC", tz: "x" }, message: /./ },
  ])("refuses $name", ({ input, message }) => {
    const parsed = MaintenanceWindow.safeParse(input);
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues.map((i) => i.message).join("; ")).toMatch(message);
  });
});
