/** Holds: hosts kept out of every rollout and automatic action, in the coordinator's SQLite. */
import { HostHold } from "../../../common/protocol.ts";
import { readJson, text } from "./sql.ts";

export class HoldStore {
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
  }

  holds(): Map<string, HostHold> {
    const holds = new Map<string, HostHold>();
    for (const row of this.sql.exec("SELECT host_name, body FROM holds").toArray()) {
      const hold = readJson(HostHold, text(row.body));
      if (hold) holds.set(text(row.host_name), hold);
    }
    return holds;
  }

  setHold(hostName: string, hold: HostHold | null): void {
    if (hold === null) this.sql.exec("DELETE FROM holds WHERE host_name = ?", hostName);
    else {
      this.sql.exec(
        "INSERT INTO holds (host_name, body) VALUES (?, ?) ON CONFLICT (host_name) DO UPDATE SET body = excluded.body",
        hostName,
        JSON.stringify(hold),
      );
    }
  }
}
