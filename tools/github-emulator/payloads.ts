/**
 * JSON shapes of GitHub's REST v3 resources and webhook payloads, for the fields clients read.
 * Field names and nesting follow api.github.com and @octokit/webhooks-examples.
 */
import type { CheckRun, CheckSuite, CommitStatus } from "./checks.ts";
import type { CommitData, FileChange, GitIdentity } from "./git.ts";
import { nodeId, stableNumber } from "./ids.ts";
import type { MergeMethod } from "./merge.ts";
import type { Label, PullRequest } from "./pull-requests.ts";

/** Where the emulated repository lives: every URL in a payload is built from this. */
export interface Site {
  owner: string;
  repo: string;
  repoId: number;
  hookId: number;
  defaultBranch: string;
  /** The emulator's own origin, e.g. http://127.0.0.1:8788 (API and "html" pages share it). */
  baseUrl: string;
  /** The bare repository path `git clone` accepts. */
  cloneUrl: string;
  createdAt: string;
  /** Extra repository fields (e.g. open_issues_count) computed by the caller. */
  openIssues: number;
  pushedAt: string;
  /** The repository's "Pull Requests" settings: the merge methods its merge button (and API) allow. */
  mergeMethods: readonly MergeMethod[];
}

type Json = Record<string, unknown>;

export const fullName = (site: Site): string => `${site.owner}/${site.repo}`;
export const apiRepoUrl = (site: Site): string => `${site.baseUrl}/repos/${site.owner}/${site.repo}`;
export const htmlRepoUrl = (site: Site): string => `${site.baseUrl}/${site.owner}/${site.repo}`;

export function userId(login: string): number {
  return 1_000_000 + stableNumber(login.toLowerCase(), 90_000_000);
}

/** The git identity GitHub gives a user without a public email. */
export function identityOf(login: string): GitIdentity {
  return { name: login, email: `${userId(login)}+${login}@users.noreply.github.com` };
}

/** GitHub links a commit to a user by email; only the noreply form is recognisable here. */
export function loginForEmail(email: string): string | null {
  const m = /^(?:\d+\+)?([^@]+)@users\.noreply\.github\.com$/i.exec(email);
  return m?.[1] ?? null;
}

export function userJson(site: Site, login: string): Json {
  const id = userId(login);
  const url = `${site.baseUrl}/users/${encodeURIComponent(login)}`;
  return {
    login,
    id,
    node_id: nodeId(login.endsWith("[bot]") ? "BOT" : "U", id),
    avatar_url: `${site.baseUrl}/avatars/${encodeURIComponent(login)}`,
    gravatar_id: "",
    url,
    html_url: `${site.baseUrl}/${encodeURIComponent(login)}`,
    followers_url: `${url}/followers`,
    following_url: `${url}/following{/other_user}`,
    gists_url: `${url}/gists{/gist_id}`,
    starred_url: `${url}/starred{/owner}{/repo}`,
    subscriptions_url: `${url}/subscriptions`,
    organizations_url: `${url}/orgs`,
    repos_url: `${url}/repos`,
    events_url: `${url}/events{/privacy}`,
    received_events_url: `${url}/received_events`,
    type: login.endsWith("[bot]") ? "Bot" : "User",
    user_view_type: "public",
    site_admin: false,
  };
}

/**
 * The repository object. `variant: "push"` reproduces the push webhook's quirks
 * (unix-second created_at / pushed_at, owner with name and email, master_branch).
 */
