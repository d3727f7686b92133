/**
 * The GitHub REST client the control plane uses: a small set of calls, each
 * answer parsed with zod, each failure turned into a typed error
 * (worker/github/errors.ts). Runs on Workers' fetch and on Node's.
 */
import { Octokit } from "@octokit/core";
import { z } from "zod";
import type { CommitInfo } from "../../common/protocol.ts";
import {
  base64ToBytes,
  Blob,
  Branch,
  CheckRuns,
  CombinedStatus,
  Compare,
  Created,
  ErrorAnswer,
  FileContent,
  GitCommit,
  MergeAnswer,
  RestCommit,
  toCommitInfo,
  Tree,
  type CheckRunData,
  type PullRequestData,
  type StatusData,
  type TreeEntry,
} from "./answers.ts";
import { appAuthOptions, installationKey, knownInstallation, rememberInstallation } from "./app-auth.ts";
import { httpFailure, rateLimitRetryAt, readRateLimit, type GitHubRateLimit, type HeaderValues } from "./rate-limit.ts";
import type { GitHubAuthConfig, RepositoryName } from "./types.ts";
import {
  GitHubApiError,
  GitHubConflictError,
  GitHubMergeRefusedError,
  GitHubPushRefusedError,
  GitHubRateLimitError,
  GitHubRevertConflictError,
} from "./errors.ts";
import { PullRequestFields } from "./events.ts";
import { REVERT_BRANCH_PREFIX, REVERT_PR_LABEL } from "./revert-pull.ts";
import { shortSha } from "../../common/text.ts";

export type { CheckRunData, PullRequestData, StatusData } from "./answers.ts";
export type { GitHubRateLimit } from "./rate-limit.ts";

export type MergeMethod = "merge" | "squash" | "rebase";

export interface GitHubClientOptions {
  apiUrl: string;
  repository: RepositoryName;
  auth: GitHubAuthConfig;
  /** Injected by tests; the runtime's fetch otherwise. */
  fetch?: typeof fetch;
  now?: () => number;
  /** Per request; the Worker has 30 s of waitUntil after answering. */
  timeoutMs?: number;
  /** Told the rate limit GitHub reported with each answer that carried one (for GET /metrics). */
  onRateLimit?: (rate: GitHubRateLimit) => void;
}

const firstLine = (message: string): string => message.split("\n", 1)[0] ?? "";

/** GitHub's answer when branch protection or a ruleset refuses a direct update of the branch. */
const isProtectionRefusal = (error: GitHubApiError): boolean =>
  (error.status === 422 || error.status === 403 || error.status === 409) && /protected branch|through a pull request|rule violation/i.test(error.githubMessage);

/** The fleet repository on GitHub (or the emulator), through one authenticated Octokit. */
export class GitHubClient {
  readonly repository: RepositoryName;
  /** Null until the App's installation is found (an App configured without GITHUB_APP_INSTALLATION_ID). */
  #octokit: Octokit | null;
  readonly #octokitFor: (installationId: string) => Octokit;
  readonly #findInstallation: (() => Promise<string>) | null;
  readonly #now: () => number;
  readonly #timeoutMs: number;
  readonly #onRateLimit: ((rate: GitHubRateLimit) => void) | null;

