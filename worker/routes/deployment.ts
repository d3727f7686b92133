import { Hono } from "hono";
import type { DeploymentStatus } from "../../common/protocol.ts";
import { lastDeliveryAt } from "../db/github.ts";
import { appliedMigration, CODE_MIGRATION } from "../db/migration-level.ts";
import type { AppEnv } from "../env.ts";
import { githubContext } from "../github/context.ts";

/**
 * `GET /api/deployment` (viewer): what `nixfleet doctor` checks from inside — GitHub configured and
 * answering, D1 at the code's migration, the last webhook. Never a secret: only which settings are
 * missing, GitHub's own error message, names and times.
 */
export const deploymentRoutes = new Hono<AppEnv>().get("/", async (c) => {
  const db = c.get("db");
  const github = githubContext(c.env, db);
  const [applied, lastWebhookAt, reachable] = await Promise.all([
    appliedMigration(db),
    lastDeliveryAt(db),
    github.client === null
      ? Promise.resolve(null)
      : github.client.branchHead(github.config.branch).then(
          () => ({ ok: true as const, problem: null }),
          (error: unknown) => ({ ok: false as const, problem: error instanceof Error ? error.message : String(error) }),
        ),
  ]);
  const status: DeploymentStatus = {
    github: {
      repository: github.config.repository?.fullName ?? null,
      problems: github.config.problems,
      reachable: reachable?.ok ?? null,
      reachProblem: reachable?.problem ?? null,
    },
    schema: { applied, expected: CODE_MIGRATION },
    lastWebhookAt,
  };
  return c.json(status);
});
