/**
 * Builder hosts (settings `fleetBuild.builders`, docs/fleet-build.md "Builder hosts"), the pure rules:
 * whether the setting names hosts of the fleet, which builder builds which host, and what a builder's
 * per-host result means for that host's state in the fleet build.
 */
import type { BuildTarget, HostBuild, Platform, Settings } from "../../common/protocol.ts";
import { refuse, type Refusal } from "../outcome.ts";

export type Builders = Settings["fleetBuild"]["builders"];

/** A `PUT /api/settings` whose builders name a host the fleet does not have is refused, naming it. */
export function buildersRefusal(builders: Builders, hostNames: readonly string[]): Refusal | null {
  const known = new Set(hostNames);
  const unknown = builders.filter((builder) => !known.has(builder.host));
  if (unknown.length === 0) return null;
  const named = unknown.map((builder) => `${builder.host} (${builder.system})`).join(", ");
  return refuse(400, "builder_not_a_host", `fleetBuild.builders names ${named}, which is not a host of the fleet: add the host first, or pick one of its hosts`);
}

export interface BuilderScopeHost {
  id: string;
  name: string;
  /** The system type its last report said; null before a report that says it. */
  nixSystem?: string | null;
  platform?: Platform;
  flakeAttr?: string;
}

/** Who builds a host: itself, a builder host of the fleet, or a builder the setting names but the fleet lacks. */
export type BuildAssignment =
  | { by: "itself" }
  | { by: "builder"; builder: { name: string; hostId: string; target: BuildTarget } }
  | { by: "missing"; builder: string; system: string };

/**
 * A host whose system type has a builder is built there; a host with no builder for its system, or that
 * has not said its system yet (no report, an older agent), builds its own configuration as before.
 */
export function assignBuilder(host: BuilderScopeHost, builders: Builders, fleet: readonly BuilderScopeHost[]): BuildAssignment {
  const system = host.nixSystem ?? null;
  const named = system === null ? undefined : builders.find((builder) => builder.system === system);
  if (named === undefined || system === null) return { by: "itself" };
  const builder = fleet.find((candidate) => candidate.name === named.host);
  if (builder === undefined) return { by: "missing", builder: named.host, system };
  return {
    by: "builder",
    builder: { name: builder.name, hostId: builder.id, target: { host: host.name, platform: host.platform ?? "nixos", flakeAttr: host.flakeAttr ?? host.name } },
  };
}

/** A host's outcome from its builder's finished command: built (its path is in the cache and the manifest), or why not. */
export type HostBuildOutcome = { built: true; storePath: string; durationMs: number } | { built: false; error: string | null; errorTail: string | null; durationMs: number | null };

/**
 * `hostBuilds[name]` of the builder's result; a command that ended before it said anything of this host
 * (the fetch failed, it timed out) gives the command's own error.
 */
export function hostBuildOutcome(entry: HostBuild | undefined, commandError: string | null): HostBuildOutcome {
  if (entry === undefined) return { built: false, error: commandError ?? "the builder said nothing of this host", errorTail: null, durationMs: null };
  if (entry.storePath !== null && entry.error === undefined) return { built: true, storePath: entry.storePath, durationMs: entry.durationMs };
  return { built: false, error: entry.error ?? null, errorTail: entry.errorTail ?? null, durationMs: entry.durationMs };
}

/** Store paths a builder built, as they are published for the build's commit and tree (worker/db/desired.ts). */
export interface BuilderPublication {
  builder: string;
  hosts: Record<string, string>;
}

interface BuiltHost {
  name: string;
  state: string;
  storePath?: string | null | undefined;
  builder?: { name: string } | undefined;
}

/**
 * The hosts a change of a fleet build turned built by a builder, grouped by builder: their paths become the
 * desired systems of the build's head and tree, which is how a host with `evaluate = "ci"` knows main's system
 * after the merge. A host the builder failed to build publishes nothing; System says so from the failed build.
 */
export function newlyBuiltByBuilders(before: readonly BuiltHost[] | null, after: readonly BuiltHost[]): BuilderPublication[] {
  const wasBuilt = new Set((before ?? []).filter((host) => host.state === "built").map((host) => host.name));
  const byBuilder = new Map<string, Record<string, string>>();
  for (const host of after) {
    if (host.state !== "built" || wasBuilt.has(host.name) || host.builder === undefined || !host.storePath) continue;
    const hosts = byBuilder.get(host.builder.name) ?? {};
    hosts[host.name] = host.storePath;
    byBuilder.set(host.builder.name, hosts);
  }
  return [...byBuilder].map(([builder, hosts]) => ({ builder, hosts }));
}
