/**
 * The small words every part of NixFleet writes the same way: short SHAs, counts of things, ages,
 * durations, clock times and the telling line of an error. The worker, the compartments and the
 * dashboard all say them through here, so a host offline for three hours reads alike in a
 * compartment's reason, a notification and the fleet table.
 */

/** A commit SHA as people read it in messages: its first 7 hex digits, as git and GitHub show it. */
export const shortSha = (sha: string): string => sha.slice(0, 7);

// ---------------------------------------------------------------------------
// Counts

/** "host" or "hosts" for `count` of them; `many` for a word whose plural is not its singular and "s". */
export const pluralWord = (count: number, singular: string, many = `${singular}s`): string => (count === 1 ? singular : many);

/** "1 host", "3 hosts", "2 tries" (with `many`). */
export const plural = (count: number, singular: string, many?: string): string => `${count} ${pluralWord(count, singular, many)}`;

// ---------------------------------------------------------------------------
// Ages and durations

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Milliseconds since the epoch, or null for a missing or unreadable time. */
export function parseTime(iso: string | null | undefined): number | null {
  if (iso == null) return null;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : ms;
}

/**
 * A duration to the unit that keeps it a small number, rounded down: "45 min", "3 h", "2 days";
 * with `long` units "45 minutes", "3 hours", for a sentence (a notification). "less than a minute" under one.
 */
export function roughDuration(ms: number, units: "short" | "long" = "short"): string {
  const minutes = Math.floor(Math.max(0, ms) / MINUTE);
  if (minutes < 1) return "less than a minute";
  if (minutes < 60) return units === "short" ? `${minutes} min` : plural(minutes, "minute");
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return units === "short" ? `${hours} h` : plural(hours, "hour");
  return plural(Math.floor(hours / 24), "day");
}

/** "850 ms", "12 s", "3 min 4 s", "1 h 2 min", "3 days 4 h": the two largest units that matter. */
export function formatDuration(ms: number): string {
  const value = Math.max(0, Math.round(ms));
  if (value < SECOND) return `${value} ms`;
  if (value < MINUTE) return `${Math.floor(value / SECOND)} s`;
  if (value < HOUR) {
    const seconds = Math.floor((value % MINUTE) / SECOND);
    return `${Math.floor(value / MINUTE)} min${seconds ? ` ${seconds} s` : ""}`;
  }
  if (value < DAY) {
    const minutes = Math.floor((value % HOUR) / MINUTE);
    return `${Math.floor(value / HOUR)} h${minutes ? ` ${minutes} min` : ""}`;
  }
  const days = Math.floor(value / DAY);
  const hours = Math.floor((value % DAY) / HOUR);
  return `${plural(days, "day")}${hours ? ` ${hours} h` : ""}`;
}

/** "just now", "4 min ago", "3 h ago", "2 days ago"; future times (clock skew) read as "just now". */
export function formatAge(iso: string | null | undefined, now: number): string {
  const at = parseTime(iso);
  if (at === null) return "never";
  const ago = now - at;
  if (ago < 45 * SECOND) return "just now";
  return `${roughDuration(Math.max(ago, MINUTE))} ago`;
}

