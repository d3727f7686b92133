import { ZERO_SHA } from "./git.ts";
import { htmlRepoUrl, identityOf, pushCommitJson } from "./payloads.ts";
import type { EmulatedRepository, RefUpdate } from "./repository.ts";

/** GitHub caps the commits listed in one push payload. */
const PUSH_COMMIT_LIMIT = 2048;

/**
 * The push webhook for a ref change: the new commits (those no other branch had, for a new branch),
 * each with added/modified/removed paths, plus created/deleted/forced as GitHub computes them.
 */
export async function pushPayload(repo: EmulatedRepository, update: RefUpdate, pusher: string): Promise<Record<string, unknown>> {
  const { branch, before, after } = update;
  const created = before === ZERO_SHA;
  const deleted = after === ZERO_SHA;
  const forced = !created && !deleted && !(await repo.git.isAncestor(before, after));
  let shas: string[] = [];
  if (!deleted) {
    const exclude = created
      ? [...(await repo.git.branches())].filter(([name]) => name !== branch).map(([, sha]) => sha)
      : [before];
    shas = await repo.git.commitsBetween(after, exclude, PUSH_COMMIT_LIMIT);
  }
  const commits = [];
  for (const sha of shas) commits.push(await pushCommit(repo, sha));
  const head = deleted ? null : commits.find((c) => c.id === after) ?? { ...(await pushCommit(repo, after)), distinct: false };
  const html = htmlRepoUrl(repo.site);
  return {
    ref: `refs/heads/${branch}`,
    before,
    after,
    created,
    deleted,
    forced,
    base_ref: null,
    compare: created
      ? `${html}/compare/${encodeURIComponent(branch)}`
      : `${html}/compare/${before.slice(0, 12)}...${after.slice(0, 12)}`,
    commits,
    head_commit: head,
    pusher: { name: pusher, email: identityOf(pusher).email },
    sender: pusher,
  };
}

async function pushCommit(repo: EmulatedRepository, sha: string): Promise<Record<string, unknown> & { id: string }> {
  const commit = await repo.git.readCommit(sha);
  if (!commit) throw new Error(`commit ${sha} vanished`);
  const changes = await repo.git.diffFiles(commit.parents[0] ?? null, sha);
  return { ...pushCommitJson(repo.site, commit, changes), id: sha };
}

