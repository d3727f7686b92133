import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ApiError, DashboardApi } from "../../ui/data/api.ts";
import { FakeControlPlane } from "./fake-control-plane.ts";
import { rolloutPlan, rolloutView, updatePr } from "./fixtures.ts";

let server: FakeControlPlane;
let api: DashboardApi;

beforeEach(async () => {
  server = await new FakeControlPlane().start();
  api = new DashboardApi({ baseUrl: server.url });
});
afterEach(() => server.stop());

const bodyOf = (route: string) => {
  const [method, path] = route.split(" ");
  const request = server.requests.find((r) => r.method === method && r.path.split("?")[0] === path);
  return request ? JSON.parse(request.body) : undefined;
};

async function failure(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error("expected the request to fail");
}

describe("the rollouts API in the dashboard", () => {
  it("asks for a plan and reads its waves, canary first, and the hosts left out with their reasons", async () => {
    const plan = rolloutPlan([["canary1"], ["web1", "web2"]], [{ name: "db1", reason: "held: kernel bisect" }], 42);
    server.on("POST /api/rollouts/plan", { json: { plan } });
    const answer = await api.planRollout({ pr: 42 });
    expect(answer.waves.map((wave) => [wave.index, wave.canary, wave.hosts])).toEqual([
      [1, true, ["canary1"]],
      [2, false, ["web1", "web2"]],
    ]);
    expect(answer.leftOut).toEqual([{ name: "db1", reason: "held: kernel bisect" }]);
    expect(bodyOf("POST /api/rollouts/plan")).toEqual({ pr: 42 });
  });

  it("starts a rollout with the confirmed commit and hosts, and merges and deploys a PR with its head and an override reason", async () => {
    const rollout = rolloutView("ro_1", [["web1"]]);
    server.on("POST /api/rollouts", { status: 201, json: { rollout } });
    server.on("POST /api/update-prs/42/merge-and-deploy", { status: 201, json: { rollout: { ...rollout, id: "ro_2", pr: 42 } } });
    expect((await api.startRollout({ commit: "c".repeat(40), hosts: ["web1"], ignoreWindows: true })).id).toBe("ro_1");
    expect(bodyOf("POST /api/rollouts")).toEqual({ commit: "c".repeat(40), hosts: ["web1"], ignoreWindows: true });
    const pr = updatePr();
    const merged = await api.mergeAndDeploy(42, { sha: pr.headSha, override: { reason: "flaky runner" }, ignoreWindows: false });
    expect(merged.pr).toBe(42);
    expect(bodyOf("POST /api/update-prs/42/merge-and-deploy")).toEqual({ sha: pr.headSha, override: { reason: "flaky runner" }, ignoreWindows: false });
  });

  it("passes on why a merge was refused: CI not green, GitHub's refusal, GitHub not configured", async () => {
    server.on("POST /api/update-prs/42/merge-and-deploy", { status: 409, json: { error: { code: "ci_not_green", message: "CI failed: build" } } });
    server.on("POST /api/update-prs/43/merge-and-deploy", { status: 409, json: { error: { code: "merge_refused", message: "Head branch was modified" } } });
    server.on("POST /api/update-prs/44/merge-and-deploy", { status: 503, json: { error: { code: "github_not_configured", message: "no GitHub App" } } });
    const ci = await failure(api.mergeAndDeploy(42, {}));
    expect([ci.status, ci.code, ci.message]).toEqual([409, "ci_not_green", "CI failed: build"]);
    expect((await failure(api.mergeAndDeploy(43, {}))).code).toBe("merge_refused");
    expect((await failure(api.mergeAndDeploy(44, {}))).status).toBe(503);
  });

  it("pages the history with limit and before, and reads a rollout with its PR and lock changes", async () => {
    server.on("GET /api/rollouts", { json: { rollouts: [rolloutView("ro_9", [["web1"]], { state: "succeeded", done: 1, finishedAt: "2025-12-01T12:05:00.000Z" })] } });
    const page = await api.rollouts({ limit: 20, before: "ro_10" });
    expect(page[0]?.state).toBe("succeeded");
    expect(server.requests.at(-1)?.path).toBe("/api/rollouts?limit=20&before=ro_10");
    const change = { input: "nixpkgs", kind: "updated", old: null, new: null, compareUrl: "https://github.com/NixOS/nixpkgs/compare/a...b", commits: 12 };
    server.on("GET /api/rollouts/ro_9", {
      json: { rollout: rolloutView("ro_9", [["web1"]]), context: { pr: { number: 42, title: "flake.lock: Update", url: "https://github.com/example/fleet/pull/42" }, lockChanges: [change] } },
    });
    const detail = await api.rollout("ro_9");
    expect(detail.context.pr?.number).toBe(42);
    expect(detail.context.lockChanges[0]?.commits).toBe(12);
  });

  it("refuses a rollout answer that breaks the protocol instead of showing it", async () => {
    server.on("POST /api/rollouts/ro_1/cancel", { json: { rollout: { ...rolloutView("ro_1", [["web1"]]), state: "paused" } } });
    const err = await failure(api.cancelRollout("ro_1"));
    expect(err.code).toBe("bad_response");
    expect(err.message).toContain("rollout.state");
  });

  it("holds a host with a reason and an end, and releases it", async () => {
    const hold = { reason: "kernel bisect", until: "2025-12-10T14:00:00.000Z", by: "alice@example.com", at: "2025-12-01T12:00:00.000Z" };
    server.on("PUT /api/hosts/web1/hold", { json: { hold } });
    server.on("DELETE /api/hosts/web1/hold", { json: { ok: true } });
    expect(await api.setHold("web1", { reason: "kernel bisect", until: hold.until })).toEqual(hold);
    expect(bodyOf("PUT /api/hosts/web1/hold")).toEqual({ reason: "kernel bisect", until: hold.until });
    await api.releaseHold("web1");
    expect(server.count("DELETE /api/hosts/web1/hold")).toBe(1);
  });
});