/** "in 35 s", "in 42 min", "in 2 h 5 min", "now": a countdown that ticks every second. */
export function countdown(toIso: string, now: number): string {
  const ms = Date.parse(toIso) - now;
  if (ms <= 0) return "now";
  const seconds = Math.ceil(ms / SECOND);
  if (seconds < 120) return `in ${seconds} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 120) return `in ${minutes} min`;
  return `in ${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

// ---------------------------------------------------------------------------
// Clock times

const pad2 = (n: number): string => String(n).padStart(2, "0");

/**
 * "14:03 UTC", or "2025-12-09 14:03 UTC" when not on `now`'s day. UTC on purpose: the worker and
 * every browser must write the same text (a compartment's reason).
 */
export function utcClock(iso: string, now: number): string {
  const at = new Date(parseTime(iso) ?? 0).toISOString();
  const sameDay = at.slice(0, 10) === new Date(now).toISOString().slice(0, 10);
  return `${sameDay ? "" : `${at.slice(0, 10)} `}${at.slice(11, 16)} UTC`;
}

/** `2025-12-10` (UTC) from an ISO time; an em dash for a missing or unreadable one. */
export function utcDay(iso: string | null | undefined): string {
  const at = parseTime(iso);
  return at === null ? "—" : new Date(at).toISOString().slice(0, 10);
}

/** "13:05" in the local time zone (the browser's), for a person looking at the dashboard. */
export function localClock(iso: string): string {
  const d = new Date(iso);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

/** Local wall-clock time `2025-12-10 14:03`, for tables; an em dash for a missing or unreadable time. */
export function localTimestamp(iso: string | null | undefined): string {
  const at = parseTime(iso);
  if (at === null) return "—";
  const d = new Date(at);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

// ---------------------------------------------------------------------------
// Errors and store paths

// eslint-disable-next-line no-control-regex
const ANSI_ESCAPE = /\u001b\[[0-9;]*[A-Za-z]/g;

/** Nix prints a problem it recovered from (a busy eval cache, say) as `error (ignored): …`: a warning, not the error. */
export const NIX_IGNORED_ERROR = /^error \(ignored\)/i;

/** An error text's lines as a person reads them: colours removed, trimmed, blank ones dropped. */
export function errorLines(text: string | null | undefined): string[] {
  return (text ?? "")
    .replace(ANSI_ESCAPE, "")
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "");
}

/**
 * The line of a command's error that says what went wrong, shortened to 160 characters and without
 * its `error:`/`fatal:` prefix: git's and nix's `error:`/`fatal:`/`CONFLICT` lines first, then any
 * line that mentions a failure (nixos-rebuild's "the following units failed"), then the first line;
 * null when there is none.
 */
export function firstErrorLine(error: string | null): string | null {
  const lines = errorLines(error);
  const line =
    lines.find((l) => /^(error|fatal|CONFLICT)\b/i.test(l) && !NIX_IGNORED_ERROR.test(l)) ??
    lines.find((l) => /\b(error|failed|fatal|denied)\b/i.test(l)) ??
    lines[0];
  if (line === undefined) return null;
  const text = line.replace(/^(error|fatal):\s*/i, "");
  return text.length > 160 ? `${text.slice(0, 159)}…` : text;
}

/** `/nix/store/<hash>-nixos-system-hsb0-25.05` → `nixos-system-hsb0-25.05`; any other path unchanged. */
export function storePathName(path: string): string {
  const match = /^\/nix\/store\/[0-9a-z]{32}-(.+)$/.exec(path);
  return match?.[1] ?? path;
}

// ---------------------------------------------------------------------------
// Sizes

const BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"] as const;

/**
 * A free or needed amount of space as people read it in a message: binary units, one decimal
 * below 10 and none above ("1.2 GiB", "2 GiB", "38 MiB", "512 B").
 */
export function formatBytes(bytes: number): string {
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  // Rounding up to 1024 reads as the next unit ("1024 MiB" is "1 GiB").
  if (unit < BYTE_UNITS.length - 1 && Math.round(value) >= 1024) {
    value /= 1024;
    unit += 1;
  }
  const text = unit === 0 || value >= 10 ? String(Math.round(value)) : value.toFixed(1).replace(/\.0$/, "");
  return `${text} ${BYTE_UNITS[unit]}`;
}

/** The banner over every page of a control plane without Access: the components' (ui/nf-app.ts) and the fleet page's (worker/fleet-page.ts). */
export const DEVELOPMENT_MODE_WARNING = { headline: "development mode — no authentication.", detail: "Anyone who can reach this port controls the fleet." } as const;
