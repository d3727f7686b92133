import { Hono } from "hono";
import { GitHubApiError, notFound } from "../errors.ts";
import type { TreeEntry } from "../git.ts";
import { apiRepoUrl, fileJson, htmlRepoUrl, repositoryJson, restCommitJson } from "../payloads.ts";
import type { EmulatedRepository } from "../repository.ts";
import { json, paginate, wrappedBase64, type AppContext, type AppEnv } from "./common.ts";

const DOC_COMMIT = "https://docs.github.com/rest/commits/commits#get-a-commit";
const DOC_BRANCH = "https://docs.github.com/rest/branches/branches#get-a-branch";
const DOC_CONTENTS = "https://docs.github.com/rest/repos/contents#get-repository-content";
const DOC_COMPARE = "https://docs.github.com/rest/commits/commits#compare-two-commits";

/** GitHub answers an unknown `{ref}` on the commit endpoints with 422, not 404. */
export async function requireCommit(repo: EmulatedRepository, ref: string, documentationUrl = DOC_COMMIT): Promise<string> {
  const sha = await repo.git.resolveCommit(ref);
  if (!sha) throw new GitHubApiError(422, `No commit found for SHA: ${ref}`, { documentationUrl });
  return sha;
}

/** A commit with its files (against the first parent), as GET /commits/{ref} and compare list them. */
export async function commitWithFiles(repo: EmulatedRepository, sha: string): Promise<Record<string, unknown>> {
  const commit = await repo.git.readCommit(sha);
  if (!commit) throw notFound();
  const parent = commit.parents[0] ?? null;
  const files = [];
  for (const change of await repo.git.diffFiles(parent, sha)) {
    files.push(fileJson(repo.site, sha, change, await repo.git.filePatch(parent, sha, change.path)));
  }
  return restCommitJson(repo.site, commit, files);
}

function contentEntryJson(c: AppContext, entry: TreeEntry, ref: string): Record<string, unknown> {
  const repo = c.var.repository;
  const path = entry.path.split("/").map(encodeURIComponent).join("/");
  const type = entry.type === "tree" ? "dir" : entry.type === "commit" ? "submodule" : entry.mode === "120000" ? "symlink" : "file";
  const self = `${apiRepoUrl(repo.site)}/contents/${path}?ref=${encodeURIComponent(ref)}`;
  const git = `${apiRepoUrl(repo.site)}/git/${entry.type === "tree" ? "trees" : "blobs"}/${entry.sha}`;
  const html = `${htmlRepoUrl(repo.site)}/${entry.type === "tree" ? "tree" : "blob"}/${ref}/${path}`;
  return {
    type,
    size: entry.size ?? 0,
    name: entry.path.split("/").pop() ?? entry.path,
    path: entry.path,
    sha: entry.sha,
    url: self,
    git_url: git,
    html_url: html,
    download_url: type === "file" ? `${htmlRepoUrl(repo.site)}/raw/${ref}/${path}` : null,
    _links: { self, git, html },
  };
}

function wantsRaw(c: AppContext): boolean {
  const accept = c.req.header("accept") ?? "";
  return /application\/vnd\.github(\.v3)?\.raw/.test(accept);
}

