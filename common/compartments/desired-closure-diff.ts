/**
 * Which closure diff the host page shows under System. Apart from the compartment rules (desired.ts),
 * so the host page's chunk carries only these lines, and apart from common/closure-diff.ts, which the
 * first paint carries.
 */
import type { DesiredClosureDiff, Report } from "../protocol.ts";

/**
 * The closure diff the System compartment's "switch needed" is about: main's desired system against
 * the system that runs now (a diff made against another running system is left out), else null.
 */
export function desiredClosureDiff(report: Report | null): DesiredClosureDiff | null {
  const latest = report?.desired?.latest ?? null;
  const current = report?.system.current.value ?? null;
  if (latest === null || !("outPath" in latest) || current === null || latest.outPath === current) return null;
  return latest.closureDiff?.comparedWith === current ? latest.closureDiff : null;
}
