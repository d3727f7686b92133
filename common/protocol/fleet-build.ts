import * as z from "zod";
import { ClosureDiff } from "./closure-diff.ts";
import { CommandId } from "./commands.ts";
import { HostName, Sha1 } from "./hosts.ts";

// ---------------------------------------------------------------------------
// Build before deploy (docs/fleet-build.md): an update PR's head built on every host

export const FLEET_BUILD_HOST_STATES = [
  /** Busy with another command: its build is queued the moment that ends. */
  "waiting",
  "queued",
  "building",
  "built",
  "failed",
  /** Offline when the build started: not built. */
  "offline",
  /** Stopped by a newer head, a switch, or a person. */
  "cancelled",
] as const;
export const FleetBuildHostState = z.enum(FLEET_BUILD_HOST_STATES);
export type FleetBuildHostState = z.infer<typeof FleetBuildHostState>;

export const FleetBuildHostView = z.object({
  name: HostName,
  state: FleetBuildHostState,
  /** Counts toward the verdict (held and `autoUpdate = false` hosts do not, unless configured). */
  counted: z.boolean(),
  /** Why not counted, why offline or cancelled, or a failed build's first error line. */
  reason: z.string().optional(),
  commandId: CommandId.optional(),
  /** The builder host that builds this host's system (settings `fleetBuild.builders`); absent, the host builds its own. */
  builtBy: HostName.optional(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  durationMs: z.number().int().nonnegative().optional(),
  storePath: z.string().nullable().optional(),
  closureDiff: ClosureDiff.nullable().optional(),
  closureDiffProblem: z.string().optional(),
  errorTail: z.string().optional(),
});
export type FleetBuildHostView = z.infer<typeof FleetBuildHostView>;

export const FleetBuildVerdict = z.enum(["pending", "success", "failure"]);
export type FleetBuildVerdict = z.infer<typeof FleetBuildVerdict>;

/** The fleet's build of one update PR head; also posted as the commit status `nixfleet/fleet-build`. */
export const FleetBuildView = z.object({
  id: z.string(),
  pr: z.number().int().positive(),
  headSha: Sha1,
  verdict: FleetBuildVerdict,
  /** Counted hosts built, and counted hosts in all. */
  built: z.number().int().nonnegative(),
  counted: z.number().int().nonnegative(),
  /** The commit status's description: "8/9 hosts built, hsb1 failed: …". */
  description: z.string(),
  startedBy: z.string(),
  startedAt: z.string(),
  finishedAt: z.string().optional(),
  /** A newer head replaced this build. */
  superseded: z.boolean().default(false),
  hosts: z.array(FleetBuildHostView),
  /** The last attempt to post the commit status to GitHub. */
  githubStatus: z
    .object({ state: z.enum(["pending", "success", "failure"]), postedAt: z.string().nullable(), error: z.string().nullable() })
    .nullable()
    .default(null),
});
export type FleetBuildView = z.infer<typeof FleetBuildView>;
