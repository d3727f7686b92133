import { Octokit } from "@octokit/core";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { api, startEmulator } from "./helpers.ts";

const LOCK = '{\n  "nodes": {},\n  "version": 7\n}\n';

const FileContent = z.object({
  type: z.literal("file"),
  encoding: z.literal("base64"),
  content: z.string(),
  sha: z.string(),
  path: z.string(),
  name: z.string(),
  size: z.number(),
  download_url: z.string(),
});

describe("github emulator: contents and compare", () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  it("serves a file as base64 JSON with the blob sha, and raw bytes for the raw media type", async () => {
    const env = await startEmulator();
    close = env.close;
    await env.emulator.seed({ "flake.lock": LOCK, "hosts/web1.nix": "{ }\n" });
    const octokit = new Octokit({ baseUrl: env.emulator.apiUrl });

    const json = await octokit.request("GET /repos/{owner}/{repo}/contents/{path}", { owner: "example", repo: "fleet", path: "flake.lock" });
    const file = FileContent.parse(json.data);
    expect(Buffer.from(file.content, "base64").toString("utf8")).toBe(LOCK);
    expect(file).toMatchObject({ path: "flake.lock", name: "flake.lock", size: Buffer.byteLength(LOCK) });
    const blob = await octokit.request("GET /repos/{owner}/{repo}/git/blobs/{file_sha}", { owner: "example", repo: "fleet", file_sha: file.sha });
    expect(Buffer.from(blob.data.content, "base64").toString("utf8")).toBe(LOCK);

    const raw = await octokit.request("GET /repos/{owner}/{repo}/contents/{path}", {
      owner: "example",
      repo: "fleet",
      path: "flake.lock",
      mediaType: { format: "raw" },
    });
    expect(raw.data).toBe(LOCK);
    for (const accept of ["application/vnd.github.raw", "application/vnd.github.raw+json"]) {
      const res = await api(env.emulator.apiUrl, "GET", "/repos/example/fleet/contents/flake.lock", undefined, { accept });
      expect(res.text).toBe(LOCK);
    }

    const nested = await api(env.emulator.apiUrl, "GET", "/repos/example/fleet/contents/hosts%2Fweb1.nix?ref=main");
    expect(FileContent.parse(nested.json).path).toBe("hosts/web1.nix");
    const dir = await api(env.emulator.apiUrl, "GET", "/repos/example/fleet/contents/hosts");
    expect(dir.json).toEqual([expect.objectContaining({ type: "file", name: "web1.nix", path: "hosts/web1.nix" })]);

    const download = await fetch(file.download_url);
    expect(await download.text()).toBe(LOCK);
  });

  it("reads contents at another ref, and 404s for a ref or path that does not exist", async () => {
    const env = await startEmulator();
    close = env.close;
    const first = await env.emulator.seed({ "flake.lock": "old\n" });
    await env.emulator.pushCommit({ files: { "flake.lock": "new\n" }, message: "update" });
    const old = await api(env.emulator.apiUrl, "GET", `/repos/example/fleet/contents/flake.lock?ref=${first}`, undefined, { accept: "application/vnd.github.raw" });
    expect(old.text).toBe("old\n");
    const badRef = await api(env.emulator.apiUrl, "GET", "/repos/example/fleet/contents/flake.lock?ref=nope");
    expect(badRef.status).toBe(404);
    expect(badRef.json).toMatchObject({ message: "No commit found for the ref nope" });
  });

  it("compares branches: ahead/behind counts, status, commits and changed files", async () => {
    const env = await startEmulator();
    close = env.close;
    await env.emulator.seed({ "flake.lock": "v1\n", "flake.nix": "{ }\n" });
    const pr = await env.emulator.openPullRequest({ head: "update", title: "Update", files: { "flake.lock": "v2\n" }, message: "one" });
    const second = await env.emulator.updatePullRequest(pr.number, { files: { "new.nix": "{ }\n" }, message: "two" });
    const octokit = new Octokit({ baseUrl: env.emulator.apiUrl });

    const ahead = await octokit.request("GET /repos/{owner}/{repo}/compare/{basehead}", { owner: "example", repo: "fleet", basehead: "main...update" });
    expect(ahead.data).toMatchObject({ status: "ahead", ahead_by: 2, behind_by: 0, total_commits: 2 });
    expect(ahead.data.commits.map((c) => c.commit.message)).toEqual(["one", "two"]);
    expect(ahead.data.commits.at(-1)?.sha).toBe(second);
    expect(ahead.data.files?.map((f) => [f.filename, f.status])).toEqual([
      ["flake.lock", "modified"],
      ["new.nix", "added"],
    ]);
    expect(ahead.data.files?.[0]?.patch).toBe("@@ -1 +1 @@\n-v1\n+v2");

    await env.emulator.pushCommit({ files: { "README.md": "x\n" }, message: "main moves" });
    const diverged = await octokit.request("GET /repos/{owner}/{repo}/compare/{basehead}", { owner: "example", repo: "fleet", basehead: "main...update" });
    expect(diverged.data).toMatchObject({ status: "diverged", ahead_by: 2, behind_by: 1 });
    const behind = await octokit.request("GET /repos/{owner}/{repo}/compare/{basehead}", { owner: "example", repo: "fleet", basehead: "update...main" });
    expect(behind.data).toMatchObject({ status: "diverged", ahead_by: 1, behind_by: 2 });
    const identical = await octokit.request("GET /repos/{owner}/{repo}/compare/{basehead}", { owner: "example", repo: "fleet", basehead: "main...main" });
    expect(identical.data).toMatchObject({ status: "identical", ahead_by: 0, behind_by: 0, commits: [], files: [] });
  });

  it("GET /commits/{ref} gives message, author, date, parents and files", async () => {
    const env = await startEmulator({ clock: () => new Date("2025-01-02T03:04:05Z") });
    close = env.close;
    const first = await env.emulator.seed({ "flake.lock": "v1\n" });
    const { sha } = await env.emulator.pushCommit({ files: { "flake.lock": "v2\n" }, message: "flake.lock: Update\n\nbody", author: { name: "Bot", email: "bot@example.org" } });
    const res = await api(env.emulator.apiUrl, "GET", "/repos/example/fleet/commits/main");
    expect(res.json).toMatchObject({
      sha,
      html_url: `${env.emulator.apiUrl}/example/fleet/commit/${sha}`,
      commit: { message: "flake.lock: Update\n\nbody", author: { name: "Bot", email: "bot@example.org", date: "2025-01-02T03:04:05Z" } },
      parents: [{ sha: first }],
      stats: { additions: 1, deletions: 1, total: 2 },
      files: [{ filename: "flake.lock", status: "modified" }],
    });
  });
});
