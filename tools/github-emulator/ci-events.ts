/** Commit statuses, check runs and workflow runs on a commit, and the webhooks each raises. */
import type { CheckConclusion, CheckRun, CheckStatus, StatusState } from "./checks.ts";
import { GitHubApiError, validationFailed } from "./errors.ts";
import { stableNumber } from "./ids.ts";
import { checkRunJson, checkSuiteJson, htmlRepoUrl, repositoryJson, simpleCommitJson, statusJson, userJson } from "./payloads.ts";
import type { PullRequest } from "./pull-requests.ts";
import type { EmulatedRepository } from "./repository.ts";

const DOC_STATUSES = "https://docs.github.com/rest/commits/statuses#create-a-commit-status";

async function requireCommit(repo: EmulatedRepository, sha: string): Promise<string> {
  const full = await repo.git.resolveCommit(sha);
  if (!full) throw new GitHubApiError(422, `No commit found for SHA: ${sha}`, { documentationUrl: DOC_STATUSES });
  return full;
}

function pullsAt(repo: EmulatedRepository, sha: string): PullRequest[] {
  return repo.pulls.list().filter((pr) => pr.state === "open" && pr.headSha === sha);
}

async function branchAt(repo: EmulatedRepository, sha: string): Promise<string | null> {
  for (const [name, tip] of await repo.git.branches()) if (tip === sha) return name;
  return null;
}

/** A commit status (POST /statuses/{sha}): raises `status`. */
export async function addStatus(
  repo: EmulatedRepository,
  sha: string,
  fields: { state: StatusState; context?: string; description?: string | null; targetUrl?: string | null },
  sender = repo.actor,
): Promise<Record<string, unknown>> {
  const full = await requireCommit(repo, sha);
  const now = repo.now();
  const status = repo.checks.addStatus({
    sha: full,
    state: fields.state,
    context: fields.context ?? "default",
    description: fields.description ?? null,
    targetUrl: fields.targetUrl ?? null,
    creator: sender,
    createdAt: now,
    updatedAt: now,
  });
  const commit = await repo.git.readCommit(full);
  const branches = [];
  for (const [name, tip] of await repo.git.branches()) {
    if (await repo.git.isAncestor(full, tip)) {
      branches.push({ name, commit: { sha: tip, url: `${repo.site.baseUrl}/repos/${repo.site.owner}/${repo.site.repo}/commits/${tip}` }, protected: false });
    }
  }
  repo.emit("status", {
    id: status.id,
    sha: full,
    name: `${repo.site.owner}/${repo.site.repo}`,
    target_url: status.targetUrl,
    avatar_url: `${repo.site.baseUrl}/avatars/${sender}`,
    context: status.context,
    description: status.description,
    state: status.state,
    commit: commit ? { sha: full, commit: simpleCommitJson(commit), html_url: `${htmlRepoUrl(repo.site)}/commit/${full}` } : { sha: full },
    branches,
    created_at: status.createdAt,
    updated_at: status.updatedAt,
    sender,
  });
  return statusJson(repo.site, status);
}

/**
 * Creates or updates the check run `name` on a commit: `check_run` created / completed,
 * and `check_suite` completed once every run on the commit has completed.
 */
export async function setCheckRun(
  repo: EmulatedRepository,
  sha: string,
  fields: {
    name: string;
    status?: CheckStatus;
    conclusion?: CheckConclusion | null;
    detailsUrl?: string | null;
    externalId?: string;
    output?: { title?: string | null; summary?: string | null; text?: string | null };
    id?: number;
  },
  sender = repo.actor,
): Promise<CheckRun> {
  const full = await requireCommit(repo, sha);
  const now = repo.now();
  const status: CheckStatus = fields.conclusion ? "completed" : (fields.status ?? "queued");
  if (status === "completed" && !fields.conclusion) {
    throw validationFailed([{ resource: "CheckRun", field: "conclusion", code: "missing_field" }]);
  }
  const { suite } = repo.checks.suiteFor(full, { headBranch: await branchAt(repo, full), before: null, now });
  const existing = fields.id !== undefined ? repo.checks.run(fields.id) : undefined;
  const events: string[] = [];
  let run: CheckRun;
  if (existing) {
    const wasCompleted = existing.status === "completed";
    existing.status = status;
    existing.conclusion = fields.conclusion ?? null;
    if (fields.detailsUrl !== undefined) existing.detailsUrl = fields.detailsUrl;
    if (fields.output) existing.output = { ...existing.output, ...fields.output };
    existing.completedAt = status === "completed" ? (existing.completedAt ?? now) : null;
    if (status === "completed" && !wasCompleted) events.push("completed");
    run = existing;
  } else {
    run = repo.checks.addRun({
      suiteId: suite.id,
      headSha: full,
      name: fields.name,
      status,
      conclusion: fields.conclusion ?? null,
      detailsUrl: fields.detailsUrl ?? null,
      externalId: fields.externalId ?? "",
      output: { title: fields.output?.title ?? null, summary: fields.output?.summary ?? null, text: fields.output?.text ?? null },
      startedAt: now,
      completedAt: status === "completed" ? now : null,
    });
    events.push("created");
    if (status === "completed") events.push("completed");
  }
  const suiteCompleted = repo.checks.settleSuite(full, now);
  const pulls = pullsAt(repo, full);
  for (const action of events) {
    repo.emit("check_run", { action, check_run: checkRunJson(repo.site, run, suite, pulls), sender });
  }
  if (suiteCompleted) {
    const commit = await repo.git.readCommit(full);
    repo.emit("check_suite", {
      action: "completed",
      check_suite: checkSuiteJson(repo.site, suite, pulls, {
        latest_check_runs_count: repo.checks.runs(full).length,
        head_commit: commit ? simpleCommitJson(commit) : null,
      }),
      sender,
    });
  }
  return run;
}

