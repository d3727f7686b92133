/** The parts of GitHub's REST answers the client reads, as zod schemas: parsed, never cast. */
import { z } from "zod";
import { Sha1, type CommitInfo } from "../../common/protocol.ts";
import { PullRequestFields } from "./events.ts";

export const ErrorAnswer = z.object({ message: z.string(), documentation_url: z.string().optional() });

export const GitCommitDetails = z.object({
  message: z.string(),
  author: z.object({ name: z.string(), date: z.string() }).nullable(),
  committer: z.object({ name: z.string(), date: z.string() }).nullable(),
  tree: z.object({ sha: Sha1 }).optional(),
});

export const RestCommit = z.object({
  sha: Sha1,
  commit: GitCommitDetails,
  parents: z.array(z.object({ sha: Sha1 })).default([]),
  files: z
    .array(z.object({ filename: z.string(), status: z.string(), previous_filename: z.string().optional() }))
    .optional(),
});
export type RestCommit = z.infer<typeof RestCommit>;

export const Branch = z.object({ name: z.string(), commit: RestCommit });

export const FileContent = z.object({
  type: z.string(),
  sha: z.string(),
  size: z.number().int().nonnegative(),
  encoding: z.string().optional(),
  content: z.string().optional(),
});

export const Blob = z.object({ content: z.string(), encoding: z.literal("base64") });

export const Compare = z.object({
  status: z.string(),
  ahead_by: z.number().int().nonnegative(),
  behind_by: z.number().int().nonnegative(),
});

export const MergeAnswer = z.object({ sha: Sha1, merged: z.boolean(), message: z.string() });

export const GitCommit = z.object({ sha: Sha1, tree: z.object({ sha: z.string() }), parents: z.array(z.object({ sha: Sha1 })) });

export const Tree = z.object({
  sha: z.string(),
  truncated: z.boolean().default(false),
  tree: z.array(z.object({ path: z.string(), mode: z.string(), type: z.string(), sha: z.string() })),
});
export type TreeEntry = z.infer<typeof Tree>["tree"][number];

export const CheckRuns = z.object({
  check_runs: z.array(
    z.object({
      id: z.number().int(),
      name: z.string(),
      status: z.string(),
      conclusion: z.string().nullable(),
      check_suite: z.object({ id: z.number().int() }).nullable().optional(),
    }),
  ),
});

export const CombinedStatus = z.object({
  statuses: z.array(
    z.object({
      context: z.string(),
      state: z.enum(["pending", "success", "failure", "error"]),
      updated_at: z.string().optional(),
    }),
  ),
});

export const Created = z.object({ id: z.number().int() });

/** A pull request, with only what NixFleet reads. */
export type PullRequestData = z.infer<typeof PullRequestFields>;

export interface CheckRunData {
  id: number;
  name: string;
  status: string;
  conclusion: string | null;
  check_suite?: { id: number } | null;
}

export interface StatusData {
  context: string;
  state: "pending" | "success" | "failure" | "error";
  updatedAt: string | null;
}

export function base64ToBytes(base64: string): Uint8Array<ArrayBuffer> {
  const binary = atob(base64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export function toCommitInfo(commit: RestCommit): CommitInfo {
  const details = commit.commit;
  return {
    sha: commit.sha,
    message: details.message,
    author: details.author?.name ?? details.committer?.name ?? "",
    committedAt: details.committer?.date ?? details.author?.date ?? "",
    tree: details.tree?.sha ?? null,
  };
}
