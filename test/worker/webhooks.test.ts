import { env } from "cloudflare:test";
import { sign } from "@octokit/webhooks-methods";
import { beforeEach, describe, expect, it } from "vitest";
import { openDatabase } from "../../worker/db/client.ts";
import { loadFleetTarget, saveRepoState } from "../../worker/db/github.ts";
import {
  countRows,
  deliver,
  errorOf,
  example,
  examplesOf,
  getRepo,
  ours,
  pullRequest,
  set,
  getUpdatePrs,
  REPOSITORY,
  resetGitHubTables,
  SECRET,
  SHAS,
  storedDelivery,
} from "./github-helpers.ts";

function push(options: { before: string; after: string; files?: { added?: string[]; modified?: string[]; removed?: string[] }; ref?: string; forced?: boolean; message?: string }) {
  const payload = ours(example("push", (p) => p.ref === "refs/heads/master" && p.head_commit !== null));
  const files = { added: options.files?.added ?? [], modified: options.files?.modified ?? ["README.md"], removed: options.files?.removed ?? [] };
  set(payload, "ref", options.ref ?? "refs/heads/main");
  set(payload, "before", options.before);
  set(payload, "after", options.after);
  set(payload, "created", false);
  set(payload, "forced", options.forced ?? false);
  for (const prefix of ["head_commit", "commits.0"]) {
    set(payload, `${prefix}.id`, options.after);
    set(payload, `${prefix}.message`, options.message ?? "hosts: enable fail2ban on hsb0");
    set(payload, `${prefix}.added`, files.added);
    set(payload, `${prefix}.modified`, files.modified);
    set(payload, `${prefix}.removed`, files.removed);
  }
  return payload;
}

const db = () => openDatabase(env.DB);

beforeEach(resetGitHubTables);

/** A repository state whose flake.lock is known, as a sync would have left it. */
async function knownState(head: string, lockHash = "c".repeat(64)) {
  await saveRepoState(db(), {
    repository: REPOSITORY,
    branch: "main",
    head: { sha: head, message: "earlier", author: "Codertocat", committedAt: "2019-05-15T15:00:00Z" },
    lockHash,
    lockLastModified: { nixpkgs: 1_702_234_567 },
    lockProblem: null,
    updatedAt: "2019-05-15T15:00:00.000Z",
    source: "schedule",
  });
}

describe("webhook signatures", () => {
  it("accepts a delivery signed with the webhook secret (ping)", async () => {
    const { response, id } = await deliver("ping", example("ping"));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "processed", delivery: id });
    expect((await storedDelivery(id))?.outcome).toBe("processed");
  });

  it("refuses a delivery without X-Hub-Signature-256 with 401 and stores nothing", async () => {
    const { response } = await deliver("push", push({ before: SHAS.a, after: SHAS.b }), { signature: null });
    expect(response.status).toBe(401);
    expect((await errorOf(response)).code).toBe("missing_signature");
    expect(await countRows("github_deliveries")).toBe(0);
    expect(await countRows("github_repo_state")).toBe(0);
  });

  it("refuses a delivery signed with another secret with 401 and stores nothing", async () => {
    const { response } = await deliver("push", push({ before: SHAS.a, after: SHAS.b }), { secret: "not-the-secret" });
    expect(response.status).toBe(401);
    expect((await errorOf(response)).code).toBe("bad_signature");
    expect(await countRows("github_deliveries")).toBe(0);
    expect(await countRows("github_repo_state")).toBe(0);
  });

  it("refuses a body changed after signing (the signature covers the raw bytes)", async () => {
    const body = JSON.stringify(push({ before: SHAS.a, after: SHAS.b }));
    const signature = await sign(SECRET, body);
    const { response } = await deliver("push", null, { body: body.replace(SHAS.b, SHAS.c), signature });
    expect(response.status).toBe(401);
    // Re-serialised JSON is different bytes: a receiver must verify what it received, not what it parsed.
    const { response: reformatted } = await deliver("push", null, { body: JSON.stringify(JSON.parse(body), null, 2), signature });
    expect(reformatted.status).toBe(401);
    expect(await countRows("github_deliveries")).toBe(0);
  });

  it.each([["sha256=zz"], ["sha1=0123"], [""], ["sha256=" + "0".repeat(64)]])("refuses a malformed or wrong signature header %j with 401", async (signature) => {
    const { response } = await deliver("ping", example("ping"), { signature });
    expect(response.status).toBe(401);
    expect(await countRows("github_deliveries")).toBe(0);
  });

  it("answers 503 with what to set when GITHUB_WEBHOOK_SECRET is missing, storing nothing", async () => {
    const { response } = await deliver("ping", example("ping"), { env: { GITHUB_WEBHOOK_SECRET: undefined } });
    expect(response.status).toBe(503);
    const error = await errorOf(response);
    expect(error.code).toBe("webhook_secret_missing");
    expect(error.message).toContain("GITHUB_WEBHOOK_SECRET");
    expect(await countRows("github_deliveries")).toBe(0);
  });
});

