// Generated bad input over every route the app registers (the list comes from
// the app itself, so a new route is covered without anyone remembering to):
// no 5xx, always the `{error:{code,message}}` shape, and a refused request
// changes nothing.
import { sign } from "@octokit/webhooks-methods";
import { env, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { COMMAND_KINDS, ErrorBody, PLATFORMS } from "../../common/protocol.ts";
import { app } from "../../worker/index.ts";
import { createHost, ORIGIN, poll, queueCommand, sampleReport } from "./helpers.ts";

/** What this test environment answers on purpose: no GitHub credentials are configured in the worker tests. */
const DELIBERATE_5XX = ["503 github_not_configured"];

const RUNS = Number(env.NIXFLEET_PROPERTY_RUNS ?? "") || 2000;
const METHODS = new Set(["GET", "POST", "PUT", "PATCH", "DELETE"]);

/** Every concrete route of the app: middleware (`ALL`, `/*`) is not a route. */
const routes = [
  ...new Map(
    app.routes.filter((r) => METHODS.has(r.method) && !r.path.endsWith("*")).map((r) => [`${r.method} ${r.path}`, { method: r.method, path: r.path }]),
  ).values(),
];

let known: { token: string; host: string; commandId: string };

/**
 * The two logs that record refusals on purpose: the audit log (who tried what) and the webhook
 * delivery log (every delivery GitHub sent, refused or not). Every other store is compared.
 */
const LOGS_OF_REFUSALS = new Set(["audit_log", "github_deliveries"]);

/** The tables of a SQLite store, from its own catalogue: a table added later is covered without anyone listing it. */
const TABLES = "select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name not like '\\_cf\\_%' escape '\\' order by name";

/** Rows as sorted JSON lines: a table's order is not part of its state. */
const rowsOf = (rows: Record<string, unknown>[]) => rows.map((row) => JSON.stringify(row)).sort().join("\n");

async function d1Tables(): Promise<string[]> {
  const { results } = await env.DB.prepare(TABLES).all<{ name: string }>();
  return results.map((r) => r.name).filter((name) => !LOGS_OF_REFUSALS.has(name));
}

/** Every SQLite table and every key-value entry of one Durable Object, read inside it. */
function objectState(stub: DurableObjectStub): Promise<string> {
  return runInDurableObject(stub, async (_instance, state) => {
    const sql = state.storage.sql;
    const tables = sql.exec<{ name: string }>(TABLES).toArray().map((r) => r.name);
    const parts = tables.map((table) => `${table}:\n${rowsOf(sql.exec(`select * from "${table}"`).toArray())}`);
    const entries = [...(await state.storage.list()).entries()].map(([key, value]) => `${key}=${JSON.stringify(value)}`);
    return `${parts.join("\n")}\nkv:\n${entries.join("\n")}`;
  });
}

/** The Durable Objects a request can reach, each by the one name the Worker uses. */
const objects = () => ({
  coordinator: env.COORDINATOR.getByName("fleet"),
  automation: env.AUTOMATION.getByName("fleet"),
  notifier: env.NOTIFIER.getByName("fleet"),
});

/** Every row and entry a request could change: every D1 table but the two logs, and every object's storage. */
async function fingerprint(): Promise<string> {
  const d1 = async () => {
    const tables = await d1Tables();
    const answers = await env.DB.batch(tables.map((table) => env.DB.prepare(`select * from "${table}"`)));
    return answers.map((answer, i) => `d1 ${tables[i]}:\n${rowsOf(answer.results as Record<string, unknown>[])}`);
  };
  const objectStates = () => Promise.all(Object.entries(objects()).map(async ([name, stub]) => `${name}:\n${await objectState(stub)}`));
  const [parts, stores] = await Promise.all([d1(), objectStates()]);
  return [...parts, ...stores].join("\n");
}

/** The tables the migrations leave: created and not dropped since. */
function tablesOfMigrations(): string[] {
  const tables = new Set<string>();
  for (const migration of env.TEST_MIGRATIONS) {
    for (const query of migration.queries) {
      for (const [, name] of query.matchAll(/create table (?:if not exists )?"?(\w+)/gi)) tables.add(name!);
      for (const [, name] of query.matchAll(/drop table (?:if exists )?"?(\w+)/gi)) tables.delete(name!);
    }
  }
  return [...tables].sort();
}

const text = fc.oneof(
  fc.string(),
  fc.string({ unit: "grapheme", maxLength: 80 }),
  fc.constantFrom("", " ", "..", "../etc/passwd", "%00", "a".repeat(300), "HSB0", "hsb0-", "cmd_", "null", "1e309", "-1", "1.5"),
);

const paramValue = (name: string) =>
  fc.oneof(
    text,
    fc.integer().map(String),
    fc.double().map(String),
    fc.constant(name === "name" ? "known-host" : name === "id" ? "@command" : "1"),
    fc.constant(name === "name" ? "unknown-host" : name === "id" ? "cmd_AAAAAAAAAAAAAAAAAAAAAA" : "999999"),
  );

const queryValue = fc.oneof(text, fc.integer().map(String), fc.double().map(String), fc.constantFrom("1.5", "-5", "0", "99999999999999999999", "NaN"));

const validishBodies = [
  { kind: "switch" },
  { name: "fresh-host", platform: "nixos" },
  { protocol: 1, agentSession: "session-xyz", activeCommands: [], acks: [] },
  { type: "output", chunks: [{ seq: 0, stream: "stdout", data: "x" }] },
  { type: "finished", at: "2026-01-01T00:00:00Z", outcome: "succeeded", exitCode: 0 },
  { method: "squash" },
];

const body = fc.oneof(
  fc.constant<string | undefined>(undefined),
  fc.json(),
  fc.string(),
  fc.constantFrom("{", "[]", "null", '{"__proto__":{"x":1}}', "{}".padEnd(300 * 1024, " ")),
  fc.record({
    kind: fc.oneof(fc.constantFrom(...COMMAND_KINDS), text),
    name: fc.oneof(text, fc.constant("known-host")),
    platform: fc.oneof(fc.constantFrom(...PLATFORMS), text),
    protocol: fc.oneof(fc.integer(), fc.constant(1)),
    agentSession: text,
    type: fc.oneof(fc.constantFrom("started", "output", "finished"), text),
    extra: fc.anything(),
  }, { requiredKeys: [] }).map((value) => JSON.stringify(value)),
  fc.constantFrom(...validishBodies).chain((base) =>
    fc.dictionary(fc.constantFrom(...Object.keys(base), "extra"), fc.jsonValue()).map((overrides) => JSON.stringify({ ...base, ...overrides })),
  ),
);

const request = fc.record({
  route: fc.constantFrom(...routes),
  params: fc.record({ name: paramValue("name"), id: paramValue("id"), number: paramValue("number") }),
  query: fc.dictionary(fc.constantFrom("limit", "after", "before", "wait", "x"), queryValue, { maxKeys: 3 }),
  body,
  agentAuth: fc.constantFrom("known", "none", "garbage"),
  signWebhook: fc.boolean(),
  event: fc.constantFrom("push", "pull_request", "check_run", "status", "ping", "issues", "x"),
  origin: fc.constantFrom("same", "none", "evil"),
  contentType: fc.constantFrom("application/json", "text/plain", undefined),
});

function fill(path: string, params: { name: string; id: string; number: string }): string {
  return path.replace(/:(\w+)/g, (_match: string, key: string) => {
    const raw = key === "name" ? params.name : key === "id" ? params.id : params.number;
    const value = raw === "known-host" ? known.host : raw === "@command" ? known.commandId : raw;
    return encodeURIComponent(value);
  });
}

type GeneratedRequest = typeof request extends fc.Arbitrary<infer T> ? T : never;

async function send(r: GeneratedRequest): Promise<Response> {
  const url = new URL(`${ORIGIN}${fill(r.route.path, r.params)}`);
  for (const [key, value] of Object.entries(r.query)) url.searchParams.set(key, value);
  // A poll that is valid would be held: never wait here.
  if (r.route.path.endsWith("/poll")) url.searchParams.set("wait", "0");
  const headers = new Headers();
  if (r.contentType) headers.set("content-type", r.contentType);
  if (r.origin === "same") headers.set("origin", ORIGIN);
  if (r.origin === "evil") headers.set("origin", "https://evil.example");
  if (r.route.path.startsWith("/api/agent")) {
    if (r.agentAuth === "known") headers.set("authorization", `Bearer ${known.token}`);
    if (r.agentAuth === "garbage") headers.set("authorization", "Bearer not-a-token");
  }
  const hasBody = r.route.method !== "GET" && r.body !== undefined;
  if (r.route.path.startsWith("/webhooks")) {
    headers.set("x-github-event", r.event);
    headers.set("x-github-delivery", crypto.randomUUID());
    const signable = r.signWebhook && r.body !== undefined && r.body !== "";
    headers.set("x-hub-signature-256", signable ? await sign(env.GITHUB_WEBHOOK_SECRET ?? "", r.body ?? "") : "sha256=00");
  }
  return exports.default.fetch(new Request(url, { method: r.route.method, headers, body: hasBody ? r.body : undefined }));
}

describe("generated bad input", () => {
  beforeAll(async () => {
    const host = await createHost("known-host-fc");
    await poll(host.token, { report: sampleReport() }, 0);
    const res = await queueCommand("known-host-fc", "test");
    const commandId = (await res.json<{ command: { id: string } }>()).command.id;
    known = { token: host.token, host: "known-host-fc", commandId };
  });

  it("the state compared covers every D1 table the migrations leave but the two logs, and each object's tables", async () => {
    const fromMigrations = tablesOfMigrations();
    expect(fromMigrations).toEqual(expect.arrayContaining(["hosts", "settings", "github_pull_requests", ...LOGS_OF_REFUSALS]));
    // And the migrations' own bookkeeping, which no request should touch either.
    expect(await d1Tables()).toEqual([...fromMigrations.filter((table) => !LOGS_OF_REFUSALS.has(table)), "d1_migrations"].sort());
    const state = await fingerprint();
    // The objects' own tables are in it, read from their catalogues (rollouts, holds, fleet builds, sessions, the automation's records, deliveries).
    for (const table of ["commands", "command_output", "agent_sessions", "rollouts", "holds", "fleet_builds", "automation_prs", "deliveries", "published"]) {
      expect(state).toContain(`\n${table}:\n`);
    }
  });

  it("the route list comes from the app and covers every resource", () => {
    const paths = new Set(routes.map((r) => r.path));
    for (const path of ["/api/hosts", "/api/hosts/:name/commands", "/api/agent/poll", "/api/commands/:id/output", "/webhooks/github", "/api/audit"]) {
      expect(paths).toContain(path);
    }
  });

  it(`${RUNS} generated requests over every route: no 5xx, errors in one shape, refusals change nothing`, async () => {
    const seen = new Map<string, Set<number>>();
    // The state after a refused request, read right after it and found unchanged, is the next request's
    // state before: one read per refusal instead of two.
    let unchanged: string | null = null;
    const check = async (r: GeneratedRequest) => {
      const before = unchanged ?? (await fingerprint());
      unchanged = null;
      const res = await send(r);
      const key = `${r.route.method} ${r.route.path}`;
      seen.set(key, (seen.get(key) ?? new Set()).add(res.status));
      if (res.status >= 400) {
        const parsed = ErrorBody.safeParse(await res.json());
        expect(parsed.success, `${key} ${res.status} is not {error:{code,message}}`).toBe(true);
        // A 5xx is only ever a deliberate "GitHub is not set up here", never a crash.
        if (res.status >= 500) expect(DELIBERATE_5XX, `${key} answered ${res.status}`).toContain(`${res.status} ${parsed.data?.error.code}`);
        const after = await fingerprint();
        expect(after, `${key} was refused with ${res.status} but changed state`).toBe(before);
        unchanged = after;
      } else {
        await res.body?.cancel();
      }
    };
    await fc.assert(fc.asyncProperty(request, check), { numRuns: RUNS });
    // Every route is reached: a route the random draws passed over (with some sixty routes, a few hundred runs
    // can miss one) gets generated requests of its own, held to the same property.
    for (const route of routes.filter((r) => !seen.has(`${r.method} ${r.path}`))) {
      await fc.assert(fc.asyncProperty(request.map((r) => ({ ...r, route })), check), { numRuns: 3 });
    }
    expect([...seen.keys()].sort()).toEqual(routes.map((r) => `${r.method} ${r.path}`).sort());
  }, 600_000);
});
