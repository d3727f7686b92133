/**
 * Host incidents in the coordinator's SQLite: the open (or pending) incident of each host and kind, so an
 * evicted object neither alerts twice nor forgets a recovery it owes, and the Update history's links
 * from a rollout to the hosts that turned red after it. This table is their only home.
 */
import { INCIDENT_EVENTS, RolloutIncident, type IncidentEvent } from "../../../common/protocol.ts";
import { Incident } from "../../notifications/incidents.ts";
import { readJson, text, type Row } from "./sql.ts";

export interface StoredIncident {
  hostId: string;
  hostName: string;
  kind: IncidentEvent;
  incident: Incident;
}

const isKind = (kind: string): kind is IncidentEvent => (INCIDENT_EVENTS as readonly string[]).includes(kind);

export class IncidentStore {
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
  }

  /** Every incident not closed, of every host. */
  all(): StoredIncident[] {
    return this.sql.exec("SELECT host_id, host_name, kind, body FROM incidents").toArray().flatMap(toStored);
  }

  of(hostId: string): StoredIncident[] {
    return this.sql.exec("SELECT host_id, host_name, kind, body FROM incidents WHERE host_id = ?", hostId).toArray().flatMap(toStored);
  }

  /** Stores the incident, or deletes the row when it closed (null). */
  save(host: { id: string; name: string }, kind: IncidentEvent, incident: Incident | null): void {
    if (incident === null) this.sql.exec("DELETE FROM incidents WHERE host_id = ? AND kind = ?", host.id, kind);
    else {
      this.sql.exec(
        `INSERT INTO incidents (host_id, kind, host_name, body) VALUES (?, ?, ?, ?)
         ON CONFLICT (host_id, kind) DO UPDATE SET host_name = excluded.host_name, body = excluded.body`,
        host.id,
        kind,
        host.name,
        JSON.stringify(incident),
      );
    }
  }

  forgetHost(hostId: string): void {
    this.sql.exec("DELETE FROM incidents WHERE host_id = ?", hostId);
  }

  link(link: RolloutIncident): void {
    this.sql.exec(
      "INSERT OR IGNORE INTO rollout_incidents (rollout_id, host_name, kind, opened_at, switched_at, reason) VALUES (?, ?, ?, ?, ?, ?)",
      link.rolloutId,
      link.host,
      link.event,
      link.at,
      link.switchedAt,
      link.reason,
    );
  }

  /** The links of these rollouts, oldest incident first. */
  linksOf(rolloutIds: readonly string[]): RolloutIncident[] {
    if (rolloutIds.length === 0) return [];
    const rows = this.sql
      .exec(
        `SELECT rollout_id, host_name, kind, opened_at, switched_at, reason FROM rollout_incidents
         WHERE rollout_id IN (SELECT value FROM json_each(?)) ORDER BY opened_at, host_name`,
        JSON.stringify(rolloutIds),
      )
      .toArray();
    return rows.flatMap((row) => {
      const parsed = RolloutIncident.safeParse({
        rolloutId: text(row.rollout_id),
        host: text(row.host_name),
        event: text(row.kind),
        at: text(row.opened_at),
        switchedAt: text(row.switched_at),
        reason: text(row.reason),
      });
      return parsed.success ? [parsed.data] : [];
    });
  }
}

function toStored(row: Row): StoredIncident[] {
  const kind = text(row.kind);
  const incident = readJson(Incident, text(row.body));
  if (!isKind(kind) || incident === null) {
    console.error("a stored incident no longer reads; it is left out", text(row.host_id), kind);
    return [];
  }
  return [{ hostId: text(row.host_id), hostName: text(row.host_name), kind, incident }];
}