describe("webhook deliveries", () => {
  it("answers a replayed delivery with duplicate and applies it only once", async () => {
    await knownState(SHAS.a);
    const first = push({ before: SHAS.a, after: SHAS.b, message: "first" });
    const { response, id } = await deliver("push", first);
    expect(response.status).toBe(200);
    const second = await deliver("push", push({ before: SHAS.b, after: SHAS.c, message: "second" }));
    expect(second.response.status).toBe(200);

    const replay = await deliver("push", first, { id });
    expect(replay.response.status).toBe(200);
    expect(await replay.response.json()).toEqual({ status: "duplicate", delivery: id });
    // The replay of the older push did not move the head back.
    expect((await getRepo()).repo?.head?.sha).toBe(SHAS.c);
    expect((await storedDelivery(id))?.attempts).toBe(1);
  });

  it("records an unknown event and answers 202 ignored", async () => {
    const { response, id } = await deliver("issues", ours(example("issues")));
    expect(response.status).toBe(202);
    expect(await response.json()).toMatchObject({ status: "ignored" });
    expect(await storedDelivery(id)).toMatchObject({ event: "issues", outcome: "ignored", error: "event issues is not handled" });
  });

  it("records malformed JSON and answers 400", async () => {
    const { response, id } = await deliver("push", null, { body: '{"ref": "refs/heads/main",' });
    expect(response.status).toBe(400);
    expect((await errorOf(response)).code).toBe("malformed_json");
    expect(await storedDelivery(id)).toMatchObject({ outcome: "rejected", error: "malformed JSON" });
  });

  it("records a payload that fails its schema and answers 400, changing nothing", async () => {
    const payload = push({ before: SHAS.a, after: SHAS.b });
    set(payload, "after", 42);
    const { response, id } = await deliver("push", payload);
    expect(response.status).toBe(400);
    const error = await errorOf(response);
    expect(error.code).toBe("invalid_payload");
    expect(error.message).toContain("after");
    expect((await storedDelivery(id))?.outcome).toBe("rejected");
    expect(await countRows("github_repo_state")).toBe(0);
  });

  it("tries a redelivery of a rejected delivery again instead of calling it a duplicate", async () => {
    const { id } = await deliver("push", null, { body: "{" });
    const again = await deliver("ping", example("ping"), { id });
    expect(again.response.status).toBe(200);
    expect(await storedDelivery(id)).toMatchObject({ outcome: "processed", attempts: 2 });
  });

  it("ignores events for another repository", async () => {
    const payload = push({ before: SHAS.a, after: SHAS.b });
    set(payload, "repository.full_name", "someone/else");
    const { response, id } = await deliver("push", payload);
    expect(response.status).toBe(202);
    expect((await storedDelivery(id))?.error).toContain("someone/else");
    expect(await countRows("github_repo_state")).toBe(0);
  });

  it("answers 503 and records the failure when GITHUB_REPOSITORY is not configured, yet still answers ping", async () => {
    const { response, id } = await deliver("push", push({ before: SHAS.a, after: SHAS.b }), { env: { GITHUB_REPOSITORY: undefined } });
    expect(response.status).toBe(503);
    expect((await errorOf(response)).message).toContain("GITHUB_REPOSITORY");
    expect((await storedDelivery(id))?.outcome).toBe("failed");
    const ping = await deliver("ping", example("ping"), { env: { GITHUB_REPOSITORY: undefined } });
    expect(ping.response.status).toBe(200);
  });

  it("answers every one of GitHub's ping examples (repository and organization hooks)", async () => {
    const pings = examplesOf("ping");
    expect(pings.some((p) => !("repository" in p))).toBe(true);
    for (const ping of pings) expect((await deliver("ping", ping)).response.status).toBe(200);
  });
});

