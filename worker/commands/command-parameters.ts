/**
 * What a rollback to a generation and a gc carry (docs/hosts.md "Generations and garbage collection"),
 * as pure rules: the report and settings in, a refusal or the command's parameters out.
 */
import type { CommandKind, Generation, Report, Settings } from "../../common/protocol.ts";
import { refuse, type Outcome } from "../outcome.ts";
import { NO_PARAMETERS, type CommandParameters } from "./rules.ts";

export interface ParameterRequest {
  generation?: number;
  dryRun?: boolean;
}

/**
 * The generation a rollback goes back to, from the host's last report; refused when that report does
 * not list it: the agent would fail it anyway, and an operator reading the host page picked from that
 * list. What the report says of it goes into the audit entry, so the log names the system too.
 */
export function rollbackGeneration(hostName: string, report: Report | null, generation: number): Outcome<{ generation: Generation }> {
  const listed = report?.generations?.value ?? null;
  if (listed === null) {
    const why = report?.generations?.reason ?? "its agent does not report generations";
    return refuse(409, "generation_unknown", `${hostName} has not reported its generations (${why}): a rollback to generation ${generation} cannot be checked`);
  }
  const target = listed.find((g) => g.number === generation);
  if (target === undefined) {
    const numbers = listed.map((g) => g.number);
    const range = numbers.length === 0 ? "none" : `${Math.min(...numbers)}–${Math.max(...numbers)}`;
    return refuse(409, "generation_unknown", `${hostName} has no generation ${generation} in its last report (it lists ${numbers.length}: ${range})`);
  }
  if (target.current) return refuse(409, "generation_current", `generation ${generation} is ${hostName}'s current generation already: there is nothing to roll back to`);
  return { ok: true, generation: target };
}

/** The stored parameters of a new command: a gc carries the fleet's defaults, which the host's own options override. */
export function commandParameters(kind: CommandKind, request: ParameterRequest, settings: Pick<Settings, "gc"> | null): CommandParameters {
  return {
    ...NO_PARAMETERS,
    generation: kind === "rollback" ? (request.generation ?? null) : null,
    dryRun: kind === "gc" && request.dryRun === true,
    gc: kind === "gc" && settings !== null ? { keepGenerations: settings.gc.keepGenerations, keepDays: settings.gc.keepDays } : null,
  };
}
