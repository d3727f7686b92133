/**
 * The dashboard on a phone, in Chromium at 390 × 844 (and 360 and 414 wide):
 * with an update PR whose fleet build failed on a long-named host, nix's error
 * lines on show and a rollout in progress, no page (nor the Merge & Deploy
 * confirmation) is wider than the viewport, and each host card shows all five
 * compartments whole, in light and dark colour schemes.
 */
import type { Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { describeWithBrowser, openBrowser, type BrowserSession } from "./browser.ts";
import { BUSY_HOSTS, FAILING_HOST, startBusyFleet, type BusyFleet } from "./busy-fleet.ts";

const PHONE = { width: 390, height: 844 };

/** How far the page reaches past the viewport's right edge, in CSS pixels (0: it fits). */
function overflowWidth(page: Page): Promise<number> {
  return page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
}

/** For a failure's message: the outermost elements, through the shadow roots, that end past the right edge. */
function sticking(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const found: string[] = [];
    const walk = (root: Document | ShadowRoot, path: string) => {
      for (const element of Array.from(root.querySelectorAll("*"))) {
        const box = element.getBoundingClientRect();
        const name = `${path}${element.localName}${element.className && typeof element.className === "string" ? `.${element.className.trim().split(/\s+/).join(".")}` : ""}`;
        if (box.width > 0 && box.right > window.innerWidth + 0.5 && found.length < 12) found.push(`${name} (right edge at ${Math.round(box.right)} px)`);
        if (element.shadowRoot) walk(element.shadowRoot, `${name} >>> `);
      }
    };
    walk(document, "");
    return found;
  });
}

async function expectNoSidewaysScroll(page: Page): Promise<void> {
  const overflow = await overflowWidth(page);
  // Named only when it does not fit; some of them may scroll inside a box of their own.
  const where = overflow === 0 ? [] : await sticking(page);
  expect(overflow, `the page is ${overflow} px wider than the viewport; ending past its right edge:\n${where.join("\n")}`).toBe(0);
}

interface CellBox {
  host: string;
  compartment: string;
  left: number;
  right: number;
  width: number;
  /** The word needs more room than the cell has (it would be cut off). */
  clipped: boolean;
}

/** Every compartment cell of every host card, through the shadow roots, with where it is. */
function compartmentCells(page: Page): Promise<CellBox[]> {
  return page.locator("nf-fleet-table [role=row][data-host] button.cell").evaluateAll((cells) =>
    cells.map((cell) => {
      const box = cell.getBoundingClientRect();
      return {
        host: cell.closest("[data-host]")?.getAttribute("data-host") ?? "",
        compartment: cell.getAttribute("data-compartment") ?? "",
        left: box.left,
        right: box.right,
        width: box.width,
        clipped: cell.scrollWidth > cell.clientWidth,
      };
    }),
  );
}

