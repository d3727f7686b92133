/**
 * The update PR's actions as menu entries, for the Lock cell of a host while the PR is pending
 * (spec 002: "Click → Merge & Deploy"): the same actions as the update PR banner's buttons, opening
 * the same confirmations.
 */
import type { MeResponse, UpdatePr } from "../../common/protocol.ts";
import { UPDATE_PR_ROLE, roleDenial } from "../../common/permissions.ts";
import { ciBlocker } from "./rollouts.ts";

/** One entry of the action menu (a MenuEntry of nf-action-menu.ts). */
export interface UpdatePrAction {
  label: string;
  /** What it does, or why it is disabled. */
  hint: string;
  disabled: boolean;
  suggested: boolean;
  run: () => void;
}

/**
 * `hostAction`: the Lock compartment's own suggested command, if any. A pending PR suggests no host
 * command (docs/compartments.md), so Merge & Deploy is the suggestion when there is none.
 */
export function updatePrMenuEntries(
  pr: UpdatePr,
  me: MeResponse | null,
  hostAction: string | null,
  open: { mergeAndDeploy: () => void; merge: () => void },
): UpdatePrAction[] {
  const denied = roleDenial(me, UPDATE_PR_ROLE);
  const blocker = ciBlocker(pr.ciState);
  return [
    {
      label: `Merge & Deploy #${pr.number}…`,
      hint: denied ?? (blocker ? `${blocker}: asks for an override with a reason` : "merge on GitHub, then roll the merge commit out"),
      disabled: denied !== null,
      suggested: hostAction === null,
      run: open.mergeAndDeploy,
    },
    {
      label: `Merge #${pr.number}…`,
      hint: denied ?? "merge on GitHub without a rollout: hosts then read behind main",
      disabled: denied !== null,
      suggested: false,
      run: open.merge,
    },
  ];
}
