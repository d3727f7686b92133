import { join } from "node:path";
import { CheckStore, type RequiredChecks } from "./checks.ts";
import { GitHubApiError, notFound, validationFailed } from "./errors.ts";
import { GitRepo, ZERO_SHA, isValidBranchName, type GitIdentity } from "./git.ts";
import { defaultMergeMessage, makeMergeCommit, type MergeMethod } from "./merge.ts";
import { identityOf, labelJson, pullJson, repositoryJson, userJson, type PullDetail, type Site } from "./payloads.ts";
import { pushPayload } from "./push-event.ts";
import { PullRequestStore, type Label, type PullRequest } from "./pull-requests.ts";
import type { WebhookSender } from "./webhooks.ts";

/** File contents for a commit: text or bytes, or null to delete the path. */
export type FileChanges = Record<string, string | Uint8Array | null>;

export interface RefUpdate {
  branch: string;
  before: string;
  after: string;
}

/**
 * The emulated repository: a real bare git repository plus what GitHub keeps beside it
 * (pull requests, labels, statuses, check runs), and the webhooks each change raises.
 * Routes and the test-side helpers both go through here, so both raise the same events.
 */
export class EmulatedRepository {
  readonly git: GitRepo;
  readonly pulls: PullRequestStore;
  readonly checks = new CheckStore();
  readonly webhooks: WebhookSender;
  readonly site: Site;
  /** The user the API acts as (the token's owner). */
  readonly actor: string;
  requiredChecks: RequiredChecks = false;
  /** "Require a pull request before merging" on the default branch: the API may not move it directly. */
  requirePullRequest = false;
  readonly #clock: () => Date;
  #lock: Promise<unknown> = Promise.resolve();

  constructor(options: {
    owner: string;
    repo: string;
    defaultBranch: string;
    workDir: string;
    webhooks: WebhookSender;
    clock: () => Date;
    actor: string;
    repoId: number;
    hookId: number;
  }) {
    this.#clock = options.clock;
    this.actor = options.actor;
    this.webhooks = options.webhooks;
    const gitDir = join(options.workDir, "repos", options.owner, `${options.repo}.git`);
    this.git = new GitRepo({
      gitDir,
      scratchDir: join(options.workDir, "scratch"),
      identity: identityOf(options.actor),
      clock: options.clock,
    });
    this.pulls = new PullRequestStore(options.repoId);
    const created = this.now();
    this.site = {
      owner: options.owner,
      repo: options.repo,
      repoId: options.repoId,
      hookId: options.hookId,
      defaultBranch: options.defaultBranch,
      baseUrl: "",
      cloneUrl: gitDir,
      createdAt: created,
      pushedAt: created,
      openIssues: 0,
      mergeMethods: ["merge", "squash", "rebase"],
    };
  }

  /** ISO time without milliseconds, as GitHub prints it. */
  now(): string {
    return this.#clock().toISOString().replace(/\.\d{3}Z$/, "Z");
  }

  /** Serialises changes to refs and pull requests, like GitHub's per-repository locking. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn);
    this.#lock = run.catch(() => undefined);
    return run;
  }

  /** Queues a webhook with the repository and sender every payload carries. */
  emit(event: string, payload: Record<string, unknown>): string {
    return this.webhooks.send(event, {
      ...payload,
      repository: repositoryJson(this.site, event === "push" ? "push" : "webhook"),
      sender: userJson(this.site, typeof payload.sender === "string" ? payload.sender : this.actor),
    });
  }