  constructor(options: GitHubClientOptions) {
    this.repository = options.repository;
    this.#onRateLimit = options.onRateLimit ?? null;
    this.#now = options.now ?? Date.now;
    this.#timeoutMs = options.timeoutMs ?? 20_000;
    const doFetch = options.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, init));
    const auth = options.auth;
    const octokit = (authOptions: object) =>
      new Octokit({ baseUrl: options.apiUrl, userAgent: "nixfleet-control-plane", request: { fetch: doFetch }, ...authOptions });
    this.#octokitFor = (installationId) => octokit(auth.kind === "token" ? { auth: auth.token } : appAuthOptions(auth, installationId));
    if (auth.kind === "token") {
      this.#octokit = octokit({ auth: auth.token });
      this.#findInstallation = null;
    } else {
      const key = installationKey(options.apiUrl, auth.appId, options.repository.fullName);
      const installationId = auth.installationId ?? knownInstallation(key) ?? null;
      this.#octokit = installationId === null ? null : this.#octokitFor(installationId);
      // GET /repos/{owner}/{repo}/installation authenticates as the App (auth-app signs the JWT for it).
      const asApp = octokit(appAuthOptions(auth, null));
      this.#findInstallation = async () => {
        const { data } = await asApp.request("GET /repos/{owner}/{repo}/installation", {
          owner: options.repository.owner,
          repo: options.repository.name,
          request: { signal: AbortSignal.timeout(this.#timeoutMs) },
        });
        const id = String(z.object({ id: z.number().int() }).parse(data).id);
        rememberInstallation(key, id);
        return id;
      };
    }
  }

  async #client(): Promise<Octokit> {
    if (this.#octokit === null) this.#octokit = this.#octokitFor(await this.#findInstallation!());
    return this.#octokit;
  }

  async #request(what: string, route: string, params: Record<string, unknown> = {}): Promise<{ data: unknown; status: number }> {
    try {
      const response = await (await this.#client()).request(route, {
        owner: this.repository.owner,
        repo: this.repository.name,
        ...params,
        request: { signal: AbortSignal.timeout(this.#timeoutMs) },
      });
      this.#noteRateLimit(response.headers);
      return { data: response.data, status: response.status };
    } catch (error) {
      this.#noteRateLimit(httpFailure(error)?.headers ?? {});
      throw this.#translate(error, what);
    }
  }

  #noteRateLimit(headers: Record<string, unknown>): void {
    if (this.#onRateLimit === null) return;
    const values: HeaderValues = {};
    for (const [name, value] of Object.entries(headers)) {
      if (typeof value === "string" || typeof value === "number") values[name.toLowerCase()] = value;
    }
    const rate = readRateLimit(values, this.#now());
    if (rate !== null) this.#onRateLimit(rate);
  }

  #translate(error: unknown, what: string): GitHubApiError {
    if (error instanceof GitHubApiError) return error;
    const failure = httpFailure(error);
    if (failure === null) {
      const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      return new GitHubApiError(0, reason, what);
    }
    const answer = ErrorAnswer.safeParse(failure.data);
    const message = answer.success ? answer.data.message : error instanceof Error ? error.message : `HTTP ${failure.status}`;
    const retryAt = rateLimitRetryAt(failure.status, failure.headers, message, this.#now());
    if (retryAt !== null) return new GitHubRateLimitError(failure.status, message, what, retryAt);
    return new GitHubApiError(failure.status, message, what, answer.success ? (answer.data.documentation_url ?? null) : null);
  }

  #parse<T extends z.ZodType>(schema: T, data: unknown, what: string): z.infer<T> {
    const parsed = schema.safeParse(data);
    if (!parsed.success) throw new GitHubApiError(200, `unexpected answer (${parsed.error.issues[0]?.message ?? "invalid"})`, what);
    return parsed.data;
  }

  get #repoName(): string {
    return this.repository.fullName;
  }

  /** The commit a branch points at. */
  async branchHead(branch: string): Promise<CommitInfo> {
    const what = `reading branch ${branch} of ${this.#repoName}`;
    const { data } = await this.#request(what, "GET /repos/{owner}/{repo}/branches/{branch}", { branch });
    return toCommitInfo(this.#parse(Branch, data, what).commit);
  }

  async commit(ref: string): Promise<RestCommit> {
    const what = `reading commit ${ref} of ${this.#repoName}`;
    const { data } = await this.#request(what, "GET /repos/{owner}/{repo}/commits/{ref}", { ref });
    return this.#parse(RestCommit, data, what);
  }

  /** A file's exact bytes at `ref`, or null when it does not exist there. */
  async fileAt(path: string, ref: string): Promise<Uint8Array | null> {
    const what = `reading ${path} at ${ref} in ${this.#repoName}`;
    let data: unknown;
    try {
      ({ data } = await this.#request(what, "GET /repos/{owner}/{repo}/contents/{path}", { path, ref }));
    } catch (error) {
      if (error instanceof GitHubApiError && error.status === 404) return null;
      throw error;
    }
    const file = this.#parse(FileContent, data, what);
    if (file.type !== "file") throw new GitHubApiError(200, `${path} is a ${file.type}, not a file`, what);
    // The contents API inlines files up to 1 MB; larger ones come from the blob API.
    if (file.encoding === "base64" && file.content !== undefined && (file.content.length > 0 || file.size === 0)) {
      return base64ToBytes(file.content.replace(/\s+/g, ""));
    }
    const blob = await this.#request(what, "GET /repos/{owner}/{repo}/git/blobs/{file_sha}", { file_sha: file.sha });
    return base64ToBytes(this.#parse(Blob, blob.data, what).content.replace(/\s+/g, ""));
  }

  /** Open pull requests against `base`, newest first. */
  async openPulls(base: string): Promise<PullRequestData[]> {
    const what = `listing open pull requests of ${this.#repoName}`;
    const pulls: PullRequestData[] = [];
    for (let page = 1; page <= 10; page++) {
      const { data } = await this.#request(what, "GET /repos/{owner}/{repo}/pulls", {
        state: "open",
        base,
        sort: "created",
        direction: "desc",
        per_page: 100,
        page,
      });
      const batch = this.#parse(z.array(PullRequestFields), data, what);
      pulls.push(...batch);
      if (batch.length < 100) break;
    }
    return pulls;
  }

  async pull(number: number): Promise<PullRequestData> {
    const what = `reading pull request #${number} of ${this.#repoName}`;
    const { data } = await this.#request(what, "GET /repos/{owner}/{repo}/pulls/{pull_number}", { pull_number: number });
    return this.#parse(PullRequestFields, data, what);
  }

  /**
   * How far `head` is ahead of `base` — in this repository, or in `inRepository`
   * (a flake input's own repository, e.g. NixOS/nixpkgs).
   */
  async compare(base: string, head: string, inRepository?: { owner: string; name: string }): Promise<{ aheadBy: number; behindBy: number; status: string }> {
    const owner = inRepository?.owner ?? this.repository.owner;
    const repo = inRepository?.name ?? this.repository.name;
    const what = `comparing ${base.slice(0, 12)}...${head.slice(0, 12)} in ${owner}/${repo}`;
    const { data } = await this.#request(what, "GET /repos/{owner}/{repo}/compare/{basehead}", {
      owner,
      repo,
      basehead: `${base}...${head}`,
      per_page: 1,
    });
    const compare = this.#parse(Compare, data, what);
    return { aheadBy: compare.ahead_by, behindBy: compare.behind_by, status: compare.status };
  }

  /**
   * Merges a pull request if its head is still `sha`. A refusal (not mergeable,
   * checks required, head moved) is a GitHubMergeRefusedError with GitHub's reason.
   */
  async mergePull(
    number: number,
    options: { method: MergeMethod; sha: string; commitTitle?: string; commitMessage?: string },
  ): Promise<{ sha: string; message: string }> {
    const what = `merging pull request #${number} of ${this.#repoName}`;
    try {
      const { data } = await this.#request(what, "PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge", {
        pull_number: number,
        merge_method: options.method,
        sha: options.sha,
        ...(options.commitTitle === undefined ? {} : { commit_title: options.commitTitle }),
        ...(options.commitMessage === undefined ? {} : { commit_message: options.commitMessage }),
      });
      const merged = this.#parse(MergeAnswer, data, what);
      if (!merged.merged) throw new GitHubMergeRefusedError(200, merged.message, what);
      return { sha: merged.sha, message: merged.message };
    } catch (error) {
      if (error instanceof GitHubApiError && !(error instanceof GitHubRateLimitError) && [405, 409, 422].includes(error.status)) {
        throw new GitHubMergeRefusedError(error.status, error.githubMessage, what);
      }
      throw error;
    }
  }

  /**
   * A commit on top of `branch` that undoes `commitSha` (against its first
   * parent, like `git revert -m 1`), built with the Git data API and landed
   * without force. Refuses when a file it would restore changed since.
   */
  async revertCommit(options: { commitSha: string; branch: string }): Promise<{ sha: string; revertedSha: string }> {
    const what = `reverting ${shortSha(options.commitSha)} on ${options.branch} of ${this.#repoName}`;
    const built = await this.#buildRevert(options.commitSha, options.branch, what);
    try {
      await this.#request(what, "PATCH /repos/{owner}/{repo}/git/refs/{ref}", {
        ref: `heads/${options.branch}`,
        sha: built.sha,
        force: false,
      });
    } catch (error) {
      if (error instanceof GitHubApiError && isProtectionRefusal(error)) throw new GitHubPushRefusedError(error.status, error.githubMessage, what);
      if (error instanceof GitHubApiError && error.status === 422) {
        throw new GitHubConflictError(422, `${options.branch} moved while the revert was built (${error.githubMessage}); try again`, what);
      }
      throw error;
    }
    return { sha: built.sha, revertedSha: options.commitSha };
  }

  /**
   * The same revert commit, proposed as a pull request instead: from a branch under
   * REVERT_BRANCH_PREFIX, labelled REVERT_PR_LABEL (worker/github/revert-pull.ts). The label is
   * added once the PR exists (GitHub's create call takes none); `labelProblem` says why GitHub
   * refused it, and the branch alone still tells the PR apart.
   */
  async createRevertPull(options: {
    commitSha: string;
    base: string;
    title?: string;
    body?: string;
    /** When the revert does not apply to `base`, branch it from the reverted commit itself: the PR then shows the conflict for a person to resolve. */
    conflicting?: "refuse" | "propose";
  }): Promise<{ number: number; url: string; headRef: string; sha: string; labelProblem: string | null; conflict: GitHubRevertConflictError | null }> {
    const what = `opening a revert pull request for ${shortSha(options.commitSha)} in ${this.#repoName}`;
    let built: { sha: string; title: string; message: string };
    let conflict: GitHubRevertConflictError | null = null;
    try {
      built = await this.#buildRevert(options.commitSha, options.base, what);
    } catch (error) {
      if (!(error instanceof GitHubRevertConflictError) || options.conflicting !== "propose") throw error;
      conflict = error;
      built = await this.#buildRevert(options.commitSha, options.base, what, options.commitSha);
    }
    const headRef = `${REVERT_BRANCH_PREFIX}${shortSha(options.commitSha)}-${this.#now().toString(36)}`;
    await this.#request(what, "POST /repos/{owner}/{repo}/git/refs", { ref: `refs/heads/${headRef}`, sha: built.sha });
    const { data } = await this.#request(what, "POST /repos/{owner}/{repo}/pulls", {
      title: options.title ?? built.title,
      head: headRef,
      base: options.base,
      body: options.body ?? built.message,
    });
    const pull = this.#parse(PullRequestFields, data, what);
    let labelProblem: string | null = null;
    try {
      // Pull requests are issues to GitHub's labels API.
      await this.#request(`labelling pull request #${pull.number} of ${this.#repoName}`, "POST /repos/{owner}/{repo}/issues/{issue_number}/labels", {
        issue_number: pull.number,
        labels: [REVERT_PR_LABEL],
      });
    } catch (error) {
      // The PR is open either way: failing here would report a revert that was made as not made.
      if (!(error instanceof GitHubApiError)) throw error;
      labelProblem = error.message;
    }
    return { number: pull.number, url: pull.html_url, headRef, sha: built.sha, labelProblem, conflict };
  }

  /** The revert commit, on top of `branch`'s head (or of `onto`, a commit of it). */
  async #buildRevert(commitSha: string, branch: string, what: string, onto?: string): Promise<{ sha: string; title: string; message: string }> {
    const target = await this.commit(commitSha);
    const parent = target.parents[0]?.sha;
    if (parent === undefined) throw new GitHubApiError(422, "a root commit cannot be reverted", what);
    const files = target.files ?? [];
    // The commits API lists at most 300 files; an update PR touches one or two.
    if (files.length >= 300) throw new GitHubApiError(422, "the commit changes too many files to revert through the API", what);
    const paths = new Set(files.flatMap((file) => (file.previous_filename ? [file.filename, file.previous_filename] : [file.filename])));
    const head = onto === undefined ? await this.branchHead(branch) : { sha: onto };
    const [before, after, headCommit] = await Promise.all([
      this.#tree(parent, what),
      this.#tree(target.sha, what),
      this.#gitCommit(head.sha, what),
    ]);
    const current = head.sha === target.sha ? after : await this.#tree(headCommit.tree.sha, what);
    const entries: Array<{ path: string; mode: string; type: "blob"; sha: string | null }> = [];
    for (const path of [...paths].sort()) {
      const was = before.get(path);
      const is = after.get(path);
      if (current.get(path)?.sha !== is?.sha) {
        throw new GitHubRevertConflictError(`${path} changed on ${branch} after ${shortSha(commitSha)}; revert it by hand`, what, parent, [path]);
      }
      if (was) entries.push({ path, mode: was.mode, type: "blob", sha: was.sha });
      else if (is) entries.push({ path, mode: is.mode, type: "blob", sha: null });
    }
    const tree = await this.#request(what, "POST /repos/{owner}/{repo}/git/trees", { base_tree: headCommit.tree.sha, tree: entries });
    const treeSha = this.#parse(Tree.pick({ sha: true }), tree.data, what).sha;
    const title = `Revert "${firstLine(target.commit.message)}"`;
    const message = `${title}\n\nThis reverts commit ${target.sha}.\n`;
    const created = await this.#request(what, "POST /repos/{owner}/{repo}/git/commits", { message, tree: treeSha, parents: [head.sha] });
    return { sha: this.#parse(GitCommit, created.data, what).sha, title, message };
  }

  async #gitCommit(sha: string, what: string): Promise<z.infer<typeof GitCommit>> {
    const { data } = await this.#request(what, "GET /repos/{owner}/{repo}/git/commits/{commit_sha}", { commit_sha: sha });
    return this.#parse(GitCommit, data, what);
  }

  /** Every blob of a tree (or a commit's tree), by path. */
  async #tree(treeish: string, what: string): Promise<Map<string, TreeEntry>> {
    const { data } = await this.#request(what, "GET /repos/{owner}/{repo}/git/trees/{tree_sha}", { tree_sha: treeish, recursive: "1" });
    const tree = this.#parse(Tree, data, what);
    if (tree.truncated) throw new GitHubApiError(422, "the repository tree is too large to revert through the API", what);
    return new Map(tree.tree.filter((entry) => entry.type === "blob").map((entry) => [entry.path, entry]));
  }

  /** A commit status (needs Commit statuses: write). */
  async createCommitStatus(
    sha: string,
    status: { state: "pending" | "success" | "failure" | "error"; context: string; description?: string; targetUrl?: string },
  ): Promise<void> {
    const what = `setting status ${status.context} on ${shortSha(sha)} in ${this.#repoName}`;
    await this.#request(what, "POST /repos/{owner}/{repo}/statuses/{sha}", {
      sha,
      state: status.state,
      context: status.context,
      ...(status.description === undefined ? {} : { description: status.description.slice(0, 140) }),
      ...(status.targetUrl === undefined ? {} : { target_url: status.targetUrl }),
    });
  }

  /** A check run (GitHub allows this to GitHub Apps only, with Checks: write). */
  async createCheckRun(
    sha: string,
    run: { name: string; status: "queued" | "in_progress" | "completed"; conclusion?: string; title?: string; summary?: string; detailsUrl?: string },
  ): Promise<{ id: number }> {
    const what = `creating check run ${run.name} on ${shortSha(sha)} in ${this.#repoName}`;
    const { data } = await this.#request(what, "POST /repos/{owner}/{repo}/check-runs", {
      name: run.name,
      head_sha: sha,
      status: run.status,
      ...(run.conclusion === undefined ? {} : { conclusion: run.conclusion }),
      ...(run.detailsUrl === undefined ? {} : { details_url: run.detailsUrl }),
      ...(run.title === undefined ? {} : { output: { title: run.title, summary: run.summary ?? "" } }),
    });
    return { id: this.#parse(Created, data, what).id };
  }

  /** The check runs on a commit (first 100: plenty for a configuration repository). */
  async checkRuns(sha: string): Promise<CheckRunData[]> {
    const what = `reading check runs of ${shortSha(sha)} in ${this.#repoName}`;
    const { data } = await this.#request(what, "GET /repos/{owner}/{repo}/commits/{ref}/check-runs", { ref: sha, per_page: 100 });
    return this.#parse(CheckRuns, data, what).check_runs;
  }

  /** The latest status of each context on a commit. */
  async statuses(sha: string): Promise<StatusData[]> {
    const what = `reading statuses of ${shortSha(sha)} in ${this.#repoName}`;
    const { data } = await this.#request(what, "GET /repos/{owner}/{repo}/commits/{ref}/status", { ref: sha, per_page: 100 });
    return this.#parse(CombinedStatus, data, what).statuses.map((s) => ({ context: s.context, state: s.state, updatedAt: s.updated_at ?? null }));
  }
}