export function repositoryJson(site: Site, variant: "api" | "webhook" | "push" = "webhook"): Json {
  const api = apiRepoUrl(site);
  const html = htmlRepoUrl(site);
  const owner = userJson(site, site.owner);
  const repository: Json = {
    id: site.repoId,
    node_id: nodeId("R", site.repoId),
    name: site.repo,
    full_name: fullName(site),
    private: false,
    owner: variant === "push" ? { name: site.owner, email: identityOf(site.owner).email, ...owner } : owner,
    html_url: html,
    description: null,
    fork: false,
    url: variant === "push" ? html : api,
    forks_url: `${api}/forks`,
    keys_url: `${api}/keys{/key_id}`,
    collaborators_url: `${api}/collaborators{/collaborator}`,
    teams_url: `${api}/teams`,
    hooks_url: `${api}/hooks`,
    issue_events_url: `${api}/issues/events{/number}`,
    events_url: `${api}/events`,
    assignees_url: `${api}/assignees{/user}`,
    branches_url: `${api}/branches{/branch}`,
    tags_url: `${api}/tags`,
    blobs_url: `${api}/git/blobs{/sha}`,
    git_tags_url: `${api}/git/tags{/sha}`,
    git_refs_url: `${api}/git/refs{/sha}`,
    trees_url: `${api}/git/trees{/sha}`,
    statuses_url: `${api}/statuses/{sha}`,
    languages_url: `${api}/languages`,
    stargazers_url: `${api}/stargazers`,
    contributors_url: `${api}/contributors`,
    subscribers_url: `${api}/subscribers`,
    subscription_url: `${api}/subscription`,
    commits_url: `${api}/commits{/sha}`,
    git_commits_url: `${api}/git/commits{/sha}`,
    comments_url: `${api}/comments{/number}`,
    issue_comment_url: `${api}/issues/comments{/number}`,
    contents_url: `${api}/contents/{+path}`,
    compare_url: `${api}/compare/{base}...{head}`,
    merges_url: `${api}/merges`,
    archive_url: `${api}/{archive_format}{/ref}`,
    downloads_url: `${api}/downloads`,
    issues_url: `${api}/issues{/number}`,
    pulls_url: `${api}/pulls{/number}`,
    milestones_url: `${api}/milestones{/number}`,
    notifications_url: `${api}/notifications{?since,all,participating}`,
    labels_url: `${api}/labels{/name}`,
    releases_url: `${api}/releases{/id}`,
    deployments_url: `${api}/deployments`,
    created_at: variant === "push" ? Math.floor(Date.parse(site.createdAt) / 1000) : site.createdAt,
    updated_at: site.pushedAt,
    pushed_at: variant === "push" ? Math.floor(Date.parse(site.pushedAt) / 1000) : site.pushedAt,
    // Not GitHub's URLs: these are what `git clone` accepts for the emulated repository.
    git_url: `file://${site.cloneUrl}`,
    ssh_url: site.cloneUrl,
    clone_url: site.cloneUrl,
    svn_url: html,
    homepage: null,
    size: 0,
    stargazers_count: 0,
    watchers_count: 0,
    language: "Nix",
    has_issues: true,
    has_projects: true,
    has_downloads: true,
    has_wiki: false,
    has_pages: false,
    has_discussions: false,
    forks_count: 0,
    mirror_url: null,
    archived: false,
    disabled: false,
    open_issues_count: site.openIssues,
    license: null,
    allow_forking: true,
    is_template: false,
    web_commit_signoff_required: false,
    topics: [],
    visibility: "public",
    forks: 0,
    open_issues: site.openIssues,
    watchers: 0,
    default_branch: site.defaultBranch,
  };
  if (variant === "push") {
    repository.stargazers = 0;
    repository.master_branch = site.defaultBranch;
  }
  if (variant === "api") {
    Object.assign(repository, {
      permissions: { admin: true, maintain: true, push: true, triage: true, pull: true },
      allow_squash_merge: site.mergeMethods.includes("squash"),
      allow_merge_commit: site.mergeMethods.includes("merge"),
      allow_rebase_merge: site.mergeMethods.includes("rebase"),
      allow_auto_merge: false,
      delete_branch_on_merge: false,
      allow_update_branch: false,
      use_squash_pr_title_as_default: false,
      squash_merge_commit_message: "COMMIT_MESSAGES",
      squash_merge_commit_title: "COMMIT_OR_PR_TITLE",
      merge_commit_message: "PR_TITLE",
      merge_commit_title: "MERGE_MESSAGE",
      network_count: 0,
      subscribers_count: 0,
    });
  }
  return repository;
}

export function labelJson(site: Site, label: Label): Json {
  return {
    id: label.id,
    node_id: nodeId("LA", label.id),
    url: `${apiRepoUrl(site)}/labels/${encodeURIComponent(label.name)}`,
    name: label.name,
    color: label.color,
    default: label.default,
    description: label.description,
  };
}

/** Author / committer as the commit API shows them. */
function signatureJson(signature: CommitData["author"]): Json {
  return { name: signature.name, email: signature.email, date: signature.date };
}

function parentJson(site: Site, sha: string): Json {
  return { sha, url: `${apiRepoUrl(site)}/commits/${sha}`, html_url: `${htmlRepoUrl(site)}/commit/${sha}` };
}

