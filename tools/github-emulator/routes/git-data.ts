import { Hono } from "hono";
import { z } from "zod";
import { GitHubApiError, notFound } from "../errors.ts";
import { ZERO_SHA, isFullSha, type IndexUpdate } from "../git.ts";
import { apiRepoUrl, gitCommitJson, identityOf, refJson } from "../payloads.ts";
import type { EmulatedRepository } from "../repository.ts";
import { json, readBody, wrappedBase64, type AppContext, type AppEnv } from "./common.ts";

const DOC_REFS = "https://docs.github.com/rest/git/refs";
const DOC_COMMITS = "https://docs.github.com/rest/git/commits";
const DOC_TREES = "https://docs.github.com/rest/git/trees";
const DOC_BLOBS = "https://docs.github.com/rest/git/blobs";

const CreateRef = z.object({ ref: z.string().min(1), sha: z.string().min(1) });
const UpdateRef = z.object({ sha: z.string().min(1), force: z.boolean().optional() });
const Person = z.object({ name: z.string(), email: z.string(), date: z.string().optional() });
const CreateCommit = z.object({
  message: z.string(),
  tree: z.string().min(1),
  parents: z.array(z.string()).optional(),
  author: Person.optional(),
  committer: Person.optional(),
});
const TreeItem = z.object({
  path: z.string().min(1),
  mode: z.enum(["100644", "100755", "040000", "160000", "120000"]),
  type: z.enum(["blob", "tree", "commit"]),
  sha: z.string().nullable().optional(),
  content: z.string().optional(),
});
const CreateTree = z.object({ base_tree: z.string().optional(), tree: z.array(TreeItem) });
const CreateBlob = z.object({ content: z.string(), encoding: z.enum(["utf-8", "utf8", "base64"]).optional() });

/** `heads/main` (the path after git/ref/ or git/refs/) → the branch, or a 422/404 for anything else. */
function branchOfRef(ref: string): string | null {
  const m = /^(?:refs\/)?heads\/(.+)$/.exec(ref);
  return m?.[1] ?? null;
}

function gitDate(iso: string | undefined): string | undefined {
  if (!iso) return undefined;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? undefined : `${Math.floor(ms / 1000)} +0000`;
}

async function treeJson(repo: EmulatedRepository, tree: string, recursive: boolean): Promise<Record<string, unknown>> {
  const entries = (await repo.git.readTree(tree, { recursive })) ?? [];
  const api = apiRepoUrl(repo.site);
  return {
    sha: tree,
    url: `${api}/git/trees/${tree}`,
    tree: entries.map((e) => ({
      path: e.path,
      mode: e.mode,
      type: e.type,
      sha: e.sha,
      ...(e.type === "blob" ? { size: e.size ?? 0 } : {}),
      url: `${api}/git/${e.type === "tree" ? "trees" : "blobs"}/${e.sha}`,
    })),
    truncated: false,
  };
}

async function getRef(c: AppContext): Promise<Response> {
  const repo = c.var.repository;
  const ref = c.req.param("ref") ?? "";
  const sha = ref.startsWith("heads/") || ref.startsWith("tags/") ? await repo.git.refSha(`refs/${ref}`) : null;
  if (!sha) throw notFound(DOC_REFS);
  return json(c, refJson(repo.site, `refs/${ref}`, sha));
}

