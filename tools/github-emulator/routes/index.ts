import { randomBytes } from "node:crypto";
import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import { DOCS, GitHubApiError } from "../errors.ts";
import { faultMessage, type Faults } from "../faults.ts";
import type { EmulatedRepository } from "../repository.ts";
import { userJson } from "../payloads.ts";
import type { AppRegistry } from "../apps.ts";
import { appRoutes } from "./apps.ts";
import { checkRoutes } from "./checks.ts";
import { json, type AppEnv } from "./common.ts";
import { gitDataRoutes } from "./git-data.ts";
import { issueRoutes } from "./issues.ts";
import { pullRoutes } from "./pulls.ts";
import { repoRoutes } from "./repos.ts";
import { siteRoutes } from "./site.ts";

const RATE_LIMIT = 5000;

/** Makes GitHub's `X-GitHub-Request-Id` shape: five hex groups. */
function requestId(): string {
  const hex = randomBytes(14).toString("hex").toUpperCase();
  return `${hex.slice(0, 4)}:${hex.slice(4, 10)}:${hex.slice(10, 16)}:${hex.slice(16, 22)}:${hex.slice(22, 28)}`;
}

/**
 * The emulator's HTTP surface: GitHub's REST API for one repository, plus the raw/html
 * pages its URLs point at. `extra` mounts more routes (the /_emulator control endpoints).
 */
export function createApp(repository: EmulatedRepository, options: { token?: string; extra?: Hono<AppEnv>; faults?: Faults; apps?: AppRegistry }): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const rate = { remaining: RATE_LIMIT, reset: 0 };

  app.onError((error, c) => {
    if (error instanceof GitHubApiError) return json(c, error.toJSON(), error.status);
    console.error("github-emulator: unexpected error", error);
    return json(c, { message: "Server Error", documentation_url: DOCS, status: "500" }, 500);
  });
  app.notFound((c) => json(c, { message: "Not Found", documentation_url: DOCS, status: "404" }, 404));

  app.use("*", async (c, next) => {
    c.set("repository", repository);
    await next();
  });

  if (options.extra) app.route("/", options.extra);
  // Before the token check: these authenticate as the App (its JWT) or not at all (the manifest flow).
  if (options.apps) app.route("/", appRoutes(options.apps, Date.now));

  // Headers every api.github.com answer carries, errors included; then the token check.
  const apiHeaders = createMiddleware<AppEnv>(async (c, next) => {
    const now = Math.floor(Date.now() / 1000);
    if (now >= rate.reset) {
      rate.reset = now + 3600;
      rate.remaining = RATE_LIMIT;
    }
    rate.remaining = Math.max(0, rate.remaining - 1);
    const fault = options.faults?.take(c.req.method, c.req.path);
    // An injected failure is answered in place of the route, with the headers every answer carries.
    if (fault) c.res = json(c, new GitHubApiError(fault.status, faultMessage(fault.status)).toJSON(), fault.status);
    else await next();
    c.header("x-github-request-id", requestId());
    c.header("x-github-api-version-selected", "2022-11-28");
    c.header("x-github-media-type", "github.v3; format=json");
    c.header("x-ratelimit-limit", String(RATE_LIMIT));
    c.header("x-ratelimit-remaining", String(rate.remaining));
    c.header("x-ratelimit-reset", String(rate.reset));
    c.header("x-ratelimit-used", String(RATE_LIMIT - rate.remaining));
    c.header("x-ratelimit-resource", "core");
  });
  const auth = createMiddleware<AppEnv>(async (c, next) => {
    if (options.token) {
      const header = c.req.header("authorization");
      if (!header) throw new GitHubApiError(401, "Requires authentication");
      const m = /^(?:token|bearer)\s+(.+)$/i.exec(header.trim());
      const minted = m !== null && options.apps?.acceptsToken(m[1]!, Date.now()) === true;
      if (!m || (m[1] !== options.token && !minted)) throw new GitHubApiError(401, "Bad credentials");
    }
    await next();
  });
  const thisRepository = createMiddleware<AppEnv>(async (c, next) => {
    const [, , owner, repo] = c.req.path.split("/").map((part) => decodeURIComponent(part));
    const site = c.var.repository.site;
    if (owner?.toLowerCase() !== site.owner.toLowerCase() || repo?.toLowerCase() !== site.repo.toLowerCase()) {
      throw new GitHubApiError(404, "Not Found", { documentationUrl: "https://docs.github.com/rest/repos/repos#get-a-repository" });
    }
    await next();
  });
  for (const path of ["/repos/*", "/user", "/rate_limit"]) app.use(path, apiHeaders, auth);
  app.use("/repos/:owner/:repo", thisRepository);
  app.use("/repos/:owner/:repo/*", thisRepository);

  app.get("/user", (c) => json(c, userJson(c.var.repository.site, c.var.repository.actor)));
  app.get("/rate_limit", (c) => {
    const core = { limit: RATE_LIMIT, remaining: rate.remaining, reset: rate.reset, used: RATE_LIMIT - rate.remaining, resource: "core" };
    return json(c, { resources: { core }, rate: core });
  });
  // checkRoutes first: its /commits/{ref}/status must win over repoRoutes' /commits/{ref}.
  for (const routes of [checkRoutes(), repoRoutes(), pullRoutes(), issueRoutes(), gitDataRoutes()]) {
    app.route("/repos/:owner/:repo", routes);
  }
  app.route("/", siteRoutes());
  return app;
}
