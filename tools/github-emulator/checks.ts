export type StatusState = "error" | "failure" | "pending" | "success";
export type CheckStatus = "queued" | "in_progress" | "completed";
export const CHECK_CONCLUSIONS = [
  "action_required",
  "cancelled",
  "failure",
  "neutral",
  "success",
  "skipped",
  "stale",
  "timed_out",
] as const;
export type CheckConclusion = (typeof CHECK_CONCLUSIONS)[number];

/** A commit status (the older "statuses" API). */
export interface CommitStatus {
  id: number;
  sha: string;
  state: StatusState;
  context: string;
  description: string | null;
  targetUrl: string | null;
  creator: string;
  createdAt: string;
  updatedAt: string;
}

export interface CheckRun {
  id: number;
  suiteId: number;
  headSha: string;
  name: string;
  status: CheckStatus;
  conclusion: CheckConclusion | null;
  detailsUrl: string | null;
  externalId: string;
  output: { title: string | null; summary: string | null; text: string | null };
  startedAt: string;
  completedAt: string | null;
}

/** One check suite per commit: every run here belongs to the one emulated app. */
export interface CheckSuite {
  id: number;
  headSha: string;
  headBranch: string | null;
  before: string | null;
  status: CheckStatus;
  conclusion: CheckConclusion | null;
  createdAt: string;
  updatedAt: string;
}

/** Which conclusion wins when a suite's runs disagree (worst first). */
const SUITE_PRECEDENCE: CheckConclusion[] = [
  "action_required",
  "cancelled",
  "timed_out",
  "failure",
  "stale",
  "neutral",
  "skipped",
  "success",
];

/** What `requireChecks` asks of a PR head before it may be merged. */
export type RequiredChecks = false | true | string[];

/** Commit statuses and check runs by commit. */
export class CheckStore {
  readonly #statuses: CommitStatus[] = [];
  readonly #runs: CheckRun[] = [];
  readonly #suites = new Map<string, CheckSuite>();
  #nextId = 4_000_000_000;
  #workflowRuns = 0;

  /** Workflow run numbers count up per repository. */
  nextWorkflowRunNumber(): number {
    return ++this.#workflowRuns;
  }

  #id(): number {
    return this.#nextId++;
  }

  addStatus(fields: Omit<CommitStatus, "id">): CommitStatus {
    const status: CommitStatus = { ...fields, id: this.#id() };
    this.#statuses.push(status);
    return status;
  }

  /** Every status for the commit, newest first (GitHub's list order). */
  statuses(sha: string): CommitStatus[] {
    return this.#statuses.filter((s) => s.sha === sha).reverse();
  }

  /** The latest status per context, for the combined status. */
  latestStatuses(sha: string): CommitStatus[] {
    const seen = new Map<string, CommitStatus>();
    for (const status of this.statuses(sha)) if (!seen.has(status.context)) seen.set(status.context, status);
    return [...seen.values()];
  }

  /** GitHub's combined state: failure beats pending beats success; no statuses at all is pending. */
  combinedState(sha: string): StatusState {
    const latest = this.latestStatuses(sha);
    if (latest.some((s) => s.state === "error" || s.state === "failure")) return "failure";
    if (latest.length === 0 || latest.some((s) => s.state === "pending")) return "pending";
    return "success";
  }

  /** The suite for a commit, created with its first run. Returns whether it was new. */
  suiteFor(sha: string, fields: { headBranch: string | null; before: string | null; now: string }): { suite: CheckSuite; created: boolean } {
    const existing = this.#suites.get(sha);
    if (existing) return { suite: existing, created: false };
    const suite: CheckSuite = {
      id: this.#id(),
      headSha: sha,
      headBranch: fields.headBranch,
      before: fields.before,
      status: "queued",
      conclusion: null,
      createdAt: fields.now,
      updatedAt: fields.now,
    };
    this.#suites.set(sha, suite);
    return { suite, created: true };
  }

  suite(sha: string): CheckSuite | undefined {
    return this.#suites.get(sha);
  }

  runs(sha: string): CheckRun[] {
    return this.#runs.filter((r) => r.headSha === sha);
  }

  run(id: number): CheckRun | undefined {
    return this.#runs.find((r) => r.id === id);
  }

  findRun(sha: string, name: string): CheckRun | undefined {
    return this.#runs.findLast((r) => r.headSha === sha && r.name === name);
  }

  addRun(fields: Omit<CheckRun, "id">): CheckRun {
    const run: CheckRun = { ...fields, id: this.#id() };
    this.#runs.push(run);
    return run;
  }

  /**
   * Recomputes the suite from its runs. Returns true when this call completed it
   * (the moment GitHub sends `check_suite` completed).
   */
  settleSuite(sha: string, now: string): boolean {
    const suite = this.#suites.get(sha);
    if (!suite) return false;
    const runs = this.runs(sha);
    const wasCompleted = suite.status === "completed";
    suite.updatedAt = now;
    if (runs.length > 0 && runs.every((r) => r.status === "completed")) {
      suite.status = "completed";
      const conclusions = runs.map((r) => r.conclusion ?? "neutral");
      suite.conclusion = SUITE_PRECEDENCE.find((c) => conclusions.includes(c)) ?? "success";
      if (suite.conclusion === "skipped" || suite.conclusion === "neutral") {
        suite.conclusion = conclusions.every((c) => c === suite.conclusion) ? suite.conclusion : "success";
      }
    } else {
      suite.status = runs.some((r) => r.status === "in_progress") ? "in_progress" : "queued";
      suite.conclusion = null;
    }
    return !wasCompleted && suite.status === "completed";
  }

  /**
   * Why a merge of `sha` is blocked by required checks, or null when it may go ahead.
   * `true` means "at least one check, and every status and check run green".
   */
  blockingReason(sha: string, required: RequiredChecks): string | null {
    if (required === false) return null;
    const results = new Map<string, "success" | "pending" | "failure">();
    for (const status of this.latestStatuses(sha)) {
      results.set(status.context, status.state === "success" ? "success" : status.state === "pending" ? "pending" : "failure");
    }
    for (const run of this.#runs) {
      if (run.headSha !== sha) continue;
      const outcome =
        run.status !== "completed"
          ? "pending"
          : run.conclusion === "success" || run.conclusion === "neutral" || run.conclusion === "skipped"
            ? "success"
            : "failure";
      results.set(run.name, outcome);
    }
    const names = required === true ? [...results.keys()] : required;
    if (names.length === 0) return `Required status check "any" is expected.`;
    for (const name of names) {
      const outcome = results.get(name);
      if (outcome === undefined) return `Required status check "${name}" is expected.`;
      if (outcome === "pending") return `Required status check "${name}" is in progress.`;
      if (outcome === "failure") return `Required status check "${name}" is failing.`;
    }
    return null;
  }
}
