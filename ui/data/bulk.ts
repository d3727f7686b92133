/** One command for many hosts: every host's outcome is reported, none swallowed. */
import type { CommandKind, CommandView } from "../../common/protocol.ts";

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
