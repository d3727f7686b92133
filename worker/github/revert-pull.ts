/**
 * The revert PR NixFleet opens (worker/coordinator/revert.ts) comes from a branch of its own and carries
 * a label of its own. Its title, and after a squash merge its merge commit's message, name the
 * flake.lock update it reverts, so the title alone would make it look like an update PR: the branch
 * and the label say what it is, whichever survives (a person may remove the label; the branch stays).
 */
export const REVERT_BRANCH_PREFIX = "nixfleet/revert-";
export const REVERT_PR_LABEL = "nixfleet-revert";

/** A pull request NixFleet opened to revert an update: never an update PR itself. */
export function isRevertPull(pr: { headRef: string; labels: readonly string[] }): boolean {
  const label = REVERT_PR_LABEL.toLowerCase();
  return pr.headRef.startsWith(REVERT_BRANCH_PREFIX) || pr.labels.some((name) => name.toLowerCase() === label);
}
