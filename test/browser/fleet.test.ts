import { afterAll, beforeAll, beforeEach, expect, it } from "vitest";
import type { Page } from "playwright-core";
import { describeWithBrowser, openBrowser, type BrowserSession } from "./browser.ts";
import { startDashboard, type Dashboard } from "./dashboard.ts";
import { buildReport, sha } from "../compartments/builders.ts";
import { addHostThroughApi, agentPoll, deepFocus, fleetRow, menu } from "./helpers.ts";

describeWithBrowser("fleet page in Chromium", () => {
  let dashboard: Dashboard;
  let session: BrowserSession;
  let page: Page;

  beforeAll(async () => {
    dashboard = await startDashboard();
    session = await openBrowser();
    page = session.page;
    await session.context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: dashboard.url });
  });
  afterAll(async () => {
    await session?.close();
    await dashboard?.stop();
  });
  beforeEach(async () => {
    await page.goto(dashboard.url);
    await page.getByText("live", { exact: true }).waitFor();
  });

  it("adds a host: the token is shown once with a copy button and the Nix snippet, and the new row is gray and never connected", async () => {
    await page.getByRole("button", { name: "Add host" }).first().click();
    const dialog = page.getByRole("dialog", { name: "Add a host" });
    await dialog.getByLabel("Host name").fill("alpha");
    await dialog.getByRole("button", { name: "Add host" }).click();

    const shown = page.getByRole("dialog", { name: "alpha added" });
    const tokenField = shown.getByTestId("token");
    await expect.poll(() => tokenField.inputValue()).toMatch(/^[A-Za-z0-9_-]{16,200}$/);
    const token = await tokenField.inputValue();
    const snippet = shown.getByTestId("nix-snippet");
    for (const line of ["services.nixfleet-agent = {", `url = "${dashboard.url}";`, 'hostName = "alpha";', 'tokenFile = "/etc/nixfleet/token";']) {
      await expect.poll(() => snippet.textContent()).toContain(line);
    }
    await expect.poll(() => shown.getByText("Shown only this once.").isVisible()).toBe(true);

    await shown.getByRole("button", { name: "Copy token" }).click();
    await shown.getByRole("button", { name: "Copied ✓" }).first().waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(token);

    await shown.getByRole("button", { name: "Done" }).click();
    const row = fleetRow(page, "alpha");
    await row.getByText("never connected", { exact: true }).waitFor();
    await expect.poll(() => row.locator("button.cell").count()).toBe(5);
    await expect.poll(() => row.getByRole("button", { name: /alpha (Agent|Git|Lock|System|Tests): unknown/ }).count()).toBe(5);

    // The token shown is the host's real token: an agent poll with it brings the row online, live.
    expect((await agentPoll(dashboard.url, token)).status).toBe(200);
    await row.getByText("online", { exact: true }).waitFor({ timeout: 15_000 });
    expect(session.errors).toEqual([]);
  });

  it("explains a host name the worker would refuse before sending it, shows the worker's refusal of a duplicate, and Escape closes it back to the Add host button", async () => {
    await addHostThroughApi(dashboard, "taken");
    await page.reload();
    await page.getByRole("button", { name: "Add host" }).first().click();
    const dialog = page.getByRole("dialog", { name: "Add a host" });
    await dialog.getByLabel("Host name").fill("Bad_Name");
    await dialog.getByRole("button", { name: "Add host" }).click();
    await dialog.getByText("lowercase letters, digits and inner hyphens", { exact: false }).waitFor();
    await expect.poll(() => dialog.getByLabel("Host name").getAttribute("aria-invalid")).toBe("true");

    await dialog.getByLabel("Host name").fill("taken");
    await dialog.getByRole("button", { name: "Add host" }).click();
    await dialog.getByRole("alert").getByText("a host named taken already exists").waitFor();
    await page.keyboard.press("Escape");
    await expect.poll(() => dialog.isVisible()).toBe(false);
    await expect.poll(() => deepFocus(page)).toBe("button:+ Add host");
  });

  it("the Reboot needed filter shows only the hosts whose report says a reboot is due, and all of them again when cleared", async () => {
    const earlierErrors = session.errors.length;
    const kernelChanged = { needed: true, changed: ["kernel" as const], kernel: { booted: "6.6.1", next: "6.6.8" } };
    const reports = {
      "reboot-due": buildReport({ hostname: "reboot-due", builtFromCommit: sha("initial"), reboot: { value: kernelChanged } }),
      "reboot-done": buildReport({ hostname: "reboot-done", reboot: { value: { needed: false, changed: [], kernel: null } } }),
      "reboot-silent": buildReport({ hostname: "reboot-silent" }),
    };
    for (const [name, report] of Object.entries(reports)) {
      const { token } = await addHostThroughApi(dashboard, name);
      expect((await agentPoll(dashboard.url, token, report)).status).toBe(200);
    }
    await page.reload();
    for (const name of Object.keys(reports)) await fleetRow(page, name).waitFor();
    const system = fleetRow(page, "reboot-due").locator('button.cell[data-compartment="system"]');
    await expect.poll(() => system.getAttribute("title")).toContain("reboot needed: kernel 6.6.1 → 6.6.8");

    const filter = page.getByRole("group", { name: "Filters" }).getByRole("checkbox", { name: /^Reboot needed \(\d+\)$/ });
    await filter.check();
    await expect.poll(() => page.locator("nf-fleet-table [role=row][data-host]").evaluateAll((rows) => rows.map((row) => row.getAttribute("data-host")))).toEqual(["reboot-due"]);
    await filter.uncheck();
    for (const name of Object.keys(reports)) await fleetRow(page, name).waitFor();
    expect(session.errors.slice(earlierErrors)).toEqual([]);
    // The later tests share this fleet and open menus on rows near the bottom of the page: leave it as it was.
    for (const name of Object.keys(reports)) expect((await dashboard.api(`/api/hosts/${name}`, { method: "DELETE" })).status).toBe(200);
  });

  it("warns on the row and on the host page of a host whose /boot has less free than the fleet's threshold", async () => {
    const MiB = 1024 ** 2;
    const report = {
      ...buildReport({ hostname: "full-boot" }),
      disk: { store: { path: "/nix/store", freeBytes: 40_000 * MiB, totalBytes: 100_000 * MiB }, boot: { path: "/boot", freeBytes: 38 * MiB, totalBytes: 512 * MiB } },
    };
    const roomy = { ...report, hostname: "roomy-boot", disk: { ...report.disk, boot: { ...report.disk.boot, freeBytes: 300 * MiB } } };
    const { token } = await addHostThroughApi(dashboard, "full-boot");
    expect((await agentPoll(dashboard.url, token, report)).status).toBe(200);
    const { token: roomyToken } = await addHostThroughApi(dashboard, "roomy-boot");
    expect((await agentPoll(dashboard.url, roomyToken, roomy)).status).toBe(200);
    await page.reload();
    await fleetRow(page, "full-boot").locator(".pill.tone-warn").getByText("disk low: /boot 38 MiB free", { exact: true }).waitFor();
    // The fleet's default threshold is 1 GiB: 300 MiB on /boot is low too; 40 000 MiB on the store is not.
    await fleetRow(page, "roomy-boot").locator(".pill.tone-warn").getByText("disk low: /boot 300 MiB free", { exact: true }).waitFor();
    await page.goto(`${dashboard.url}/hosts/full-boot`);
    await page.getByText("disk low: /boot 38 MiB free", { exact: true }).waitFor();
    await page.goto(dashboard.url);
    for (const name of ["full-boot", "roomy-boot"]) expect((await dashboard.api(`/api/hosts/${name}`, { method: "DELETE" })).status).toBe(200);
  });

  it("opens a compartment's action menu from the keyboard, moves through it with the arrows, and Escape closes it back to the cell", async () => {
    await addHostThroughApi(dashboard, "keyboard");
    await page.reload();
    const cell = fleetRow(page, "keyboard").locator('button.cell[data-compartment="git"]');
    await cell.focus();
    await page.keyboard.press("Enter");
    const actions = menu(page);
    await actions.waitFor();
    await expect.poll(() => actions.getAttribute("aria-label")).toBe("keyboard · Git: unknown");
    const items = actions.getByRole("menuitem");
    await expect.poll(() => items.first().textContent()).toContain("Pull");
    await expect.poll(() => deepFocus(page)).toBe("menuitem:Pull");
    await page.keyboard.press("ArrowDown");
    await expect.poll(() => deepFocus(page)).toBe("menuitem:Switch");
    await page.keyboard.press("End");
    await expect.poll(() => deepFocus(page)).toBe("menuitem:Open host page");
    await page.keyboard.press("Escape");
    await expect.poll(() => actions.isVisible()).toBe(false);
    await expect.poll(() => deepFocus(page)).toBe("cell:git");
  });

  it("Click Git → Pull queues a pull for that host and the row says so without a reload", async () => {
    await addHostThroughApi(dashboard, "puller");
    await page.reload();
    const row = fleetRow(page, "puller");
    await row.locator('button.cell[data-compartment="git"]').click();
    await menu(page).getByRole("menuitem", { name: /^Pull fetch/ }).click();
    await row.getByText("Pull queued…").waitFor();
    await page.getByText("Pull queued for puller (offline: it runs when the host is back)").waitFor();
    const commands = await dashboard.api("/api/hosts/puller/commands");
    expect(commands.json).toMatchObject({ commands: [{ kind: "pull", state: "queued", actor: "developer@localhost" }] });
  });

  it("asks before Rollback system from the host menu, names the host, and sends nothing on Cancel", async () => {
    await addHostThroughApi(dashboard, "careful");
    await page.reload();
    await page.getByRole("button", { name: "Actions for careful" }).click();
    await menu(page).getByRole("menuitem", { name: /^Rollback system/ }).click();
    const confirm = page.getByRole("dialog", { name: "Roll back careful?" });
    await confirm.getByRole("list", { name: "hosts" }).getByText("careful").waitFor();
    await expect.poll(() => deepFocus(page)).toBe("button:Cancel");
    await confirm.getByRole("button", { name: "Cancel" }).click();
    expect((await dashboard.api("/api/hosts/careful/commands")).json).toEqual({ commands: [], prunedCommands: null });

    await page.getByRole("button", { name: "Actions for careful" }).click();
    await menu(page).getByRole("menuitem", { name: /^Rollback system/ }).click();
    await confirm.getByRole("button", { name: "Rollback system" }).click();
    await fleetRow(page, "careful").getByText("Rollback system queued…").waitFor();
  });

  it("names the ⋮ host menu by its aria-label alone, on the row and on the host page: no tooltip repeats the name", async () => {
    await page.goto(dashboard.url);
    const onRow = fleetRow(page, "careful").getByRole("button", { name: "Actions for careful", exact: true });
    await onRow.waitFor();
    expect(await onRow.getAttribute("title")).toBeNull();
    await page.goto(`${dashboard.url}/hosts/careful`);
    const onPage = page.getByRole("button", { name: "Actions for careful", exact: true });
    await onPage.waitFor();
    expect(await onPage.getAttribute("title")).toBeNull();
  });

  it("runs a bulk action on the selected hosts after naming them, and shows each host's refusal instead of swallowing it", async () => {
    await addHostThroughApi(dashboard, "bulk-a");
    await addHostThroughApi(dashboard, "bulk-b");
    await dashboard.api("/api/hosts/bulk-b/commands", { method: "POST", body: { kind: "switch" } });
    await page.reload();
    await page.getByRole("checkbox", { name: "Select bulk-a" }).check();
    await page.getByRole("checkbox", { name: "Select bulk-b" }).check();
    await page.getByRole("toolbar", { name: "Bulk actions" }).getByText("2 selected hosts:").waitFor();
    await page.getByRole("toolbar", { name: "Bulk actions" }).getByRole("button", { name: "Pull + Switch" }).click();

    // The dialog's module loads on this first opening: its host list arrives after the click.
    const dialog = page.getByRole("dialog", { name: "Pull + Switch on 2 selected hosts?" });
    const named = dialog.getByRole("list", { name: "hosts" });
    await expect.poll(() => named.getByRole("listitem").allTextContents()).toEqual(["bulk-a", "bulk-b"]);
    await dialog.getByRole("button", { name: "Pull + Switch 2 hosts" }).click();
    const result = page.getByRole("dialog", { name: "Pull + Switch: 1 queued, 1 refused" });
    await result.getByText("queued").first().waitFor();
    await result.getByText(/bulk-b already has switch/).waitFor();
    await result.getByRole("button", { name: "Close" }).click();
    await fleetRow(page, "bulk-a").getByText("Pull + Switch queued…").waitFor();
  });

  it("rotates a host's token after asking: the new token is shown once and the old one stops working", async () => {
    const { token: oldToken } = await addHostThroughApi(dashboard, "rotate");
    await page.reload();
    // Act on the reloaded page once it is live (its event stream connected), as the accessibility test does.
    await page.locator("nf-app .connection.live").waitFor();
    await fleetRow(page, "rotate").waitFor();
    await page.getByRole("button", { name: "Actions for rotate" }).click();
    await menu(page).getByRole("menuitem", { name: /^Rotate token/ }).click();
    await page.getByRole("dialog", { name: "Rotate the token of rotate?" }).getByRole("button", { name: "Rotate token" }).click();
    const shown = page.getByRole("dialog", { name: "New token for rotate" });
    const tokenField = shown.getByTestId("token");
    await expect.poll(() => tokenField.inputValue()).toMatch(/^[A-Za-z0-9_-]{16,200}$/);
    const newToken = await tokenField.inputValue();
    expect(newToken).not.toBe(oldToken);
    await shown.getByText("The old token no longer works").waitFor();
    expect((await agentPoll(dashboard.url, oldToken)).status).toBe(401);
    expect((await agentPoll(dashboard.url, newToken)).status).toBe(200);
    await shown.getByRole("button", { name: "Done" }).click();
  });

  it("removes a host after asking, and the row goes", async () => {
    await addHostThroughApi(dashboard, "doomed");
    await page.reload();
    await page.getByRole("button", { name: "Actions for doomed" }).click();
    await menu(page).getByRole("menuitem", { name: /^Remove host/ }).click();
    await page.getByRole("dialog", { name: "Remove doomed?" }).getByRole("button", { name: "Remove host" }).click();
    await expect.poll(() => fleetRow(page, "doomed").count()).toBe(0);
    expect((await dashboard.api("/api/hosts/doomed")).status).toBe(404);
  });

  it("says it is in development mode when the control plane has no Access", async () => {
    // By role: the page GET / wrote has the same banner, hidden once the components show theirs.
    await page.getByRole("region", { name: "Development mode" }).getByText("development mode — no authentication.").waitFor();
  });

  it("follows the system's light or dark preference", async () => {
    const background = () => page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
    await page.emulateMedia({ colorScheme: "dark" });
    await expect.poll(background).toBe("rgb(14, 18, 23)");
    await page.emulateMedia({ colorScheme: "light" });
    await expect.poll(background).toBe("rgb(245, 247, 250)");
  });
});
