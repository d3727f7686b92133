/**
 * WCAG 2.1 AA, as axe-core checks it with every rule on, on every page of the
 * dashboard in light and dark colour schemes: the fleet page with an update PR
 * whose fleet build failed and a rollout in progress, a host page showing the
 * failed build's log, a host waiting in the rollout, the update history, the
 * audit log, the settings and a path that does not exist; and over the fleet
 * page, the Merge & Deploy and cancel-rollout confirmations, the add-host form
 * and a compartment's menu.
 */
import type { Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { formatViolations, runAxe } from "./axe.ts";
import { describeWithBrowser, openBrowser, type BrowserSession } from "./browser.ts";
import { FAILING_HOST, startBusyFleet, type BusyFleet } from "./busy-fleet.ts";
import { eventually } from "../support/wait.ts";

/** The rules that show a scan ran on the page's content: text to measure, landmarks around it, headings in order. */
const CONTENT_RULES = ["color-contrast", "region", "landmark-one-main", "heading-order", "page-has-heading-one"];

interface DashboardPage {
  name: string;
  path: (fleet: BusyFleet) => string;
  /** What shows once the page has its content. */
  ready: (page: Page) => Promise<void>;
}

const PAGES: DashboardPage[] = [
  {
    name: "the fleet page",
    path: () => "/",
    ready: async (page) => {
      await page.locator(`nf-fleet-build-status li[data-host="${FAILING_HOST}"][data-state="failed"]`).waitFor();
      await page.locator("nf-rollout-progress .headline").waitFor();
      await page.locator("nf-fleet-table [role=row][data-host] button.cell").first().waitFor();
    },
  },
  {
    name: "a host page with its failed build's log",
    path: (fleet) => `/hosts/${FAILING_HOST}?command=${fleet.failedBuildCommand}`,
    ready: async (page) => {
      await page.locator("nf-compartment-card").first().waitFor();
      await page.locator("nf-command-output .line").first().waitFor();
      await page.locator("nf-host-update-build").waitFor();
    },
  },
  {
    name: "a host page of a host waiting in the rollout",
    path: () => "/hosts/web1",
    ready: async (page) => {
      await page.locator("nf-compartment-card").first().waitFor();
      await page.locator("nf-command-history tbody tr").first().waitFor();
    },
  },
  {
    name: "the update history",
    path: () => "/rollouts",
    ready: (page) => page.locator("nf-rollouts-panel li[data-rollout]").first().waitFor(),
  },
  {
    name: "the audit log",
    path: () => "/audit",
    ready: (page) => page.locator("nf-audit-panel tbody tr").first().waitFor(),
  },
  {
    name: "the settings",
    path: () => "/settings",
    ready: (page) => page.locator("nf-settings-panel select").first().waitFor(),
  },
  {
    name: "a page that does not exist",
    path: () => "/no-such-page",
    ready: (page) => page.getByRole("heading", { name: "Not found", level: 1 }).waitFor(),
  },
];

/** What opens over the fleet page: the confirmations, the add-host form and a compartment's menu. */
const OVERLAYS: { name: string; open: (page: Page) => Promise<void> }[] = [
  {
    name: "the Merge & Deploy confirmation, CI and the failed fleet build overridden with reasons",
    open: async (page) => {
      await page.locator("nf-update-pr-banner #merge-deploy").click();
      await page.locator('nf-deploy-dialog ol[aria-label="Waves"]').waitFor();
      // The reasons enable the danger button, so its colours are measured too; the failed build's note with them.
      await page.locator("nf-deploy-dialog #override").fill("the failure is the known flaky check");
      await page.locator("nf-deploy-dialog #fleet-build-failed").waitFor();
      await page.locator("nf-deploy-dialog #fleet-build-override").fill("the failing host is being rebuilt anyway");
      await page.locator("nf-deploy-dialog #deploy:enabled").waitFor();
    },
  },
  {
    name: "the cancel-rollout confirmation",
    open: async (page) => {
      await page.locator("nf-rollout-progress #cancel-rollout").click();
      await page.locator("nf-rollout-progress nf-confirm-dialog dialog[open] #confirm").waitFor();
    },
  },
  {
    name: "the add-host form",
    open: async (page) => {
      await page.getByRole("button", { name: "Add host" }).click();
      await page.locator("nf-add-host-dialog dialog[open] #name").waitFor();
    },
  },
  {
    name: "a compartment's menu",
    open: async (page) => {
      // A viewport as tall as the page: the menu and every row it might cover are on screen together for the scan.
      const height = await page.evaluate(() => document.documentElement.scrollHeight);
      await page.setViewportSize({ width: 1280, height: height + 200 });
      await page.locator(`nf-fleet-table [role=row][data-host="${FAILING_HOST}"] button.cell[data-compartment="lock"]`).click();
      await page.getByRole("menu").getByRole("menuitem").first().waitFor();
    },
  },
];

describeWithNix("the accessibility check needs real agents for a busy fleet", () =>
  describeWithBrowser("WCAG 2.1 AA with axe-core in Chromium", () => {
    let fleet: BusyFleet;
    let session: BrowserSession;
    let page: Page;

    // The busy fleet: three agents build the update PR (one fails), then the rollout's canary switches.
    beforeAll(async () => {
      fleet = await startBusyFleet();
      session = await openBrowser();
      page = session.page;
    }, 300_000);

    afterAll(async () => {
      await session?.close();
      await fleet?.stop();
    });

    for (const colorScheme of ["light", "dark"] as const) {
      for (const shown of PAGES) {
        it(`finds no violation on ${shown.name} in the ${colorScheme} colour scheme`, async () => {
          await page.setViewportSize({ width: 1280, height: 800 });
          await page.emulateMedia({ colorScheme });
          await page.goto(`${fleet.dashboard.url}${shown.path(fleet)}`);
          await page.locator("nf-app .connection.live").waitFor();
          await shown.ready(page);
          expect(await page.evaluate(() => matchMedia("(prefers-color-scheme: dark)").matches)).toBe(colorScheme === "dark");

          // A live page may re-render under a scan (axe then leaves a rule incomplete): the scan judged is one that ran on the content.
          const { violations, passed } = await eventually(`axe-core to scan ${shown.name}'s content`, async () => {
            const scan = await runAxe(page);
            return CONTENT_RULES.every((rule) => scan.passed.includes(rule)) || scan.violations.length > 0 ? scan : null;
          });
          expect(violations.map((violation) => violation.id), `axe-core on ${shown.name} (${colorScheme}):\n${formatViolations(violations)}`).toEqual([]);
          expect(passed).toEqual(expect.arrayContaining(CONTENT_RULES));
          expect(session.errors).toEqual([]);
        });
      }

      for (const overlay of OVERLAYS) {
        it(`finds no violation with ${overlay.name} open over the fleet page in the ${colorScheme} colour scheme`, async () => {
          await page.setViewportSize({ width: 1280, height: 800 });
          await page.emulateMedia({ colorScheme });
          await page.goto(fleet.dashboard.url);
          await page.locator("nf-app .connection.live").waitFor();
          await PAGES[0]!.ready(page);
          await overlay.open(page);

          const { violations, passed } = await runAxe(page);
          expect(violations.map((violation) => violation.id), `axe-core with ${overlay.name} open (${colorScheme}):\n${formatViolations(violations)}`).toEqual([]);
          expect(passed).toEqual(expect.arrayContaining(["color-contrast", "region", "heading-order"]));
          expect(session.errors).toEqual([]);
          // Nothing was confirmed: the rollout runs on and the update PR stays open for the next check.
          await page.keyboard.press("Escape");
        });
      }
    }
  }),
);
