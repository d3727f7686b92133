/**
 * When a host's disk is low (docs/hosts.md "Space checks"): the dashboard's warning on the host row and
 * page, and the `disk-low` notification, read the report's `disk` through this one rule.
 */
import type { Report } from "./protocol.ts";
import { formatBytes } from "./text.ts";

/** The fleet's default for `alerts.diskLowBelowBytes`: a filesystem with less than 1 GiB free is low. */
export const DISK_LOW_BELOW_BYTES = 1024 ** 3;

/** "disk low: /boot 38 MiB free" (both filesystems when both are low), or null when neither is (or nothing was reported). */
export function diskLowWarning(disk: Report["disk"] | undefined, belowBytes: number): string | null {
  if (disk === undefined) return null;
  const low = [disk.store, disk.boot].filter((space) => space !== null && space.freeBytes < belowBytes);
  if (low.length === 0) return null;
  return `disk low: ${low.map((space) => `${space?.path} ${formatBytes(space?.freeBytes ?? 0)} free`).join(", ")}`;
}
