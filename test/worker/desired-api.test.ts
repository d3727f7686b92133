/**
 * `POST /api/desired`: CI publishes the desired store paths of a commit of main with a token an admin
 * created, which can do nothing else. A host whose desired source is "ci" takes System from it.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { ErrorBody, type DesiredReport } from "../../common/protocol.ts";
import { coordinator } from "../../worker/coordinator.ts";
import { openDatabase } from "../../worker/db/client.ts";
import { savePublication } from "../../worker/db/desired.ts";
import { saveRepoState } from "../../worker/db/github.ts";
import { app } from "../../worker/index.ts";
import { countRows, REPOSITORY, resetGitHubTables } from "./github-helpers.ts";
import { agentFetch, api, createHost, pollBody, sampleReport } from "./helpers.ts";

const MAIN = "4d".repeat(20);
const RUNNING = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-small-25.05";
const NEWER = "/nix/store/zyxwvsrqpnmlkjihgfdcba9876543210-nixos-system-small-25.05";
const CiToken = z.object({ token: z.string(), ciToken: z.object({ createdAt: z.string(), createdBy: z.string() }) });

async function newCiToken(): Promise<string> {
  const res = await api("/api/ci-token", { method: "POST" });
  expect(res.status).toBe(201);
  return CiToken.parse(await res.json()).token;
}

/** As CI sends it: no Origin, no cookie, the bearer token. */
function publish(token: string, body: unknown): Promise<Response> {
  return exports.default.fetch(
    new Request("http://localhost/api/desired", {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: typeof body === "string" ? body : JSON.stringify(body),
    }),
  );
}

const errorCode = async (res: Response) => ErrorBody.parse(await res.json()).error.code;

async function systemOf(name: string) {
  const res = await api(`/api/hosts/${name}`);
  expect(res.status).toBe(200);
  return z.object({ compartments: z.object({ system: z.object({ state: z.string(), reason: z.string() }) }) }).parse(await res.json()).compartments.system;
}

/** A host too small to evaluate: its report says source "ci" and carries no evaluation. */
async function ciHost(name: string, running = RUNNING) {
  const { token } = await createHost(name);
  const desired: DesiredReport = { source: "ci", latest: null, evaluating: null };
  const report = sampleReport({ hostname: name, system: { current: { value: running }, builtFromCommit: null }, desired });
  const res = await agentFetch(token, "/poll?wait=0", pollBody({ agentSession: `session-${name}`, report }));
  expect(res.status).toBe(200);
  return token;
}

beforeEach(async () => {
  await resetGitHubTables();
  await saveRepoState(openDatabase(env.DB), {
    repository: REPOSITORY,
    branch: "main",
    head: { sha: MAIN, message: "hosts: small", author: "Codertocat", committedAt: "2026-12-06T10:00:00Z" },
    lockHash: "c".repeat(64),
    lockLastModified: {},
    lockProblem: null,
    updatedAt: new Date().toISOString(),
    source: "schedule",
  });
  await coordinator(env).notify({ type: "repo" });
});

