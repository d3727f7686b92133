/**
 * The guard for the dashboard's browser tests: without /usr/bin/chromium they
 * are skipped loudly; with NIXFLEET_REQUIRE_BROWSER=1 (CI) a missing Chromium
 * fails them.
 */
import { describe, expect, it } from "vitest";
import { CHROMIUM, chromiumInstalled } from "./chromium.ts";

export { openBrowser, type BrowserSession, type SessionOptions } from "./chromium.ts";

const browserRequired = process.env.NIXFLEET_REQUIRE_BROWSER === "1";

/** `describe` for browser tests: skipped (loudly) without Chromium, failed when it is required. */
export function describeWithBrowser(name: string, body: () => void): void {
  if (chromiumInstalled) {
    describe(name, body);
    return;
  }
  console.warn(`SKIPPED: chromium not installed — apt-get install chromium (skipping "${name}")`);
  if (browserRequired) {
    describe(name, () => {
      it("has chromium installed (NIXFLEET_REQUIRE_BROWSER=1)", () => {
        expect(chromiumInstalled, `${CHROMIUM} is missing but NIXFLEET_REQUIRE_BROWSER=1: apt-get install chromium`).toBe(true);
      });
    });
    return;
  }
  // Skipped with the warning above on a machine without it; CI sets NIXFLEET_REQUIRE_BROWSER=1, which fails instead.
  describe.skip(name, body); // reason: not installed here (warned above); NIXFLEET_REQUIRE_BROWSER=1 fails instead
}
