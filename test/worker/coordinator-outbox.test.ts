/**
 * The coordinator's outbox against GitHub (the `automation` project: the local GitHub emulator): a fleet
 * build's commit status post that GitHub refuses stays in the outbox, the coordinator is evicted before it
 * is tried again, and after the restart the status reaches GitHub exactly once — also when its outbox row
 * comes back as after a lost delete. The audit entry and notification side is in coordinator-eviction.test.ts.
 */
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { FLEET_BUILD_CONTEXT } from "../../worker/fleet-build/rules.ts";
import { REPOSITORY } from "./github-helpers.ts";
import { createHost, poll, sampleReport } from "./helpers.ts";

const stub = () => env.COORDINATOR.getByName("fleet");
const API = env.GITHUB_API_URL!;

async function emulator(path: string, body?: unknown): Promise<Response> {
  const method = body === undefined ? "GET" : "POST";
  const res = await fetch(`${API}${path}`, {
    method,
    headers: { "content-type": "application/json", authorization: `token ${env.GITHUB_TOKEN}` },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res;
}

const statusesOn = async (head: string) =>
  z.array(z.object({ state: z.string(), context: z.string() })).parse(await (await emulator(`/repos/${REPOSITORY}/commits/${head}/statuses`)).json());

const outbox = () =>
  runInDurableObject(stub(), (_instance, state) =>
    state.storage.sql.exec("select key, attempts from outbox order by seq").toArray().map((row) => ({ key: String(row.key), attempts: Number(row.attempts) })),
  );

// The post leaves after the step and the emulator answers after a few git commands: slower than vi.waitFor's default.
const until = (check: () => Promise<void>) => vi.waitFor(check, { timeout: 30_000, interval: 100 });

describe("a commit status post across an eviction", () => {
  it("refused by GitHub, then the coordinator evicted: posted exactly once after the restart", async () => {
    const name = "outbox-status";
    const { token } = await createHost(name);
    expect((await poll(token, { agentSession: "outbox-session", report: sampleReport({ hostname: name }) }, 0)).status).toBe(200);
    const pushed = await emulator("/_emulator/push", { branch: `outbox-test/${crypto.randomUUID().slice(0, 8)}`, files: { "outbox.txt": "1\n" }, message: "outbox test" });
    const head = z.object({ sha: z.string() }).parse(await pushed.json()).sha;
    // GitHub's front end answers the first post on this head 502.
    await emulator("/_emulator/faults", { method: "POST", path: `/repos/${REPOSITORY}/statuses/${head}`, status: 502, count: 1 });

    const started = await stub().startFleetBuild({ pr: 91, headSha: head, actor: "outbox test" });
    if (!started.ok) throw new Error(`fleet build refused: ${started.message}`);
    const key = `status:${started.build.id}`;
    await until(async () => expect((await outbox()).find((row) => row.key === key)?.attempts).toBe(1));
    expect(await statusesOn(head)).toEqual([]);

    await evictDurableObject(stub());
    await runDurableObjectAlarm(stub());
    await until(async () => expect(await statusesOn(head)).toHaveLength(1));
    await until(async () => expect(await outbox()).toEqual([]));
    expect((await statusesOn(head))[0]).toMatchObject({ state: "pending", context: FLEET_BUILD_CONTEXT });

    // The post's row back in the outbox, as a crash between GitHub's answer and the delete would leave it:
    // carried out again, it finds the status taken and posts nothing.
    await runInDurableObject(stub(), (_instance, state) => {
      state.storage.sql.exec("INSERT INTO outbox (key, body, next_at) VALUES (?, ?, ?)", key, JSON.stringify({ type: "commit-status", buildId: started.build.id }), Date.now());
    });
    await runDurableObjectAlarm(stub());
    await until(async () => expect(await outbox()).toEqual([]));
    expect(await statusesOn(head)).toHaveLength(1);
    const audit = await env.DB.prepare("select count(*) as n from audit_log where action = 'fleet-build.start' and target = '#91'").first<{ n: number }>();
    expect(audit?.n).toBe(1);
  });
});