describeWithNix("the phone layout needs real agents for a busy fleet", () =>
  describeWithBrowser("the dashboard on a phone in Chromium", () => {
    let fleet: BusyFleet;
    let session: BrowserSession;
    let page: Page;

    const openFleetPage = async () => {
      await page.goto(fleet.dashboard.url);
      await page.locator(`nf-fleet-build-status li[data-host="${FAILING_HOST}"][data-state="failed"]`).waitFor();
      await page.locator("nf-rollout-progress .headline").filter({ hasText: /^Deploying/ }).waitFor();
      await page.locator("nf-automation-timeline").waitFor();
      await page.locator("nf-fleet-table [role=row][data-host]").nth(BUSY_HOSTS.length - 1).waitFor();
    };

    const expectCardsWhole = async (width: number) => {
      const cells = await compartmentCells(page);
      expect(cells.map((cell) => `${cell.host}:${cell.compartment}`).sort()).toEqual(
        BUSY_HOSTS.flatMap((host) => ["agent", "git", "lock", "system", "tests"].map((name) => `${host}:${name}`)).sort(),
      );
      const outside = cells.filter((cell) => cell.width <= 0 || cell.left < 0 || cell.right > width);
      expect(outside, `compartments outside the ${width} px viewport`).toEqual([]);
      expect(cells.filter((cell) => cell.clipped), "compartments whose word is cut off").toEqual([]);
    };

    // The busy fleet: three agents build the update PR (one fails), then the rollout's canary switches.
    beforeAll(async () => {
      fleet = await startBusyFleet();
      session = await openBrowser({ viewport: PHONE });
      page = session.page;
    }, 300_000);

    afterAll(async () => {
      await session?.close();
      await fleet?.stop();
    });

    for (const colorScheme of ["light", "dark"] as const) {
      it(`fits the fleet page with an update PR, a failed fleet build and a rollout into 390 px, every compartment of every card in view (${colorScheme})`, async () => {
        await page.setViewportSize(PHONE);
        await page.emulateMedia({ colorScheme });
        await openFleetPage();
        // nix's error line, with its store path, is on show.
        expect(await page.locator(`nf-fleet-build-status li[data-host="${FAILING_HOST}"]`).textContent()).toMatch(/\/nix\/store\/[0-9a-z]{32}-/);
        await expectNoSidewaysScroll(page);
        await expectCardsWhole(PHONE.width);
        // Every link of the navigation and "+ Add host" are reachable without scrolling sideways.
        for (const target of [page.getByRole("navigation", { name: "Main" }).getByRole("link"), page.getByRole("button", { name: "Add host" })]) {
          const boxes = await target.evaluateAll((elements) => elements.map((element) => element.getBoundingClientRect().right));
          expect(boxes.length).toBeGreaterThan(0);
          expect(Math.max(...boxes)).toBeLessThanOrEqual(PHONE.width);
        }
      });

      it(`fits a host page with the failed build's log into 390 px (${colorScheme})`, async () => {
        await page.setViewportSize(PHONE);
        await page.emulateMedia({ colorScheme });
        await page.goto(`${fleet.dashboard.url}/hosts/${FAILING_HOST}?command=${fleet.failedBuildCommand}`);
        await page.locator("nf-command-output .line").filter({ hasText: "/nix/store/" }).first().waitFor();
        await page.locator("nf-host-update-build").waitFor();
        await page.locator("nf-command-history tbody tr").first().waitFor();
        await expectNoSidewaysScroll(page);
        const cards = await page.locator("nf-compartment-card").evaluateAll((elements) => elements.map((element) => element.getBoundingClientRect().right));
        expect(cards).toHaveLength(5);
        expect(Math.max(...cards)).toBeLessThanOrEqual(PHONE.width);
      });

      it(`fits the Merge & Deploy confirmation, with the failed host's error, into 390 px (${colorScheme})`, async () => {
        await page.setViewportSize(PHONE);
        await page.emulateMedia({ colorScheme });
        await openFleetPage();
        await page.locator("nf-update-pr-banner #merge-deploy").click();
        const dialog = page.locator("nf-deploy-dialog dialog[open]");
        await dialog.locator('ol[aria-label="Waves"]').waitFor();
        expect(await dialog.locator(".build-verdict").textContent()).toMatch(/\/nix\/store\/[0-9a-z]{32}-/);
        const fit = await dialog.evaluate((element) => ({ left: element.getBoundingClientRect().left, right: element.getBoundingClientRect().right, scrollWidth: element.scrollWidth, clientWidth: element.clientWidth }));
        expect(fit.left).toBeGreaterThanOrEqual(0);
        expect(fit.right).toBeLessThanOrEqual(PHONE.width);
        expect(fit.scrollWidth, "the confirmation's content is wider than the confirmation").toBeLessThanOrEqual(fit.clientWidth);
        await page.keyboard.press("Escape");
      });

      const OTHER_PAGES = [
        { name: "the settings page", path: "/settings", content: "nf-settings-panel select" },
        { name: "the update history", path: "/rollouts", content: "nf-rollouts-panel li[data-rollout]" },
        // Its table is wider than a phone: it scrolls inside its own box, the page does not.
        { name: "the audit log", path: "/audit", content: "nf-audit-panel tbody tr" },
      ];
      for (const other of OTHER_PAGES) {
        it(`fits ${other.name} into 390 px (${colorScheme})`, async () => {
          await page.setViewportSize(PHONE);
          await page.emulateMedia({ colorScheme });
          await page.goto(`${fleet.dashboard.url}${other.path}`);
          await page.locator(other.content).first().waitFor();
          await expectNoSidewaysScroll(page);
        });
      }
    }

    for (const width of [360, 414]) {
      it(`fits the fleet page into ${width} px, every compartment of every card in view`, async () => {
        await page.setViewportSize({ width, height: PHONE.height });
        await page.emulateMedia({ colorScheme: "light" });
        await openFleetPage();
        await expectNoSidewaysScroll(page);
        await expectCardsWhole(width);
      });
    }
  }),
);
