import * as z from "zod";
import { ClosureDiff } from "./closure-diff.ts";
import { ActivationMode } from "./commands.ts";
import { NixSystem, Platform, Sha1 } from "./hosts.ts";
import { AgentProtocolVersion } from "./version.ts";

// ---------------------------------------------------------------------------
// Reports: the host's state as the agent sees it

export const TestResult = z.object({
  name: z.string().min(1).max(200),
  passed: z.boolean(),
  exitCode: z.number().int().nullable(),
  durationMs: z.number().nonnegative(),
  /** The last lines of the test's output, for the tooltip and the host page. */
  output: z.string().max(4000).default(""),
});
export type TestResult = z.infer<typeof TestResult>;

export const TestRun = z.object({
  /** The system store path the tests ran against: a later switch makes them stale. */
  system: z.string().nullable(),
  finishedAt: z.string(),
  results: z.array(TestResult).max(200),
});
export type TestRun = z.infer<typeof TestRun>;

/**
 * A value the agent could not read says why instead of guessing.
 * `{ value: null, reason: "git not found" }`.
 */
const known = <T extends z.ZodTypeAny>(value: T) =>
  z.object({ value: value.nullable(), reason: z.string().max(500).optional() });

export const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, "not a sha256 hex digest");

/** The parts of a NixOS system that only a reboot brings into use. */
export const BOOT_PARTS = ["kernel", "initrd", "kernel-modules"] as const;
export const BootPart = z.enum(BOOT_PARTS);
export type BootPart = z.infer<typeof BootPart>;

/**
 * Whether the system that boots next differs from the booted one in its
 * kernel, initrd or kernel modules (what nixpkgs' `system.autoUpgrade`
 * compares before rebooting). `kernel` holds both kernels' versions when it changed.
 */
export const RebootStatus = z.object({
  needed: z.boolean(),
  changed: z.array(BootPart).max(BOOT_PARTS.length),
  kernel: z.object({ booted: z.string().max(100).nullable(), next: z.string().max(100).nullable() }).nullable(),
});
export type RebootStatus = z.infer<typeof RebootStatus>;

/** A path in the Nix store, e.g. `/nix/store/<32 chars>-nixos-system-h1-25.05`. */
export const StorePath = z.string().max(500).regex(/^\/nix\/store\/[0-9a-z]{32}-[^/]+$/, "not a Nix store path");

/** Where a host's desired system comes from: its own evaluation, or what CI publishes with `POST /api/desired`. */
export const DESIRED_SOURCES = ["local", "ci"] as const;
export const DesiredSource = z.enum(DESIRED_SOURCES);
export type DesiredSource = z.infer<typeof DesiredSource>;

/** What a dry-run build of the desired system would do on the host. */
export const DesiredChanges = z.object({
  toBuild: z.number().int().nonnegative(),
  toFetch: z.number().int().nonnegative(),
  /**
   * What fetching `toFetch` paths from the host's substituters (the fleet's cache among them) downloads,
   * in bytes, as Nix's dry run gives it (to 0.01 MiB); 0 when nothing is fetched. Older agents leave it out.
   */
  downloadBytes: z.number().int().nonnegative().nullable().default(null),
});
export type DesiredChanges = z.infer<typeof DesiredChanges>;

/**
 * The closure diff from the running system to the desired one, made once the desired system is in
 * the host's store (a fleet build, an earlier build, a dry run with nothing to do), bounded as a
 * fleet build's is. `comparedWith` is the running system it was made against: once another system
 * runs, it no longer describes the switch.
 */
export const DesiredClosureDiff = ClosureDiff.extend({ comparedWith: StorePath });
export type DesiredClosureDiff = z.infer<typeof DesiredClosureDiff>;

const desiredAt = {
  /** The commit of main that was evaluated. */
  commit: Sha1,
  /** Its git tree: a merge commit's tree usually equals the PR head's, so fleet builds match by tree. */
  tree: Sha1.nullable().default(null),
  evaluatedAt: z.string(),
};

/**
 * The host's configuration evaluated at a commit of main, in a worktree of the
 * agent's own (its clone and running system untouched): the toplevel's store
 * path, or nix's error when it does not evaluate.
 */
export const DesiredSystem = z.union([
  z
    .object({
      ...desiredAt,
      outPath: StorePath,
      changes: DesiredChanges.nullable().default(null),
      /** Older agents leave it out; so does an agent whose store does not hold the desired system yet. */
      closureDiff: DesiredClosureDiff.optional(),
    })
    .strict(),
  z.object({ ...desiredAt, error: z.string().min(1).max(2000) }).strict(),
]);
export type DesiredSystem = z.infer<typeof DesiredSystem>;

export const DesiredReport = z.object({
  source: DesiredSource,
  /** The newest evaluation the host has of main; null while none has finished. */
  latest: DesiredSystem.nullable(),
  /** The commit of main being evaluated now. */
  evaluating: Sha1.nullable().default(null),
});
export type DesiredReport = z.infer<typeof DesiredReport>;