/** Repository, branches, commits, compare, contents. */
export function repoRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.get("/", (c) => json(c, repositoryJson(c.var.repository.site, "api")));

  app.get("/branches", async (c) => {
    const repo = c.var.repository;
    const branches = [...(await repo.git.branches())].sort(([a], [b]) => a.localeCompare(b));
    const items = branches.map(([name, sha]) => ({
      name,
      commit: { sha, url: `${apiRepoUrl(repo.site)}/commits/${sha}` },
      protected: (repo.requiredChecks !== false || repo.requirePullRequest) && name === repo.site.defaultBranch,
    }));
    return json(c, paginate(c, items));
  });

  app.get("/branches/:branch{.+}", async (c) => {
    const repo = c.var.repository;
    const name = c.req.param("branch");
    const sha = await repo.git.branchSha(name);
    if (!sha) throw new GitHubApiError(404, "Branch not found", { documentationUrl: DOC_BRANCH });
    const commit = await repo.git.readCommit(sha);
    if (!commit) throw notFound();
    const isProtected = (repo.requiredChecks !== false || repo.requirePullRequest) && name === repo.site.defaultBranch;
    const contexts = Array.isArray(repo.requiredChecks) ? repo.requiredChecks : [];
    return json(c, {
      name,
      commit: restCommitJson(repo.site, commit),
      _links: { self: `${apiRepoUrl(repo.site)}/branches/${name}`, html: `${htmlRepoUrl(repo.site)}/tree/${name}` },
      protected: isProtected,
      protection: {
        enabled: isProtected,
        required_status_checks: {
          enforcement_level: isProtected ? "non_admins" : "off",
          contexts,
          checks: contexts.map((context) => ({ context, app_id: null })),
        },
      },
      protection_url: `${apiRepoUrl(repo.site)}/branches/${name}/protection`,
    });
  });

  app.get("/commits", async (c) => {
    const repo = c.var.repository;
    const ref = c.req.query("sha") ?? repo.site.defaultBranch;
    const sha = await repo.git.resolveCommit(ref);
    if (!sha) {
      if ((await repo.git.branches()).size === 0) throw new GitHubApiError(409, "Git Repository is empty.");
      throw new GitHubApiError(404, "Not Found", { documentationUrl: DOC_COMMIT });
    }
    const shas = (await repo.git.commitsBetween(sha, [], Number.MAX_SAFE_INTEGER)).reverse();
    const page = paginate(c, shas);
    const items = [];
    for (const s of page) {
      const commit = await repo.git.readCommit(s);
      if (commit) items.push(restCommitJson(repo.site, commit));
    }
    return json(c, items);
  });

  app.get("/commits/:ref{.+}", async (c) => {
    const repo = c.var.repository;
    const sha = await requireCommit(repo, c.req.param("ref"));
    return json(c, await commitWithFiles(repo, sha));
  });

  app.get("/compare/:basehead{.+}", async (c) => {
    const repo = c.var.repository;
    const spec = c.req.param("basehead");
    const [baseSpec, headSpec] = spec.includes("...") ? spec.split("...", 2) : spec.split("..", 2);
    const strip = (s: string | undefined): string => (s ?? "").replace(new RegExp(`^${repo.site.owner}:`, "i"), "");
    const baseSha = await repo.git.resolveCommit(strip(baseSpec));
    const headSha = await repo.git.resolveCommit(strip(headSpec));
    if (!baseSha || !headSha) throw new GitHubApiError(404, "Not Found", { documentationUrl: DOC_COMPARE });
    const mergeBase = await repo.git.mergeBase(baseSha, headSha);
    const aheadBy = await repo.git.countCommits(headSha, [baseSha]);
    const behindBy = await repo.git.countCommits(baseSha, [headSha]);
    const status =
      baseSha === headSha ? "identical" : behindBy === 0 ? "ahead" : aheadBy === 0 ? "behind" : "diverged";
    const commits = [];
    for (const sha of await repo.git.commitsBetween(headSha, [baseSha], 250)) {
      const commit = await repo.git.readCommit(sha);
      if (commit) commits.push(restCommitJson(repo.site, commit));
    }
    const files = [];
    for (const change of (await repo.git.diffFiles(mergeBase, headSha)).slice(0, 300)) {
      files.push(fileJson(repo.site, headSha, change, await repo.git.filePatch(mergeBase, headSha, change.path)));
    }
    const base = await repo.git.readCommit(baseSha);
    const mb = mergeBase ? await repo.git.readCommit(mergeBase) : null;
    const html = htmlRepoUrl(repo.site);
    return json(c, {
      url: `${apiRepoUrl(repo.site)}/compare/${spec}`,
      html_url: `${html}/compare/${spec}`,
      permalink_url: `${html}/compare/${repo.site.owner}:${baseSha.slice(0, 7)}...${repo.site.owner}:${headSha.slice(0, 7)}`,
      diff_url: `${html}/compare/${spec}.diff`,
      patch_url: `${html}/compare/${spec}.patch`,
      base_commit: base ? restCommitJson(repo.site, base) : null,
      merge_base_commit: mb ? restCommitJson(repo.site, mb) : null,
      status,
      ahead_by: aheadBy,
      behind_by: behindBy,
      total_commits: aheadBy,
      commits,
      files,
    });
  });

  const contents = async (c: AppContext): Promise<Response> => {
    const repo = c.var.repository;
    const path = (c.req.param("path") ?? "").replace(/^\/+|\/+$/g, "");
    const ref = c.req.query("ref") ?? repo.site.defaultBranch;
    const sha = await repo.git.resolveCommit(ref);
    if (!sha) {
      if ((await repo.git.branches()).size === 0) throw new GitHubApiError(404, "This repository is empty.", { documentationUrl: DOC_CONTENTS });
      throw new GitHubApiError(404, `No commit found for the ref ${ref}`, { documentationUrl: DOC_CONTENTS });
    }
    const self = path === "" ? null : (await repo.git.readTree(sha, { path }))?.find((e) => e.path === path);
    if (path !== "" && !self) throw notFound(DOC_CONTENTS);
    if (self && self.type === "blob") {
      const bytes = await repo.git.readBlob(self.sha);
      if (!bytes) throw notFound(DOC_CONTENTS);
      if (wantsRaw(c)) {
        return c.body(new Uint8Array(bytes), 200, { "content-type": "text/plain; charset=utf-8", etag: `"${self.sha}"` });
      }
      return json(c, { ...contentEntryJson(c, self, ref), encoding: "base64", content: wrappedBase64(bytes) });
    }
    const listing = (await repo.git.readTree(sha, { path: path === "" ? undefined : `${path}/` })) ?? [];
    return json(c, listing.map((entry) => contentEntryJson(c, entry, ref)));
  };
  app.get("/contents", contents);
  app.get("/contents/:path{.*}", contents);

  return app;
}
