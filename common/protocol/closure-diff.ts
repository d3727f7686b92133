import * as z from "zod";

// ---------------------------------------------------------------------------
// Closure diffs (`nix store diff-closures`): a fleet build's, and the desired system's once it is built

/** One package whose versions or size differ between the running system and a build (`nix store diff-closures`). */
export const ClosureDiffEntry = z.object({
  /** The store path name without its version, e.g. `hello`, `nixos-system-web1`. */
  name: z.string().min(1).max(200),
  /** Versions only in the running system; `""` is a path without a version (nix prints `ε`). */
  old: z.array(z.string().max(100)).max(50),
  /** Versions only in the build. */
  new: z.array(z.string().max(100)).max(50),
  /** Bytes; 0 when nix did not print a size (it leaves out changes under 8 KiB). */
  sizeDelta: z.number().int(),
});
export type ClosureDiffEntry = z.infer<typeof ClosureDiffEntry>;

export const CLOSURE_DIFF_MAX_ENTRIES = 2000;

export const ClosureDiff = z.object({
  entries: z.array(ClosureDiffEntry).max(CLOSURE_DIFF_MAX_ENTRIES),
  /** Entries left out to stay under the bound. */
  omitted: z.number().int().nonnegative().default(0),
  /** Closure size of the build minus that of the running system, in bytes (`nix path-info -S`). */
  totalSizeDelta: z.number().int(),
});
export type ClosureDiff = z.infer<typeof ClosureDiff>;
