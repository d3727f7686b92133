/** Which pull requests are update PRs, and how one is stored. */
import type { PullRequestRecord } from "../db/github.ts";
import type { UpdatePrRule } from "../github/config.ts";
import type { PullRequestFields } from "../github/events.ts";
import { isRevertPull } from "../github/revert-pull.ts";

/**
 * An update PR carries the configured label (GitHub label names are
 * case-insensitive) or has the configured fragment in its title, in any case
 * (see docs/github.md "Settings": label `automated` or a title containing "flake.lock" by default).
 * A revert PR NixFleet opened never is, whatever its title says.
 */
export function isUpdatePr(pr: { labels: readonly string[]; title: string; headRef: string }, rule: UpdatePrRule): boolean {
  if (isRevertPull(pr)) return false;
  const label = rule.label.toLowerCase();
  if (label !== "" && pr.labels.some((name) => name.toLowerCase() === label)) return true;
  const fragment = rule.titlePattern.toLowerCase();
  return fragment !== "" && pr.title.toLowerCase().includes(fragment);
}

/** Is `pr` older than what is stored? Webhooks are not delivered in order. */
export function isStale(pr: PullRequestFields, stored: PullRequestRecord | null): boolean {
  if (stored === null) return false;
  const incoming = Date.parse(pr.updated_at);
  const known = Date.parse(stored.updatedAt);
  return !Number.isNaN(incoming) && !Number.isNaN(known) && incoming < known;
}

/**
 * The stored form of a pull request as GitHub describes it. What GitHub left
 * out (mergeable, still being computed) and the lock diff of the same head
 * are carried over from `previous`.
 */
export function pullRecord(
  repository: string,
  pr: PullRequestFields,
  rule: UpdatePrRule,
  previous: PullRequestRecord | null,
  now: string,
): PullRequestRecord {
  const labels = pr.labels.map((label) => label.name);
  const merged = pr.merged === true || pr.merged_at !== null;
  const sameHead = previous !== null && previous.headSha === pr.head.sha;
  return {
    repository,
    number: pr.number,
    title: pr.title,
    url: pr.html_url,
    state: merged ? "merged" : pr.state,
    draft: pr.draft ?? false,
    headSha: pr.head.sha,
    headRef: pr.head.ref,
    baseRef: pr.base.ref,
    labels,
    isUpdatePr: isUpdatePr({ labels, title: pr.title, headRef: pr.head.ref }, rule),
    mergeable: pr.mergeable ?? (sameHead ? previous.mergeable : null),
    createdAt: pr.created_at,
    updatedAt: pr.updated_at,
    mergedAt: pr.merged_at,
    // For an open PR GitHub names its test merge commit here; only a real merge matters.
    mergeCommitSha: merged ? pr.merge_commit_sha : null,
    lockChanges: sameHead ? previous.lockChanges : null,
    lockHeadSha: sameHead ? previous.lockHeadSha : null,
    lockBaseHash: sameHead ? previous.lockBaseHash : null,
    lockProblem: sameHead ? previous.lockProblem : null,
    syncedAt: now,
  };
}
