/**
 * The closure diff between the running system and another system in the store: what a fleet build
 * reports (commands/build.ts) and what the desired system reports once it is built (desired.ts).
 */
import { z } from "zod";
import type { AgentConfig } from "../common/agent-config.ts";
import type { ClosureDiff, OutputStream } from "../common/protocol.ts";
import { parseClosureDiff } from "./closure-diff.ts";
import type { Known } from "./known.ts";
import { describeFailure, type HostRunner } from "./runner.ts";
import { NIX_FLAKE_FLAGS } from "./system.ts";

export interface ClosureCompareHost {
  config: AgentConfig;
  runner: HostRunner;
  say(line: string): void;
}

const PathInfo = z.array(z.object({ path: z.string(), closureSize: z.number().int().nonnegative() }));

/** `nix store diff-closures` for the entries, `nix path-info -S` for the total (diff-closures hides changes under 8 KiB). */
export async function compareClosures(
  host: ClosureCompareHost,
  running: string,
  other: string,
  signal: AbortSignal,
  output?: (stream: OutputStream, data: string) => void,
): Promise<Known<ClosureDiff>> {
  const nix = host.config.tools.nix;
  const diffArgv = [nix, ...NIX_FLAKE_FLAGS, "store", "diff-closures", running, other];
  host.say(`$ ${diffArgv.join(" ")}`);
  const diff = await host.runner.run(diffArgv, { signal, ...(output === undefined ? {} : { onOutput: output }) });
  if (diff.exitCode !== 0) return { value: null, reason: describeFailure("nix store diff-closures", diff) };
  const sizes = await host.runner.run([nix, ...NIX_FLAKE_FLAGS, "path-info", "--closure-size", "--json", running, other], { signal });
  if (sizes.exitCode !== 0) return { value: null, reason: describeFailure("nix path-info", sizes) };
  let info: z.infer<typeof PathInfo>;
  try {
    info = PathInfo.parse(JSON.parse(sizes.stdout));
  } catch (error) {
    return { value: null, reason: `nix path-info printed something unexpected: ${String(error).slice(0, 300)}` };
  }
  const closureSize = (storePath: string) => info.find((entry) => entry.path === storePath)?.closureSize;
  const before = closureSize(running);
  const after = closureSize(other);
  if (before === undefined || after === undefined) return { value: null, reason: "nix path-info did not give both closure sizes" };
  const parsed = parseClosureDiff(diff.stdout);
  for (const line of parsed.unparsed) host.say(`not understood in the closure diff: ${line}`);
  return { value: { entries: parsed.entries, omitted: parsed.omitted, totalSizeDelta: after - before } };
}
