/**
 * Accepting an agent's report: D1 keeps the catalogue's latest report (written by the shell after the
 * report is judged); this step records which agent session it came from, keeps a copy of the recent
 * ones for the judgements after a command's end, and raises the `report-stored` reaction (the lock clock).
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

/**
 * How many hosts' latest reports are kept in memory: a wave's worth and more (a report is a few KB; the
 * whole fleet's would not fit an object's memory). A host not among them is read from D1.
 */
const RECENT_REPORTS_KEPT = 500;

export interface RecentReport {
  report: Report;
  receivedAt: string;
}

export class Reports {
  private readonly host: CoordinatorHost;
  private readonly sessions: SessionStore;
  /**
   * The newest reports stored, oldest first: a copy of what D1 holds for these hosts (the coordinator is
   * its one writer, and a copy is taken after D1 stored it), so a command's end is judged without a read.
   */
  private readonly recent = new Map<string, RecentReport>();

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
    this.recent.delete(ref.id);
    this.recent.set(ref.id, { report, receivedAt });
    if (this.recent.size > RECENT_REPORTS_KEPT) this.recent.delete(this.recent.keys().next().value!);
    this.host.broadcast({ type: "host", host: ref.name, online: true, reportedAt: receivedAt });
    this.host.react({ type: "report-stored", host: ref, report });
    return step();
  }

  /** The host's latest report when it is among the recent ones; null means: read D1. */
  latestOf(hostId: string): RecentReport | null {
    return this.recent.get(hostId) ?? null;
  }

  forgetHost(hostId: string): void {
    this.recent.delete(hostId);
  }
}
