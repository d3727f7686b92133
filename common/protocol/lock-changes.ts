import * as z from "zod";

// ---------------------------------------------------------------------------
// flake.lock changes (computed by common/lock-diff.ts)

export const LockedRef = z.object({
  /** github, gitlab, sourcehut, git, tarball, file, path, indirect, or "unrecognised". */
  type: z.string(),
  rev: z.string().nullable(),
  narHash: z.string().nullable(),
  /** ISO date of lastModified, when the lock has it. */
  lastModified: z.string().nullable(),
  /** Where the source lives, e.g. https://github.com/NixOS/nixpkgs/tree/<rev>. */
  url: z.string().nullable(),
  /** The raw locked attrs when the shape was not recognised. */
  raw: z.unknown().optional(),
});
export type LockedRef = z.infer<typeof LockedRef>;

export const LockChange = z.object({
  /** Input path from the root as `nix flake update` prints it: `nixpkgs`, `home-manager/nixpkgs`. */
  input: z.string(),
  kind: z.enum(["added", "removed", "updated"]),
  old: LockedRef.nullable(),
  new: LockedRef.nullable(),
  /** github/gitlab compare page between the two revs. */
  compareUrl: z.string().nullable().default(null),
  /** Commits between old and new, when the GitHub API was asked. */
  commits: z.number().int().nonnegative().nullable().default(null),
});
export type LockChange = z.infer<typeof LockChange>;
