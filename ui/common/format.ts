/** Small, pure formatting helpers: ages, durations, sizes, short shas. */
import type { UpdatePr } from "../../common/protocol.ts";

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

function parse(iso: string | null | undefined): number | null {
  if (iso == null) return null;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : ms;
}

/** `abcdef1` from a full sha; an em dash when there is none. */
export function shortSha(sha: string | null | undefined, length = 7): string {
  return sha ? sha.slice(0, length) : "—";
}

/** "just now", "4 min ago", "3 h ago", "2 days ago"; future times read as "just now". */
export function formatAge(iso: string | null | undefined, now: number): string {
  const at = parse(iso);
  if (at === null) return "never";
  const ago = now - at;
  if (ago < 45 * SECOND) return "just now";
  if (ago < HOUR) return `${Math.max(1, Math.round(ago / MINUTE))} min ago`;
  if (ago < 2 * DAY) return `${Math.floor(ago / HOUR)} h ago`;
  return `${Math.floor(ago / DAY)} days ago`;
}

/** "850 ms", "12 s", "3 min 4 s", "1 h 2 min", "3 days 4 h". */
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
  return `${days} day${days === 1 ? "" : "s"}${hours ? ` ${hours} h` : ""}`;
}

const SIZE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"] as const;

/** "512 B", "8.0 KiB", "12.4 MiB": binary units with one decimal, as `nix store diff-closures` prints them. */
export function formatSize(bytes: number): string {
  let value = Math.abs(bytes);
  let unit = 0;
  while (value >= 1024 && unit < SIZE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(1)} ${SIZE_UNITS[unit]}`;
}

/** A size change with its sign: "+12.4 MiB", "-3.0 KiB", "±0 B". */
export function formatSizeDelta(bytes: number): string {
  if (bytes === 0) return "±0 B";
  return `${bytes > 0 ? "+" : "-"}${formatSize(bytes)}`;
}

/** How long a command ran (or has been running, while it runs); null before it started. */
export function commandDuration(
  command: { startedAt: string | null; deliveredAt: string | null; finishedAt: string | null },
  now: number,
): number | null {
  const start = parse(command.startedAt ?? command.deliveredAt);
  if (start === null) return null;
  const end = parse(command.finishedAt) ?? now;
  return Math.max(0, end - start);
}

/** Local wall-clock time `2025-12-10 14:03`, for tables; the full ISO time goes in the title. */
export function formatTimestamp(iso: string | null | undefined): string {
  const at = parse(iso);
  if (at === null) return "—";
  const d = new Date(at);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** `2025-12-10` from an ISO time (UTC), for lock input dates. */
export function formatDay(iso: string | null | undefined): string {
  const at = parse(iso);
  return at === null ? "—" : new Date(at).toISOString().slice(0, 10);
}

/** Online state as one short phrase: "online", "offline · 3 h ago", "never connected". */
export function presenceLabel(host: { online: boolean; lastSeenAt: string | null }, now: number): string {
  if (host.online) return "online";
  if (host.lastSeenAt === null) return "never connected";
  return `offline · ${formatAge(host.lastSeenAt, now)}`;
}

/** `/nix/store/<hash>-nixos-system-hsb0-25.05` → `nixos-system-hsb0-25.05`. */
export function storePathName(path: string): string {
  const match = /^\/nix\/store\/[0-9a-z]{32}-(.+)$/.exec(path);
  return match?.[1] ?? path;
}

/** The first line of a commit message. */
export function firstLine(text: string): string {
  const line = text.split("\n", 1)[0] ?? "";
  return line.trim();
}

/** What the update-PR banner says instead of the change table, or null when there are changes to show. */
export function lockDiffNote(pr: Pick<UpdatePr, "lockDiff" | "lockDiffProblem" | "lockChanges">): string | null {
  if (pr.lockDiff === "pending") return "Reading this PR's flake.lock changes…";
  if (pr.lockDiff === "failed") return `This PR's flake.lock changes could not be read: ${pr.lockDiffProblem ?? "unknown problem"}`;
  if (pr.lockChanges.length === 0) return "No input changes found in this PR's flake.lock.";
  return null;
}