/** The Git data API: refs, commits, trees and blobs, enough to build and land a commit by hand. */
export function gitDataRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.get("/git/ref/:ref{.+}", getRef);
  app.get("/git/refs/:ref{.+}", getRef);

  app.get("/git/matching-refs/:prefix{.*}", async (c) => {
    const repo = c.var.repository;
    const prefix = `refs/${c.req.param("prefix")}`;
    const refs = [...(await repo.git.branches())]
      .map(([name, sha]) => ({ ref: `refs/heads/${name}`, sha }))
      .filter((r) => r.ref.startsWith(prefix));
    return json(c, refs.map((r) => refJson(repo.site, r.ref, r.sha)));
  });

  app.post("/git/refs", async (c) => {
    const repo = c.var.repository;
    const body = await readBody(c, CreateRef, "Reference");
    if (!body.ref.startsWith("refs/") || body.ref.split("/").length < 3) {
      throw new GitHubApiError(422, "Reference name must start with 'refs/' and have at least two slashes.", { documentationUrl: DOC_REFS });
    }
    const branch = branchOfRef(body.ref);
    if (!branch) throw new GitHubApiError(422, "Only refs/heads/* can be created here.", { documentationUrl: DOC_REFS });
    if ((await repo.git.objectType(body.sha)) !== "commit" || !isFullSha(body.sha)) {
      throw new GitHubApiError(422, "Object does not exist", { documentationUrl: DOC_REFS });
    }
    const update = await repo.exclusive(async () => {
      if (await repo.git.branchSha(branch)) throw new GitHubApiError(422, "Reference already exists", { documentationUrl: DOC_REFS });
      const moved = await repo.moveBranch(branch, body.sha.toLowerCase(), { expected: ZERO_SHA });
      await repo.announceRefUpdate(moved);
      return moved;
    });
    return json(c, refJson(repo.site, body.ref, update.after), 201);
  });

  app.patch("/git/refs/:ref{.+}", async (c) => {
    const repo = c.var.repository;
    const branch = branchOfRef(c.req.param("ref"));
    const body = await readBody(c, UpdateRef, "Reference");
    if (!branch) throw new GitHubApiError(422, "Reference does not exist", { documentationUrl: DOC_REFS });
    if ((await repo.git.objectType(body.sha)) !== "commit" || !isFullSha(body.sha)) {
      throw new GitHubApiError(422, "Object does not exist", { documentationUrl: DOC_REFS });
    }
    if (repo.requirePullRequest && branch === repo.site.defaultBranch) {
      throw new GitHubApiError(422, `Protected branch update failed for refs/heads/${branch}: Changes must be made through a pull request.`, { documentationUrl: DOC_REFS });
    }
    const update = await repo.exclusive(async () => {
      if (!(await repo.git.branchSha(branch))) throw new GitHubApiError(422, "Reference does not exist", { documentationUrl: DOC_REFS });
      const moved = await repo.moveBranch(branch, body.sha.toLowerCase(), { force: body.force ?? false });
      if (moved.before !== moved.after) await repo.announceRefUpdate(moved);
      return moved;
    });
    return json(c, refJson(repo.site, `refs/heads/${branch}`, update.after));
  });

  app.delete("/git/refs/:ref{.+}", async (c) => {
    const repo = c.var.repository;
    const branch = branchOfRef(c.req.param("ref"));
    if (!branch) throw new GitHubApiError(422, "Reference does not exist", { documentationUrl: DOC_REFS });
    await repo.exclusive(async () => {
      const moved = await repo.moveBranch(branch, null);
      await repo.announceRefUpdate(moved);
    });
    return c.body(null, 204);
  });

  app.get("/git/commits/:sha", async (c) => {
    const repo = c.var.repository;
    const sha = c.req.param("sha");
    const commit = (await repo.git.objectType(sha)) === "commit" ? await repo.git.readCommit(sha) : null;
    if (!commit) throw notFound(DOC_COMMITS);
    return json(c, gitCommitJson(repo.site, commit));
  });

  app.post("/git/commits", async (c) => {
    const repo = c.var.repository;
    const body = await readBody(c, CreateCommit, "Commit");
    if ((await repo.git.objectType(body.tree)) !== "tree") {
      throw new GitHubApiError(422, "Tree SHA does not exist", { documentationUrl: DOC_COMMITS });
    }
    const parents: string[] = [];
    for (const parent of body.parents ?? []) {
      if ((await repo.git.objectType(parent)) !== "commit") {
        throw new GitHubApiError(422, "Parent SHA does not exist or is not a commit object", { documentationUrl: DOC_COMMITS });
      }
      parents.push((await repo.git.resolveCommit(parent)) ?? parent);
    }
    const author = body.author ? { name: body.author.name, email: body.author.email } : identityOf(repo.actor);
    const committer = body.committer ? { name: body.committer.name, email: body.committer.email } : author;
    const sha = await repo.git.commitTree({
      tree: (await repo.git.treeOf(body.tree)) ?? body.tree,
      parents,
      message: body.message,
      author,
      committer,
      authorDate: gitDate(body.author?.date),
    });
    const commit = await repo.git.readCommit(sha);
    if (!commit) throw new Error("commit just written is missing");
    return json(c, gitCommitJson(repo.site, commit), 201);
  });

  app.get("/git/trees/:sha{.+}", async (c) => {
    const repo = c.var.repository;
    const tree = await repo.git.treeOf(c.req.param("sha"));
    if (!tree) throw notFound(DOC_TREES);
    const recursive = c.req.query("recursive");
    return json(c, await treeJson(repo, tree, recursive !== undefined && recursive !== "0" && recursive !== "false"));
  });

  app.post("/git/trees", async (c) => {
    const repo = c.var.repository;
    const body = await readBody(c, CreateTree, "Tree");
    let base: string | null = null;
    if (body.base_tree) {
      base = await repo.git.treeOf(body.base_tree);
      if (!base) throw new GitHubApiError(422, "Invalid tree info", { documentationUrl: DOC_TREES });
    }
    const updates: IndexUpdate[] = [];
    for (const item of body.tree) {
      const path = item.path.replace(/^\/+|\/+$/g, "");
      if (item.content !== undefined) {
        if (item.type !== "blob") throw new GitHubApiError(422, "Invalid tree info", { documentationUrl: DOC_TREES });
        updates.push({ path, mode: item.mode, sha: await repo.git.writeBlob(item.content) });
      } else if (item.sha === null) {
        updates.push({ path, sha: null });
      } else if (item.sha !== undefined) {
        if ((await repo.git.objectType(item.sha)) !== item.type && item.type !== "commit") {
          throw new GitHubApiError(422, "Invalid tree info", { documentationUrl: DOC_TREES });
        }
        updates.push({ path, mode: item.mode, sha: item.sha });
      } else {
        throw new GitHubApiError(422, "Must supply either tree.sha or tree.content", { documentationUrl: DOC_TREES });
      }
    }
    const tree = await repo.git.writeTree(base, updates);
    return json(c, await treeJson(repo, tree, false), 201);
  });

  app.get("/git/blobs/:sha", async (c) => {
    const repo = c.var.repository;
    const sha = c.req.param("sha");
    const bytes = await repo.git.readBlob(sha);
    if (!bytes) throw notFound(DOC_BLOBS);
    const full = (await repo.git.refSha(sha)) ?? sha;
    if (/application\/vnd\.github(\.v3)?\.raw/.test(c.req.header("accept") ?? "")) {
      return c.body(new Uint8Array(bytes), 200, { "content-type": "application/octet-stream" });
    }
    return json(c, {
      sha: full,
      node_id: `B_${full}`,
      size: bytes.length,
      url: `${apiRepoUrl(repo.site)}/git/blobs/${full}`,
      content: wrappedBase64(bytes),
      encoding: "base64",
    });
  });

  app.post("/git/blobs", async (c) => {
    const repo = c.var.repository;
    const body = await readBody(c, CreateBlob, "Blob");
    const bytes = body.encoding === "base64" ? Buffer.from(body.content, "base64") : Buffer.from(body.content, "utf8");
    const sha = await repo.git.writeBlob(bytes);
    return json(c, { sha, url: `${apiRepoUrl(repo.site)}/git/blobs/${sha}` }, 201);
  });

  return app;
}
