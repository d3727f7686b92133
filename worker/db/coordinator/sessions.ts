/** Each host's agent session, in the coordinator's SQLite: which agent process polled last, and whose report D1 holds. */
import { textOrNull } from "./sql.ts";

export interface AgentSession {
  session: string | null;
  reportSession: string | null;
  reportHash: string | null;
}

export class SessionStore {
  private readonly sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.sql = sql;
  }

  agentSession(hostId: string): AgentSession | null {
    const row = this.sql.exec("SELECT session, report_session, report_hash FROM agent_sessions WHERE host_id = ?", hostId).toArray()[0];
    return row ? { session: textOrNull(row.session), reportSession: textOrNull(row.report_session), reportHash: textOrNull(row.report_hash) } : null;
  }

  saveAgentSession(hostId: string, session: AgentSession): void {
    this.sql.exec(
      `INSERT INTO agent_sessions (host_id, session, report_session, report_hash) VALUES (?, ?, ?, ?)
       ON CONFLICT (host_id) DO UPDATE SET session = excluded.session, report_session = excluded.report_session, report_hash = excluded.report_hash`,
      hostId,
      session.session,
      session.reportSession,
      session.reportHash,
    );
  }

  forgetHost(hostId: string): void {
    this.sql.exec("DELETE FROM agent_sessions WHERE host_id = ?", hostId);
  }
}
