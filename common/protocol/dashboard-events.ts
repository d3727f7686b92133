import * as z from "zod";
import { OutputChunk } from "./agent.ts";
import { CommandId } from "./commands.ts";
import { CommandView } from "./compartments.ts";
import { FleetBuildView } from "./fleet-build.ts";
import { HostName } from "./hosts.ts";
import { RolloutView } from "./rollouts.ts";

// ---------------------------------------------------------------------------
// Dashboard live events (coordinator → browser over WebSocket)

export const StoredOutputChunk = OutputChunk.extend({ at: z.string() });
export type StoredOutputChunk = z.infer<typeof StoredOutputChunk>;

export const DashboardEvent = z.discriminatedUnion("type", [
  z.object({ type: z.literal("hello"), protocol: z.number().int() }),
  z.object({ type: z.literal("pong") }),
  /** Something about the host changed (presence, report): fetch it again. */
  z.object({
    type: z.literal("host"),
    host: HostName,
    online: z.boolean().optional(),
    reportedAt: z.string().optional(),
    removed: z.boolean().optional(),
  }),
  z.object({ type: z.literal("command"), command: CommandView }),
  z.object({ type: z.literal("output"), host: HostName, commandId: CommandId, chunks: z.array(StoredOutputChunk) }),
  /** The repository state or the update PRs changed: every host's Git/Lock may have. */
  z.object({ type: z.literal("repo") }),
  /** A rollout was started or moved a step. */
  z.object({ type: z.literal("rollout"), rollout: z.lazy(() => RolloutView) }),
  /** An update PR's fleet build moved (a host started, finished or was cancelled; the verdict changed). */
  z.object({ type: z.literal("fleet-build"), build: z.lazy(() => FleetBuildView) }),
  /** The stored settings changed (now at `version`): a page showing them fetches them again. */
  z.object({ type: z.literal("settings"), version: z.number().int().nonnegative() }),
]);
export type DashboardEvent = z.infer<typeof DashboardEvent>;
