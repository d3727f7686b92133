import * as z from "zod";
import { UpdatePrAutomation } from "./automation.ts";
import { FleetBuildView } from "./fleet-build.ts";
import { Sha1 } from "./hosts.ts";
import { LockChange } from "./lock-changes.ts";
import { Sha256Hex } from "./reports.ts";

// ---------------------------------------------------------------------------
// Repository state and update PRs (the fleet's target)

export const CommitInfo = z.object({
  sha: Sha1,
  message: z.string(),
  author: z.string(),
  committedAt: z.string(),
  /** The commit's git tree, when GitHub said it (the push webhook's tree_id, the commit API's tree): desired systems match by tree. */
  tree: Sha1.nullable().optional(),
});
export type CommitInfo = z.infer<typeof CommitInfo>;

export const RepoState = z.object({
  repository: z.string(),
  branch: z.string(),
  head: CommitInfo.nullable(),
  lock: z.object({
    /** sha256 hex of the flake.lock bytes at head: the same digest the agent reports. */
    hash: Sha256Hex.nullable(),
    /** Input path → lastModified (unix seconds). */
    lastModified: z.record(z.string(), z.number().int()).default({}),
  }),
  updatedAt: z.string(),
  source: z.enum(["webhook", "schedule", "api"]),
});
export type RepoState = z.infer<typeof RepoState>;

export const CiState = z.enum(["pending", "success", "failure", "unknown"]);
export type CiState = z.infer<typeof CiState>;

export const UpdatePr = z.object({
  number: z.number().int().positive(),
  title: z.string(),
  url: z.string(),
  state: z.enum(["open", "closed", "merged"]),
  headSha: Sha1,
  headRef: z.string(),
  baseRef: z.string(),
  labels: z.array(z.string()),
  ciState: CiState,
  mergeable: z.boolean().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  mergedAt: z.string().nullable(),
  mergeCommitSha: Sha1.nullable(),
  /** An older open update PR while a newer one exists: shown, not offered. */
  superseded: z.boolean(),
  lockChanges: z.array(LockChange),
  /** `pending` while the control plane reads the PR's flake.lock; `failed` says why in `lockDiffProblem`. */
  lockDiff: z.enum(["pending", "ready", "failed"]).default("ready"),
  lockDiffProblem: z.string().nullable().default(null),
  /** The fleet's build of this head (null: none started). */
  fleetBuild: z.lazy(() => FleetBuildView).nullable().default(null),
  /** What the automation will do with it (null: never considered). */
  automation: z.lazy(() => UpdatePrAutomation).nullable().default(null),
});
export type UpdatePr = z.infer<typeof UpdatePr>;
