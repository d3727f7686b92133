/**
 * What getting main's system onto the host takes, from its dry run's counts: fetched from the binary
 * caches (the fleet's, docs/cache.md), and how much, or built there. Apart from the compartment rules
 * (desired.ts), so the host page's chunk carries only these lines.
 */
import type { DesiredChanges } from "../protocol.ts";
import { formatBytes, plural } from "../text.ts";

/**
 * "in the cache, 12 MiB to download (3 paths)", "not in the cache, 2 paths to build and 3 to fetch
 * (1.4 MiB)", "not in the cache, 1 path to build"; null when there is nothing to build or fetch.
 * `downloadBytes` is null from agents that do not report it: the count then stands alone.
 */
export function describeDesiredChanges(changes: DesiredChanges): string | null {
  const { toBuild, toFetch, downloadBytes } = changes;
  if (toBuild === 0 && toFetch === 0) return null;
  const download = downloadBytes === null ? null : formatBytes(downloadBytes);
  if (toBuild === 0) return download === null ? `in the cache, ${plural(toFetch, "path")} to fetch` : `in the cache, ${download} to download (${plural(toFetch, "path")})`;
  const fetched = toFetch === 0 ? "" : ` and ${toFetch} to fetch${download === null ? "" : ` (${download})`}`;
  return `not in the cache, ${plural(toBuild, "path")} to build${fetched}`;
}
