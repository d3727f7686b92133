/**
 * The confirm dialog loads on its first use, not in the first paint: asking is rare next to showing the
 * fleet. One importer, so the first paint names its chunk once.
 */
import type { NfConfirmDialog } from "../dialogs/nf-confirm-dialog.ts";

/** The `<nf-confirm-dialog>` rendered in `root`, its element defined. */
export async function confirmDialogIn(root: ParentNode): Promise<NfConfirmDialog> {
  await import("../dialogs/nf-confirm-dialog.ts");
  return root.querySelector("nf-confirm-dialog")!;
}