  #refreshSite(): void {
    this.site.openIssues = this.pulls.list().filter((pr) => pr.state === "open").length;
  }

  // -- refs -------------------------------------------------------------------

  /**
   * Moves (or creates, or with `after: null` deletes) a branch if it still points at `expected`,
   * refusing a non-fast-forward unless forced. Raises no webhook: see announceRefUpdate.
   */
  async moveBranch(
    branch: string,
    after: string | null,
    options: { expected?: string; force?: boolean } = {},
  ): Promise<RefUpdate> {
    if (!isValidBranchName(branch)) throw validationFailed([{ resource: "Reference", field: "ref", code: "invalid" }]);
    const before = (await this.git.branchSha(branch)) ?? ZERO_SHA;
    if (options.expected !== undefined && options.expected !== before) {
      throw new GitHubApiError(409, "Reference was modified concurrently.");
    }
    const ref = `refs/heads/${branch}`;
    if (after === null) {
      if (before === ZERO_SHA) throw new GitHubApiError(422, "Reference does not exist");
      await this.git.deleteRef(ref, before);
      return { branch, before, after: ZERO_SHA };
    }
    if (before !== ZERO_SHA && !options.force && !(await this.git.isAncestor(before, after))) {
      throw new GitHubApiError(422, "Update is not a fast forward");
    }
    if (!(await this.git.updateRef(ref, after, before))) {
      throw new GitHubApiError(409, "Reference was modified concurrently.");
    }
    return { branch, before, after };
  }

  /** What GitHub does after a branch moved: a push webhook, and synchronize for PRs from it. */
  async announceRefUpdate(update: RefUpdate, pusher = this.actor): Promise<void> {
    this.site.pushedAt = this.now();
    this.emit("push", await pushPayload(this, update, pusher));
    if (update.after === ZERO_SHA) {
      // GitHub closes the pull requests whose head branch was deleted.
      for (const pr of this.pulls.openWithHead(update.branch)) await this.#close(pr, pusher);
      return;
    }
    // A push that brings a PR's head into its base (a merge done locally) marks the PR merged.
    for (const pr of this.pulls.list()) {
      if (pr.state !== "open" || pr.base !== update.branch || pr.head === update.branch) continue;
      if (!(await this.git.isAncestor(pr.headSha, update.after))) continue;
      const now = this.now();
      pr.state = "closed";
      pr.closedAt = pr.mergedAt = pr.updatedAt = now;
      pr.mergeCommitSha = update.after;
      pr.mergedBy = pusher;
      if (update.before !== ZERO_SHA) pr.baseSha = update.before;
      this.#refreshSite();
      this.emit("pull_request", { action: "closed", number: pr.number, pull_request: await this.pullWebhookJson(pr), sender: pusher });
    }
    for (const pr of this.pulls.openWithHead(update.branch)) {
      const before = pr.headSha;
      if (before === update.after) continue;
      pr.headSha = update.after;
      pr.updatedAt = this.now();
      await this.git.updateRef(`refs/pull/${pr.number}/head`, update.after, before);
      this.emit("pull_request", {
        action: "synchronize",
        number: pr.number,
        pull_request: await this.pullWebhookJson(pr),
        before,
        after: update.after,
        sender: pusher,
      });
    }
  }

  /**
   * Commits `files` on top of `branch` (created from `from`, default the default branch, if new)
   * and announces it like a `git push`.
   */
  async commitFiles(options: {
    branch: string;
    files: FileChanges;
    message: string;
    author?: GitIdentity;
    from?: string;
    pusher?: string;
    /** Start the branch afresh from `from` even if it exists: a force-push. */
    restart?: boolean;
  }): Promise<{ sha: string; before: string }> {
    return this.exclusive(async () => {
      const tip = await this.git.branchSha(options.branch);
      let parent = options.restart ? null : tip;
      if (!parent) {
        const from = options.from ?? this.site.defaultBranch;
        parent = await this.git.resolveCommit(from);
        if (!parent && (await this.git.branches()).size > 0) throw new Error(`cannot start ${options.branch}: no ${from}`);
      }
      const parentCommit = parent ? await this.git.readCommit(parent) : null;
      const updates = [];
      for (const [path, content] of Object.entries(options.files)) {
        const clean = path.replace(/^\/+/, "");
        updates.push(
          content === null
            ? { path: clean, sha: null }
            : { path: clean, mode: "100644", sha: await this.git.writeBlob(typeof content === "string" ? content : Buffer.from(content)) },
        );
      }
      const tree = await this.git.writeTree(parentCommit?.tree ?? null, updates);
      const sha = await this.git.commitTree({
        tree,
        parents: parent ? [parent] : [],
        message: options.message,
        author: options.author ?? identityOf(options.pusher ?? this.actor),
      });
      const update = await this.moveBranch(options.branch, sha, { expected: tip ?? ZERO_SHA, force: true });
      await this.announceRefUpdate(update, options.pusher);
      return { sha, before: update.before };
    });
  }

  // -- pull requests ----------------------------------------------------------

  requirePull(number: number): PullRequest {
    const pr = this.pulls.get(number);
    if (!pr) throw notFound("https://docs.github.com/rest/pulls/pulls#get-a-pull-request");
    return pr;
  }

  labelsOf(pr: PullRequest): Label[] {
    return pr.labels.map((name) => this.pulls.label(name));
  }

  /** Brings an open PR's head/base shas up to date with its branches (someone may have pushed). */
  async refreshPull(pr: PullRequest): Promise<PullRequest> {
    if (pr.state !== "open") return pr;
    const head = await this.git.branchSha(pr.head);
    if (head) pr.headSha = head;
    const base = await this.git.branchSha(pr.base);
    if (base) pr.baseSha = base;
    return pr;
  }

  async pullDetail(pr: PullRequest): Promise<PullDetail> {
    const mergeBase = (await this.git.mergeBase(pr.baseSha, pr.headSha)) ?? null;
    const files = await this.git.diffFiles(mergeBase, pr.headSha);
    const stats = {
      commits: await this.git.countCommits(pr.headSha, [pr.baseSha]),
      additions: files.reduce((n, f) => n + f.additions, 0),
      deletions: files.reduce((n, f) => n + f.deletions, 0),
      changedFiles: files.length,
    };
    if (pr.state !== "open") return { mergeable: null, rebaseable: null, mergeableState: "unknown", ...stats };
    const merge = await this.git.mergeTree(pr.baseSha, pr.headSha);
    const mergeable = merge.clean;
    let mergeableState = "clean";
    if (!mergeable) mergeableState = "dirty";
    else if (pr.draft) mergeableState = "draft";
    else if (this.checks.blockingReason(pr.headSha, this.requiredChecks)) mergeableState = "blocked";
    else if (this.checks.combinedState(pr.headSha) === "failure") mergeableState = "unstable";
    return { mergeable, rebaseable: mergeable, mergeableState, ...stats };
  }

  /** The pull request as the single-PR endpoint returns it. */
  async pullApiJson(pr: PullRequest): Promise<Record<string, unknown>> {
    await this.refreshPull(pr);
    return pullJson(this.site, pr, this.labelsOf(pr), await this.pullDetail(pr));
  }

  /** Webhooks carry the full PR, but mergeability is never computed yet when GitHub sends them. */
  async pullWebhookJson(pr: PullRequest): Promise<Record<string, unknown>> {
    const detail = await this.pullDetail(pr);
    return pullJson(this.site, pr, this.labelsOf(pr), { ...detail, mergeable: null, rebaseable: null, mergeableState: "unknown" });
  }

  async createPull(options: {
    head: string;
    base?: string;
    title: string;
    body?: string | null;
    draft?: boolean;
    user?: string;
  }): Promise<PullRequest> {
    return this.exclusive(async () => {
      const base = options.base ?? this.site.defaultBranch;
      const head = options.head.startsWith(`${this.site.owner}:`) ? options.head.slice(this.site.owner.length + 1) : options.head;
      const baseSha = await this.git.branchSha(base);
      if (!baseSha) throw validationFailed([{ resource: "PullRequest", field: "base", code: "invalid" }], DOC_CREATE_PR);
      const headSha = await this.git.branchSha(head);
      if (!headSha) throw validationFailed([{ resource: "PullRequest", field: "head", code: "invalid" }], DOC_CREATE_PR);
      if (this.pulls.list().some((pr) => pr.state === "open" && pr.head === head && pr.base === base)) {
        throw validationFailed(
          [{ resource: "PullRequest", code: "custom", message: `A pull request already exists for ${this.site.owner}:${head}.` }],
          DOC_CREATE_PR,
        );
      }
      if ((await this.git.countCommits(headSha, [baseSha])) === 0) {
        throw validationFailed([{ resource: "PullRequest", code: "custom", message: `No commits between ${base} and ${head}` }], DOC_CREATE_PR);
      }
      const now = this.now();
      const pr = this.pulls.create({
        title: options.title,
        body: options.body ?? null,
        state: "open",
        draft: options.draft ?? false,
        head,
        base,
        headSha,
        baseSha,
        labels: [],
        user: options.user ?? this.actor,
        createdAt: now,
        updatedAt: now,
        closedAt: null,
        mergedAt: null,
        mergeCommitSha: null,
        mergedBy: null,
      });
      await this.git.updateRef(`refs/pull/${pr.number}/head`, headSha, ZERO_SHA);
      this.#refreshSite();
      this.emit("pull_request", {
        action: "opened",
        number: pr.number,
        pull_request: await this.pullWebhookJson(pr),
        sender: pr.user,
      });
      return pr;
    });
  }

  /** Adds labels (creating unknown ones); one `labeled` webhook per label that was not there. */
  async addLabels(number: number, names: string[], sender = this.actor): Promise<Label[]> {
    return this.exclusive(async () => {
      const pr = await this.refreshPull(this.requirePull(number));
      for (const name of names) {
        const label = this.pulls.label(name);
        if (pr.labels.some((l) => l.toLowerCase() === label.name.toLowerCase())) continue;
        pr.labels.push(label.name);
        pr.updatedAt = this.now();
        this.emit("pull_request", {
          action: "labeled",
          number,
          pull_request: await this.pullWebhookJson(pr),
          label: labelJson(this.site, label),
          sender,
        });
      }
      return this.labelsOf(pr);
    });
  }

  async removeLabel(number: number, name: string, sender = this.actor): Promise<Label[]> {
    return this.exclusive(async () => {
      const pr = await this.refreshPull(this.requirePull(number));
      const index = pr.labels.findIndex((l) => l.toLowerCase() === name.toLowerCase());
      if (index === -1) throw new GitHubApiError(404, "Label does not exist", { documentationUrl: DOC_LABELS });
      const label = this.pulls.label(pr.labels[index] ?? name);
      pr.labels.splice(index, 1);
      pr.updatedAt = this.now();
      this.emit("pull_request", {
        action: "unlabeled",
        number,
        pull_request: await this.pullWebhookJson(pr),
        label: labelJson(this.site, label),
        sender,
      });
      return this.labelsOf(pr);
    });
  }

  /** PATCH /pulls/{n}: title, body, base, state (closed / open). */
  async editPull(
    number: number,
    changes: { title?: string; body?: string | null; state?: "open" | "closed"; base?: string },
    sender = this.actor,
  ): Promise<PullRequest> {
    return this.exclusive(async () => {
      const pr = await this.refreshPull(this.requirePull(number));
      const diff: Record<string, unknown> = {};
      if (changes.title !== undefined && changes.title !== pr.title) {
        diff.title = { from: pr.title };
        pr.title = changes.title;
      }
      if (changes.body !== undefined && changes.body !== pr.body) {
        diff.body = { from: pr.body ?? "" };
        pr.body = changes.body;
      }
      if (changes.base !== undefined && changes.base !== pr.base) {
        const baseSha = await this.git.branchSha(changes.base);
        if (!baseSha) throw validationFailed([{ resource: "PullRequest", field: "base", code: "invalid" }]);
        diff.base = { ref: { from: pr.base }, sha: { from: pr.baseSha } };
        pr.base = changes.base;
        pr.baseSha = baseSha;
      }
      if (Object.keys(diff).length > 0) {
        pr.updatedAt = this.now();
        this.emit("pull_request", { action: "edited", number, changes: diff, pull_request: await this.pullWebhookJson(pr), sender });
      }
      if (changes.state === "closed" && pr.state === "open") {
        await this.#close(pr, sender);
      } else if (changes.state === "open" && pr.state === "closed") {
        if (pr.mergedAt) throw validationFailed([{ resource: "PullRequest", code: "custom", message: "Cannot reopen a merged pull request" }]);
        const head = await this.git.branchSha(pr.head);
        if (!head) throw validationFailed([{ resource: "PullRequest", field: "state", code: "invalid" }]);
        pr.state = "open";
        pr.closedAt = null;
        pr.updatedAt = this.now();
        await this.refreshPull(pr);
        this.#refreshSite();
        this.emit("pull_request", { action: "reopened", number, pull_request: await this.pullWebhookJson(pr), sender });
      }
      return pr;
    });
  }

  async #close(pr: PullRequest, sender: string): Promise<void> {
    const now = this.now();
    pr.state = "closed";
    pr.closedAt = now;
    pr.updatedAt = now;
    this.#refreshSite();
    this.emit("pull_request", { action: "closed", number: pr.number, pull_request: await this.pullWebhookJson(pr), sender });
  }

  /** PUT /pulls/{n}/merge: really merges on the base branch, then pull_request closed + push. */
  async mergePull(
    number: number,
    options: { method?: MergeMethod; sha?: string; commitTitle?: string; commitMessage?: string },
    sender = this.actor,
  ): Promise<{ sha: string; merged: true; message: string }> {
    return this.exclusive(async () => {
      const pr = await this.refreshPull(this.requirePull(number));
      if (pr.state !== "open") throw new GitHubApiError(405, "Pull Request is not mergeable", { documentationUrl: DOC_MERGE });
      const method = options.method ?? "merge";
      if (!this.site.mergeMethods.includes(method)) {
        throw new GitHubApiError(405, `${MERGE_METHOD_NAMES[method]} are not allowed on this repository.`, { documentationUrl: DOC_MERGE });
      }
      if (options.sha !== undefined && options.sha !== pr.headSha) {
        throw new GitHubApiError(409, "Head branch was modified. Review and try the merge again.", { documentationUrl: DOC_MERGE });
      }
      if (pr.draft) throw new GitHubApiError(405, "Pull Request is still a draft", { documentationUrl: DOC_MERGE });
      const blocked = this.checks.blockingReason(pr.headSha, this.requiredChecks);
      if (blocked) throw new GitHubApiError(405, blocked, { documentationUrl: DOC_MERGE });
      const message = await defaultMergeMessage(this.git, {
        method,
        number,
        owner: this.site.owner,
        head: pr.head,
        title: pr.title,
        baseSha: pr.baseSha,
        headSha: pr.headSha,
        commitTitle: options.commitTitle,
        commitMessage: options.commitMessage,
      });
      const outcome = await makeMergeCommit(this.git, {
        method,
        baseSha: pr.baseSha,
        headSha: pr.headSha,
        message,
        merger: identityOf(sender),
      });
      if (!outcome.ok) {
        const text = outcome.reason === "cannot-rebase" || method === "rebase" ? "This branch can't be rebased" : "Pull Request is not mergeable";
        throw new GitHubApiError(405, text, { documentationUrl: DOC_MERGE });
      }
      if (!(await this.git.updateRef(`refs/heads/${pr.base}`, outcome.sha, pr.baseSha))) {
        throw new GitHubApiError(409, "Base branch was modified. Review and try the merge again.", { documentationUrl: DOC_MERGE });
      }
      const now = this.now();
      pr.state = "closed";
      pr.mergedAt = now;
      pr.closedAt = now;
      pr.updatedAt = now;
      pr.mergeCommitSha = outcome.sha;
      pr.mergedBy = sender;
      this.#refreshSite();
      this.emit("pull_request", { action: "closed", number, pull_request: await this.pullWebhookJson(pr), sender });
      await this.announceRefUpdate({ branch: pr.base, before: pr.baseSha, after: outcome.sha }, sender);
      return { sha: outcome.sha, merged: true as const, message: "Pull Request successfully merged" };
    });
  }

  /** GitHub sends `ping` when a hook is created. */
  ping(url: string): string {
    const now = this.now();
    const hookUrl = `${this.site.baseUrl}/repos/${this.site.owner}/${this.site.repo}/hooks/${this.site.hookId}`;
    return this.emit("ping", {
      zen: "Keep it logically awesome.",
      hook_id: this.site.hookId,
      hook: {
        type: "Repository",
        id: this.site.hookId,
        name: "web",
        active: true,
        events: ["*"],
        config: { content_type: "json", insecure_ssl: "0", url },
        updated_at: now,
        created_at: now,
        url: hookUrl,
        test_url: `${hookUrl}/test`,
        ping_url: `${hookUrl}/pings`,
        deliveries_url: `${hookUrl}/deliveries`,
        last_response: { code: null, status: "unused", message: null },
      },
    });
  }
}

const DOC_CREATE_PR = "https://docs.github.com/rest/pulls/pulls#create-a-pull-request";
/** How GitHub names each merge method when it refuses one the repository does not allow. */
const MERGE_METHOD_NAMES: Record<MergeMethod, string> = { merge: "Merge commits", squash: "Squash merges", rebase: "Rebase merges" };
const DOC_MERGE = "https://docs.github.com/rest/pulls/pulls#merge-a-pull-request";
const DOC_LABELS = "https://docs.github.com/rest/issues/labels#remove-a-label-from-an-issue";
