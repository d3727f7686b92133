/**
 * Holds: hosts kept out of every rollout and automatic action, in the coordinator's SQLite, keyed by
 * host id (a name may come back as another host). The host's name is kept beside the hold, a copy of the
 * catalogue's (D1 is the truth), for the dashboards, which show holds by name.
 */
import { HostHold } from "../../../common/protocol.ts";
import { readJson, text } from "./sql.ts";

export interface StoredHold {
  hostName: string;
  hold: HostHold;
}

export class HoldStore {
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
  }

  /** Every hold, by host id. */
  holds(): Map<string, StoredHold> {
    const holds = new Map<string, StoredHold>();
    for (const row of this.sql.exec("SELECT host_id, host_name, body FROM holds").toArray()) {
      const hold = readJson(HostHold, text(row.body));
      if (hold) holds.set(text(row.host_id), { hostName: text(row.host_name), hold });
    }
    return holds;
  }

  setHold(host: { id: string; name: string }, hold: HostHold | null): void {
    if (hold === null) this.sql.exec("DELETE FROM holds WHERE host_id = ?", host.id);
    else {
      this.sql.exec(
        `INSERT INTO holds (host_id, host_name, body) VALUES (?, ?, ?)
         ON CONFLICT (host_id) DO UPDATE SET host_name = excluded.host_name, body = excluded.body`,
        host.id,
        host.name,
        JSON.stringify(hold),
      );
    }
  }

  /**
   * The host names of the holds stored by name before schema version 6 (worker/db/coordinator/migrations.ts),
   * waiting to be keyed by id; null once there are none left to key.
   */
  namedHolds(): string[] | null {
    if (this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'holds_by_name'").toArray().length === 0) return null;
    return this.sql.exec("SELECT host_name FROM holds_by_name").toArray().map((row) => text(row.host_name));
  }

  /** Keys the holds stored by name by the ids of `idsByName`, dropping those whose name has none, and the old table with them. */
  keyNamedHolds(idsByName: ReadonlyMap<string, string>): void {
    for (const row of this.sql.exec("SELECT host_name, body FROM holds_by_name").toArray()) {
      const id = idsByName.get(text(row.host_name));
      if (id !== undefined) this.sql.exec("INSERT OR IGNORE INTO holds (host_id, host_name, body) VALUES (?, ?, ?)", id, text(row.host_name), text(row.body));
    }
    this.sql.exec("DROP TABLE holds_by_name");
  }
}
