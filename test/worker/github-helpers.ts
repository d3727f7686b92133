/**
 * Helpers for the GitHub tests inside workerd: the real webhook and repo
 * sub-apps mounted the way worker/index.ts mounts them, driven with an
 * ExecutionContext the test can wait on (so work left to waitUntil is done
 * before the assertions), and GitHub's own example payloads, signed.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import examples from "@octokit/webhooks-examples";
import { sign } from "@octokit/webhooks-methods";
import { Hono } from "hono";
import { z } from "zod";
import { ErrorBody, RepoState, UpdatePr } from "../../common/protocol.ts";
import { openDatabase } from "../../worker/db/client.ts";
import type { AppEnv, WorkerEnv } from "../../worker/env.ts";
import { handleError } from "../../worker/errors.ts";
import { repoRoutes, updatePrRoutes } from "../../worker/routes/repo.ts";
import { webhooks } from "../../worker/routes/webhooks.ts";

export const SECRET = "test-webhook-secret";
export const REPOSITORY = "example/fleet";

export const app = new Hono<AppEnv>()
  .use(async (c, next) => {
    c.set("db", openDatabase(c.env.DB));
    c.set("actor", "developer@localhost");
    await next();
  })
  .route("/webhooks/github", webhooks)
  .route("/api/repo", repoRoutes)
  .route("/api/update-prs", updatePrRoutes)
  .onError(handleError);

/** Sends `request` through the app and waits for whatever it left to waitUntil. */
export async function send(request: Request, overrides: Partial<WorkerEnv> = {}): Promise<Response> {
  const ctx = createExecutionContext();
  const response = await app.fetch(request, { ...env, ...overrides }, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

let deliveries = 0;
export const newDeliveryId = () => `00000000-0000-4000-8000-${String(++deliveries).padStart(12, "0")}`;

export interface DeliverOptions {
  id?: string;
  /** Signs with this secret instead of the configured one. */
  secret?: string;
  /** The X-Hub-Signature-256 header as sent; null leaves it out. */
  signature?: string | null;
  /** The exact body; defaults to JSON of the payload. */
  body?: string;
  env?: Partial<WorkerEnv>;
}

/** A webhook delivery as GitHub sends it: JSON body, event and delivery headers, HMAC signature. */
export async function deliver(event: string, payload: unknown, options: DeliverOptions = {}): Promise<{ response: Response; id: string }> {
  const id = options.id ?? newDeliveryId();
  const body = options.body ?? JSON.stringify(payload);
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "user-agent": "GitHub-Hookshot/test",
    "x-github-event": event,
    "x-github-delivery": id,
  };
  const signature = options.signature === undefined ? await sign(options.secret ?? SECRET, body) : options.signature;
  if (signature !== null) headers["x-hub-signature-256"] = signature;
  const response = await send(new Request("http://localhost/webhooks/github", { method: "POST", headers, body }), options.env);
  return { response, id };
}

const Payload = z.record(z.string(), z.unknown());

/** Deep copies of GitHub's example payloads of an event (@octokit/webhooks-examples). */
export function examplesOf(event: string): Record<string, unknown>[] {
  const definition = examples.find((d) => d.name === event);
  if (!definition || definition.examples.length === 0) throw new Error(`no example payloads for ${event}`);
  return definition.examples.map((e) => Payload.parse(structuredClone(e)));
}

/** The first example payload of `event` that `pick` accepts. */
export function example(event: string, pick: (payload: Record<string, unknown>) => boolean = () => true): Record<string, unknown> {
  const found = examplesOf(event).find(pick);
  if (!found) throw new Error(`no ${event} example matches`);
  return found;
}

export const StoredDelivery = z.object({ id: z.string(), event: z.string(), action: z.string().nullable(), outcome: z.string(), error: z.string().nullable(), attempts: z.number() });

export async function storedDelivery(id: string) {
  const row = await env.DB.prepare("select id, event, action, outcome, error, attempts from github_deliveries where id = ?").bind(id).first();
  return row === null ? null : StoredDelivery.parse(row);
}

/** Storage is shared by the tests of a file: each GitHub test starts from empty tables. */
export async function resetGitHubTables(): Promise<void> {
  await env.DB.batch(
    ["github_deliveries", "github_repo_state", "github_pull_requests", "github_commit_checks", "audit_log"].map((table) =>
      env.DB.prepare(`delete from ${table}`),
    ),
  );
}

export const countRows = async (table: string) =>
  (await env.DB.prepare(`select count(*) as n from ${table}`).first<{ n: number }>())?.n ?? 0;

export const RepoResponse = z.object({
  repository: z.string().nullable(),
  branch: z.string(),
  repo: RepoState.nullable(),
  problems: z.array(z.string()),
});

export const UpdatePrsResponse = z.object({ updatePrs: z.array(UpdatePr) });

export async function getRepo(overrides: Partial<WorkerEnv> = {}) {
  const res = await send(new Request("http://localhost/api/repo"), overrides);
  if (res.status !== 200) throw new Error(`GET /api/repo: ${res.status} ${await res.text()}`);
  return RepoResponse.parse(await res.json());
}

export async function getUpdatePrs() {
  const res = await send(new Request("http://localhost/api/update-prs"));
  if (res.status !== 200) throw new Error(`GET /api/update-prs: ${res.status} ${await res.text()}`);
  return UpdatePrsResponse.parse(await res.json()).updatePrs;
}

export async function errorOf(res: Response) {
  return ErrorBody.parse(await res.json()).error;
}

const sha = (n: number) => n.toString(16).padStart(40, "0");
export const SHAS = { a: sha(0xa1), b: sha(0xb2), c: sha(0xc3), d: sha(0xd4) };

/** Sets a nested field of a payload (`"pull_request.base.ref"`), failing loudly if the path is not there. */
export function set(target: unknown, path: string, value: unknown): void {
  const keys = path.split(".");
  let node = target;
  for (const key of keys.slice(0, -1)) {
    if (typeof node !== "object" || node === null || !Reflect.has(node, key)) throw new Error(`payload has no ${path}`);
    node = Reflect.get(node, key);
  }
  if (typeof node !== "object" || node === null) throw new Error(`payload has no ${path}`);
  Reflect.set(node, keys.at(-1)!, value);
}

/** GitHub's example payloads name Codertocat/Hello-World on master: point them at the fleet's repository. */
export function ours(payload: Record<string, unknown>): Record<string, unknown> {
  if ("repository" in payload) {
    set(payload, "repository.full_name", REPOSITORY);
    set(payload, "repository.name", "fleet");
    set(payload, "repository.default_branch", "main");
  }
  return payload;
}

/** A `pull_request` delivery of the fleet's repository, from GitHub's example, as an update PR by default. */
export function pullRequest(action: string, options: { number?: number; title?: string; labels?: string[]; head?: string; base?: string; state?: "open" | "closed"; merged?: boolean; updatedAt?: string; createdAt?: string } = {}) {
  const payload = ours(example("pull_request", (p) => p.action === (action === "edited" || action === "synchronize" ? "opened" : action === "closed" ? "closed" : "opened")));
  set(payload, "action", action);
  const number = options.number ?? 2;
  set(payload, "number", number);
  set(payload, "pull_request.number", number);
  set(payload, "pull_request.html_url", `https://github.com/${REPOSITORY}/pull/${number}`);
  set(payload, "pull_request.title", options.title ?? "flake.lock: Update");
  set(payload, "pull_request.labels", (options.labels ?? ["automated"]).map((name, i) => ({ id: 1000 + i, node_id: `L${i}`, url: "", name, color: "ededed", default: false, description: null })));
  set(payload, "pull_request.head.sha", options.head ?? SHAS.b);
  set(payload, "pull_request.head.ref", "update_flake_lock_action");
  set(payload, "pull_request.base.ref", options.base ?? "main");
  set(payload, "pull_request.state", options.state ?? (action === "closed" ? "closed" : "open"));
  set(payload, "pull_request.merged", options.merged ?? false);
  set(payload, "pull_request.merged_at", options.merged ? "2019-05-15T16:00:00Z" : null);
  set(payload, "pull_request.merge_commit_sha", options.merged ? SHAS.d : null);
  set(payload, "pull_request.created_at", options.createdAt ?? "2019-05-15T15:20:33Z");
  set(payload, "pull_request.updated_at", options.updatedAt ?? "2019-05-15T15:20:33Z");
  return payload;
}

/** A push to main from `before` to `after` with this git tree, touching no flake.lock (stored without a GitHub call). */
export function pushToMain(before: string, after: string, tree: string): Record<string, unknown> {
  const payload = ours(example("push", (p) => p.ref === "refs/heads/master" && p.head_commit !== null));
  set(payload, "ref", "refs/heads/main");
  set(payload, "before", before);
  set(payload, "after", after);
  set(payload, "forced", false);
  for (const prefix of ["head_commit", "commits.0"]) {
    set(payload, `${prefix}.id`, after);
    set(payload, `${prefix}.added`, []);
    set(payload, `${prefix}.modified`, ["hosts/hsb0.nix"]);
    set(payload, `${prefix}.removed`, []);
  }
  set(payload, "head_commit.tree_id", tree);
  return payload;
}