/**
 * A GitHub Actions workflow run on a commit: workflow_run requested → in_progress →
 * (its job's check run) → completed.
 */
export async function workflowRun(
  repo: EmulatedRepository,
  sha: string,
  conclusion: CheckConclusion,
  options: { name?: string; path?: string; event?: string } = {},
): Promise<number> {
  const full = await requireCommit(repo, sha);
  const commit = await repo.git.readCommit(full);
  const name = options.name ?? "CI";
  const path = options.path ?? ".github/workflows/ci.yml";
  const runNumber = repo.checks.nextWorkflowRunNumber();
  const id = 9_000_000_000 + stableNumber(`${full}/${name}`, 1_000_000) * 100 + runNumber;
  const workflowId = 160_000_000 + stableNumber(path, 1_000_000);
  const branch = await branchAt(repo, full);
  const created = repo.now();
  const pulls = pullsAt(repo, full);
  const suite = repo.checks.suiteFor(full, { headBranch: branch, before: null, now: created }).suite;
  const workflow = {
    id: workflowId,
    node_id: `W_${workflowId}`,
    name,
    path,
    state: "active",
    created_at: repo.site.createdAt,
    updated_at: repo.site.createdAt,
    url: `${repo.site.baseUrl}/repos/${repo.site.owner}/${repo.site.repo}/actions/workflows/${workflowId}`,
    html_url: `${htmlRepoUrl(repo.site)}/blob/${repo.site.defaultBranch}/${path}`,
    badge_url: `${htmlRepoUrl(repo.site)}/workflows/${encodeURIComponent(name)}/badge.svg`,
  };
  const runJson = (status: string, runConclusion: string | null): Record<string, unknown> => ({
    id,
    name,
    node_id: `WFR_${id}`,
    head_branch: branch,
    head_sha: full,
    path,
    display_title: commit?.message.split("\n")[0] ?? name,
    run_number: runNumber,
    event: options.event ?? "push",
    status,
    conclusion: runConclusion,
    workflow_id: workflowId,
    check_suite_id: suite.id,
    check_suite_node_id: `CS_${suite.id}`,
    url: `${repo.site.baseUrl}/repos/${repo.site.owner}/${repo.site.repo}/actions/runs/${id}`,
    html_url: `${htmlRepoUrl(repo.site)}/actions/runs/${id}`,
    pull_requests: pulls.map((pr) => ({ url: `${repo.site.baseUrl}/repos/${repo.site.owner}/${repo.site.repo}/pulls/${pr.number}`, id: pr.id, number: pr.number, head: { ref: pr.head, sha: pr.headSha }, base: { ref: pr.base, sha: pr.baseSha } })),
    created_at: created,
    updated_at: repo.now(),
    run_attempt: 1,
    run_started_at: created,
    actor: userJson(repo.site, repo.actor),
    triggering_actor: userJson(repo.site, repo.actor),
    head_commit: commit ? simpleCommitJson(commit) : null,
    repository: repositoryJson(repo.site),
    head_repository: repositoryJson(repo.site),
  });
  repo.emit("workflow_run", { action: "requested", workflow, workflow_run: runJson("queued", null) });
  repo.emit("workflow_run", { action: "in_progress", workflow, workflow_run: runJson("in_progress", null) });
  await setCheckRun(repo, full, { name: "build", status: "completed", conclusion });
  repo.emit("workflow_run", { action: "completed", workflow, workflow_run: runJson("completed", conclusion) });
  return id;
}