describe("push", () => {
  it("moves the head and keeps the lock hash without an API call when flake.lock did not change", async () => {
    await knownState(SHAS.a, "e".repeat(64));
    const { response, id } = await deliver("push", push({ before: SHAS.a, after: SHAS.b, files: { modified: ["hosts/hsb0.nix"] }, message: "hosts: hsb0 gets fail2ban" }));
    expect(response.status).toBe(200);
    expect((await storedDelivery(id))?.outcome).toBe("processed");
    const { repo } = await getRepo();
    expect(repo).toMatchObject({
      repository: REPOSITORY,
      branch: "main",
      head: { sha: SHAS.b, message: "hosts: hsb0 gets fail2ban", author: "Codertocat", committedAt: "2019-05-15T15:19:25Z" },
      lock: { hash: "e".repeat(64), lastModified: { nixpkgs: 1_702_234_567 } },
      source: "webhook",
    });
  });

  it("stores the new head at once and reads flake.lock through the API when a commit changed it", async () => {
    await knownState(SHAS.a);
    const { response, id } = await deliver("push", push({ before: SHAS.a, after: SHAS.b, files: { modified: ["flake.lock"] } }));
    // Answered before the API call; here no credentials are configured, so the read fails and is recorded.
    expect(response.status).toBe(202);
    expect(await response.json()).toMatchObject({ status: "accepted" });
    const delivery = await storedDelivery(id);
    expect(delivery?.outcome).toBe("failed");
    expect(delivery?.error).toContain("GITHUB_TOKEN");
    const { repo } = await getRepo();
    expect(repo?.head?.sha).toBe(SHAS.b);
    // Not the old hash: the lock at the new head is unknown until read.
    expect(repo?.lock.hash).toBeNull();
  });

  it("reads flake.lock when the push does not continue from the known head (a missed push, or forced)", async () => {
    await knownState(SHAS.a);
    await deliver("push", push({ before: SHAS.c, after: SHAS.b, files: { modified: ["README.md"] } }));
    expect((await getRepo()).repo?.lock.hash).toBeNull();
    await knownState(SHAS.a);
    await deliver("push", push({ before: SHAS.a, after: SHAS.b, forced: true }));
    expect((await getRepo()).repo?.lock.hash).toBeNull();
  });

  it("ignores pushes to other branches and tags", async () => {
    await knownState(SHAS.a);
    const branch = await deliver("push", push({ before: SHAS.a, after: SHAS.b, ref: "refs/heads/feature" }));
    expect(branch.response.status).toBe(202);
    const tag = ours(example("push", (p) => p.ref === "refs/tags/simple-tag" && p.deleted === false));
    const tagged = await deliver("push", tag);
    expect(tagged.response.status).toBe(202);
    expect((await storedDelivery(tagged.id))?.error).toContain("refs/tags/simple-tag");
    expect((await getRepo()).repo?.head?.sha).toBe(SHAS.a);
  });

  it("keeps the last known state when the branch is deleted", async () => {
    await knownState(SHAS.a);
    const payload = ours(example("push", (p) => p.deleted === true));
    set(payload, "ref", "refs/heads/main");
    const { response } = await deliver("push", payload);
    expect(response.status).toBe(202);
    expect((await getRepo()).repo?.head?.sha).toBe(SHAS.a);
  });
});

