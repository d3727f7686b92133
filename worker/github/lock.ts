/** flake.lock through the GitHub API: its hash and ages at a ref, and an update PR's lock diff. */
import {
  diffFlakeLocks,
  flakeLockHash,
  lockLastModified,
  LockFileError,
  parseFlakeLock,
  type FlakeLock,
} from "../../common/lock-diff.ts";
import type { LockChange } from "../../common/protocol.ts";
import type { GitHubClient } from "./client.ts";
import { GitHubRateLimitError } from "./errors.ts";

export const LOCK_PATH = "flake.lock";

/** Compare calls per lock diff: enough for a real update, bounded against a lock that changed everything. */
const MAX_COMPARES = 12;

export interface LockSnapshot {
  /** sha256 hex of the exact bytes (common/lock-diff.ts), null when there is no flake.lock. */
  hash: string | null;
  lastModified: Record<string, number>;
  /** Why there is no hash or no parsed lock. */
  problem: string | null;
  lock: FlakeLock | null;
}

export async function readLockAt(client: GitHubClient, ref: string): Promise<LockSnapshot> {
  const bytes = await client.fileAt(LOCK_PATH, ref);
  if (bytes === null) return { hash: null, lastModified: {}, problem: `no ${LOCK_PATH} at ${shortRef(ref)}`, lock: null };
  const hash = await flakeLockHash(bytes);
  try {
    const lock = parseFlakeLock(new TextDecoder().decode(bytes));
    return { hash, lastModified: lockLastModified(lock), problem: null, lock };
  } catch (error) {
    if (error instanceof LockFileError) return { hash, lastModified: {}, problem: error.message, lock: null };
    throw error;
  }
}

/** A lock with no inputs: what a branch without flake.lock pins. */
const EMPTY_LOCK: FlakeLock = { version: 7, root: "root", nodes: { root: {} } };

export interface PullLockDiff {
  changes: LockChange[] | null;
  /** The hash of the base branch's lock the diff was computed against. */
  baseHash: string | null;
  problem: string | null;
}

/**
 * What merging the PR would change in the fleet's flake.lock: the base
 * branch's lock against the PR head's, with commit counts where GitHub can
 * compare the two revs.
 */
export async function pullLockDiff(client: GitHubClient, baseRef: string, headSha: string): Promise<PullLockDiff> {
  const [base, head] = await Promise.all([readLockAt(client, baseRef), readLockAt(client, headSha)]);
  if (base.hash !== null && base.lock === null) return { changes: null, baseHash: base.hash, problem: `${baseRef}: ${base.problem}` };
  if (head.hash !== null && head.lock === null) return { changes: null, baseHash: base.hash, problem: `pull request head: ${head.problem}` };
  const changes = diffFlakeLocks(base.lock ?? EMPTY_LOCK, head.lock ?? EMPTY_LOCK);
  return { changes: await withCommitCounts(client, changes), baseHash: base.hash, problem: null };
}

const GITHUB_COMPARE = /^https:\/\/github\.com\/([^/]+)\/([^/]+)\/compare\/([^/.]+)\.\.\.([^/.]+)$/;

/**
 * Fills `commits` for GitHub inputs through the compare API of the input's
 * own repository, top-level inputs first (a lock update moves dozens of
 * nested ones). Failures leave null: a count is a nicety, never a reason to
 * lose the diff. A rate limit stops further attempts.
 */
export async function withCommitCounts(client: GitHubClient, changes: LockChange[]): Promise<LockChange[]> {
  const depth = (input: string) => input.split("/").length;
  const candidates = changes
    .flatMap((change, index) => {
      const match = change.compareUrl ? GITHUB_COMPARE.exec(change.compareUrl) : null;
      if (match === null) return [];
      const [, owner = "", name = "", from = "", to = ""] = match;
      return [{ index, owner, name, from: decodeURIComponent(from), to: decodeURIComponent(to), depth: depth(change.input) }];
    })
    .sort((a, b) => a.depth - b.depth || a.index - b.index)
    .slice(0, MAX_COMPARES);
  const counts = new Map<number, number>();
  for (const candidate of candidates) {
    try {
      const compare = await client.compare(candidate.from, candidate.to, { owner: candidate.owner, name: candidate.name });
      counts.set(candidate.index, compare.aheadBy);
    } catch (error) {
      if (error instanceof GitHubRateLimitError) break;
    }
  }
  return changes.map((change, index) => (counts.has(index) ? { ...change, commits: counts.get(index)! } : change));
}

const shortRef = (ref: string): string => (/^[0-9a-f]{40}$/.test(ref) ? ref.slice(0, 7) : ref);
