import { afterAll, beforeAll, expect, it } from "vitest";
import type { Page } from "playwright-core";
import { describeWithBrowser, openBrowser, type BrowserSession } from "./browser.ts";
import { startDashboard, type Dashboard } from "./dashboard.ts";
import { addHostThroughApi } from "./helpers.ts";

/** git's ordinary progress on stderr, as a pull writes it. */
const PULL_OUTPUT = [
  { stream: "system", data: "$ git -C /var/lib/nixfleet/clone fetch --prune --no-tags origin +refs/heads/main:refs/remotes/origin/main\n" },
  { stream: "stderr", data: "From https://github.com/example/fleet\n   5ac4024..64ef72a  main       -> origin/main\n" },
  { stream: "system", data: "$ git -C /var/lib/nixfleet/clone checkout --force -B main origin/main\n" },
  { stream: "stderr", data: "Preparing worktree (detached HEAD 64ef72a)\n" },
  { stream: "stdout", data: "HEAD is now at 64ef72a two\n" },
] as const;

describeWithBrowser("command output in Chromium", () => {
  let dashboard: Dashboard;
  let session: BrowserSession;
  let page: Page;
  let token: string;

  beforeAll(async () => {
    dashboard = await startDashboard();
    ({ token } = await addHostThroughApi(dashboard, "out1"));
    session = await openBrowser();
    page = session.page;
  });
  afterAll(async () => {
    await session?.close();
    await dashboard?.stop();
  });

  /** Queues a pull and plays the agent's side over its real API: delivery, output, the end. */
  async function runPull(failedStep: { command: string; stderr: string } | null): Promise<string> {
    const queued = await dashboard.api("/api/hosts/out1/commands", { method: "POST", body: { kind: "pull" } });
    const commandId = (queued.json as { command?: { id?: unknown } }).command?.id;
    expect(queued.status, JSON.stringify(queued.json)).toBe(202);
    expect(commandId).toMatch(/^cmd_/);
    const agent = (path: string, body: unknown) =>
      fetch(`${dashboard.url}/api/agent${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const poll = await agent("/poll?wait=0", { protocol: 1, agentSession: "output-test-session", activeCommands: [], acks: [] });
    const delivered = (await poll.json()) as { commands: Array<{ id: string }> };
    expect(delivered.commands.map((c) => c.id)).toContain(commandId);
    const failure = failedStep === null ? [] : [{ stream: "system", data: `$ ${failedStep.command}\n` }, { stream: "stderr", data: failedStep.stderr }];
    const chunks = [...PULL_OUTPUT, ...failure].map((chunk, seq) => ({ seq, ...chunk }));
    const outcome = failedStep === null ? "succeeded" : "failed";
    const at = () => new Date().toISOString();
    for (const event of [
      { type: "started", at: at() },
      { type: "output", chunks },
      { type: "finished", at: at(), outcome, exitCode: outcome === "succeeded" ? 0 : 128, error: failedStep?.stderr ?? null },
    ]) {
      const sent = await agent(`/commands/${String(commandId)}/events`, event);
      expect(sent.status, await sent.text()).toBeLessThan(300);
    }
    return String(commandId);
  }

  it("shows a successful pull's git progress as stderr, with no line marked as an error", async () => {
    const commandId = await runPull(null);
    await page.goto(`${dashboard.url}/hosts/out1?command=${commandId}`);
    const output = page.locator("nf-command-output");
    await output.locator('[data-state="succeeded"]').waitFor();
    await output.locator(".line.stderr", { hasText: "Preparing worktree" }).waitFor();
    expect(await output.locator(".line.stderr").count()).toBe(3);
    expect(await output.locator(".line.stderr .gutter").first().textContent()).toBe("stderr");
    expect(await output.locator(".error-line").count()).toBe(0);
    // Neutral: a stderr line has the same background as a stdout line (it was red).
    const background = (text: string) => output.locator(".line", { hasText: text }).evaluate((line) => getComputedStyle(line).backgroundColor);
    expect(await background("Preparing worktree")).toBe(await background("HEAD is now at"));
    expect(session.errors).toEqual([]);
  });

  it("marks the failed step's fatal: as the error and leaves the successful steps' progress plain", async () => {
    const commandId = await runPull({
      command: "git -C /var/lib/nixfleet/clone merge-base --is-ancestor 9f8e7d6 refs/remotes/origin/main",
      stderr: "fatal: Not a valid commit name 9f8e7d6\n",
    });
    await page.goto(`${dashboard.url}/hosts/out1?command=${commandId}`);
    const output = page.locator("nf-command-output");
    await output.locator('[data-state="failed"]').waitFor();
    const errors = output.locator(".line.error-line");
    await errors.first().waitFor();
    expect(await errors.allTextContents()).toEqual([expect.stringContaining("fatal: Not a valid commit name 9f8e7d6")]);
    expect(await errors.locator(".gutter").textContent()).toBe("error");
    expect(await output.locator(".line.stderr:not(.error-line)").allTextContents()).toEqual([
      expect.stringContaining("From https://github.com/example/fleet"),
      expect.stringContaining("5ac4024..64ef72a"),
      expect.stringContaining("Preparing worktree"),
    ]);
    expect(session.errors).toEqual([]);
  });
});