describe("pull_request", () => {
  it("detects an opened update PR by its label and offers it", async () => {
    const { response } = await deliver("pull_request", pullRequest("opened", { title: "Weekly update", labels: ["automated"] }));
    // Accepted: the lock diff and mergeability are read from the API after the answer.
    expect(response.status).toBe(202);
    const [pr, ...rest] = await getUpdatePrs();
    expect(rest).toEqual([]);
    expect(pr).toMatchObject({
      number: 2,
      title: "Weekly update",
      url: `https://github.com/${REPOSITORY}/pull/2`,
      state: "open",
      headSha: SHAS.b,
      headRef: "update_flake_lock_action",
      baseRef: "main",
      labels: ["automated"],
      ciState: "unknown",
      superseded: false,
      lockChanges: [],
    });
  });

  it("detects an update PR by a title containing flake.lock, in any case", async () => {
    await deliver("pull_request", pullRequest("opened", { title: "chore: update FLAKE.LOCK", labels: [] }));
    expect((await getUpdatePrs()).map((pr) => pr.number)).toEqual([2]);
  });

  it("ignores an ordinary pull request and records why", async () => {
    const { response, id } = await deliver("pull_request", pullRequest("opened", { title: "Update the README with new information.", labels: ["bug"] }));
    expect(response.status).toBe(202);
    expect((await storedDelivery(id))?.error).toContain("not an update PR");
    expect(await getUpdatePrs()).toEqual([]);
  });

  it("follows labeled and unlabeled", async () => {
    const plain = { title: "Bump things", labels: [] as string[] };
    await deliver("pull_request", pullRequest("opened", plain));
    await deliver("pull_request", pullRequest("labeled", { ...plain, labels: ["automated"], updatedAt: "2019-05-15T15:21:00Z" }));
    expect((await getUpdatePrs()).map((pr) => pr.labels)).toEqual([["automated"]]);
    await deliver("pull_request", pullRequest("unlabeled", { ...plain, labels: [], updatedAt: "2019-05-15T15:22:00Z" }));
    expect(await getUpdatePrs()).toEqual([]);
  });

  it("follows edited (a title that now names flake.lock) and synchronize (a new head)", async () => {
    await deliver("pull_request", pullRequest("opened", { title: "Bump", labels: [] }));
    await deliver("pull_request", pullRequest("edited", { title: "Bump flake.lock", labels: [], updatedAt: "2019-05-15T15:21:00Z" }));
    expect((await getUpdatePrs())[0]?.title).toBe("Bump flake.lock");
    await deliver("pull_request", pullRequest("synchronize", { title: "Bump flake.lock", labels: [], head: SHAS.c, updatedAt: "2019-05-15T15:22:00Z" }));
    expect((await getUpdatePrs())[0]?.headSha).toBe(SHAS.c);
  });

  it("drops a closed update PR from the offer, and brings it back when reopened", async () => {
    await deliver("pull_request", pullRequest("opened"));
    await deliver("pull_request", pullRequest("closed", { updatedAt: "2019-05-15T15:21:00Z" }));
    expect(await getUpdatePrs()).toEqual([]);
    await deliver("pull_request", pullRequest("reopened", { updatedAt: "2019-05-15T15:22:00Z" }));
    expect((await getUpdatePrs()).map((pr) => pr.state)).toEqual(["open"]);
  });

  it("records a merged update PR with its merge commit", async () => {
    await deliver("pull_request", pullRequest("opened"));
    const { response } = await deliver("pull_request", pullRequest("closed", { merged: true, updatedAt: "2019-05-15T16:00:00Z" }));
    expect(response.status).toBe(200);
    expect(await getUpdatePrs()).toEqual([]);
    const row = await env.DB.prepare("select state, merge_commit_sha, merged_at from github_pull_requests where number = 2").first();
    expect(row).toEqual({ state: "merged", merge_commit_sha: SHAS.d, merged_at: "2019-05-15T16:00:00Z" });
  });

  it("shows the compartments a merge until the merge commit is read as the head", async () => {
    await knownState(SHAS.a);
    await deliver("pull_request", pullRequest("opened"));
    await deliver("pull_request", pullRequest("closed", { merged: true, updatedAt: "2019-05-15T16:00:00Z" }));
    const heard = await loadFleetTarget(db());
    expect(heard.updatePrs.map((pr) => [pr.number, pr.state, pr.mergeCommitSha])).toEqual([[2, "merged", SHAS.d]]);
    await deliver("push", push({ before: SHAS.a, after: SHAS.d, message: "Merge pull request #2" }));
    const read = await loadFleetTarget(db());
    expect(read.repo?.head?.sha).toBe(SHAS.d);
    expect(read.updatePrs).toEqual([]);
  });

  it("ignores an event older than the stored state (webhooks arrive out of order)", async () => {
    await deliver("pull_request", pullRequest("closed", { updatedAt: "2019-05-15T16:00:00Z" }));
    await deliver("pull_request", pullRequest("opened"));
    const { response, id } = await deliver("pull_request", pullRequest("reopened", { updatedAt: "2019-05-15T15:00:00Z" }));
    expect(response.status).toBe(202);
    expect((await storedDelivery(id))?.error).toContain("older");
  });

  it("ignores actions that cannot change an update PR (assigned)", async () => {
    const { response, id } = await deliver("pull_request", ours(example("pull_request", (p) => p.action === "assigned")));
    expect(response.status).toBe(202);
    expect((await storedDelivery(id))?.error).toContain("assigned");
  });

  it("ignores a pull request against another branch", async () => {
    const { response } = await deliver("pull_request", pullRequest("opened", { base: "release-24.11" }));
    expect(response.status).toBe(202);
    expect(await getUpdatePrs()).toEqual([]);
  });

  it("offers the newest of several open update PRs and marks the older ones superseded", async () => {
    await deliver("pull_request", pullRequest("opened", { number: 7, head: SHAS.a, createdAt: "2019-05-08T10:00:00Z" }));
    await deliver("pull_request", pullRequest("opened", { number: 9, head: SHAS.c, createdAt: "2019-05-15T10:00:00Z" }));
    const prs = await getUpdatePrs();
    expect(prs.map((pr) => [pr.number, pr.superseded])).toEqual([[9, false], [7, true]]);
    // The compartments see the same list; the fleet build is the coordinator's, added by the route only.
    expect(prs.every((pr) => pr.fleetBuild !== null)).toBe(true);
    expect((await loadFleetTarget(db())).updatePrs).toEqual(prs.map((pr) => ({ ...pr, fleetBuild: null, automation: null })));
  });
});

