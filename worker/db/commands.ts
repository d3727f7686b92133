import { and, asc, desc, eq, gt, inArray, sql } from "drizzle-orm";
import {
  CommandKind,
  CommandResult,
  CommandState,
  type CommandView,
  type OutputChunk,
  OutputStream,
} from "../../common/protocol.ts";
import type { Database } from "./client.ts";
import { commandOutput, commands, hosts } from "./schema.ts";

export interface CommandRecord {
  id: string;
  hostId: string;
  kind: CommandKind;
  state: CommandState;
  target: string | null;
  actor: string;
  createdAt: string;
  deliveredAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  deadlineAt: string;
  expiresAt: string;
  exitCode: number | null;
  error: string | null;
  result: CommandResult | null;
  outputBytes: number;
  outputTruncated: boolean;
}

type CommandRow = typeof commands.$inferSelect;

const ACTIVE_STATES: CommandState[] = ["queued", "delivered", "running"];

function toRecord(row: CommandRow): CommandRecord {
  return {
    ...row,
    kind: CommandKind.parse(row.kind),
    state: CommandState.parse(row.state),
    result: row.result === null ? null : CommandResult.parse(JSON.parse(row.result)),
  };
}

export function toCommandView(record: CommandRecord, hostName: string): CommandView {
  return {
    id: record.id,
    host: hostName,
    kind: record.kind,
    state: record.state,
    target: record.target,
    actor: record.actor,
    createdAt: record.createdAt,
    deliveredAt: record.deliveredAt,
    startedAt: record.startedAt,
    finishedAt: record.finishedAt,
    deadlineAt: record.deadlineAt,
    expiresAt: record.expiresAt,
    exitCode: record.exitCode,
    error: record.error,
    result: record.result,
  };
}

export async function insertCommand(db: Database, record: CommandRecord): Promise<void> {
  await db.insert(commands).values({ ...record, result: record.result === null ? null : JSON.stringify(record.result) });
}

export type CommandPatch = Partial<
  Pick<CommandRecord, "state" | "deliveredAt" | "startedAt" | "finishedAt" | "deadlineAt" | "exitCode" | "error" | "result">
>;

export async function updateCommand(db: Database, id: string, patch: CommandPatch): Promise<void> {
  const { result, ...rest } = patch;
  await db
    .update(commands)
    .set({ ...rest, ...(result === undefined ? {} : { result: result === null ? null : JSON.stringify(result) }) })
    .where(eq(commands.id, id));
}

/** Every command not yet final, for the coordinator to hold in memory. */
export async function listActiveCommands(db: Database): Promise<{ record: CommandRecord; hostName: string }[]> {
  const rows = await db
    .select({ command: commands, hostName: hosts.name })
    .from(commands)
    .innerJoin(hosts, eq(hosts.id, commands.hostId))
    .where(inArray(commands.state, ACTIVE_STATES))
    .orderBy(asc(commands.createdAt));
  return rows.map((row) => ({ record: toRecord(row.command), hostName: row.hostName }));
}

export async function getCommand(db: Database, id: string): Promise<{ record: CommandRecord; hostName: string } | null> {
  const row = await db
    .select({ command: commands, hostName: hosts.name })
    .from(commands)
    .innerJoin(hosts, eq(hosts.id, commands.hostId))
    .where(eq(commands.id, id))
    .get();
  return row ? { record: toRecord(row.command), hostName: row.hostName } : null;
}

export async function listHostCommands(db: Database, hostId: string, limit: number): Promise<CommandRecord[]> {
  const rows = await db
    .select()
    .from(commands)
    .where(eq(commands.hostId, hostId))
    .orderBy(desc(commands.createdAt), desc(commands.id))
    .limit(limit);
  return rows.map(toRecord);
}

/** The most recent commands of every host, newest first, at most `perHost` each. */
export async function listRecentCommandsByHost(db: Database, perHost: number): Promise<Map<string, CommandRecord[]>> {
  const ranked = db.$with("ranked").as(
    db
      .select({
        id: commands.id,
        rank: sql<number>`row_number() over (partition by ${commands.hostId} order by ${commands.createdAt} desc, ${commands.id} desc)`.as("rank"),
      })
      .from(commands),
  );
  const rows = await db
    .with(ranked)
    .select({ command: commands })
    .from(commands)
    .innerJoin(ranked, eq(ranked.id, commands.id))
    .where(sql`${ranked.rank} <= ${perHost}`)
    .orderBy(desc(commands.createdAt), desc(commands.id));
  const byHost = new Map<string, CommandRecord[]>();
  for (const { command } of rows) {
    const list = byHost.get(command.hostId) ?? [];
    list.push(toRecord(command));
    byHost.set(command.hostId, list);
  }
  return byHost;
}

export interface StoredOutputChunk {
  seq: number;
  stream: OutputStream;
  data: string;
  at: string;
}

/**
 * Appends chunks (a retried chunk with a known seq is ignored) and the new
 * byte count, in one batch.
 */
export async function appendCommandOutput(
  db: Database,
  commandId: string,
  chunks: (OutputChunk & { at: string })[],
  totals: { outputBytes: number; outputTruncated: boolean },
): Promise<void> {
  if (chunks.length === 0) return;
  const inserts = chunks.map((chunk) =>
    db
      .insert(commandOutput)
      .values({ commandId, seq: chunk.seq, stream: chunk.stream, data: chunk.data, at: chunk.at })
      .onConflictDoNothing(),
  );
  await db.batch([
    inserts[0]!,
    ...inserts.slice(1),
    db.update(commands).set(totals).where(eq(commands.id, commandId)),
  ]);
}

export async function readCommandOutput(db: Database, commandId: string, afterSeq: number, limit: number): Promise<StoredOutputChunk[]> {
  const rows = await db
    .select({ seq: commandOutput.seq, stream: commandOutput.stream, data: commandOutput.data, at: commandOutput.at })
    .from(commandOutput)
    .where(and(eq(commandOutput.commandId, commandId), gt(commandOutput.seq, afterSeq)))
    .orderBy(asc(commandOutput.seq))
    .limit(limit);
  return rows.map((row) => ({ ...row, stream: OutputStream.parse(row.stream) }));
}
