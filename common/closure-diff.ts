/**
 * How a package change in a closure diff reads, in the words `nix store diff-closures` uses:
 * on the dashboard (a fleet build's diff) and in the System compartment (the desired system's).
 */
import type { ClosureDiffEntry } from "./protocol.ts";

/** "∅" for no version, "ε" for a path without one (as nix prints them), else the versions. */
export function formatVersions(list: readonly string[]): string {
  return list.length === 0 ? "∅" : list.map((v) => (v === "" ? "ε" : v)).join(", ");
}

export function versionsChanged(entry: ClosureDiffEntry): boolean {
  return entry.old.length !== entry.new.length || entry.old.some((v, i) => v !== entry.new[i]);
}

/** A version change: "openssl 3.0.14 → 3.0.15", "libfoo 1.2 (added)", "libbar 0.9 (removed)". */
export function describeVersionChange(entry: ClosureDiffEntry): string {
  if (entry.old.length === 0) return `${entry.name} ${formatVersions(entry.new)} (added)`;
  if (entry.new.length === 0) return `${entry.name} ${formatVersions(entry.old)} (removed)`;
  return `${entry.name} ${formatVersions(entry.old)} → ${formatVersions(entry.new)}`;
}
