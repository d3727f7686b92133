import { AppRegistry } from "./apps.ts";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { CheckConclusion, CheckStatus, RequiredChecks, StatusState } from "./checks.ts";
import { addStatus, setCheckRun, workflowRun } from "./ci-events.ts";
import { exampleFlakeFiles, updateFlakeLock, updatePullRequestText } from "./example-flake.ts";
import type { GitIdentity } from "./git.ts";
import { Faults } from "./faults.ts";
import { LoopbackServer } from "./http.ts";
import type { MergeMethod } from "./merge.ts";
import { stableNumber } from "./ids.ts";
import { htmlRepoUrl } from "./payloads.ts";
import type { PullRequest } from "./pull-requests.ts";
import { EmulatedRepository, type FileChanges } from "./repository.ts";
import { controlRoutes } from "./routes/control.ts";
import { createApp } from "./routes/index.ts";
import { WebhookSender, type WebhookDelivery } from "./webhooks.ts";

export type { WebhookDelivery } from "./webhooks.ts";
export type { FileChanges } from "./repository.ts";
export type { CheckConclusion, CheckStatus, RequiredChecks, StatusState } from "./checks.ts";
export { GitHubApiError } from "./errors.ts";

export interface GitHubEmulatorOptions {
  owner: string;
  repo: string;
  /** Default "main". */
  defaultBranch?: string;
  /** Where the bare repository and scratch space live. */
  workDir: string;
  /** Where webhooks go (a repository hook with content type JSON and all events); or set later with `setWebhookUrl()`. */
  webhookUrl?: string;
  /** The hook's secret: signs deliveries (`X-Hub-Signature-256`, `X-Hub-Signature`). */
  webhookSecret?: string;
  /** When set, API calls must send `Authorization: token <token>` (or `Bearer`), or get 401. */
  token?: string;
  /** The user the API and the helpers act as. Default: the owner. */
  actor?: string;
  /** GitHub pings a new hook (at `start()`, or at `setWebhookUrl()` when that comes later); default true. */
  ping?: boolean;
  /** Time source for commits, PRs and payloads (tests may pin it). */
  clock?: () => Date;
  /** Used to deliver webhooks. */
  fetch?: typeof fetch;
}

/** A pull request as tests see it: plain data, a copy. */
export interface PullRequestSnapshot {
  number: number;
  title: string;
  state: "open" | "closed";
  merged: boolean;
  head: { ref: string; sha: string };
  base: { ref: string; sha: string };
  labels: string[];
  mergeCommitSha: string | null;
  htmlUrl: string;
}

const NAME = /^[A-Za-z0-9_.-]+$/;

function parseWebhookUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`GitHubEmulator: the webhook URL must be an absolute URL, got "${url}"`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new Error(`GitHubEmulator: the webhook URL must be http(s), got "${url}"`);
  }
  return parsed;
}

/**
 * A local stand-in for github.com and api.github.com, for one repository: a real bare git
 * repository, GitHub's REST API for what NixFleet uses, and signed webhooks in GitHub's shape.
 * Test-side methods (`pushCommit`, `openPullRequest`, …) do what a person or CI would do on
 * GitHub and send the same webhooks GitHub would.
 */
export class GitHubEmulator {
  readonly #options: GitHubEmulatorOptions;
  readonly #repository: EmulatedRepository;
  readonly #webhooks: WebhookSender;
  readonly #server: LoopbackServer;
  readonly #faults = new Faults();
  /** GitHub Apps registered through the manifest flow (apps.ts), installed on this repository. */
  readonly apps = new AppRegistry();
  #started = false;

