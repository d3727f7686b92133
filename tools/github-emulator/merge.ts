import type { GitIdentity, GitRepo } from "./git.ts";

export type MergeMethod = "merge" | "squash" | "rebase";

/** The committer GitHub puts on commits it makes for you. */
export const WEB_FLOW: GitIdentity = { name: "GitHub", email: "noreply@github.com" };

export type MergeOutcome = { ok: true; sha: string } | { ok: false; reason: "conflict" | "cannot-rebase" };

export interface MergeRequest {
  method: MergeMethod;
  baseSha: string;
  headSha: string;
  /** Full commit message (title, blank line, body). */
  message: string;
  /** Who pressed the button: the author of merge and squash commits. */
  merger: GitIdentity;
}

/**
 * Makes the commit(s) a merge would put on the base branch, without moving any ref.
 * merge and squash use `git merge-tree` (no work tree); rebase replays each commit with
 * `git cherry-pick` in a temporary work tree, since git 2.39's merge-tree cannot take a merge base.
 */
export async function makeMergeCommit(git: GitRepo, request: MergeRequest): Promise<MergeOutcome> {
  const { method, baseSha, headSha } = request;
  if (method === "rebase") return rebase(git, baseSha, headSha);
  const merged = await git.mergeTree(baseSha, headSha);
  if (!merged.clean) return { ok: false, reason: "conflict" };
  let author = request.merger;
  if (method === "squash") {
    // GitHub credits a squash to the pull request's author; the first commit's author stands in.
    const first = (await git.commitsBetween(headSha, [baseSha]))[0];
    const commit = first ? await git.readCommit(first) : null;
    if (commit) author = { name: commit.author.name, email: commit.author.email };
  }
  const sha = await git.commitTree({
    tree: merged.tree,
    parents: method === "merge" ? [baseSha, headSha] : [baseSha],
    message: request.message,
    author,
    committer: WEB_FLOW,
  });
  return { ok: true, sha };
}

async function rebase(git: GitRepo, baseSha: string, headSha: string): Promise<MergeOutcome> {
  const commits = await git.commitsBetween(headSha, [baseSha], Number.MAX_SAFE_INTEGER);
  for (const sha of commits) {
    const commit = await git.readCommit(sha);
    if (!commit || commit.parents.length > 1) return { ok: false, reason: "cannot-rebase" };
  }
  if (commits.length === 0) return { ok: false, reason: "cannot-rebase" };
  return git.withWorktree(baseSha, async (dir) => {
    const env = git.env({ committer: WEB_FLOW });
    env.GIT_COMMITTER_NAME = WEB_FLOW.name;
    env.GIT_COMMITTER_EMAIL = WEB_FLOW.email;
    const picked = await git.run(["cherry-pick", "--allow-empty", "--keep-redundant-commits", ...commits], {
      cwd: dir,
      worktree: true,
      env,
      okExitCodes: [1],
    });
    if (picked.exitCode !== 0) {
      await git.run(["cherry-pick", "--abort"], { cwd: dir, worktree: true, okExitCodes: [1, 128] });
      return { ok: false, reason: "conflict" } satisfies MergeOutcome;
    }
    const sha = await git.text(["rev-parse", "HEAD"], { cwd: dir, worktree: true });
    return { ok: true, sha } satisfies MergeOutcome;
  });
}

/** GitHub's default merge commit message for each method. */
export async function defaultMergeMessage(
  git: GitRepo,
  options: {
    method: MergeMethod;
    number: number;
    owner: string;
    head: string;
    title: string;
    baseSha: string;
    headSha: string;
    commitTitle?: string;
    commitMessage?: string;
  },
): Promise<string> {
  if (options.method === "rebase") return "";
  let title = options.commitTitle;
  let body = options.commitMessage;
  if (options.method === "merge") {
    title ??= `Merge pull request #${options.number} from ${options.owner}/${options.head}`;
    body ??= options.title;
  } else {
    title ??= `${options.title} (#${options.number})`;
    if (body === undefined) {
      const shas = await git.commitsBetween(options.headSha, [options.baseSha]);
      const messages: string[] = [];
      for (const sha of shas) {
        const commit = await git.readCommit(sha);
        if (commit) messages.push(commit.message.trim());
      }
      body = messages.length === 1 ? (messages[0] ?? "").split("\n").slice(2).join("\n") : messages.map((m) => `* ${m}`).join("\n\n");
    }
  }
  return body ? `${title}\n\n${body}` : title;
}
