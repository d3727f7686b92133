import { Hono } from "hono";
import { z } from "zod";
import { AppManifest, type AppRegistry, type EmulatedApp } from "../apps.ts";
import { GitHubApiError, notFound } from "../errors.ts";
import { userJson } from "../payloads.ts";
import { json, type AppEnv } from "./common.ts";

const DOC_CONVERSION = "https://docs.github.com/rest/apps/apps#create-a-github-app-from-a-manifest";
const DOC_INSTALLATION = "https://docs.github.com/rest/apps/apps#get-a-repository-installation-for-the-authenticated-app";

/**
 * The GitHub App manifest flow and what an App does as itself (apps.ts): the site's manifest form
 * (`POST /settings/apps/new`), the conversion, the install page, and the App-JWT endpoints.
 */
export function appRoutes(apps: AppRegistry, now: () => number): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  const appJson = (c: { var: { repository: { site: Parameters<typeof userJson>[0] } } }, registered: EmulatedApp) => ({
    id: registered.id,
    slug: registered.slug,
    node_id: `A_${registered.id}`,
    name: registered.manifest.name,
    description: registered.manifest.description ?? "",
    external_url: registered.manifest.url,
    html_url: `${c.var.repository.site.baseUrl}/apps/${registered.slug}`,
    owner: userJson(c.var.repository.site, c.var.repository.site.owner),
    permissions: registered.manifest.default_permissions,
    events: registered.manifest.default_events,
    created_at: new Date(now()).toISOString(),
    updated_at: new Date(now()).toISOString(),
  });

  // The form a manifest page posts to github.com; the person confirms, GitHub redirects with a code.
  app.post("/settings/apps/new", async (c) => {
    const form = await c.req.parseBody();
    let manifest: AppManifest;
    try {
      manifest = AppManifest.parse(JSON.parse(String(form.manifest ?? "")));
    } catch (error) {
      return c.text(`Invalid GitHub App configuration: ${error instanceof Error ? error.message : String(error)}`, 422);
    }
    const code = apps.createCode(manifest, now());
    const target = new URL(manifest.redirect_url);
    target.searchParams.set("code", code);
    const state = c.req.query("state");
    if (state !== undefined) target.searchParams.set("state", state);
    return c.redirect(target.toString(), 302);
  });

  app.post("/app-manifests/:code/conversions", (c) => {
    const registered = apps.convert(c.req.param("code"), now());
    if (registered === null) throw notFound(DOC_CONVERSION);
    return json(
      c,
      { ...appJson(c, registered), client_id: `Iv1.${registered.id}`, client_secret: `secret-${registered.id}`, webhook_secret: registered.webhookSecret, pem: registered.pem },
      201,
    );
  });

  // The person clicks Install on the App's page: it is installed on the emulator's one repository.
  app.post("/apps/:slug/installations/new", (c) => {
    const registered = apps.bySlug(c.req.param("slug"));
    if (registered === undefined) throw notFound();
    const id = apps.install(registered);
    return c.html(`<!doctype html><p>${registered.manifest.name} is installed on ${c.var.repository.site.owner}/${c.var.repository.site.repo} (installation ${id}).</p>`);
  });

  const asApp = async (authorization: string | undefined): Promise<EmulatedApp> => {
    const registered = await apps.appOf(authorization);
    if (registered === null) throw new GitHubApiError(401, "A JSON web token could not be decoded");
    return registered;
  };

  app.get("/repos/:owner/:repo/installation", async (c) => {
    const registered = await asApp(c.req.header("authorization"));
    const site = c.var.repository.site;
    const ours = c.req.param("owner").toLowerCase() === site.owner.toLowerCase() && c.req.param("repo").toLowerCase() === site.repo.toLowerCase();
    if (!ours || registered.installationId === null) throw notFound(DOC_INSTALLATION);
    return json(c, {
      id: registered.installationId,
      app_id: registered.id,
      app_slug: registered.slug,
      account: userJson(site, site.owner),
      repository_selection: "selected",
      target_type: "User",
      permissions: registered.manifest.default_permissions,
      events: registered.manifest.default_events,
    });
  });

  app.post("/app/installations/:id/access_tokens", async (c) => {
    const registered = await asApp(c.req.header("authorization"));
    const id = z.coerce.number().int().parse(c.req.param("id"));
    if (registered.installationId !== id) throw notFound();
    const { token, expiresAt } = apps.mintToken(id, now());
    return json(c, { token, expires_at: expiresAt, permissions: registered.manifest.default_permissions, repository_selection: "selected" }, 201);
  });

  return app;
}
