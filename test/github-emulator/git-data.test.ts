import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Octokit } from "@octokit/core";
import { afterEach, describe, expect, it } from "vitest";
import { PushPayload, api, git, startEmulator } from "./helpers.ts";

describe("github emulator: git data API", () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  it("lets a client revert a merge by hand: tree of the first parent, new commit, PATCH the ref → push webhook", async () => {
    const env = await startEmulator();
    close = env.close;
    const { emulator, receiver } = env;
    await emulator.seed({ "flake.lock": "old\n", "flake.nix": "{ }\n" });
    const pr = await emulator.openPullRequest({ head: "update", title: "flake.lock: Update", files: { "flake.lock": "new\n" }, message: "bump" });
    const octokit = new Octokit({ baseUrl: emulator.apiUrl });
    const repo = { owner: "example", repo: "fleet" };
    const merged = await octokit.request("PUT /repos/{owner}/{repo}/pulls/{pull_number}/merge", { ...repo, pull_number: pr.number });

    // What a control plane does for "rollback: revert-commit" without a work tree.
    const ref = await octokit.request("GET /repos/{owner}/{repo}/git/ref/{ref}", { ...repo, ref: "heads/main" });
    expect(ref.data.object.sha).toBe(merged.data.sha);
    const mergeCommit = await octokit.request("GET /repos/{owner}/{repo}/git/commits/{commit_sha}", { ...repo, commit_sha: ref.data.object.sha });
    expect(mergeCommit.data.parents).toHaveLength(2);
    const firstParent = await octokit.request("GET /repos/{owner}/{repo}/git/commits/{commit_sha}", {
      ...repo,
      commit_sha: mergeCommit.data.parents[0]?.sha ?? "",
    });
    const revert = await octokit.request("POST /repos/{owner}/{repo}/git/commits", {
      ...repo,
      message: `Revert "flake.lock: Update"\n\nThis reverts commit ${merged.data.sha}.`,
      tree: firstParent.data.tree.sha,
      parents: [merged.data.sha],
    });
    expect(revert.status).toBe(201);
    expect(revert.data.tree.sha).toBe(firstParent.data.tree.sha);
    const moved = await octokit.request("PATCH /repos/{owner}/{repo}/git/refs/{ref}", { ...repo, ref: "heads/main", sha: revert.data.sha });
    expect(moved.data.object.sha).toBe(revert.data.sha);

    const dir = join(env.workDir, "clone");
    await git(env.workDir, "clone", "--quiet", emulator.cloneUrl, dir);
    expect(await readFile(join(dir, "flake.lock"), "utf8")).toBe("old\n");

    await emulator.flushWebhooks();
    const push = receiver.payloads("push", PushPayload).at(-1);
    expect(push).toMatchObject({ ref: "refs/heads/main", before: merged.data.sha, after: revert.data.sha, forced: false });
    expect(push?.commits).toEqual([expect.objectContaining({ id: revert.data.sha, modified: ["flake.lock"] })]);
  });

  it("refuses a non-fast-forward ref update (422) unless force is set, which sends a forced push", async () => {
    const env = await startEmulator();
    close = env.close;
    const first = await env.emulator.seed({ a: "1\n" });
    const { sha: second } = await env.emulator.pushCommit({ files: { a: "2\n" }, message: "two" });
    const rejected = await api(env.emulator.apiUrl, "PATCH", "/repos/example/fleet/git/refs/heads/main", { sha: first });
    expect(rejected.status).toBe(422);
    expect(rejected.json).toMatchObject({ message: "Update is not a fast forward" });
    expect(await env.emulator.branchSha("main")).toBe(second);

    const forced = await api(env.emulator.apiUrl, "PATCH", "/repos/example/fleet/git/refs/heads/main", { sha: first, force: true });
    expect(forced.status).toBe(200);
    expect(await env.emulator.branchSha("main")).toBe(first);
    await env.emulator.flushWebhooks();
    expect(env.receiver.payloads("push", PushPayload).at(-1)).toMatchObject({ before: second, after: first, forced: true, commits: [] });
  });

  it("with pull requests required, refuses a direct update of main (422, protected branch) while other branches and PR merges still move", async () => {
    const env = await startEmulator();
    close = env.close;
    const first = await env.emulator.seed({ a: "1\n" });
    const pr = await env.emulator.openPullRequest({ head: "change", title: "change a", files: { a: "2\n" }, message: "two" });
    env.emulator.requirePullRequests(true);
    const branch = await api(env.emulator.apiUrl, "GET", "/repos/example/fleet/branches/main");
    expect(branch.json).toMatchObject({ protected: true });
    const rejected = await api(env.emulator.apiUrl, "PATCH", "/repos/example/fleet/git/refs/heads/main", { sha: pr.head.sha });
    expect(rejected.status).toBe(422);
    expect(rejected.json).toMatchObject({ message: expect.stringMatching(/^Protected branch update failed for refs\/heads\/main: Changes must be made through a pull request\.$/) });
    expect(await env.emulator.branchSha("main")).toBe(first);
    const other = await api(env.emulator.apiUrl, "PATCH", "/repos/example/fleet/git/refs/heads/change", { sha: first, force: true });
    expect(other.status).toBe(200);
    await env.emulator.updatePullRequest(pr.number, { files: { a: "3\n" }, message: "three" });
    const merged = await api(env.emulator.apiUrl, "PUT", `/repos/example/fleet/pulls/${pr.number}/merge`, {});
    expect(merged.status).toBe(200);
    expect(await env.emulator.branchSha("main")).not.toBe(first);
    env.emulator.requirePullRequests(false);
    const unprotected = await api(env.emulator.apiUrl, "PATCH", "/repos/example/fleet/git/refs/heads/main", { sha: first, force: true });
    expect(unprotected.status).toBe(200);
  });

  it("builds trees from blobs and inline content, creates refs, and reads trees back recursively", async () => {
    const env = await startEmulator();
    close = env.close;
    const base = await env.emulator.seed({ "flake.nix": "{ }\n", "hosts/web1.nix": "web1\n", "hosts/old.nix": "old\n" });
    const octokit = new Octokit({ baseUrl: env.emulator.apiUrl });
    const repo = { owner: "example", repo: "fleet" };

    const blob = await octokit.request("POST /repos/{owner}/{repo}/git/blobs", { ...repo, content: Buffer.from("bytes\n").toString("base64"), encoding: "base64" });
    expect(blob.status).toBe(201);
    const baseCommit = await octokit.request("GET /repos/{owner}/{repo}/git/commits/{commit_sha}", { ...repo, commit_sha: base });
    const tree = await octokit.request("POST /repos/{owner}/{repo}/git/trees", {
      ...repo,
      base_tree: baseCommit.data.tree.sha,
      tree: [
        { path: "hosts/desk1.nix", mode: "100644", type: "blob", content: "desk1\n" },
        { path: "data.bin", mode: "100644", type: "blob", sha: blob.data.sha },
        { path: "hosts/old.nix", mode: "100644", type: "blob", sha: null },
      ],
    });
    const listed = await octokit.request("GET /repos/{owner}/{repo}/git/trees/{tree_sha}", { ...repo, tree_sha: tree.data.sha, recursive: "1" });
    expect(listed.data.tree.map((e) => `${e.type}:${e.path}`).sort()).toEqual(
      ["blob:data.bin", "blob:flake.nix", "blob:hosts/desk1.nix", "blob:hosts/web1.nix", "tree:hosts"].sort(),
    );

    const commit = await octokit.request("POST /repos/{owner}/{repo}/git/commits", { ...repo, message: "add desk1", tree: tree.data.sha, parents: [base] });
    const created = await octokit.request("POST /repos/{owner}/{repo}/git/refs", { ...repo, ref: "refs/heads/desk1", sha: commit.data.sha });
    expect(created.status).toBe(201);
    expect(await env.emulator.branchSha("desk1")).toBe(commit.data.sha);
    const again = await api(env.emulator.apiUrl, "POST", "/repos/example/fleet/git/refs", { ref: "refs/heads/desk1", sha: commit.data.sha });
    expect(again.status).toBe(422);
    expect(again.json).toMatchObject({ message: "Reference already exists" });

    await env.emulator.flushWebhooks();
    expect(env.receiver.payloads("push", PushPayload).at(-1)).toMatchObject({ ref: "refs/heads/desk1", created: true, after: commit.data.sha });
  });
});