describe("POST /api/desired", () => {
  it("stores CI's publication, audits it, and turns a ci host's System green or yellow from it", async () => {
    await ciHost("small-green");
    await ciHost("small-yellow");
    expect(await systemOf("small-green")).toEqual({ state: "gray", reason: `unknown: waiting for CI's evaluation of ${MAIN.slice(0, 7)}` });
    const token = await newCiToken();
    const res = await publish(token, { commit: MAIN, hosts: { "small-green": RUNNING, "small-yellow": NEWER } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ commit: MAIN, hosts: 2 });
    expect(await systemOf("small-green")).toEqual({ state: "green", reason: "running main's system" });
    expect(await systemOf("small-yellow")).toMatchObject({ state: "yellow", reason: "switch needed: main builds nixos-system-small-25.05" });
    const audit = await (await api("/api/audit")).json<{ entries: { action: string; actor: string; target: string | null }[] }>();
    expect(audit.entries.find((e) => e.action === "desired.publish")).toMatchObject({ actor: "ci", target: MAIN });
  });

  it("takes main's system from the newest publication of its commit or its tree, CI's or a builder's", async () => {
    await ciHost("small-newest");
    const tree = "7e".repeat(20);
    const prHead = "8a".repeat(20);
    const db = openDatabase(env.DB);
    await saveRepoState(db, {
      repository: REPOSITORY,
      branch: "main",
      head: { sha: MAIN, message: "Merge pull request #9", author: "Codertocat", committedAt: "2026-12-06T10:00:00Z", tree },
      lockHash: "c".repeat(64),
      lockLastModified: {},
      lockProblem: null,
      updatedAt: new Date().toISOString(),
      source: "webhook",
    });
    await coordinator(env).notify({ type: "repo" });
    // A builder built the PR head, whose tree main's merge commit has.
    await savePublication(db, { commit: prHead, tree, hosts: { "small-newest": NEWER }, by: "builder big" }, new Date(Date.now() - 60_000).toISOString());
    expect(await systemOf("small-newest")).toMatchObject({ state: "yellow", reason: "switch needed: main builds nixos-system-small-25.05" });
    // CI's later publication of main's commit wins.
    expect((await publish(await newCiToken(), { commit: MAIN, hosts: { "small-newest": RUNNING } })).status).toBe(200);
    expect(await systemOf("small-newest")).toEqual({ state: "green", reason: "running main's system" });
    // And a builder's later one of the same tree wins over CI's.
    await savePublication(db, { commit: prHead, tree, hosts: { "small-newest": NEWER }, by: "builder big" }, new Date(Date.now() + 1_000).toISOString());
    expect((await systemOf("small-newest")).state).toBe("yellow");
  });

  it("refuses bad input with a clear 400 and stores nothing", async () => {
    await ciHost("small-bad");
    const token = await newCiToken();
    const before = await countRows("desired_publications");
    const bad: [unknown, string][] = [
      ["{", "malformed_json"],
      [{ commit: "not-a-sha", hosts: { "small-bad": RUNNING } }, "invalid_request"],
      [{ commit: MAIN, hosts: {} }, "invalid_request"],
      [{ commit: MAIN, hosts: { "small-bad": "/tmp/not-a-store-path" } }, "invalid_request"],
      [{ commit: MAIN, hosts: { "small-bad": RUNNING }, extra: true }, "invalid_request"],
      [{ commit: MAIN, hosts: { "small-bad": RUNNING, "no-such-host": RUNNING } }, "unknown_host"],
    ];
    for (const [body, code] of bad) {
      const res = await publish(token, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(await errorCode(res)).toBe(code);
    }
    expect(await countRows("desired_publications")).toBe(before);
    expect((await systemOf("small-bad")).state).toBe("gray");
  });

  it("refuses a missing, unknown or rotated token, and an agent's token", async () => {
    const agentToken = await ciHost("small-auth");
    const old = await newCiToken();
    const body = { commit: MAIN, hosts: { "small-auth": RUNNING } };
    const current = await newCiToken();
    for (const token of [old, agentToken, `nfci_${"x".repeat(43)}`]) {
      const res = await publish(token, body);
      expect(res.status).toBe(401);
      expect(await errorCode(res)).toBe("unauthorized");
    }
    const unauthenticated = await exports.default.fetch(new Request("http://localhost/api/desired", { method: "POST", body: JSON.stringify(body) }));
    expect(unauthenticated.status).toBe(401);
    expect((await publish(current, body)).status).toBe(200);
  });

  it("is refused everywhere else: agent routes, the dashboard's admin routes, /metrics", async () => {
    const token = await newCiToken();
    const bearer = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    // The agent API: not a host's token.
    const agentRoutes: [string, unknown][] = [
      ["/api/agent/poll", pollBody()],
      ["/api/agent/commands/cmd_AAAAAAAAAAAAAAAAAAAAAA/events", { type: "started", at: new Date().toISOString() }],
    ];
    for (const [path, body] of agentRoutes) {
      const res = await exports.default.fetch(new Request(`http://localhost${path}`, { method: "POST", headers: bearer, body: JSON.stringify(body) }));
      expect(res.status, path).toBe(401);
    }
    // The dashboard's routes under Cloudflare Access: a bearer token is no Access identity.
    const accessEnv = { ...env, ACCESS_AUD: "aud", ACCESS_TEAM_DOMAIN: "https://team.cloudflareaccess.test" };
    const adminRoutes: [string, string][] = [
      ["POST", "/api/hosts"],
      ["POST", "/api/ci-token"],
      ["PUT", "/api/settings"],
      ["POST", "/api/rollouts"],
      ["GET", "/api/hosts"],
      ["GET", "/api/ci-token"],
    ];
    for (const [method, path] of adminRoutes) {
      const ctx = createExecutionContext();
      const res = await app.fetch(new Request(`https://fleet.example.com${path}`, { method, headers: bearer, ...(method === "GET" ? {} : { body: "{}" }) }), accessEnv, ctx);
      await waitOnExecutionContext(ctx);
      expect(res.status, `${method} ${path}`).toBe(401);
    }
    // Without Access, development mode admits only localhost: from anywhere else the token opens nothing.
    const remote = await exports.default.fetch(new Request("https://fleet.example.com/api/hosts", { method: "POST", headers: bearer, body: JSON.stringify({ name: "x", platform: "nixos" }) }));
    expect(remote.status).toBe(403);
    const metrics = await exports.default.fetch(new Request("http://localhost/metrics", { headers: { authorization: `Bearer ${token}` } }));
    expect(metrics.status).toBe(401);
  });

  it("lets an admin see when the token in force was created, never the token", async () => {
    await newCiToken();
    const res = await api("/api/ci-token");
    expect(res.status).toBe(200);
    const body = await res.json<Record<string, unknown>>();
    expect(body).toEqual({ ciToken: { createdAt: expect.any(String), createdBy: "developer@localhost" } });
  });
});
