/**
 * What GET /metrics and the cost benchmark read from the coordinator: invocation counters and the
 * last minute's polls and reports (memory only, full again a minute after a restart), the running
 * totals kept in storage, and GitHub's latest rate limit (a copy in storage survives a restart).
 */
import type { GitHubRateLimit } from "../github/client.ts";
import { MinuteWindow } from "../metrics/window.ts";

const RATE_LIMIT_KEY = "github-rate-limit";

export interface CoordinatorMetrics {
  pollsPerMinute: number;
  reportsPerMinute: number;
  commandTotals: { kind: string; outcome: string; count: number }[];
  commandDurations: { kind: string; buckets: number[]; sumSeconds: number }[];
  activeCommands: { kind: string; state: string }[];
  rolloutStates: Record<string, number>;
  githubRateLimit: GitHubRateLimit | null;
}

export class Metrics {
  /** Invocations since this object started, for the cost benchmark and operators. */
  readonly counters = { polls: 0, commandEvents: 0, enqueues: 0, alarms: 0, reportsStored: 0, lockClockLoads: 0, hostJudgements: 0, rechecksMoot: 0 };
  private readonly pollWindow = new MinuteWindow();
  private readonly reportWindow = new MinuteWindow();
  private githubRateLimit: GitHubRateLimit | null = null;

  private readonly storage: DurableObjectStorage;

  constructor(storage: DurableObjectStorage) {
    this.storage = storage;
  }

  async load(): Promise<void> {
    this.githubRateLimit = (await this.storage.get<GitHubRateLimit>(RATE_LIMIT_KEY)) ?? null;
  }

  polled(withReport: boolean, now: number): void {
    this.counters.polls++;
    this.pollWindow.add(now);
    if (withReport) this.reportWindow.add(now);
  }

  /** An older reading than the one kept is ignored. */
  async recordRateLimit(rate: GitHubRateLimit): Promise<void> {
    if (this.githubRateLimit !== null && Date.parse(rate.at) < Date.parse(this.githubRateLimit.at)) return;
    this.githubRateLimit = rate;
    await this.storage.put(RATE_LIMIT_KEY, rate);
  }

  read(now: number, stored: Omit<CoordinatorMetrics, "pollsPerMinute" | "reportsPerMinute" | "githubRateLimit">): CoordinatorMetrics {
    return {
      pollsPerMinute: this.pollWindow.count(now),
      reportsPerMinute: this.reportWindow.count(now),
      ...stored,
      githubRateLimit: this.githubRateLimit,
    };
  }
}