/** A switch the host took back by itself: its new system was not confirmed in time (docs/hosts.md "When a switch goes wrong on the host"). */
export const HostRollback = z.object({
  /** The switch command whose system was rolled back, when one is known. */
  commandId: z.string().max(64).nullable(),
  /** The system that was not confirmed (now remembered as bad on the host). */
  from: z.string().max(500),
  /** The recorded previous system the host went back to. */
  to: z.string().max(500),
  commit: Sha1.nullable(),
  at: z.string(),
  /** "no confirmation within 120 s after switching to 1a2b3c4", "the health check failed: …". */
  reason: z.string().max(1000),
  /** Whether the running system is the recorded previous one afterwards. */
  outcome: z.enum(["rolled-back", "failed"]),
  error: z.string().max(2000).nullable().default(null),
});
export type HostRollback = z.infer<typeof HostRollback>;

/** A system the host rolled back from: the control plane sends no switch to it again without `force`. */
export const RejectedSystem = z.object({
  storePath: z.string().max(500),
  commit: Sha1.nullable(),
  at: z.string(),
});
export type RejectedSystem = z.infer<typeof RejectedSystem>;

/** The host's own safety net: a switch waiting for confirmation, the last rollback, the systems it refuses. */
export const SafetyNetReport = z.object({
  enabled: z.boolean(),
  confirmTimeoutSeconds: z.number().int().positive(),
  pending: z.object({ commandId: z.string().max(64).nullable(), from: z.string().max(500), to: z.string().max(500), since: z.string() }).nullable(),
  lastRollback: HostRollback.nullable(),
  rejected: z.array(RejectedSystem).max(50),
});
export type SafetyNetReport = z.infer<typeof SafetyNetReport>;

/** A filesystem's space as the agent read it (statfs): free is what an unprivileged writer may still use. */
export const DiskSpace = z.object({
  path: z.string().max(500),
  freeBytes: z.number().int().nonnegative(),
  totalBytes: z.number().int().nonnegative(),
});
export type DiskSpace = z.infer<typeof DiskSpace>;

/** One generation of the system profile (`system-<N>-link`): what a rollback to it activates and a `gc` may delete. */
export const Generation = z.object({ number: z.number().int().nonnegative(), createdAt: z.string(), storePath: z.string().max(500), label: z.string().max(200).nullable(), current: z.boolean(), booted: z.boolean() });
export type Generation = z.infer<typeof Generation>;

export const Report = z.object({
  protocol: AgentProtocolVersion,
  agentVersion: z.string().min(1).max(64),
  platform: Platform,
  /** The Nix system type the agent runs on: which builder (settings `fleetBuild.builders`) builds this host; older agents leave it out. */
  nixSystem: NixSystem.optional(),
  hostname: z.string().max(253),
  /** e.g. "NixOS 25.05 (Warbler)", "macOS 15.1". */
  os: known(z.string().max(200)),
  /** nixpkgs version string of the running system, e.g. "25.05.20250101.abcdef0". */
  nixpkgsVersion: known(z.string().max(100)),
  nixVersion: known(z.string().max(100)),
  repo: z.object({
    commit: known(Sha1),
    branch: known(z.string().max(255)),
    /** Local changes in the agent's clone (the agent resets them on pull). */
    dirty: z.boolean().nullable().default(null),
  }),
  lock: z.object({
    /** sha256 of the flake.lock bytes at the clone's HEAD (see common/lock-diff.ts). */
    hash: known(Sha256Hex),
    /** Input path → lastModified (unix seconds), for the lock-age rule. */
    lastModified: z.record(z.string(), z.number().int().nonnegative()).default({}),
  }),
  system: z.object({
    /** What runs now (/run/current-system or the profile the agent reads). */
    current: known(z.string().max(500)),
    /** What the clone's HEAD would build, when the agent has evaluated it. */
    desired: known(z.string().max(500)).optional(),
    /** Commit the running system was built from, when the agent switched it. */
    builtFromCommit: Sha1.nullable().default(null),
    /** NixOS: whether a reboot is due; older agents leave it out, the other platforms say why it does not apply. */
    reboot: known(RebootStatus).optional(),
  }),
  tests: z.object({
    /** Whether the host has any tests configured. */
    configured: z.boolean(),
    autoRunAfterSwitch: z.boolean().default(false),
    last: TestRun.nullable(),
  }),
  /** Seconds since the host booted. */
  uptimeSeconds: z.number().nonnegative().nullable(),
  /** Seconds since this agent process started: a restart shows as a drop. */
  agentUptimeSeconds: z.number().nonnegative(),
  /** The desired system at main's head (docs/compartments.md "System"); older agents leave it out. */
  desired: DesiredReport.optional(),
  /** The host's safety net (issue 22); older agents leave it out. */
  safetyNet: SafetyNetReport.optional(),
  /** Free space on the store's filesystem and on /boot (null when /boot is not its own filesystem); older agents leave it out. */
  disk: z.object({ store: DiskSpace, boot: DiskSpace.nullable() }).optional(),
  /** The system profile's generations, oldest first; older agents leave it out. */
  generations: known(z.array(Generation).max(200)).optional(),
  /** Changes at every boot (Linux `/proc/sys/kernel/random/boot_id`, macOS `kern.bootsessionuuid`): a reboot shows as a new one. */
  bootId: z.string().max(100).nullable().optional(),
  /** How the host activates a switch (its `activation` module option); older agents leave it out. */
  activation: ActivationMode.optional(),
  /** Rollout settings from the host's Nix configuration (spec 002). */
  rollout: z
    .object({
      autoUpdate: z.boolean().default(true),
      priority: z.number().int().default(100),
      canary: z.boolean().default(false),
    })
    .default({ autoUpdate: true, priority: 100, canary: false }),
});
export type Report = z.infer<typeof Report>;
