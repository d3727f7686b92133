/**
 * Accepting an agent's report: D1 keeps the catalogue's latest report (written by the shell before the
 * poll's synchronous part); this step records which agent session it came from and raises the
 * `report-stored` reaction (the lock clock, a rollout verifying the host).
 */
import type { Report } from "../../common/protocol.ts";
import type { SessionStore } from "../db/coordinator/sessions.ts";
import { sha256Hex } from "../ids.ts";
import type { CoordinatorHost, HostRef } from "./host.ts";
import { step, type Step } from "./step.ts";

/** A report's hash without the fields that change on every report (uptimes): an unchanged report is not stored again. */
export async function reportHash(report: Report): Promise<string> {
  const { uptimeSeconds: _uptime, agentUptimeSeconds: _agentUptime, ...stable } = report;
  return sha256Hex(JSON.stringify(stable));
}

export class Reports {
  private readonly host: CoordinatorHost;
  private readonly sessions: SessionStore;

  constructor(host: CoordinatorHost, sessions: SessionStore) {
    this.host = host;
    this.sessions = sessions;
  }

  /** Whether D1 holds this very report from this session already. */
  isStored(hostId: string, session: string, hash: string): boolean {
    const known = this.sessions.agentSession(hostId);
    return known !== null && hash === known.reportHash && session === known.reportSession;
  }

  stored(ref: HostRef, session: string, hash: string, report: Report, receivedAt: string): Step<undefined> {
    const current = this.sessions.agentSession(ref.id);
    this.sessions.saveAgentSession(ref.id, { session: current?.session ?? null, reportSession: session, reportHash: hash });
    this.host.broadcast({ type: "host", host: ref.name, online: true, reportedAt: receivedAt });
    this.host.react({ type: "report-stored", host: ref, report });
    return step();
  }
}