const UNSIGNED = { verified: false, reason: "unsigned", signature: null, payload: null, verified_at: null };

export function fileJson(site: Site, ref: string, change: FileChange, patch: string | undefined): Json {
  const path = change.path.split("/").map(encodeURIComponent).join("/");
  const file: Json = {
    sha: change.sha,
    filename: change.path,
    status: change.status,
    additions: change.additions,
    deletions: change.deletions,
    changes: change.additions + change.deletions,
    blob_url: `${htmlRepoUrl(site)}/blob/${ref}/${path}`,
    raw_url: `${htmlRepoUrl(site)}/raw/${ref}/${path}`,
    contents_url: `${apiRepoUrl(site)}/contents/${path}?ref=${ref}`,
  };
  if (patch !== undefined) file.patch = patch;
  return file;
}

/** GET /repos/{o}/{r}/commits/{ref} and the entries of compare / pulls/{n}/commits. */
export function restCommitJson(site: Site, commit: CommitData, files?: Json[]): Json {
  const api = apiRepoUrl(site);
  const authorLogin = loginForEmail(commit.author.email);
  const committerLogin = loginForEmail(commit.committer.email);
  const json: Json = {
    sha: commit.sha,
    node_id: nodeId("C", commit.sha),
    commit: {
      author: signatureJson(commit.author),
      committer: signatureJson(commit.committer),
      message: commit.message,
      tree: { sha: commit.tree, url: `${api}/git/trees/${commit.tree}` },
      url: `${api}/git/commits/${commit.sha}`,
      comment_count: 0,
      verification: UNSIGNED,
    },
    url: `${api}/commits/${commit.sha}`,
    html_url: `${htmlRepoUrl(site)}/commit/${commit.sha}`,
    comments_url: `${api}/commits/${commit.sha}/comments`,
    author: authorLogin ? userJson(site, authorLogin) : null,
    committer: committerLogin ? userJson(site, committerLogin) : null,
    parents: commit.parents.map((p) => parentJson(site, p)),
  };
  if (files) {
    let additions = 0;
    let deletions = 0;
    for (const f of files) {
      additions += Number(f.additions);
      deletions += Number(f.deletions);
    }
    json.stats = { total: additions + deletions, additions, deletions };
    json.files = files;
  }
  return json;
}

/** GET/POST /repos/{o}/{r}/git/commits/{sha}. */
export function gitCommitJson(site: Site, commit: CommitData): Json {
  const api = apiRepoUrl(site);
  return {
    sha: commit.sha,
    node_id: nodeId("C", commit.sha),
    url: `${api}/git/commits/${commit.sha}`,
    html_url: `${htmlRepoUrl(site)}/commit/${commit.sha}`,
    author: signatureJson(commit.author),
    committer: signatureJson(commit.committer),
    tree: { sha: commit.tree, url: `${api}/git/trees/${commit.tree}` },
    message: commit.message,
    parents: commit.parents.map((p) => parentJson(site, p)),
    verification: UNSIGNED,
  };
}

export function refJson(site: Site, ref: string, sha: string): Json {
  return {
    ref,
    node_id: nodeId("REF", ref),
    url: `${apiRepoUrl(site)}/git/${ref}`,
    object: { sha, type: "commit", url: `${apiRepoUrl(site)}/git/commits/${sha}` },
  };
}

/** A commit inside a push payload. */
export function pushCommitJson(site: Site, commit: CommitData, changes: FileChange[]): Json {
  const person = (s: CommitData["author"]): Json => {
    const login = loginForEmail(s.email);
    return login ? { name: s.name, email: s.email, username: login } : { name: s.name, email: s.email };
  };
  return {
    id: commit.sha,
    tree_id: commit.tree,
    distinct: true,
    message: commit.message,
    timestamp: commit.committer.date,
    url: `${htmlRepoUrl(site)}/commit/${commit.sha}`,
    author: person(commit.author),
    committer: person(commit.committer),
    added: changes.filter((c) => c.status === "added").map((c) => c.path),
    removed: changes.filter((c) => c.status === "removed").map((c) => c.path),
    modified: changes.filter((c) => c.status === "modified").map((c) => c.path),
  };
}

