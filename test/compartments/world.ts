/**
 * One small, consistent world for the compartment tests: the config repo's
 * commits and flake.locks, the systems they build, and a host (hsb0) that runs
 * them. Scenarios pick from it so every picture is a state a real fleet passes
 * through, not a bag of unrelated values.
 */
import { expect } from "vitest";
import { Compartments } from "../../common/protocol.ts";
import type { CompartmentState } from "../../common/protocol.ts";
import { computeCompartments, type CompartmentInputs } from "../../common/compartments.ts";
import {
  buildInputs,
  buildLockChange,
  buildRepoState,
  buildReport,
  buildTestRun,
  hoursAgo,
  lockHash,
  sha,
  storePath,
  unixDaysAgo,
  type ReportOptions,
  type RepoOptions,
} from "./builders.ts";

/** Commits on main, oldest first. */
export const COMMIT = {
  /** Last week's flake.lock update, merged: lock A. */
  lockA: sha("Merge pull request #41 from example/update_flake_lock_action"),
  /** A config change on top: still lock A. */
  config: sha("hsb0: enable restic backups"),
  /** This week's update PR #42, merged: lock B. */
  lockB: sha("Merge pull request #42 from example/update_flake_lock_action"),
  /** A config change pushed together with a lock bump: lock C. */
  configAndLock: sha("gpc0: switch to nvidia-open; bump nixpkgs"),
} as const;

export const LOCK = {
  a: lockHash("flake.lock as of 2025-12-14"),
  b: lockHash("flake.lock as of 2025-12-17"),
  c: lockHash("flake.lock as of 2025-12-17, nvidia-open"),
} as const;

export const LAST_MODIFIED = {
  a: { nixpkgs: unixDaysAgo(3), "home-manager": unixDaysAgo(4), agenix: unixDaysAgo(40) },
  b: { nixpkgs: unixDaysAgo(0.5), "home-manager": unixDaysAgo(1), agenix: unixDaysAgo(40) },
  c: { nixpkgs: unixDaysAgo(0.4), "home-manager": unixDaysAgo(1), agenix: unixDaysAgo(40) },
} as const;

/** The system each commit builds for hsb0. */
export const SYSTEM = {
  lockA: storePath("nixos-system-hsb0-25.05.20251214.3f1a9c2"),
  config: storePath("nixos-system-hsb0-25.05.20251214.3f1a9c2-restic"),
  lockB: storePath("nixos-system-hsb0-25.05.20251217.8be04d1"),
  configAndLock: storePath("nixos-system-hsb0-25.05.20251217.8be04d1-nvidia"),
} as const;

/** The lock diff update PR #42 carries: nixpkgs and home-manager, A → B. */
export const PR42_CHANGES = [
  buildLockChange(
    "home-manager",
    "0f3c5a2b7e9d41c6a8b2f1e0d9c8b7a6f5e4d3c2",
    "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d",
    LAST_MODIFIED.a["home-manager"],
    LAST_MODIFIED.b["home-manager"],
  ),
  buildLockChange(
    "nixpkgs",
    "3f1a9c2e6b7d4a5f8c9e0b1d2a3c4e5f6a7b8c9d",
    "8be04d1c2a3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d",
    LAST_MODIFIED.a.nixpkgs,
    LAST_MODIFIED.b.nixpkgs,
  ),
];

type Revision = keyof typeof COMMIT;
const LOCK_OF: Record<Revision, keyof typeof LOCK> = { lockA: "a", config: "a", lockB: "b", configAndLock: "c" };

/** What main holds at a commit, as the worker records it. */
export function mainAt(revision: Revision, options: RepoOptions = {}): ReturnType<typeof buildRepoState> {
  const lock = LOCK_OF[revision];
  return buildRepoState({
    headSha: COMMIT[revision],
    lockHash: LOCK[lock],
    lastModified: LAST_MODIFIED[lock],
    committedAt: hoursAgo(2),
    updatedAt: hoursAgo(2),
    ...options,
  });
}

/**
 * A report from hsb0 with its clone at `clone` and its system built from
 * `built`, tests last passed against that system an hour ago.
 */
export function hostReport(clone: Revision, built: Revision, options: ReportOptions = {}): ReturnType<typeof buildReport> {
  const lock = LOCK_OF[clone];
  return buildReport({
    commit: COMMIT[clone],
    lockHash: LOCK[lock],
    lastModified: LAST_MODIFIED[lock],
    current: SYSTEM[built],
    builtFromCommit: COMMIT[built],
    lastTestRun: buildTestRun({
      system: SYSTEM[built],
      finishedAt: hoursAgo(1),
      results: { "ssh-reachable": true, "systemctl-failed": true, "restic-timer": true },
    }),
    ...options,
  });
}

/** Inputs for hsb0 online, its clone and system as given, main at `head`. */
export function hsb0(clone: Revision, built: Revision, head: Revision, overrides: Partial<CompartmentInputs> = {}): CompartmentInputs {
  return buildInputs({ report: hostReport(clone, built), repo: mainAt(head), ...overrides });
}

export type Colours = readonly [CompartmentState, CompartmentState, CompartmentState, CompartmentState, CompartmentState];

/** Computes, checks the result against the protocol schema, and returns it. */
export function compute(inputs: CompartmentInputs): Compartments {
  const computed = computeCompartments(inputs);
  // The protocol schema is the contract with the dashboard: every result must parse, unchanged.
  expect(Compartments.parse(computed)).toEqual(computed);
  return computed;
}

/** The five colours in the spec's order: Agent, Git, Lock, System, Tests. */
export function colours(computed: Compartments): Colours {
  return [computed.agent.state, computed.git.state, computed.lock.state, computed.system.state, computed.tests.state];
}

/** The colours as one letter each, to keep the scenario tables readable. */
export const G = "green";
export const Y = "yellow";
export const R = "red";
export const B = "blue";
export const W = "gray";
