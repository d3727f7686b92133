import * as z from "zod";

/** `GET /api/deployment`: what `nixfleet doctor` checks inside the deployment; no secret in it. */
export const DeploymentStatus = z.object({
  github: z.object({
    repository: z.string().nullable(),
    /** Settings missing or wrong, each a sentence that says what to set. */
    problems: z.array(z.string()),
    /** Whether reading the branch worked; null when there are no credentials to try with. */
    reachable: z.boolean().nullable(),
    reachProblem: z.string().nullable(),
  }),
  /** Migration file names: the newest applied to D1 (null: none) and the newest this code needs. */
  schema: z.object({ applied: z.string().nullable(), expected: z.string() }),
  lastWebhookAt: z.string().nullable(),
});
export type DeploymentStatus = z.infer<typeof DeploymentStatus>;