describe("CI state of an update PR's head", () => {
  async function openUpdatePr() {
    await deliver("pull_request", pullRequest("opened", { head: "ec26c3e57ca3a959ca5aad62de7213c562f8c821" }));
  }
  const ciState = async () => (await getUpdatePrs())[0]?.ciState;

  it("check_run: queued is pending, a failed run fails, a late 'created' does not undo a completion", async () => {
    await openUpdatePr();
    const created = ours(example("check_run", (p) => p.action === "created"));
    await deliver("check_run", created);
    expect(await ciState()).toBe("pending");
    const failed = ours(example("check_run", (p) => p.action === "completed" && Reflect.get(Object(p.check_run), "conclusion") === "failure"));
    expect((await deliver("check_run", failed)).response.status).toBe(200);
    expect(await ciState()).toBe("failure");
    await deliver("check_run", created);
    expect(await ciState()).toBe("failure");
  });

  it("check_run: a re-run job (a new run of the same name in the same suite) replaces the failed one", async () => {
    await openUpdatePr();
    const failed = ours(example("check_run", (p) => p.action === "completed" && Reflect.get(Object(p.check_run), "conclusion") === "failure"));
    await deliver("check_run", failed);
    expect(await ciState()).toBe("failure");
    const failedId = Number(Reflect.get(Object(failed.check_run), "id"));
    // GitHub gives the re-run a new, larger id; name and suite stay.
    const rerun = (action: string, status: string, conclusion: string | null) => {
      const payload = structuredClone(failed);
      payload.action = action;
      set(payload, "check_run.id", failedId + 1000);
      set(payload, "check_run.status", status);
      set(payload, "check_run.conclusion", conclusion);
      return payload;
    };
    await deliver("check_run", rerun("created", "queued", null));
    expect(await ciState()).toBe("pending");
    await deliver("check_run", rerun("completed", "completed", "success"));
    expect(await ciState()).toBe("success");
    // The old run's failure delivered again (GitHub retries, out of order) does not bring it back.
    await deliver("check_run", failed);
    expect(await ciState()).toBe("success");
    // A run of another name in the same suite still counts on its own.
    const other = structuredClone(failed);
    set(other, "check_run.id", failedId + 2000);
    set(other, "check_run.name", "another-linter");
    await deliver("check_run", other);
    expect(await ciState()).toBe("failure");
  });

  it("check_run: a successful run makes CI success", async () => {
    await openUpdatePr();
    await deliver("check_run", ours(example("check_run", (p) => p.action === "completed" && Reflect.get(Object(p.check_run), "conclusion") === "success")));
    expect(await ciState()).toBe("success");
  });

  it("check_suite: a completed suite counts, a requested suite without runs is ignored", async () => {
    await openUpdatePr();
    const requested = ours(example("check_suite", (p) => p.action === "requested"));
    set(requested, "check_suite.head_sha", "ec26c3e57ca3a959ca5aad62de7213c562f8c821");
    const ignored = await deliver("check_suite", requested);
    expect(ignored.response.status).toBe(202);
    expect(await ciState()).toBe("unknown");
    await deliver("check_suite", ours(example("check_suite", (p) => p.action === "completed")));
    expect(await ciState()).toBe("success");
  });

  it("status: the latest state per context counts, error is a failure", async () => {
    await openUpdatePr();
    const status = ours(example("status"));
    set(status, "sha", "ec26c3e57ca3a959ca5aad62de7213c562f8c821");
    await deliver("status", status);
    expect(await ciState()).toBe("success");
    const broken = structuredClone(status);
    set(broken, "state", "error");
    set(broken, "updated_at", "2019-05-15T15:30:00+00:00");
    await deliver("status", broken);
    expect(await ciState()).toBe("failure");
  });

  it("workflow_run: requested is pending until the run completes", async () => {
    await openUpdatePr();
    const requested = ours(example("workflow_run", (p) => p.action === "requested"));
    set(requested, "workflow_run.head_sha", "ec26c3e57ca3a959ca5aad62de7213c562f8c821");
    set(requested, "workflow_run.status", "queued");
    set(requested, "workflow_run.conclusion", null);
    await deliver("workflow_run", requested);
    expect(await ciState()).toBe("pending");
    const completed = ours(example("workflow_run", (p) => p.action === "completed" && Reflect.get(Object(p.workflow_run), "conclusion") === "success"));
    set(completed, "workflow_run.head_sha", "ec26c3e57ca3a959ca5aad62de7213c562f8c821");
    await deliver("workflow_run", completed);
    expect(await ciState()).toBe("success");
  });
});