/** A commit as check_suite / workflow_run payloads embed it. */
export function simpleCommitJson(commit: CommitData): Json {
  return {
    id: commit.sha,
    tree_id: commit.tree,
    message: commit.message,
    timestamp: commit.committer.date,
    author: { name: commit.author.name, email: commit.author.email },
    committer: { name: commit.committer.name, email: commit.committer.email },
  };
}

/** Extra facts only the single-PR endpoint (and webhooks) carry. */
export interface PullDetail {
  mergeable: boolean | null;
  mergeableState: string;
  rebaseable: boolean | null;
  commits: number;
  additions: number;
  deletions: number;
  changedFiles: number;
}

export function pullJson(site: Site, pr: PullRequest, labels: Label[], detail: PullDetail | null): Json {
  const api = apiRepoUrl(site);
  const html = htmlRepoUrl(site);
  const repository = repositoryJson(site, "api");
  delete repository.permissions;
  const branch = (ref: string, sha: string): Json => ({
    label: `${site.owner}:${ref}`,
    ref,
    sha,
    user: userJson(site, site.owner),
    repo: repository,
  });
  const json: Json = {
    url: `${api}/pulls/${pr.number}`,
    id: pr.id,
    node_id: nodeId("PR", pr.id),
    html_url: `${html}/pull/${pr.number}`,
    diff_url: `${html}/pull/${pr.number}.diff`,
    patch_url: `${html}/pull/${pr.number}.patch`,
    issue_url: `${api}/issues/${pr.number}`,
    number: pr.number,
    state: pr.state,
    locked: false,
    title: pr.title,
    user: userJson(site, pr.user),
    body: pr.body,
    created_at: pr.createdAt,
    updated_at: pr.updatedAt,
    closed_at: pr.closedAt,
    merged_at: pr.mergedAt,
    merge_commit_sha: pr.mergeCommitSha,
    assignee: null,
    assignees: [],
    requested_reviewers: [],
    requested_teams: [],
    labels: labels.map((l) => labelJson(site, l)),
    milestone: null,
    draft: pr.draft,
    commits_url: `${api}/pulls/${pr.number}/commits`,
    review_comments_url: `${api}/pulls/${pr.number}/comments`,
    review_comment_url: `${api}/pulls/comments{/number}`,
    comments_url: `${api}/issues/${pr.number}/comments`,
    statuses_url: `${api}/statuses/${pr.headSha}`,
    head: branch(pr.head, pr.headSha),
    base: branch(pr.base, pr.baseSha),
    _links: {
      self: { href: `${api}/pulls/${pr.number}` },
      html: { href: `${html}/pull/${pr.number}` },
      issue: { href: `${api}/issues/${pr.number}` },
      comments: { href: `${api}/issues/${pr.number}/comments` },
      review_comments: { href: `${api}/pulls/${pr.number}/comments` },
      review_comment: { href: `${api}/pulls/comments{/number}` },
      commits: { href: `${api}/pulls/${pr.number}/commits` },
      statuses: { href: `${api}/statuses/${pr.headSha}` },
    },
    author_association: pr.user === site.owner ? "OWNER" : "CONTRIBUTOR",
    auto_merge: null,
    active_lock_reason: null,
  };
  if (detail) {
    Object.assign(json, {
      merged: pr.mergedAt !== null,
      mergeable: detail.mergeable,
      rebaseable: detail.rebaseable,
      mergeable_state: detail.mergeableState,
      merged_by: pr.mergedBy ? userJson(site, pr.mergedBy) : null,
      comments: 0,
      review_comments: 0,
      maintainer_can_modify: false,
      commits: detail.commits,
      additions: detail.additions,
      deletions: detail.deletions,
      changed_files: detail.changedFiles,
    });
  }
  return json;
}

