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
export function commandAuditEntry(request: CommandRequestAudited, outcome: Outcome<{ command: { id: string } }>): CommandAuditEntry {
  return {
    action: `command.${request.kind}`,
    details: outcome.ok
      ? {
          commandId: outcome.command.id,
          ...(request.force === true ? { force: true } : {}),
          ...(request.generation !== undefined ? { generation: request.generation } : {}),
          ...(request.dryRun === true ? { dryRun: true } : {}),
          ...(request.activation != null ? { activation: request.activation } : {}),
        }
      : { code: outcome.code },
    result: outcome.ok ? "queued" : `refused: ${outcome.message}`,
  };
}
