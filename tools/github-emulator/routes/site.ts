import { Hono } from "hono";
import { GitHubApiError, notFound } from "../errors.ts";
import { EMPTY_TREE } from "../git.ts";
import type { EmulatedRepository } from "../repository.ts";
import type { AppEnv } from "./common.ts";

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function page(title: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body style="font-family:system-ui;max-width:60rem;margin:2rem auto">${body}</body></html>`;
}

/** Splits `main/flake.lock` or `feature/x/flake.lock` into a ref that exists and the path after it. */
async function splitRefPath(repo: EmulatedRepository, rest: string): Promise<{ sha: string; path: string } | null> {
  const parts = rest.split("/");
  for (let i = 1; i < parts.length; i++) {
    const sha = await repo.git.resolveCommit(parts.slice(0, i).join("/"));
    if (sha) return { sha, path: parts.slice(i).join("/") };
  }
  return null;
}

/**
 * What the `html_url` / `download_url` fields point at: raw file bytes (raw.githubusercontent.com's
 * job) and plain pages for a pull request and a commit, so links in a demo dashboard lead somewhere.
 */
export function siteRoutes(): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  const mine = (repo: EmulatedRepository, owner: string, name: string): boolean =>
    owner.toLowerCase() === repo.site.owner.toLowerCase() && name.toLowerCase() === repo.site.repo.toLowerCase();

  app.get("/:owner/:repo/raw/:rest{.+}", async (c) => {
    const repo = c.var.repository;
    if (!mine(repo, c.req.param("owner"), c.req.param("repo"))) throw notFound();
    const target = await splitRefPath(repo, c.req.param("rest"));
    const entry = target ? (await repo.git.readTree(target.sha, { path: target.path }))?.find((e) => e.path === target.path) : undefined;
    const bytes = entry?.type === "blob" ? await repo.git.readBlob(entry.sha) : null;
    if (!bytes) return c.text("404: Not Found", 404);
    return c.body(new Uint8Array(bytes), 200, { "content-type": "text/plain; charset=utf-8" });
  });

  app.get("/:owner/:repo/pull/:number{[0-9]+}", async (c) => {
    const repo = c.var.repository;
    if (!mine(repo, c.req.param("owner"), c.req.param("repo"))) throw notFound();
    const pr = await repo.refreshPull(repo.requirePull(Number(c.req.param("number"))));
    const mergeBase = await repo.git.mergeBase(pr.baseSha, pr.headSha);
    const diff = await repo.git.text(["diff", "--no-color", "--no-ext-diff", mergeBase ?? pr.baseSha, pr.headSha]);
    const state = pr.mergedAt ? "merged" : pr.state;
    return c.html(
      page(
        `${pr.title} #${pr.number}`,
        `<h1>${escapeHtml(pr.title)} <small>#${pr.number}</small></h1>` +
          `<p><strong>${state}</strong> · ${escapeHtml(pr.user)} wants to merge <code>${escapeHtml(pr.head)}</code> into <code>${escapeHtml(pr.base)}</code>` +
          ` · labels: ${pr.labels.map(escapeHtml).join(", ") || "none"}</p>` +
          `<pre style="white-space:pre-wrap">${escapeHtml(pr.body ?? "")}</pre><h2>Files changed</h2><pre>${escapeHtml(diff)}</pre>`,
      ),
    );
  });

  app.get("/:owner/:repo/commit/:sha{[0-9a-fA-F]{4,40}}", async (c) => {
    const repo = c.var.repository;
    if (!mine(repo, c.req.param("owner"), c.req.param("repo"))) throw notFound();
    const commit = await repo.git.readCommit(c.req.param("sha"));
    if (!commit) throw new GitHubApiError(404, "Not Found");
    const diff = await repo.git.text(["diff", "--no-color", "--no-ext-diff", commit.parents[0] ?? EMPTY_TREE, commit.sha]);
    return c.html(
      page(
        commit.message.split("\n")[0] ?? commit.sha,
        `<h1>${escapeHtml(commit.message.split("\n")[0] ?? "")}</h1><p><code>${commit.sha}</code> · ${escapeHtml(commit.author.name)} · ${commit.author.date}</p>` +
          `<pre style="white-space:pre-wrap">${escapeHtml(commit.message)}</pre><pre>${escapeHtml(diff)}</pre>`,
      ),
    );
  });

  return app;
}