  constructor(options: GitHubEmulatorOptions) {
    if (!NAME.test(options.owner) || !NAME.test(options.repo)) {
      throw new Error(`GitHubEmulator: owner and repo must be GitHub names, got "${options.owner}/${options.repo}"`);
    }
    if (!options.workDir) throw new Error("GitHubEmulator: workDir is required");
    if (options.webhookUrl) parseWebhookUrl(options.webhookUrl); // here rather than at the first event
    this.#options = { ...options };
    const fullName = `${options.owner}/${options.repo}`;
    const repoId = 100_000_000 + stableNumber(fullName.toLowerCase(), 800_000_000);
    const hookId = 400_000_000 + stableNumber(`hook:${fullName}`, 100_000_000);
    const clock = options.clock ?? (() => new Date());
    this.#webhooks = new WebhookSender({
      url: options.webhookUrl,
      secret: options.webhookSecret,
      hookId,
      targetId: repoId,
      fetch: options.fetch,
      clock,
    });
    this.#repository = new EmulatedRepository({
      owner: options.owner,
      repo: options.repo,
      defaultBranch: options.defaultBranch ?? "main",
      workDir: resolve(options.workDir),
      webhooks: this.#webhooks,
      clock,
      actor: options.actor ?? options.owner,
      repoId,
      hookId,
    });
    const app = createApp(this.#repository, { token: options.token, extra: controlRoutes(this), faults: this.#faults, apps: this.apps });
    this.#server = new LoopbackServer((request) => app.fetch(request));
  }

  /** Creates the bare repository (if new), listens on 127.0.0.1 and pings the hook. Returns the base URL. */
  async start(port = 0): Promise<string> {
    if (this.#started) return this.apiUrl;
    // Idempotent: an existing repository in workDir (a restarted demo) is reused as it is.
    await this.#repository.git.init(this.#repository.site.defaultBranch);
    const url = await this.#server.listen(port);
    this.#repository.site.baseUrl = url;
    await this.#installPushHook(url);
    this.#started = true;
    if (this.#options.webhookUrl && this.#options.ping !== false) this.#repository.ping(this.#options.webhookUrl);
    return url;
  }

  /**
   * Points the hook at `url`, for a receiver that needs the emulator's URL before it can start
   * (so the emulator can bind its port first). Once started, pings the hook as `start()` would.
   * Events raised before this went nowhere; GitHub does not replay them either.
   */
  setWebhookUrl(url: string): void {
    parseWebhookUrl(url);
    this.#options.webhookUrl = url;
    this.#webhooks.url = url;
    if (this.#started && this.#options.ping !== false) this.#repository.ping(url);
  }

  /** Waits for queued webhooks, then stops listening. The repository stays on disk. */
  async stop(): Promise<void> {
    await this.#webhooks.flush();
    await this.#server.close();
    this.#started = false;
  }

  /** The API base URL (give it to Octokit as `baseUrl`, or as GITHUB_API_URL). */
  get apiUrl(): string {
    return this.#repository.site.baseUrl;
  }

  /** The bare repository's path: `git clone <cloneUrl>` works. */
  get cloneUrl(): string {
    return this.#repository.site.cloneUrl;
  }

  get owner(): string {
    return this.#repository.site.owner;
  }

  get repo(): string {
    return this.#repository.site.repo;
  }

  get defaultBranch(): string {
    return this.#repository.site.defaultBranch;
  }

  /** Every webhook attempt so far, oldest first. */
  get deliveries(): readonly WebhookDelivery[] {
    return this.#webhooks.deliveries;
  }

  /** Resolves when every webhook raised so far has been attempted. */
  flushWebhooks(): Promise<void> {
    return this.#webhooks.flush();
  }

  /** Sends a recorded delivery again with the same delivery id and body (GitHub's "Redeliver"). */
  redeliver(deliveryId: string): Promise<WebhookDelivery> {
    return this.#webhooks.redeliver(deliveryId);
  }

  #requireStarted(what: string): void {
    if (!this.#started) throw new Error(`GitHubEmulator: start() before ${what} (webhook payloads carry the emulator's URL)`);
  }

  /** The first commit on the default branch (a push webhook with `created: true`). */
  async seed(files: Record<string, string>, message = "Initial commit"): Promise<string> {
    this.#requireStarted("seed()");
    if ((await this.#repository.git.branches()).size > 0) throw new Error("GitHubEmulator: the repository is already seeded");
    const { sha } = await this.#repository.commitFiles({ branch: this.defaultBranch, files, message });
    return sha;
  }

  /** A `git push` of one new commit to `branch` (created from the default branch if new). */
  async pushCommit(options: { branch?: string; files: FileChanges; message: string; author?: GitIdentity }): Promise<{ sha: string; before: string }> {
    this.#requireStarted("pushCommit()");
    return this.#repository.commitFiles({
      branch: options.branch ?? this.defaultBranch,
      files: options.files,
      message: options.message,
      author: options.author,
    });
  }

  /**
   * What an update workflow does: pushes `head` (one commit on top of `base`), opens the PR,
   * then labels it — push, pull_request opened, then one pull_request labeled per label.
   */
  async openPullRequest(options: {
    head: string;
    base?: string;
    title: string;
    body?: string;
    labels?: string[];
    files: FileChanges;
    message: string;
    author?: GitIdentity;
    user?: string;
    draft?: boolean;
    /** Force-push `head` afresh from `base` when it exists already, as update workflows do. */
    restart?: boolean;
  }): Promise<PullRequestSnapshot> {
    this.#requireStarted("openPullRequest()");
    const base = options.base ?? this.defaultBranch;
    await this.#repository.commitFiles({ branch: options.head, from: base, files: options.files, message: options.message, author: options.author, pusher: options.user, restart: options.restart });
    const pr = await this.#repository.createPull({ head: options.head, base, title: options.title, body: options.body, draft: options.draft, user: options.user });
    if (options.labels && options.labels.length > 0) await this.#repository.addLabels(pr.number, options.labels, options.user);
    return this.pullRequest(pr.number);
  }

  /** Pushes one more commit to the PR's head branch: push, then pull_request synchronize. */
  async updatePullRequest(number: number, options: { files: FileChanges; message: string; author?: GitIdentity }): Promise<string> {
    this.#requireStarted("updatePullRequest()");
    const pr = this.#repository.requirePull(number);
    const { sha } = await this.#repository.commitFiles({ branch: pr.head, files: options.files, message: options.message, author: options.author });
    return sha;
  }

  async addLabel(number: number, name: string): Promise<void> {
    this.#requireStarted("addLabel()");
    await this.#repository.addLabels(number, [name]);
  }

  async removeLabel(number: number, name: string): Promise<void> {
    this.#requireStarted("removeLabel()");
    await this.#repository.removeLabel(number, name);
  }

  /** Closes without merging (pull_request closed, merged=false). */
  async closePullRequest(number: number): Promise<void> {
    this.#requireStarted("closePullRequest()");
    await this.#repository.editPull(number, { state: "closed" });
  }

  /** A commit status from CI (status webhook). */
  async setCommitStatus(sha: string, state: StatusState, context = "default", options: { description?: string; targetUrl?: string } = {}): Promise<void> {
    this.#requireStarted("setCommitStatus()");
    await addStatus(this.#repository, sha, { state, context, description: options.description, targetUrl: options.targetUrl });
  }

  /** Creates or updates the check run `name` on `sha` (check_run, then check_suite when all are done). */
  async setCheckRun(sha: string, run: { name: string; status?: CheckStatus; conclusion?: CheckConclusion | null }): Promise<void> {
    this.#requireStarted("setCheckRun()");
    const existing = this.#repository.checks.findRun((await this.#repository.git.resolveCommit(sha)) ?? sha, run.name);
    await setCheckRun(this.#repository, sha, {
      name: run.name,
      status: run.status ?? (run.conclusion ? "completed" : "queued"),
      conclusion: run.conclusion ?? null,
      id: existing?.id,
    });
  }

  /** A finished GitHub Actions run on `sha` (workflow_run requested, in_progress, completed). */
  async workflowRun(sha: string, conclusion: CheckConclusion, options: { name?: string; path?: string; event?: string } = {}): Promise<number> {
    this.#requireStarted("workflowRun()");
    return workflowRun(this.#repository, sha, conclusion, options);
  }

  /**
   * Branch protection on the default branch: `true` blocks merges until the head has at least one
   * status/check and all are green; a list names the checks that must be green.
   */
  requireChecks(required: RequiredChecks): void {
    this.#repository.requiredChecks = required;
  }

  /**
   * "Require a pull request before merging" on the default branch: updating its ref through the API
   * answers 422 `Protected branch update failed …`, as GitHub does; merging a pull request still works.
   */
  requirePullRequests(required: boolean): void {
    this.#repository.requirePullRequest = required;
  }

  /**
   * The repository's allowed merge methods (Settings → Pull Requests; all three by default). A merge
   * with another method answers 405 as GitHub does, e.g. `Merge commits are not allowed on this repository.`
   */
  allowMergeMethods(methods: readonly MergeMethod[]): void {
    // GitHub's settings page will not save a repository with no merge method.
    if (methods.length === 0) throw new Error("allowMergeMethods(): at least one merge method must stay allowed");
    this.#repository.site.mergeMethods = [...new Set(methods)];
  }

  /**
   * The next `count` (default 1) API requests with this method and a path starting with `path` are
   * answered `status` (default 502) with GitHub's error body, as GitHub's occasional failures are.
   */
  failNext(fault: { method: string; path: string; status?: number; count?: number }): void {
    this.#faults.add(fault);
  }

  /** Forgets every fault not used up yet. */
  clearFaults(): void {
    this.#faults.clear();
  }

  /** A pull request's current state. */
  async pullRequest(number: number): Promise<PullRequestSnapshot> {
    const pr = await this.#repository.refreshPull(this.#repository.requirePull(number));
    return snapshot(pr, `${htmlRepoUrl(this.#repository.site)}/pull/${pr.number}`);
  }

  /** The open pull requests, newest first. */
  async openPullRequests(): Promise<PullRequestSnapshot[]> {
    const open = this.#repository.pulls.list().filter((pr) => pr.state === "open");
    return Promise.all(open.map((pr) => this.pullRequest(pr.number)));
  }

  /** The commit a branch points at, or null. */
  branchSha(branch: string): Promise<string | null> {
    return this.#repository.git.branchSha(branch);
  }

  /** The example fleet flake (flake.nix, flake.lock, hosts/) as the first commit. */
  async seedExampleFlake(): Promise<string> {
    return this.seed(exampleFlakeFiles(this.#clock()), "Initial fleet configuration");
  }

  /**
   * What a scheduled `nix flake update` workflow does: a flake.lock update PR labelled `automated`
   * from branch `update_flake_lock_action` — or, when that PR is still open, a new commit on it.
   * A new PR's branch starts afresh from the default branch (a force-push, as the workflow's
   * create-pull-request step does), so it merges cleanly after a squash or rebase merge of the last one.
   */
  async openFlakeUpdatePullRequest(options: { inputs?: string[]; labels?: string[] } = {}): Promise<PullRequestSnapshot> {
    this.#requireStarted("openFlakeUpdatePullRequest()");
    const head = "update_flake_lock_action";
    const open = this.#repository.pulls.openWithHead(head)[0];
    const from = open ? head : this.defaultBranch;
    const current = await this.#readFile(from, "flake.lock");
    if (current === null) throw new Error(`GitHubEmulator: no flake.lock on ${from}`);
    const { lock, changes } = updateFlakeLock(current, this.#clock(), options.inputs);
    const text = updatePullRequestText(changes);
    const author = { name: "github-actions[bot]", email: "41898282+github-actions[bot]@users.noreply.github.com" };
    if (open) {
      await this.updatePullRequest(open.number, { files: { "flake.lock": lock }, message: text.message, author });
      await this.#repository.editPull(open.number, { body: text.body }, "github-actions[bot]");
      return this.pullRequest(open.number);
    }
    return this.openPullRequest({
      head,
      title: text.title,
      body: text.body,
      labels: options.labels ?? ["automated"],
      files: { "flake.lock": lock },
      message: text.message,
      author,
      user: "github-actions[bot]",
      restart: true,
    });
  }

  #clock(): Date {
    return (this.#options.clock ?? (() => new Date()))();
  }

  async #readFile(ref: string, path: string): Promise<string | null> {
    const git = this.#repository.git;
    const sha = await git.resolveCommit(ref);
    if (!sha) return null;
    const entry = (await git.readTree(sha, { path }))?.find((e) => e.path === path);
    const bytes = entry ? await git.readBlob(entry.sha) : null;
    return bytes ? bytes.toString("utf8") : null;
  }

  /** Refs pushed straight into the bare repository (`git push` to cloneUrl) announced like GitHub does. */
  async receivePush(lines: string): Promise<void> {
    for (const line of lines.split("\n")) {
      const [before, after, ref] = line.trim().split(" ");
      if (!before || !after || !ref?.startsWith("refs/heads/")) continue;
      await this.#repository.exclusive(() =>
        this.#repository.announceRefUpdate({ branch: ref.slice("refs/heads/".length), before, after }),
      );
    }
  }

  async #installPushHook(url: string): Promise<void> {
    const hooks = join(this.#repository.git.gitDir, "hooks");
    await mkdir(hooks, { recursive: true });
    const script = `#!${process.execPath}
// Written by the NixFleet GitHub emulator: a git push into this repository raises GitHub's webhooks.
const chunks = [];
process.stdin.on("data", (chunk) => chunks.push(chunk));
process.stdin.on("end", () => {
  fetch(${JSON.stringify(`${url}/_emulator/post-receive`)}, { method: "POST", headers: { "content-type": "text/plain" }, body: Buffer.concat(chunks) })
    .then((r) => { if (!r.ok) console.error("github-emulator: post-receive answered " + r.status); })
    .catch((e) => console.error("github-emulator: " + e.message));
});
`;
    const path = join(hooks, "post-receive");
    await writeFile(path, script);
    await chmod(path, 0o755);
  }
}

function snapshot(pr: PullRequest, htmlUrl: string): PullRequestSnapshot {
  return {
    number: pr.number,
    title: pr.title,
    state: pr.state,
    merged: pr.mergedAt !== null,
    head: { ref: pr.head, sha: pr.headSha },
    base: { ref: pr.base, sha: pr.baseSha },
    labels: [...pr.labels],
    mergeCommitSha: pr.mergeCommitSha,
    htmlUrl,
  };
}
