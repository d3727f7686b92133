/**
 * axe-core in the page under test, every rule it has (WCAG 2.x A/AA and its
 * best practices), through the dashboard's open shadow roots.
 */
import axe from "axe-core";
import type { Page } from "playwright-core";

export interface AxeOutcome {
  violations: axe.Result[];
  /** Ids of the rules that found something to check and passed: proof the page was really looked at. */
  passed: string[];
}

export async function runAxe(page: Page): Promise<AxeOutcome> {
  // Evaluated rather than added as a <script>: a Content-Security-Policy on the page cannot refuse it.
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(axe.source);
  const results = await page.evaluate(() => (window as unknown as { axe: typeof axe }).axe.run(document, { resultTypes: ["violations"] }));
  return { violations: results.violations, passed: results.passes.map((rule) => rule.id) };
}

/** Each violation with its rule, impact, help page, and every element it found (shadow hosts joined by ">>>"). */
export function formatViolations(violations: readonly axe.Result[]): string {
  return violations
    .map((violation) => {
      const nodes = violation.nodes.map((node) => {
        const where = node.target.map((part) => (Array.isArray(part) ? part.join(" >>> ") : String(part))).join(" | ");
        const why = (node.failureSummary ?? "").split("\n").map((line) => line.trim()).filter((line) => line !== "").join(" ");
        return `    - ${where}\n      ${why}`;
      });
      return `  ${violation.id} (${violation.impact ?? "no impact"}): ${violation.help} — ${violation.helpUrl}\n${nodes.join("\n")}`;
    })
    .join("\n");
}
