import { afterAll, beforeAll, expect, it } from "vitest";
import type { Page } from "playwright-core";
import { WEEKDAYS } from "../../common/protocol.ts";
import { describeWithBrowser, openBrowser, type BrowserSession } from "./browser.ts";
import { startDashboard, type Dashboard } from "./dashboard.ts";
import { buildReport } from "../compartments/builders.ts";
import { addHostThroughApi, agentPoll, deepFocus, fleetRow, menu } from "./helpers.ts";

describeWithBrowser("host page and audit log in Chromium", () => {
  let dashboard: Dashboard;
  let session: BrowserSession;
  let page: Page;

  beforeAll(async () => {
    // The least history the fleet may keep: each host's newest 20, so the last scenario sees commands pruned.
    dashboard = await startDashboard({ COMMAND_HISTORY_LIMIT: "20" });
    await addHostThroughApi(dashboard, "hsb0");
    session = await openBrowser();
    page = session.page;
  });
  afterAll(async () => {
    await session?.close();
    await dashboard?.stop();
  });

  it("opens a host's page from the table without reloading, and focus lands on its heading", async () => {
    await page.goto(dashboard.url);
    await page.evaluate(() => Object.assign(window, { __nixfleetNoReload: true }));
    await fleetRow(page, "hsb0").getByRole("link", { name: "hsb0" }).click();
    await page.getByRole("heading", { name: "hsb0", level: 1 }).waitFor();
    await expect.poll(() => new URL(page.url()).pathname).toBe("/hosts/hsb0");
    expect(await page.evaluate(() => "__nixfleetNoReload" in window)).toBe(true);
    await expect.poll(() => page.title()).toBe("hsb0 · NixFleet");
    await expect.poll(() => deepFocus(page)).toBe("h1:hsb0");
  });

  it("shows the five compartments with their reasons, and says when there is no report yet", async () => {
    await page.goto(`${dashboard.url}/hosts/hsb0`);
    for (const name of ["Agent", "Git", "Lock", "System", "Tests"]) {
      const card = page.locator("nf-compartment-card").filter({ has: page.getByRole("heading", { name, exact: true }) });
      await card.getByText("never connected").waitFor();
      await card.getByText("unknown").waitFor();
    }
    await page.locator("nf-host-report").getByText("No report yet: the agent has not connected.").waitFor();
    await page.locator("nf-command-history").getByText("No commands yet.").waitFor();
  });

  it("follows a queued command live: history, output placeholder and the Stop that cancels it", async () => {
    await page.goto(`${dashboard.url}/hosts/hsb0`);
    await page.getByRole("button", { name: "Tests actions" }).click();
    await menu(page).getByRole("menuitem", { name: /^Run tests/ }).click();
    const output = page.locator("nf-command-output");
    await output.getByText("Queued: waiting for the host to pick it up…").waitFor();
    await output.locator('[data-state="queued"]').waitFor();
    const history = page.locator("nf-command-history");
    await history.getByRole("row").filter({ hasText: "Run tests" }).getByText("queued").waitFor();
    await page.getByRole("status").filter({ hasText: "Run tests" }).getByRole("button", { name: "Stop" }).click();
    await output.locator('[data-state="cancelled"]').waitFor();
    await history.getByRole("row").filter({ hasText: "Run tests" }).getByText("cancelled").waitFor();
    await output.getByText(/stopped by developer@localhost before delivery/).waitFor();
  });

  it("loads a host page by its address (the worker serves the app for it) and explains an unknown host", async () => {
    await page.goto(`${dashboard.url}/hosts/ghost`);
    await page.getByRole("alert").getByText("no host named ghost").waitFor();
    await page.getByRole("link", { name: "← Fleet" }).click();
    await fleetRow(page, "hsb0").waitFor();
  });

  it("lists who did what in the audit log, newest first, with links to hosts that exist", async () => {
    await page.goto(dashboard.url);
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Audit log" }).click();
    await page.getByRole("heading", { name: "Audit log", level: 1 }).waitFor();
    const rows = page.locator("nf-audit-panel tbody tr");
    const actions = page.locator("nf-audit-panel td.action");
    await expect.poll(async () => (await actions.allTextContents()).slice(0, 3)).toEqual(["command.stop", "command.test", "host.create"]);
    const created = rows.filter({ hasText: "host.create" });
    await expect.poll(() => created.getByText("developer@localhost").count()).toBe(1);
    await created.getByRole("link", { name: "hsb0" }).click();
    await page.getByRole("heading", { name: "hsb0", level: 1 }).waitFor();
  });

  it("lists the host's generations with Roll back to this, which asks first and queues a rollback to that generation; Collect garbage asks, saying what it keeps", async () => {
    const { token } = await addHostThroughApi(dashboard, "gens");
    const system = (n: number) => `/nix/store/${String(n).repeat(32).slice(0, 32)}-nixos-system-gens-25.05`;
    const generations = [1, 2, 3].map((n) => ({ number: n, createdAt: new Date(Date.now() - (4 - n) * 86_400_000).toISOString(), storePath: system(n), label: `25.05.2025010${n}`, current: n === 3, booted: n === 2 }));
    expect((await agentPoll(dashboard.url, token, { ...buildReport({ hostname: "gens" }), generations: { value: generations } })).status).toBe(200);
    await page.goto(`${dashboard.url}/hosts/gens`);
    const section = page.getByRole("region", { name: "Generations of gens" });
    const rows = section.locator("tbody tr");
    await expect.poll(() => rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-generation")))).toEqual(["3", "2", "1"]);
    await rows.nth(0).getByText("current").waitFor();
    await rows.nth(1).getByText("booted").waitFor();
    await rows.nth(2).getByText("nixos-system-gens-25.05").waitFor();
    await rows.nth(2).getByText("25.05.20250101").waitFor();
    expect(await rows.nth(0).getByRole("button", { name: "Roll back to this" }).count()).toBe(0);

    await rows.nth(2).getByRole("button", { name: "Roll back to this" }).click();
    const confirm = page.getByRole("dialog", { name: "Roll gens back to generation 1?" });
    await confirm.getByRole("button", { name: "Roll back" }).click();
    const history = page.locator("nf-command-history");
    await history.getByRole("row").filter({ hasText: "Rollback system" }).getByText("queued").waitFor();
    const audit = (await dashboard.api("/api/audit")).json as { entries: Array<{ action: string; target: string; details: unknown }> };
    expect(audit.entries.find((entry) => entry.action === "command.rollback" && entry.target === "gens")?.details).toMatchObject({ generation: 1 });

    await page.getByRole("button", { name: "Actions for gens" }).click();
    await menu(page).getByRole("menuitem", { name: /^Collect garbage…/ }).click();
    const gc = page.getByRole("dialog", { name: "Collect garbage on gens?" });
    await gc.getByText(/always the booted, the current and any the safety net may go back to/).waitFor();
    await gc.getByRole("button", { name: "Cancel" }).click();
    await expect.poll(() => gc.isVisible()).toBe(false);
    const commands = (await dashboard.api("/api/hosts/gens/commands")).json as { commands: Array<{ kind: string }> };
    expect(commands.commands.map((c) => c.kind)).toEqual(["rollback"]);
  });

  it("shows in System what the switch to main's system changes once it is built on the host, with the whole closure diff behind a disclosure, and main's system in the report", async () => {
    const { token } = await addHostThroughApi(dashboard, "built");
    const running = `/nix/store/${"a".repeat(32)}-nixos-system-built-25.05`;
    const main = `/nix/store/${"b".repeat(32)}-nixos-system-built-25.05`;
    const entries = [
      { name: "linux", old: ["6.6.1"], new: ["6.6.8"], sizeDelta: 3 * 1024 * 1024 },
      { name: "glibc", old: [], new: [], sizeDelta: 12_288 },
    ];
    const desired = { source: "local" as const, evaluating: null, latest: { commit: "1".repeat(40), tree: null, evaluatedAt: new Date().toISOString(), outPath: main, changes: { toBuild: 0, toFetch: 0, downloadBytes: 0 }, closureDiff: { entries, omitted: 0, totalSizeDelta: 3_158_016, comparedWith: running } } };
    expect((await agentPoll(dashboard.url, token, buildReport({ hostname: "built", current: running, mainDesired: desired }))).status).toBe(200);
    await page.goto(`${dashboard.url}/hosts/built`);
    const system = page.locator("nf-compartment-card").filter({ has: page.getByRole("heading", { name: "System", exact: true }) });
    await system.getByText("switch needed: 2 packages change (linux 6.6.1 → 6.6.8 and 1 more), built here").waitFor();
    await system.getByText("Full closure diff: 2 packages, +3.0 MiB in all").click();
    const rows = system.getByRole("region", { name: "Closure diff" }).locator("tbody tr");
    await expect.poll(() => rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-package")))).toEqual(["linux", "glibc"]);
    await system.getByRole("columnheader", { name: "Main's system" }).waitFor();
    // The report's row of main's system says what getting it takes (here nothing: it is in the host's store).
    const report = page.locator("nf-host-report");
    await report.getByText("at 1111111 · built here, ready to activate").waitFor();
    expect(await report.getByTitle(main).textContent()).toBe("nixos-system-built-25.05");
  });

  it("Reboot… on the host page asks first; outside the host's maintenance window it shows the control plane's refusal and, asked again, sends the reboot with force", async () => {
    await addHostThroughApi(dashboard, "rb");
    const { settings } = (await dashboard.api("/api/settings")).json as { settings: Record<string, unknown> };
    // A window on tomorrow's weekday only (UTC): closed now, whatever the time.
    // WEEKDAYS starts on Monday and getUTCDay() on Sunday: today's index plus one is getUTCDay().
    const tomorrow = WEEKDAYS[new Date().getUTCDay()]!;
    const saved = await dashboard.api("/api/settings", { method: "PUT", body: { ...settings, windows: [{ days: [tomorrow], start: "02:00", end: "03:00", timeZone: "UTC", hosts: ["rb"] }] } });
    expect(saved.status, JSON.stringify(saved.json)).toBe(200);
    await page.goto(`${dashboard.url}/hosts/rb`);
    await page.getByRole("button", { name: "Actions for rb" }).click();
    await menu(page).getByRole("menuitem", { name: /^Reboot…/ }).click();
    const ask = page.getByRole("dialog", { name: "Reboot rb?" });
    await ask.getByText(/new boot and the intended system booted/).waitFor();
    await ask.getByRole("button", { name: "Reboot" }).click();
    const outside = page.getByRole("dialog", { name: "Reboot rb outside its maintenance window?" });
    await outside.getByText(/rb is outside its maintenance window: a reboot goes out only inside it; its next window opens/).waitFor();
    expect(((await dashboard.api("/api/hosts/rb/commands")).json as { commands: unknown[] }).commands).toEqual([]);
    await outside.getByRole("button", { name: "Reboot now" }).click();
    await page.locator("nf-command-history").getByRole("row").filter({ hasText: "Reboot" }).getByText("queued").waitFor();
    const audit = (await dashboard.api("/api/audit")).json as { entries: Array<{ action: string; target: string; details: unknown }> };
    expect(audit.entries.find((entry) => entry.action === "command.reboot" && entry.target === "rb")?.details).toMatchObject({ force: true });
  });

  it("the History says how many older commands the history's bounds pruned, and points to the audit log for who asked", async () => {
    await addHostThroughApi(dashboard, "busy");
    // Each test run stopped before delivery ends in two commands (the run cancelled, then the stop stored done). The
    // last cancel, with 21 stored, prunes the oldest; the last stop is stored after it, so 21 are left, 1 pruned.
    for (let i = 0; i < 11; i++) {
      expect((await dashboard.api("/api/hosts/busy/commands", { method: "POST", body: { kind: "test" } })).status).toBe(202);
      expect((await dashboard.api("/api/hosts/busy/commands", { method: "POST", body: { kind: "stop" } })).status).toBe(202);
    }
    await page.goto(`${dashboard.url}/hosts/busy`);
    const history = page.locator("nf-command-history");
    await history.getByText(/^\s*1 older command pruned to keep the coordinator's storage bounded, the newest of them from/).waitFor();
    await history.getByRole("link", { name: "audit log" }).click();
    await page.getByRole("heading", { name: "Audit log", level: 1 }).waitFor();
  });

  it("a link to a kept command older than the page's newest 20 shows that command, and one to a pruned command says it was pruned, never another command", async () => {
    // From the scenario above: busy keeps 21 commands (the page lists the newest 20) and pruned its first, a test run.
    const { commands } = (await dashboard.api("/api/hosts/busy/commands?limit=200")).json as { commands: Array<{ id: string; kind: string; state: string }> };
    expect(commands).toHaveLength(21);
    const oldestKept = commands.at(-1)!;
    const audit = (await dashboard.api("/api/audit")).json as { entries: Array<{ action: string; target: string; details: { commandId?: string } }> };
    const tests = audit.entries.filter((entry) => entry.action === "command.test" && entry.target === "busy").map((entry) => entry.details.commandId);
    expect(tests).toHaveLength(11);
    const pruned = tests.at(-1)!;
    expect(commands.map((command) => command.id)).not.toContain(pruned);

    const output = page.locator("nf-command-output");
    await page.goto(`${dashboard.url}/hosts/busy?command=${oldestKept.id}`);
    await output.locator(`.head[data-command="${oldestKept.id}"]`).getByRole("heading", { name: `Output · ${oldestKept.kind === "stop" ? "Stop" : "Run tests"}` }).waitFor();
    await output.locator(`[data-state="${oldestKept.state}"]`).waitFor();
    expect(await page.locator("nf-command-history").locator(`tr[data-command="${oldestKept.id}"]`).count()).toBe(0);

    await page.goto(`${dashboard.url}/hosts/busy?command=${pruned}`);
    await page.getByRole("alert").getByText(`Command ${pruned} is no longer kept: it was pruned to keep the coordinator's storage bounded (1 command of busy so far).`).waitFor();
    expect(await output.count()).toBe(0);
  });
});
