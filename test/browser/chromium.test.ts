import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Page } from "playwright-core";
import { expect, it } from "vitest";
import { describeWithBrowser, openBrowser } from "./browser.ts";
import { CHROMIUM, DISABLED_FEATURES } from "./chromium.ts";

/** The browser process's arguments: the one process named with the profile that is not a child (no --type). */
function browserArguments(profile: string): string[] {
  for (const pid of readdirSync("/proc").filter((entry) => /^\d+$/.test(entry))) {
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    } catch {
      continue; // gone between the listing and the read
    }
    if (argv.includes(`--user-data-dir=${profile}`) && !argv.some((a) => a.startsWith("--type="))) return argv;
  }
  throw new Error(`no browser process for ${profile}`);
}

/** What Chromium goes by: the last --disable-features (it keeps no other). */
function disabledFeatures(argv: string[]): string[] {
  const last = argv.filter((a) => a.startsWith("--disable-features=")).at(-1);
  return last === undefined ? [] : last.slice("--disable-features=".length).split(",");
}

async function browserUiTargets(page: Page): Promise<string[]> {
  const cdp = await page.context().newCDPSession(page);
  const { targetInfos } = (await cdp.send("Target.getTargets")) as { targetInfos: { type: string; url: string }[] };
  return targetInfos.filter((t) => t.type === "browser_ui").map((t) => t.url);
}

describeWithBrowser("the tests' Chromium", () => {
  it("keeps every feature Playwright turns off, and starts no omnibox popup pages", { timeout: 30_000 }, async () => {
    const plainProfile = await mkdtemp(join(tmpdir(), "nixfleet-chromium-plain-"));
    const plainLaunched = performance.now();
    const plain = await chromium.launchPersistentContext(plainProfile, { executablePath: CHROMIUM, args: ["--headless", "--no-sandbox"] });
    const oursLaunched = performance.now();
    const ours = await openBrowser();
    try {
      const playwrights = disabledFeatures(browserArguments(plainProfile));
      expect(playwrights).toContain("PaintHolding");
      expect(disabledFeatures(browserArguments(ours.profile)).sort()).toEqual([...new Set([...playwrights, ...DISABLED_FEATURES])].sort());

      const plainPage = plain.pages()[0] ?? (await plain.newPage());
      await expect.poll(() => browserUiTargets(plainPage)).toContain("chrome://omnibox-popup.top-chrome/");
      // An absence is only seen by waiting: give ours as long as the plain browser took to start its popup.
      const popupAfter = performance.now() - plainLaunched;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, oursLaunched + popupAfter - performance.now())));
      expect(await browserUiTargets(ours.page)).toEqual([]);
    } finally {
      await ours.close();
      await plain.close();
      await rm(plainProfile, { recursive: true, force: true });
    }
  });
});
