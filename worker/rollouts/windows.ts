/**
 * Maintenance windows, on the wall clock of each window's own time zone. Only `Intl.DateTimeFormat` is
 * used (workerd and Node both carry the IANA database), so a DST change moves the window with the
 * clock: "Sat 02:00" is 02:00 in Vienna in summer and in winter. A start time that a spring-forward
 * skips opens the window at the first minute after the gap; a start time that a fall-back repeats opens
 * it at the first of the two.
 */
import { WEEKDAYS, type MaintenanceWindow } from "../../common/protocol.ts";

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
/** Far enough for any listed weekday to come round, even when a DST gap swallows one opening. */
const SEARCH_DAYS = 15;

interface WallClock {
  year: number;
  month: number;
  day: number;
  /** 0 = Monday, as in WEEKDAYS. */
  weekday: number;
  /** Minute of the day, 0–1439. */
  minutes: number;
  /** The same wall clock read as if it were UTC, in ms: comparable across days. */
  asUtc: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
    });
    formatters.set(timeZone, f);
  }
  return f;
}

function wallClock(instant: number, timeZone: string): WallClock {
  const parts: Record<string, number> = {};
  for (const part of formatter(timeZone).formatToParts(instant)) {
    if (part.type !== "literal") parts[part.type] = Number(part.value);
  }
  const year = parts.year ?? 0;
  const month = parts.month ?? 1;
  const day = parts.day ?? 1;
  const hour = (parts.hour ?? 0) % 24;
  const minute = parts.minute ?? 0;
  const midnight = Date.UTC(year, month - 1, day);
  return {
    year,
    month,
    day,
    weekday: (new Date(midnight).getUTCDay() + 6) % 7,
    minutes: hour * 60 + minute,
    asUtc: midnight + (hour * 60 + minute) * MINUTE,
  };
}

const minutesOf = (time: string): number => Number(time.slice(0, 2)) * 60 + Number(time.slice(3, 5));

const dayName = (index: number): string => {
  const name = WEEKDAYS[index] ?? "mon";
  return name[0]!.toUpperCase() + name.slice(1);
};

/** Whether `instant` lies inside the window (start inclusive, end exclusive, to the minute). */
export function isInsideWindow(window: MaintenanceWindow, instant: Date): boolean {
  const clock = wallClock(instant.getTime(), window.timeZone);
  const start = minutesOf(window.start);
  const end = minutesOf(window.end);
  const today = WEEKDAYS[clock.weekday]!;
  const yesterday = WEEKDAYS[(clock.weekday + 6) % 7]!;
  if (start < end) return window.days.includes(today) && clock.minutes >= start && clock.minutes < end;
  // Crossing midnight: the evening part belongs to a listed day, the morning part to the day after one.
  return (window.days.includes(today) && clock.minutes >= start) || (window.days.includes(yesterday) && clock.minutes < end);
}

/**
 * The first instant at which the wall clock of `timeZone` reads `wall` (a wall clock as UTC ms) or
 * later: the earlier of two readings in a fall-back, the end of the gap in a spring-forward.
 */
function firstInstantAtWall(wall: number, timeZone: string): number {
  const offsetAt = (t: number) => wallClock(t, timeZone).asUtc - Math.floor(t / MINUTE) * MINUTE;
  // The offsets in force around that day (a zone changes its offset at most once a day).
  const offsets = [...new Set([offsetAt(wall - 1.5 * DAY), offsetAt(wall), offsetAt(wall + 1.5 * DAY)])];
  const exact = offsets.map((o) => wall - o).filter((t) => wallClock(t, timeZone).asUtc === wall);
  if (exact.length > 0) return Math.min(...exact);
  // In a gap: search the minute at which the wall clock jumps past `wall`.
  let lo = wall - Math.max(...offsets);
  let hi = wall - Math.min(...offsets);
  while (hi - lo > MINUTE) {
    const mid = lo + Math.floor((hi - lo) / 2 / MINUTE) * MINUTE;
    if (wallClock(mid, timeZone).asUtc >= wall) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** The windows that govern a host: those naming it, else the fleet's (those naming no host). */
export function windowsForHost(windows: readonly MaintenanceWindow[], host: string): MaintenanceWindow[] {
  const own = windows.filter((w) => w.hosts?.includes(host));
  return own.length > 0 ? own : windows.filter((w) => w.hosts === undefined);
}

/** Inside any of `windows`; no windows means always open. */
export const isOpen = (windows: readonly MaintenanceWindow[], instant: Date): boolean =>
  windows.length === 0 || windows.some((w) => isInsideWindow(w, instant));

/**
 * The earliest instant at or after `instant` at which one of `windows` is open, and that window.
 * `instant` itself when one is open now or there are no windows (`window` is then null).
 */
export function nextOpeningOf(
  windows: readonly MaintenanceWindow[],
  instant: Date,
): { at: Date; window: MaintenanceWindow | null } | null {
  if (windows.length === 0) return { at: instant, window: null };
  const open = windows.find((w) => isInsideWindow(w, instant));
  if (open !== undefined) return { at: instant, window: open };
  let best: { at: number; window: MaintenanceWindow } | null = null;
  for (const window of windows) {
    const today = wallClock(instant.getTime(), window.timeZone);
    const startMinutes = minutesOf(window.start);
    for (let k = 0; k < SEARCH_DAYS; k++) {
      const midnight = Date.UTC(today.year, today.month - 1, today.day + k);
      if (!window.days.includes(WEEKDAYS[(new Date(midnight).getUTCDay() + 6) % 7]!)) continue;
      const at = firstInstantAtWall(midnight + startMinutes * MINUTE, window.timeZone);
      if (at <= instant.getTime() || !isInsideWindow(window, new Date(at))) continue;
      if (best === null || at < best.at) best = { at, window };
      break;
    }
  }
  return best === null ? null : { at: new Date(best.at), window: best.window };
}

/** The next instant any of `windows` opens (`instant` when one is open now or there are none). */
export function nextOpening(windows: readonly MaintenanceWindow[], instant: Date): Date | null {
  return nextOpeningOf(windows, instant)?.at ?? null;
}

function describeDays(days: readonly string[]): string {
  const indices = [...new Set(days.map((d) => WEEKDAYS.indexOf(d as (typeof WEEKDAYS)[number])))].sort((a, b) => a - b);
  const runs: string[] = [];
  for (let i = 0; i < indices.length; ) {
    let j = i;
    while (j + 1 < indices.length && indices[j + 1] === indices[j]! + 1) j++;
    if (j - i >= 2) runs.push(`${dayName(indices[i]!)}–${dayName(indices[j]!)}`);
    else for (let k = i; k <= j; k++) runs.push(dayName(indices[k]!));
    i = j + 1;
  }
  return runs.join(", ");
}

/** "Sat 02:00–04:00 Europe/Vienna", "Mon–Fri 22:00–06:00 UTC". */
export function describeWindow(window: MaintenanceWindow): string {
  return `${describeDays(window.days)} ${window.start}–${window.end} ${window.timeZone}`;
}

/** An opening as its window's wall clock reads it: "Sat 02:00 Europe/Vienna". */
export function describeOpening(window: MaintenanceWindow, at: Date): string {
  const clock = wallClock(at.getTime(), window.timeZone);
  const hh = String(Math.floor(clock.minutes / 60)).padStart(2, "0");
  const mm = String(clock.minutes % 60).padStart(2, "0");
  return `${dayName(clock.weekday)} ${hh}:${mm} ${window.timeZone}`;
}
