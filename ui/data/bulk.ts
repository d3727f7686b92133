/** One command for many hosts: every host's outcome is reported, none swallowed. */
import type { CommandKind, CommandView, HostHold, HostView } from "../../common/protocol.ts";

export type BulkOutcome =
  | { host: string; ok: true; command: CommandView }
  | { host: string; ok: false; code: string; message: string };

/** Sends `kind` to each host (at most `parallel` at a time) and reports each host's result, in the hosts' order. */
export async function sendToHosts(
  send: (host: string, kind: CommandKind) => Promise<CommandView>,
  hosts: readonly string[],
  kind: CommandKind,
  parallel = 6,
): Promise<BulkOutcome[]> {
  const outcomes: BulkOutcome[] = new Array(hosts.length);
  let next = 0;
  const worker = async () => {
    while (next < hosts.length) {
      const index = next++;
      const host = hosts[index]!;
      try {
        outcomes[index] = { host, ok: true, command: await send(host, kind) };
      } catch (err) {
        const code = typeof err === "object" && err !== null && "code" in err && typeof err.code === "string" ? err.code : "error";
        outcomes[index] = { host, ok: false, code, message: err instanceof Error ? err.message : String(err) };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, hosts.length) }, worker));
  return outcomes;
}

/**
 * The held hosts among a bulk action's targets, in the targets' order. A hold
 * keeps rollouts and automatic actions away; a command sent by hand still
 * reaches the host, so the confirmation names them.
 */
export function heldAmong(hosts: readonly Pick<HostView, "name" | "hold">[], targets: readonly string[]): { name: string; hold: HostHold }[] {
  const holds = new Map(hosts.flatMap((host) => (host.hold ? [[host.name, host.hold] as const] : [])));
  return targets.flatMap((name) => {
    const hold = holds.get(name);
    return hold ? [{ name, hold }] : [];
  });
}

/** The hosts a bulk command goes to: the held ones left out unless the person keeps them. */
export function bulkTargets(targets: readonly string[], held: readonly { name: string }[], leaveHeldOut: boolean): readonly string[] {
  if (!leaveHeldOut || held.length === 0) return targets;
  const names = new Set(held.map((h) => h.name));
  return targets.filter((name) => !names.has(name));
}