describe("GET /api/repo", () => {
  it("says which settings are missing and keeps answering", async () => {
    const body = await getRepo({ GITHUB_REPOSITORY: undefined, GITHUB_WEBHOOK_SECRET: undefined });
    expect(body.repo).toBeNull();
    expect(body.repository).toBeNull();
    expect(body.problems.join("\n")).toMatch(/GITHUB_REPOSITORY is not configured/);
    expect(body.problems.join("\n")).toMatch(/GITHUB_WEBHOOK_SECRET/);
    expect(body.problems.join("\n")).toMatch(/GITHUB_TOKEN/);
  });

  it("reports incomplete GitHub App credentials by name", async () => {
    const body = await getRepo({ GITHUB_APP_ID: "12345" });
    // The installation id is not one of them: the client finds the App's installation itself.
    expect(body.problems.join("\n")).toContain("GitHub App credentials are incomplete: GITHUB_APP_PRIVATE_KEY not set");
  });

  it("shows the state the webhooks built, and the same state reaches the compartments", async () => {
    await knownState(SHAS.a, "f".repeat(64));
    const body = await getRepo();
    expect(body.repository).toBe(REPOSITORY);
    expect(body.repo?.head?.sha).toBe(SHAS.a);
    expect((await loadFleetTarget(db())).repo).toEqual(body.repo);
  });
});
