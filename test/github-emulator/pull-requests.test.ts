import { join } from "node:path";
import { Octokit } from "@octokit/core";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { GitHubError, PullRequestJson, PullRequestPayload, PushPayload, api, git, startEmulator } from "./helpers.ts";

describe("github emulator: pull requests", () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  async function seeded() {
    const env = await startEmulator();
    close = env.close;
    await env.emulator.seed({ "flake.nix": "{ }\n", "flake.lock": '{"version":7}\n' });
    return env;
  }

  it("opening a labelled PR pushes the branch, then sends opened, then labeled", async () => {
    const env = await seeded();
    const pr = await env.emulator.openPullRequest({
      head: "update_flake_lock_action",
      title: "flake.lock: Update",
      body: "Flake lock file updates",
      labels: ["automated", "dependencies"],
      files: { "flake.lock": '{"version":7,"updated":true}\n' },
      message: "flake.lock: Update",
    });
    await env.emulator.flushWebhooks();

    const events = env.receiver.received.map((r) => {
      const action = z.object({ action: z.string().optional() }).parse(r.payload).action;
      return action ? `${r.event}.${action}` : r.event;
    });
    expect(events).toEqual(["ping", "push", "push", "pull_request.opened", "pull_request.labeled", "pull_request.labeled"]);
    const [opened, labeled1, labeled2] = env.receiver.payloads("pull_request", PullRequestPayload);
    expect(opened?.pull_request).toMatchObject({ number: pr.number, state: "open", title: "flake.lock: Update", labels: [] });
    expect(opened?.pull_request.head).toEqual({ ref: "update_flake_lock_action", sha: pr.head.sha });
    expect(labeled1?.label?.name).toBe("automated");
    expect(labeled2?.label?.name).toBe("dependencies");
    expect(labeled2?.pull_request.labels.map((l) => l.name)).toEqual(["automated", "dependencies"]);
    const branchPush = env.receiver.payloads("push", PushPayload)[1];
    expect(branchPush).toMatchObject({ ref: "refs/heads/update_flake_lock_action", created: true, after: pr.head.sha });
  });

  it("lists and reads PRs through Octokit with GitHub's fields", async () => {
    const env = await seeded();
    const pr = await env.emulator.openPullRequest({ head: "update", title: "flake.lock: Update", labels: ["automated"], files: { "flake.lock": "{}\n" }, message: "bump" });
    const octokit = new Octokit({ baseUrl: env.emulator.apiUrl });

    const list = await octokit.request("GET /repos/{owner}/{repo}/pulls", { owner: "example", repo: "fleet", state: "open" });
    const pulls = z.array(PullRequestJson).parse(list.data);
    expect(pulls.map((p) => p.number)).toEqual([pr.number]);
    expect(pulls[0]?.labels.map((l) => l.name)).toEqual(["automated"]);
    expect(pulls[0]?.html_url).toBe(`${env.emulator.apiUrl}/example/fleet/pull/${pr.number}`);

    const one = await octokit.request("GET /repos/{owner}/{repo}/pulls/{pull_number}", { owner: "example", repo: "fleet", pull_number: pr.number });
    expect(one.data).toMatchObject({
      number: pr.number,
      state: "open",
      merged: false,
      mergeable: true,
      mergeable_state: "clean",
      merge_commit_sha: null,
      merged_at: null,
      commits: 1,
      changed_files: 1,
      user: { login: "example" },
      head: { ref: "update", sha: pr.head.sha },
      base: { ref: "main", sha: await env.emulator.branchSha("main") },
    });
    expect(typeof one.data.created_at).toBe("string");

    const closed = await octokit.request("GET /repos/{owner}/{repo}/pulls", { owner: "example", repo: "fleet", state: "closed" });
    expect(closed.data).toEqual([]);
  });

  it("paginates the PR list with a Link header", async () => {
    const env = await seeded();
    for (const n of [1, 2, 3]) {
      await env.emulator.openPullRequest({ head: `b${n}`, title: `PR ${n}`, files: { [`f${n}`]: "x\n" }, message: `c${n}` });
    }
    const page1 = await api(env.emulator.apiUrl, "GET", "/repos/example/fleet/pulls?per_page=2");
    expect(z.array(PullRequestJson).parse(page1.json).map((p) => p.title)).toEqual(["PR 3", "PR 2"]);
    expect(page1.headers.get("link")).toMatch(/page=2>; rel="next"/);
    const page2 = await api(env.emulator.apiUrl, "GET", "/repos/example/fleet/pulls?per_page=2&page=2");
    expect(z.array(PullRequestJson).parse(page2.json).map((p) => p.title)).toEqual(["PR 1"]);
  });

  it("creates a PR over the API only from an existing head branch (422 otherwise)", async () => {
    const env = await seeded();
    await env.emulator.pushCommit({ branch: "feature", files: { "a.txt": "a\n" }, message: "feature" });
    const created = await api(env.emulator.apiUrl, "POST", "/repos/example/fleet/pulls", { title: "Feature", head: "feature", base: "main" });
    expect(created.status).toBe(201);
    expect(PullRequestJson.parse(created.json)).toMatchObject({ number: 1, state: "open", head: { ref: "feature" } });

    const missing = await api(env.emulator.apiUrl, "POST", "/repos/example/fleet/pulls", { title: "Nope", head: "nope", base: "main" });
    expect(missing.status).toBe(422);
    expect(missing.json).toMatchObject({ message: "Validation Failed", errors: [{ resource: "PullRequest", field: "head", code: "invalid" }] });

    const duplicate = await api(env.emulator.apiUrl, "POST", "/repos/example/fleet/pulls", { title: "Again", head: "feature", base: "main" });
    expect(duplicate.status).toBe(422);
    expect(JSON.stringify(duplicate.json)).toContain("A pull request already exists for example:feature.");
  });

  it("sends synchronize with before/after when the PR's branch gets a new commit, and serves pull/{n}/head", async () => {
    const env = await seeded();
    const pr = await env.emulator.openPullRequest({ head: "update", title: "Update", files: { "flake.lock": "{}\n" }, message: "one" });
    const sha = await env.emulator.updatePullRequest(pr.number, { files: { "flake.lock": "{ }\n" }, message: "two" });
    await env.emulator.flushWebhooks();
    const sync = env.receiver.payloads("pull_request", PullRequestPayload).find((p) => p.action === "synchronize");
    expect(sync).toMatchObject({ number: pr.number, before: pr.head.sha, after: sha, pull_request: { head: { sha } } });

    // Like GitHub, the PR head is fetchable as refs/pull/{n}/head.
    const dir = join(env.workDir, "clone");
    await git(env.workDir, "clone", "--quiet", env.emulator.cloneUrl, dir);
    await git(dir, "fetch", "--quiet", "origin", `pull/${pr.number}/head`);
    expect(await git(dir, "rev-parse", "FETCH_HEAD")).toBe(sha);
  });

  it("adds and removes labels over the API with labeled/unlabeled webhooks", async () => {
    const env = await seeded();
    const pr = await env.emulator.openPullRequest({ head: "update", title: "Update", files: { "flake.lock": "{}\n" }, message: "one" });
    const added = await api(env.emulator.apiUrl, "POST", `/repos/example/fleet/issues/${pr.number}/labels`, { labels: ["automated"] });
    expect(added.status).toBe(200);
    expect(z.array(z.object({ name: z.string() })).parse(added.json).map((l) => l.name)).toEqual(["automated"]);

    const byLabel = await api(env.emulator.apiUrl, "GET", "/repos/example/fleet/issues?labels=automated");
    expect(z.array(z.object({ number: z.number(), pull_request: z.object({ url: z.string() }) })).parse(byLabel.json)).toHaveLength(1);

    const removed = await api(env.emulator.apiUrl, "DELETE", `/repos/example/fleet/issues/${pr.number}/labels/automated`);
    expect(removed.json).toEqual([]);
    const again = await api(env.emulator.apiUrl, "DELETE", `/repos/example/fleet/issues/${pr.number}/labels/automated`);
    expect(again.status).toBe(404);
    expect(GitHubError.parse(again.json).message).toBe("Label does not exist");

    await env.emulator.flushWebhooks();
    const actions = env.receiver.payloads("pull_request", PullRequestPayload).map((p) => `${p.action}:${p.label?.name ?? ""}`);
    expect(actions).toEqual(["opened:", "labeled:automated", "unlabeled:automated"]);
  });

  it("closing a PR (helper or PATCH) sends closed with merged=false", async () => {
    const env = await seeded();
    const a = await env.emulator.openPullRequest({ head: "a", title: "A", files: { a: "a\n" }, message: "a" });
    const b = await env.emulator.openPullRequest({ head: "b", title: "B", files: { b: "b\n" }, message: "b" });
    await env.emulator.closePullRequest(a.number);
    const patched = await api(env.emulator.apiUrl, "PATCH", `/repos/example/fleet/pulls/${b.number}`, { state: "closed", title: "B2" });
    expect(patched.json).toMatchObject({ state: "closed", title: "B2", merged: false });
    await env.emulator.flushWebhooks();
    const closed = env.receiver.payloads("pull_request", PullRequestPayload).filter((p) => p.action === "closed");
    expect(closed.map((p) => [p.number, p.pull_request.merged])).toEqual([
      [a.number, false],
      [b.number, false],
    ]);
    const open = await api(env.emulator.apiUrl, "GET", "/repos/example/fleet/pulls");
    expect(open.json).toEqual([]);
  });

  it("marks a PR merged when its head reaches main by a plain push, and closes a PR whose branch is deleted", async () => {
    const env = await seeded();
    const landed = await env.emulator.openPullRequest({ head: "landed", title: "Landed", files: { a: "a\n" }, message: "a" });
    const dropped = await env.emulator.openPullRequest({ head: "dropped", title: "Dropped", files: { b: "b\n" }, message: "b" });
    const ff = await api(env.emulator.apiUrl, "PATCH", "/repos/example/fleet/git/refs/heads/main", { sha: landed.head.sha });
    expect(ff.status).toBe(200);
    const gone = await api(env.emulator.apiUrl, "DELETE", "/repos/example/fleet/git/refs/heads/dropped");
    expect(gone.status).toBe(204);

    expect(await env.emulator.pullRequest(landed.number)).toMatchObject({ state: "closed", merged: true, mergeCommitSha: landed.head.sha });
    expect(await env.emulator.pullRequest(dropped.number)).toMatchObject({ state: "closed", merged: false });
    await env.emulator.flushWebhooks();
    const closed = env.receiver.payloads("pull_request", PullRequestPayload).filter((p) => p.action === "closed");
    expect(closed.map((p) => [p.number, p.pull_request.merged])).toEqual([
      [landed.number, true],
      [dropped.number, false],
    ]);
    expect(env.receiver.payloads("push", PushPayload).at(-1)).toMatchObject({ ref: "refs/heads/dropped", deleted: true, after: "0".repeat(40), head_commit: null });
  });

  it("answers unknown PRs, branches, files and repos with GitHub's 404 body", async () => {
    const env = await seeded();
    for (const path of [
      "/repos/example/fleet/pulls/99",
      "/repos/example/fleet/contents/nope.nix",
      "/repos/example/other",
      "/repos/example/fleet/git/ref/heads/nope",
      "/repos/example/fleet/no-such-endpoint",
    ]) {
      const res = await api(env.emulator.apiUrl, "GET", path);
      expect(res.status, path).toBe(404);
      expect(GitHubError.parse(res.json).message, path).toBe("Not Found");
      expect(GitHubError.parse(res.json).documentation_url, path).toMatch(/^https:\/\/docs\.github\.com\/rest/);
    }
    const branch = await api(env.emulator.apiUrl, "GET", "/repos/example/fleet/branches/nope");
    expect(branch.status).toBe(404);
    expect(GitHubError.parse(branch.json).message).toBe("Branch not found");
    const commit = await api(env.emulator.apiUrl, "GET", "/repos/example/fleet/commits/nope");
    expect(commit.status).toBe(422);
    expect(GitHubError.parse(commit.json).message).toBe("No commit found for SHA: nope");
  });
});