/** A pull request as the issues API lists it. */
export function issueJson(site: Site, pr: PullRequest, labels: Label[]): Json {
  const api = apiRepoUrl(site);
  return {
    url: `${api}/issues/${pr.number}`,
    repository_url: api,
    labels_url: `${api}/issues/${pr.number}/labels{/name}`,
    comments_url: `${api}/issues/${pr.number}/comments`,
    events_url: `${api}/issues/${pr.number}/events`,
    html_url: `${htmlRepoUrl(site)}/pull/${pr.number}`,
    id: pr.id + 1,
    node_id: nodeId("I", pr.id),
    number: pr.number,
    title: pr.title,
    user: userJson(site, pr.user),
    labels: labels.map((l) => labelJson(site, l)),
    state: pr.state,
    locked: false,
    assignee: null,
    assignees: [],
    milestone: null,
    comments: 0,
    created_at: pr.createdAt,
    updated_at: pr.updatedAt,
    closed_at: pr.closedAt,
    author_association: pr.user === site.owner ? "OWNER" : "CONTRIBUTOR",
    draft: pr.draft,
    pull_request: {
      url: `${api}/pulls/${pr.number}`,
      html_url: `${htmlRepoUrl(site)}/pull/${pr.number}`,
      diff_url: `${htmlRepoUrl(site)}/pull/${pr.number}.diff`,
      patch_url: `${htmlRepoUrl(site)}/pull/${pr.number}.patch`,
      merged_at: pr.mergedAt,
    },
    body: pr.body,
    state_reason: pr.state === "closed" ? (pr.mergedAt ? "completed" : "not_planned") : null,
  };
}

export function statusJson(site: Site, status: CommitStatus): Json {
  return {
    url: `${apiRepoUrl(site)}/statuses/${status.sha}`,
    avatar_url: `${site.baseUrl}/avatars/${encodeURIComponent(status.creator)}`,
    id: status.id,
    node_id: nodeId("SC", status.id),
    state: status.state,
    description: status.description,
    target_url: status.targetUrl,
    context: status.context,
    created_at: status.createdAt,
    updated_at: status.updatedAt,
    creator: userJson(site, status.creator),
  };
}

/** The one app every emulated check run belongs to. */
export function appJson(site: Site): Json {
  return {
    id: 15368,
    slug: "github-actions",
    node_id: "MDM6QXBwMTUzNjg=",
    owner: userJson(site, "github"),
    name: "GitHub Actions",
    description: "Automate your workflow from idea to production",
    external_url: "https://help.github.com/en/actions",
    html_url: `${site.baseUrl}/apps/github-actions`,
    created_at: "2018-07-30T09:30:17Z",
    updated_at: "2019-12-10T19:04:12Z",
    permissions: { checks: "write", contents: "write", metadata: "read", pull_requests: "write", statuses: "write" },
    events: ["check_run", "check_suite", "pull_request", "push", "status"],
  };
}

export function minimalPullJson(site: Site, pr: PullRequest): Json {
  const repo = { id: site.repoId, url: apiRepoUrl(site), name: site.repo };
  return {
    url: `${apiRepoUrl(site)}/pulls/${pr.number}`,
    id: pr.id,
    number: pr.number,
    head: { ref: pr.head, sha: pr.headSha, repo },
    base: { ref: pr.base, sha: pr.baseSha, repo },
  };
}

export function checkSuiteJson(site: Site, suite: CheckSuite, pulls: PullRequest[], extra: Json = {}): Json {
  return {
    id: suite.id,
    node_id: nodeId("CS", suite.id),
    head_branch: suite.headBranch,
    head_sha: suite.headSha,
    status: suite.status,
    conclusion: suite.conclusion,
    url: `${apiRepoUrl(site)}/check-suites/${suite.id}`,
    before: suite.before,
    after: suite.headSha,
    pull_requests: pulls.map((pr) => minimalPullJson(site, pr)),
    app: appJson(site),
    created_at: suite.createdAt,
    updated_at: suite.updatedAt,
    ...extra,
  };
}

export function checkRunJson(site: Site, run: CheckRun, suite: CheckSuite | undefined, pulls: PullRequest[]): Json {
  return {
    id: run.id,
    node_id: nodeId("CR", run.id),
    head_sha: run.headSha,
    external_id: run.externalId,
    url: `${apiRepoUrl(site)}/check-runs/${run.id}`,
    html_url: `${htmlRepoUrl(site)}/runs/${run.id}`,
    details_url: run.detailsUrl ?? `${htmlRepoUrl(site)}/runs/${run.id}`,
    status: run.status,
    conclusion: run.conclusion,
    started_at: run.startedAt,
    completed_at: run.completedAt,
    output: { ...run.output, annotations_count: 0, annotations_url: `${apiRepoUrl(site)}/check-runs/${run.id}/annotations` },
    name: run.name,
    check_suite: suite ? checkSuiteJson(site, suite, pulls) : { id: run.suiteId },
    app: appJson(site),
    pull_requests: pulls.map((pr) => minimalPullJson(site, pr)),
  };
}
