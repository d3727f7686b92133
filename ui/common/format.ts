/**
 * The dashboard's own formatting: sizes, command durations, presence, short shas with a dash for none.
 * Ages, durations and clock times are common/text.ts's, the same words the worker writes.
 */
import type { UpdatePr } from "../../common/protocol.ts";
import { formatAge, parseTime } from "../../common/text.ts";

/** `abcdef1` from a full sha; an em dash when there is none. */
export function shortSha(sha: string | null | undefined, length = 7): string {
  return sha ? sha.slice(0, length) : "—";
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
  const start = parseTime(command.startedAt ?? command.deliveredAt);
  if (start === null) return null;
  const end = parseTime(command.finishedAt) ?? now;
  return Math.max(0, end - start);
}

/** Online state as one short phrase: "online", "offline · 3 h ago", "never connected". */
export function presenceLabel(host: { online: boolean; lastSeenAt: string | null }, now: number): string {
  if (host.online) return "online";
  if (host.lastSeenAt === null) return "never connected";
  return `offline · ${formatAge(host.lastSeenAt, now)}`;
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
