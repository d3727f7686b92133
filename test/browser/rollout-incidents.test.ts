/**
 * The Update history in Chromium against the real control plane: a host whose tests fail after a
 * rollout switched it shows in that rollout's entry as "h3's tests failed … after this update". The
 * agent's side is played over HTTP (its polls, its command's end, its reports), as a real agent sends it.
 */
import type { Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { z } from "zod";
import { buildReport, sha } from "../compartments/builders.ts";
import { describeWithBrowser, openBrowser, type BrowserSession } from "./browser.ts";
import { startDashboard, type Dashboard } from "./dashboard.ts";
import { addHostThroughApi, agentPoll, eventually } from "./helpers.ts";

const HOST = "h3";
const UPDATE = sha("update");
const SYSTEM = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-h3";
const Polled = z.object({ commands: z.array(z.object({ id: z.string(), kind: z.string() })) });
const Started = z.object({ rollout: z.object({ id: z.string() }) });
const Incidents = z.object({ incidents: z.array(z.object({ rolloutId: z.string(), host: z.string(), event: z.string() })) });

/** h3's report at `commit`: its agent runs the tests after a switch, and the last run passed or failed. */
const report = (commit: string, passed: boolean) =>
  buildReport({
    hostname: HOST,
    commit,
    current: SYSTEM,
    builtFromCommit: commit,
    autoRunAfterSwitch: true,
    lastTestRun: { system: SYSTEM, finishedAt: new Date().toISOString(), results: [{ name: "smoke", passed, exitCode: passed ? 0 : 1, durationMs: 5, output: "" }] },
  });

describeWithBrowser("the Update history's hosts that turned red", () => {
  let dashboard: Dashboard;
  let session: BrowserSession;
  let page: Page;
  let token: string;

  beforeAll(async () => {
    dashboard = await startDashboard({ ROLLOUT_CANARY_SOAK_SECONDS: "0" });
    ({ token } = await addHostThroughApi(dashboard, HOST));
    expect((await agentPoll(dashboard.url, token, report(sha("initial"), true))).status).toBe(200);
    session = await openBrowser();
    page = session.page;
  });
  afterAll(async () => {
    await session?.close();
    await dashboard?.stop();
  });

  it("shows \"h3's tests failed … after this update\" in the entry of the rollout that switched h3", async () => {
    const started = await dashboard.api("/api/rollouts", { method: "POST", body: { commit: UPDATE, hosts: [HOST], ignoreWindows: true } });
    expect(started.status, JSON.stringify(started.json)).toBe(201);
    const rolloutId = Started.parse(started.json).rollout.id;

    // The agent's side: the pull-switch it is sent, its end at the update's commit, then its reports.
    const agent = (path: string, body: unknown) =>
      fetch(`${dashboard.url}/api/agent${path}`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(body) });
    const polled = await agent("/poll?wait=0", { protocol: 1, agentSession: "browser-test-session", activeCommands: [], acks: [] });
    const command = Polled.parse(await polled.json()).commands.find((c) => c.kind === "pull-switch");
    expect(command, "h3 was sent no pull-switch").toBeDefined();
    const finished = await agent(`/commands/${command!.id}/events`, {
      type: "finished",
      at: new Date().toISOString(),
      outcome: "succeeded",
      exitCode: 0,
      result: { commitBefore: sha("initial"), commitAfter: UPDATE },
    });
    expect(finished.status).toBe(200);
    expect((await agentPoll(dashboard.url, token, report(UPDATE, true))).status).toBe(200);
    await eventually("the rollout to succeed", async () => JSON.stringify((await dashboard.api(`/api/rollouts/${rolloutId}`)).json).includes('"state":"succeeded"'));

    expect((await agentPoll(dashboard.url, token, report(UPDATE, false))).status).toBe(200);
    await eventually("h3's incident linked to the rollout", async () => {
      const { incidents } = Incidents.parse((await dashboard.api(`/api/rollouts/incidents?ids=${rolloutId}`)).json);
      return incidents.some((i) => i.host === HOST && i.event === "tests-failed");
    });

    await page.goto(`${dashboard.url}/rollouts`);
    const entry = page.locator(`li[data-rollout="${rolloutId}"]`);
    const line = entry.getByRole("list", { name: "Hosts that turned red after this update" }).getByRole("listitem");
    await line.first().waitFor();
    expect(await line.allTextContents()).toEqual(["h3's tests failed less than a minute after this update"]);
    expect(await line.first().getAttribute("title")).toContain("tests failed: smoke");
    expect(session.errors).toEqual([]);
  });
});
