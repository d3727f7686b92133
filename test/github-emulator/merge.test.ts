import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Octokit } from "@octokit/core";
import { z } from "zod";
import { afterEach, describe, expect, it } from "vitest";
import { PullRequestPayload, PushPayload, api, git, startEmulator } from "./helpers.ts";

const SEED = { "flake.nix": "{ }\n", "flake.lock": '{\n  "version": 7\n}\n' };
const UPDATED_LOCK = '{\n  "version": 7,\n  "rev": "def456"\n}\n';

const OctokitFailure = z.object({ status: z.number(), response: z.object({ data: z.object({ message: z.string() }) }) });

/** The status and GitHub's message an Octokit call failed with. */
async function failure(promise: Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await promise;
  } catch (error) {
    const parsed = OctokitFailure.parse(error);
    return { status: parsed.status, message: parsed.response.data.message };
  }
  throw new Error("expected the request to fail");
}

describe("github emulator: merging pull requests", () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  async function withUpdatePr(options: { token?: string } = {}) {
    const env = await startEmulator(options);
    close = env.close;
    await env.emulator.seed(SEED);
    const pr = await env.emulator.openPullRequest({
      head: "update_flake_lock_action",
      title: "flake.lock: Update",
      labels: ["automated"],
      files: { "flake.lock": UPDATED_LOCK },
      message: "flake.lock: Update",
    });
    const octokit = new Octokit({ baseUrl: env.emulator.apiUrl, auth: options.token });
    return { ...env, pr, octokit };
  }

  it("merges with a real two-parent merge commit that a fresh clone sees, then sends closed(merged) and push", async () => {
    const { emulator, receiver, workDir, pr, octokit } = await withUpdatePr();
    // Something else landed on main meanwhile, so the merge is a true merge.
    const { sha: mainBefore } = await emulator.pushCommit({ files: { "README.md": "fleet\n" }, message: "docs" });

    const merged = await octokit.request("PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge", {
      owner: "example",
      repo: "fleet",
      pull_number: pr.number,
      merge_method: "merge",
      sha: pr.head.sha,
    });
    expect(merged.status).toBe(200);
    expect(merged.data).toMatchObject({ merged: true, message: "Pull Request successfully merged" });
    const mergeSha = merged.data.sha;
    expect(await emulator.branchSha("main")).toBe(mergeSha);

    const dir = join(workDir, "clone");
    await git(workDir, "clone", "--quiet", emulator.cloneUrl, dir);
    expect(await git(dir, "rev-list", "--parents", "-n", "1", "HEAD")).toBe(`${mergeSha} ${mainBefore} ${pr.head.sha}`);
    expect(await git(dir, "log", "-1", "--format=%s%n%n%b")).toBe(`Merge pull request #${pr.number} from example/update_flake_lock_action\n\nflake.lock: Update`);
    expect(await readFile(join(dir, "flake.lock"), "utf8")).toBe(UPDATED_LOCK);
    expect(await readFile(join(dir, "README.md"), "utf8")).toBe("fleet\n");

    const after = await octokit.request("GET /repos/{owner}/{repo}/pulls/{pull_number}", { owner: "example", repo: "fleet", pull_number: pr.number });
    expect(after.data).toMatchObject({ state: "closed", merged: true, merge_commit_sha: mergeSha, merged_by: { login: "example" } });
    expect(after.data.merged_at).not.toBeNull();

    await emulator.flushWebhooks();
    const closed = receiver.payloads("pull_request", PullRequestPayload).filter((p) => p.action === "closed");
    expect(closed).toHaveLength(1);
    expect(closed[0]?.pull_request).toMatchObject({ merged: true, merge_commit_sha: mergeSha, state: "closed" });
    const push = receiver.payloads("push", PushPayload).at(-1);
    expect(push).toMatchObject({ ref: "refs/heads/main", before: mainBefore, after: mergeSha, forced: false });
    expect(push?.commits.map((c) => c.id)).toEqual([pr.head.sha, mergeSha]);
    expect(receiver.received.every((r) => r.signatureValid)).toBe(true);
  });

  it("squash makes one single-parent commit; rebase replays the PR's commits onto main", async () => {
    const { emulator, octokit, pr } = await withUpdatePr();
    const main = await emulator.branchSha("main");
    const squash = await octokit.request("PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge", {
      owner: "example",
      repo: "fleet",
      pull_number: pr.number,
      merge_method: "squash",
    });
    const squashed = await octokit.request("GET /repos/{owner}/{repo}/git/commits/{commit_sha}", { owner: "example", repo: "fleet", commit_sha: squash.data.sha });
    expect(squashed.data.parents.map((p) => p.sha)).toEqual([main]);
    expect(squashed.data.message).toBe(`flake.lock: Update (#${pr.number})`);

    const dana = { name: "Dana", email: "dana@example.org" };
    const second = await emulator.openPullRequest({ head: "two-commits", title: "Two", files: { "a.txt": "a\n" }, message: "first", author: dana });
    await emulator.updatePullRequest(second.number, { files: { "b.txt": "b\n" }, message: "second", author: dana });
    const rebased = await octokit.request("PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge", {
      owner: "example",
      repo: "fleet",
      pull_number: second.number,
      merge_method: "rebase",
    });
    const tip = await octokit.request("GET /repos/{owner}/{repo}/commits/{ref}", { owner: "example", repo: "fleet", ref: rebased.data.sha });
    expect(tip.data.commit.message).toBe("second");
    expect(tip.data.commit.author).toMatchObject(dana);
    expect(tip.data.commit.committer?.name).toBe("GitHub");
    const parent = await octokit.request("GET /repos/{owner}/{repo}/commits/{ref}", { owner: "example", repo: "fleet", ref: tip.data.parents[0]?.sha ?? "" });
    expect(parent.data.commit.message).toBe("first");
    expect(parent.data.parents.map((p) => p.sha)).toEqual([squash.data.sha]);
  });

  it("answers 405 when the PR conflicts with main, and reports mergeable=false", async () => {
    const { emulator, octokit, pr } = await withUpdatePr();
    await emulator.pushCommit({ files: { "flake.lock": '{\n  "version": 7,\n  "rev": "other"\n}\n' }, message: "conflicting" });
    const one = await octokit.request("GET /repos/{owner}/{repo}/pulls/{pull_number}", { owner: "example", repo: "fleet", pull_number: pr.number });
    expect(one.data).toMatchObject({ mergeable: false, mergeable_state: "dirty" });
    const result = await failure(
      octokit.request("PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge", { owner: "example", repo: "fleet", pull_number: pr.number }),
    );
    expect(result).toEqual({ status: 405, message: "Pull Request is not mergeable" });
  });

  it("answers 409 when the given sha is not the head any more, and 405 once already merged", async () => {
    const { octokit, pr } = await withUpdatePr();
    const stale = await failure(
      octokit.request("PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge", {
        owner: "example",
        repo: "fleet",
        pull_number: pr.number,
        sha: "0123456789012345678901234567890123456789",
      }),
    );
    expect(stale).toEqual({ status: 409, message: "Head branch was modified. Review and try the merge again." });

    await octokit.request("PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge", { owner: "example", repo: "fleet", pull_number: pr.number });
    const twice = await failure(
      octokit.request("PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge", { owner: "example", repo: "fleet", pull_number: pr.number }),
    );
    expect(twice).toEqual({ status: 405, message: "Pull Request is not mergeable" });
  });

  it("with requireChecks, refuses to merge (405) until a check run on the head succeeds", async () => {
    const { emulator, receiver, octokit, pr } = await withUpdatePr();
    emulator.requireChecks(true);
    const blocked = await failure(
      octokit.request("PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge", { owner: "example", repo: "fleet", pull_number: pr.number }),
    );
    expect(blocked.status).toBe(405);
    expect(blocked.message).toMatch(/^Required status check .* is expected\.$/);
    const state = await octokit.request("GET /repos/{owner}/{repo}/pulls/{pull_number}", { owner: "example", repo: "fleet", pull_number: pr.number });
    expect(state.data.mergeable_state).toBe("blocked");

    await emulator.setCheckRun(pr.head.sha, { name: "build", status: "in_progress" });
    const pending = await failure(
      octokit.request("PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge", { owner: "example", repo: "fleet", pull_number: pr.number }),
    );
    expect(pending).toEqual({ status: 405, message: 'Required status check "build" is in progress.' });

    await emulator.setCheckRun(pr.head.sha, { name: "build", status: "completed", conclusion: "success" });
    const merged = await octokit.request("PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge", { owner: "example", repo: "fleet", pull_number: pr.number });
    expect(merged.data.merged).toBe(true);

    await emulator.flushWebhooks();
    const checkActions = receiver.of("check_run").map((r) => r.payload);
    expect(checkActions).toEqual([
      expect.objectContaining({ action: "created", check_run: expect.objectContaining({ name: "build", status: "in_progress", head_sha: pr.head.sha }) }),
      expect.objectContaining({ action: "completed", check_run: expect.objectContaining({ conclusion: "success" }) }),
    ]);
    expect(receiver.of("check_suite").map((r) => r.payload)).toEqual([
      expect.objectContaining({ action: "completed", check_suite: expect.objectContaining({ conclusion: "success", head_sha: pr.head.sha }) }),
    ]);
  });

  it("a repository that allows only squash refuses a merge commit and a rebase (405, GitHub's message) and says so in its settings", async () => {
    const { emulator, receiver, octokit, pr } = await withUpdatePr();
    const main = await emulator.branchSha("main");
    expect((await api(emulator.apiUrl, "PUT", "/_emulator/merge-methods", { allowed: ["squash"] })).status).toBe(204);
    const repository = await octokit.request("GET /repos/{owner}/{repo}", { owner: "example", repo: "fleet" });
    expect(repository.data).toMatchObject({ allow_merge_commit: false, allow_squash_merge: true, allow_rebase_merge: false });

    const merge = async (method?: "merge" | "squash" | "rebase") =>
      octokit.request("PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge", {
        owner: "example",
        repo: "fleet",
        pull_number: pr.number,
        ...(method === undefined ? {} : { merge_method: method }),
      });
    // No merge_method is a merge commit, as on GitHub.
    expect(await failure(merge())).toEqual({ status: 405, message: "Merge commits are not allowed on this repository." });
    expect(await failure(merge("merge"))).toEqual({ status: 405, message: "Merge commits are not allowed on this repository." });
    expect(await failure(merge("rebase"))).toEqual({ status: 405, message: "Rebase merges are not allowed on this repository." });
    expect(await emulator.branchSha("main")).toBe(main);
    await emulator.flushWebhooks();
    expect(receiver.of("push").filter((r) => PushPayload.parse(r.payload).ref === "refs/heads/main")).toHaveLength(1);

    const squashed = await merge("squash");
    expect(squashed.data.merged).toBe(true);
    const commit = await octokit.request("GET /repos/{owner}/{repo}/git/commits/{commit_sha}", { owner: "example", repo: "fleet", commit_sha: squashed.data.sha });
    expect(commit.data.parents.map((p) => p.sha)).toEqual([main]);

    // No merge method at all is not a setting GitHub saves.
    const none = await api(emulator.apiUrl, "PUT", "/_emulator/merge-methods", { allowed: [] });
    expect(none.status).toBe(422);
    expect(() => emulator.allowMergeMethods([])).toThrow(/at least one merge method/);
  });

  it("requires the token when one is configured (401 like GitHub)", async () => {
    const { emulator, pr } = await withUpdatePr({ token: "ghp_test" });
    const anonymous = await api(emulator.apiUrl, "GET", `/repos/example/fleet/pulls/${pr.number}`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.json).toMatchObject({ message: "Requires authentication" });
    const wrong = await api(emulator.apiUrl, "GET", `/repos/example/fleet/pulls/${pr.number}`, undefined, { authorization: "token nope" });
    expect(wrong.status).toBe(401);
    expect(wrong.json).toMatchObject({ message: "Bad credentials" });
    for (const authorization of ["token ghp_test", "Bearer ghp_test"]) {
      const ok = await api(emulator.apiUrl, "GET", `/repos/example/fleet/pulls/${pr.number}`, undefined, { authorization });
      expect(ok.status).toBe(200);
    }
  });
});
