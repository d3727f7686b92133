/** Fleet builds of update PR heads, in the coordinator's SQLite: the record as JSON, `open` while an event may move it. */
import { FleetBuildRecord, isOpen } from "../../fleet-build/rules.ts";
import { readJson, type Row } from "./sql.ts";

/** Fleet builds kept, newest first: a few per update PR is all anyone reads. */
const KEEP_FLEET_BUILDS = 200;

function readFleetBuild(row: Row): FleetBuildRecord | null {
  const build = readJson(FleetBuildRecord, String(row.body));
  if (!build) console.error("a stored fleet build no longer reads; it is left out");
  return build;
}

const fleetBuildRows = (row: Row): FleetBuildRecord[] => {
  const build = readFleetBuild(row);
  return build ? [build] : [];
};

export class FleetBuildStore {
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
  }

  fleetBuild(id: string): FleetBuildRecord | null {
    const row = this.sql.exec("SELECT body FROM fleet_builds WHERE id = ?", id).toArray()[0];
    return row ? readFleetBuild(row) : null;
  }

  /** Builds an event may still move, oldest first. */
  openFleetBuilds(): FleetBuildRecord[] {
    return this.sql.exec("SELECT body FROM fleet_builds WHERE open = 1 ORDER BY started_at, id").toArray().flatMap(fleetBuildRows);
  }

  /** The newest build of the PR (of whatever head), or null. */
  latestFleetBuild(pr: number): FleetBuildRecord | null {
    const row = this.sql.exec("SELECT body FROM fleet_builds WHERE pr = ? ORDER BY started_at DESC, id DESC LIMIT 1", pr).toArray()[0];
    return row ? readFleetBuild(row) : null;
  }

  /** The newest builds, newest first. */
  recentFleetBuilds(limit: number): FleetBuildRecord[] {
    return this.sql.exec("SELECT body FROM fleet_builds ORDER BY started_at DESC, id DESC LIMIT ?", limit).toArray().flatMap(fleetBuildRows);
  }

  saveFleetBuild(build: FleetBuildRecord): void {
    this.sql.exec(
      `INSERT INTO fleet_builds (id, pr, head_sha, started_at, open, body) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET open = excluded.open, body = excluded.body`,
      build.id,
      build.pr,
      build.headSha,
      build.startedAt,
      isOpen(build) ? 1 : 0,
      JSON.stringify(build),
    );
  }

  /** Keeps the newest builds; an open one is never dropped. */
  pruneFleetBuilds(): void {
    this.sql.exec(
      `DELETE FROM fleet_builds WHERE open = 0 AND id IN (
         SELECT id FROM fleet_builds ORDER BY started_at DESC, id DESC LIMIT -1 OFFSET ?)`,
      KEEP_FLEET_BUILDS,
    );
  }
}
