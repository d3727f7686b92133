/**
 * The audit entry of a person's command (`POST /api/hosts/:name/commands`), queued or refused: what the
 * coordinator stores with the command, in the same commit, for its outbox to carry to D1
 * (docs/architecture.md, "The audit log").
 */
import type { ActivationMode, CommandKind } from "../../common/protocol.ts";
import type { Outcome } from "../outcome.ts";

export interface CommandRequestAudited {
  kind: CommandKind;
  force?: boolean;
  generation?: number;
  dryRun?: boolean;
  activation?: ActivationMode | null;
}

export interface CommandAuditEntry {
  action: string;
  details: Record<string, unknown>;
  result: string;
}

/** Only what the person asked for beyond the kind is named, so an entry reads as the request did. */
export function commandAuditEntry(
  request: CommandRequestAudited,
  outcome: Outcome<{ command: { id: string } }>,
  // A rollback to a generation is the one way back past substitute mode's rule against older manifests
  // (docs/cache.md): its entry names the system that generation runs, as the host's report listed it.
  generation: { number: number; system: string } | null = null,
): CommandAuditEntry {
  return {
    action: `command.${request.kind}`,
    details: outcome.ok
      ? {
          commandId: outcome.command.id,
          ...(request.force === true ? { force: true } : {}),
          ...(request.generation !== undefined ? { generation: request.generation } : {}),
          ...(generation !== null ? { system: generation.system } : {}),
          ...(request.dryRun === true ? { dryRun: true } : {}),
          ...(request.activation != null ? { activation: request.activation } : {}),
        }
      : { code: outcome.code },
    result: outcome.ok ? "queued" : `refused: ${outcome.message}`,
  };
}
