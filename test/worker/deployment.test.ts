// GET /api/deployment: what `nixfleet doctor` reads from inside the deployment (issue 24), on the real
// Worker and the real local D1 with the migrations applied by wrangler's own table.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { DeploymentStatus, WORKER_MARKER_HEADER } from "../../common/protocol.ts";
import { CODE_MIGRATION } from "../../worker/db/migration-level.ts";
import { deliver, example } from "./github-helpers.ts";
import { api } from "./helpers.ts";

describe("GET /api/deployment", () => {
  it("names the newest file in migrations/ as the code's migration", () => {
    expect(env.TEST_MIGRATIONS.length).toBeGreaterThan(0);
    expect(CODE_MIGRATION).toBe(env.TEST_MIGRATIONS.at(-1)!.name);
  });

  it("reports D1 at the code's migration, GitHub's missing credentials by name and no reach attempt, and the last webhook's time", async () => {
    const before = DeploymentStatus.parse(await (await api("/api/deployment")).json());
    expect(before.schema).toEqual({ applied: CODE_MIGRATION, expected: CODE_MIGRATION });
    expect(before.github).toMatchObject({ repository: "example/fleet", reachable: null, reachProblem: null });
    expect(before.github.problems).toContain(
      "no GitHub API credentials: set GITHUB_TOKEN (fine-grained token) or GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY (`npx nixfleet setup` registers the App)",
    );

    const { response } = await deliver("ping", example("ping"));
    expect(response.status).toBeLessThan(300);
    const after = await api("/api/deployment");
    expect(after.headers.get(WORKER_MARKER_HEADER)).toBe("1");
    const { lastWebhookAt } = DeploymentStatus.parse(await after.json());
    expect(lastWebhookAt).not.toBeNull();
    expect(Date.now() - Date.parse(lastWebhookAt!)).toBeLessThan(60_000);
  });

  it("never answers a secret: no value of a configured secret appears in it", async () => {
    const text = await (await api("/api/deployment")).text();
    expect(env.GITHUB_WEBHOOK_SECRET).toBeTruthy();
    expect(text).not.toContain(env.GITHUB_WEBHOOK_SECRET!);
  });
});
