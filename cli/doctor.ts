/**
 * `nixfleet doctor URL`: checks a deployment from outside, as an agent, GitHub,
 * Prometheus and a stranger see it, one line per check with the fix for each
 * that fails. The Worker's own answers carry WORKER_MARKER_HEADER; an answer
 * without it came from Cloudflare Access or something else in front.
 */
import { isAccessAnswer, networkCause } from "../common/answer-cause.ts";
import { DeploymentStatus, ErrorBody, PollResponse, PROTOCOL_VERSION, WORKER_MARKER_HEADER } from "../common/protocol.ts";
import { roughDuration } from "../common/text.ts";

export interface DoctorOptions {
  url: string;
  /** An Access service token, for the checks behind Access. */
  access?: { clientId: string; clientSecret: string };
  /** A host's agent token, for a real poll round trip. */
  hostToken?: string;
  /** The Worker's workers.dev URL, to check it is off or behind Access too. */
  workersDevUrl?: string;
  /** A last webhook older than this fails its check. */
  webhookMaxAgeMs: number;
  fetch?: typeof fetch;
  now?: () => number;
}

export type CheckResult =
  | { status: "ok"; check: string; detail: string }
  | { status: "failed"; check: string; detail: string; fix: string }
  | { status: "skipped"; check: string; detail: string };

interface Answer {
  status: number;
  marked: boolean;
  access: boolean;
  body: string;
  header(name: string): string | null;
}

const OPERATIONS = "docs/operations.md";
const BYPASS_FIX = (path: string) => `add ${path} to the Access application's Bypass policy (${OPERATIONS}#cloudflare-access)`;

export async function runDoctor(options: DoctorOptions): Promise<CheckResult[]> {
  const base = options.url.replace(/\/+$/, "");
  const doFetch = options.fetch ?? fetch;
  const now = options.now ?? Date.now;
  const accessHeaders: Record<string, string> = options.access
    ? { "cf-access-client-id": options.access.clientId, "cf-access-client-secret": options.access.clientSecret }
    : {};

  /** One request, never following a redirect (Access's login page is the answer to look at). */
  const ask = async (url: string, init: RequestInit = {}): Promise<Answer | { error: string }> => {
    try {
      const response = await doFetch(url, { ...init, redirect: "manual", signal: AbortSignal.timeout(20_000) });
      const body = await response.text();
      const header = (name: string) => response.headers.get(name);
      const marked = header(WORKER_MARKER_HEADER) !== null;
      return { status: response.status, marked, access: isAccessAnswer({ status: response.status, header, body }), body, header };
    } catch (error) {
      const tls = networkCause(url, error);
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      return { error: tls?.message ?? `${error instanceof Error ? error.message : String(error)}${cause?.code ? ` (${cause.code})` : ""}` };
    }
  };
  const errorCode = (answer: Answer): string | null => {
    try {
      return ErrorBody.parse(JSON.parse(answer.body)).error.code;
    } catch {
      return null;
    }
  };
  const seen = (answer: Answer): string =>
    answer.access ? "Cloudflare Access's login" : `${answer.status}${answer.marked ? "" : " (not from the Worker)"}${errorCode(answer) ? ` ${errorCode(answer)}` : ""}`;

  const results: CheckResult[] = [];
  const ok = (check: string, detail: string) => results.push({ status: "ok", check, detail });
  const failed = (check: string, detail: string, fix: string) => results.push({ status: "failed", check, detail, fix });
  const skipped = (check: string, detail: string) => results.push({ status: "skipped", check, detail });

  // 1. The Worker answers at all (with the service token: /api/health may be behind Access).
  const health = await ask(`${base}/api/health`, { headers: accessHeaders });
  let accessMode = false;
  if ("error" in health) {
    failed("/api/health answers", health.error, `check the URL; deploy with \`npx nixfleet setup\``);
  } else if (health.access) {
    failed("/api/health answers", "Cloudflare Access's login", `pass --access-client-id and --access-client-secret, or ${BYPASS_FIX("/api/health")}`);
  } else if (!health.marked || health.status !== 200) {
    failed("/api/health answers", `${seen(health)}: not a NixFleet control plane`, "check the URL: it must be the Worker's hostname");
  } else {
    const parsed = safeJson(health.body) as { version?: string; auth?: string } | null;
    accessMode = parsed?.auth === "access";
    ok("/api/health answers", `NixFleet ${parsed?.version ?? "?"}, auth ${parsed?.auth ?? "?"}`);
    if (!accessMode) failed("the Worker checks Access's token", `auth is ${parsed?.auth ?? "unknown"}`, `set ACCESS_AUD and ACCESS_TEAM_DOMAIN (${OPERATIONS}#cloudflare-access)`);
  }

  // 2. Behind Access: the dashboard page and the admin API, asked without a token.
  for (const [check, path] of [
    ["the dashboard is behind Access", "/"],
    ["the admin API is behind Access", "/api/hosts"],
  ] as const) {
    const answer = await ask(`${base}${path}`);
    if ("error" in answer) failed(check, answer.error, "check the URL");
    else if (answer.access) ok(check, `${path} answers Access's login`);
    else failed(check, `${path} answered ${seen(answer)}`, `create the Access application for this hostname (${OPERATIONS}#cloudflare-access)`);
  }

  // 3. The bypasses: the Worker's own refusal proves the request reached it.
  const bypass = async (check: string, path: string, init: RequestInit, expected: number) => {
    const answer = await ask(`${base}${path}`, init);
    if ("error" in answer) failed(check, answer.error, "check the URL");
    else if (answer.access) failed(check, `${path} answers Cloudflare Access's login: the Bypass policy is missing`, BYPASS_FIX(path === "/webhooks/github" ? path : "/api/agent/*"));
    else if (answer.marked && answer.status === expected) ok(check, `${path} answers the Worker's own ${answer.status}`);
    else failed(check, `${path} answered ${seen(answer)}${answer.marked ? `: ${errorMessage(answer.body)}` : ""}`, answer.marked ? "see the Worker's message" : `route ${path} to the Worker`);
  };
  await bypass("agents reach the Worker past Access", "/api/agent/poll?wait=0", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }, 401);
  await bypass(
    "GitHub's webhooks reach the Worker past Access",
    "/webhooks/github",
    { method: "POST", headers: { "content-type": "application/json", "x-github-event": "ping", "x-github-delivery": "nixfleet-doctor", "x-hub-signature-256": "sha256=0" }, body: "{}" },
    401,
  );

  // 4. /metrics: refused without METRICS_TOKEN, by the Worker or by Access.
  const metrics = await ask(`${base}/metrics`);
  if ("error" in metrics) failed("/metrics is protected", metrics.error, "check the URL");
  else if (metrics.access) ok("/metrics is protected", "by Access (add it to the Bypass policy for Prometheus)");
  else if (metrics.marked && metrics.status === 401) ok("/metrics is protected", "by METRICS_TOKEN");
  else if (metrics.marked && errorCode(metrics) === "metrics_not_configured") failed("/metrics is protected", "METRICS_TOKEN is not set, /metrics is off", "`npx nixfleet setup` puts METRICS_TOKEN");
  else failed("/metrics is protected", `answered ${seen(metrics)}`, "set METRICS_TOKEN");

  // 5. The workers.dev hostname: off, or refusing the dashboard as the main one does.
  if (options.workersDevUrl === undefined) {
    skipped("the workers.dev hostname is off", "pass --workers-dev https://<name>.<subdomain>.workers.dev to check it");
  } else {
    const page = await ask(`${options.workersDevUrl.replace(/\/+$/, "")}/api/hosts`);
    if ("error" in page) ok("the workers.dev hostname is off", `it does not answer (${page.error})`);
    else if (page.access) ok("the workers.dev hostname is off", "it answers Access's login");
    else if (!page.marked) ok("the workers.dev hostname is off", `it answers ${page.status}, not the Worker`);
    else failed("the workers.dev hostname is off", `it serves the Worker without Access (${seen(page)})`, "set workers_dev = false (`npx nixfleet setup` does) and deploy");
  }

  // 6. Inside: GitHub, the D1 schema, the last webhook.
  const inside = ["GitHub is configured and answers", "D1 is at the code's migration", "webhooks arrive"];
  if (options.access === undefined && accessMode) {
    for (const check of inside) skipped(check, "needs an Access service token (--access-client-id, --access-client-secret)");
  } else {
    const answer = await ask(`${base}/api/deployment`, { headers: accessHeaders });
    const status = "error" in answer || answer.status !== 200 || !answer.marked ? null : DeploymentStatus.safeParse(safeJson(answer.body));
    if (status === null || !status.success) {
      const detail = "error" in answer ? answer.error : `GET /api/deployment answered ${seen(answer)}${answer.marked ? `: ${errorMessage(answer.body)}` : ""}`;
      for (const check of inside) failed(check, detail, "check the service token: the Access application must allow it (a Service Auth policy)");
    } else {
      const { github, schema, lastWebhookAt } = status.data;
      if (github.problems.length > 0) failed(inside[0]!, github.problems.join("; "), "`npx nixfleet setup` registers the GitHub App; see docs/github.md");
      else if (github.reachable === false) failed(inside[0]!, github.reachProblem ?? "GitHub refused", "check the App's installation on the repository (docs/github.md)");
      else ok(inside[0]!, `${github.repository ?? "?"} answers`);
      if (schema.applied === schema.expected) ok(inside[1]!, schema.applied);
      else failed(inside[1]!, `D1 is at ${schema.applied ?? "no migration"}, the code needs ${schema.expected}`, "npx wrangler d1 migrations apply DB --remote");
      if (lastWebhookAt === null) failed(inside[2]!, "no webhook received yet", `set the App's webhook URL to ${base}/webhooks/github`);
      else {
        const age = now() - Date.parse(lastWebhookAt);
        if (age > options.webhookMaxAgeMs) failed(inside[2]!, `the last one came ${roughDuration(age)} ago`, "check the App's recent deliveries on GitHub");
        else ok(inside[2]!, `the last one came ${roughDuration(age)} ago`);
      }
    }
  }

  // 7. A real poll round trip with a host's token.
  if (options.hostToken === undefined) {
    skipped("a host polls", "pass --host-token FILE to poll as a host");
  } else {
    const answer = await ask(`${base}/api/agent/poll?wait=0`, {
      method: "POST",
      headers: { authorization: `Bearer ${options.hostToken}`, "content-type": "application/json" },
      body: JSON.stringify({ protocol: PROTOCOL_VERSION, agentSession: "nixfleet-doctor-probe", activeCommands: [], acks: [] }),
    });
    if ("error" in answer) failed("a host polls", answer.error, "check the URL");
    else if (answer.access) failed("a host polls", "Cloudflare Access's login", BYPASS_FIX("/api/agent/*"));
    else if (answer.marked && answer.status === 200 && PollResponse.safeParse(safeJson(answer.body)).success) ok("a host polls", "the poll was answered");
    else failed("a host polls", `answered ${seen(answer)}${answer.marked ? `: ${errorMessage(answer.body)}` : ""}`, answer.status === 401 ? "the token is not a current host token: rotate it on the host's page" : "see the Worker's message");
  }
  return results;
}

/** One line per check: ✓ or ✗ (with the fix), or – for a check that could not run. */
export function renderResults(results: readonly CheckResult[]): string {
  return results
    .map((result) =>
      result.status === "ok"
        ? `✓ ${result.check}: ${result.detail}`
        : result.status === "failed"
          ? `✗ ${result.check}: ${result.detail} — fix: ${result.fix}`
          : `– ${result.check}: skipped, ${result.detail}`,
    )
    .join("\n")
    .concat("\n");
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function errorMessage(body: string): string {
  const parsed = ErrorBody.safeParse(safeJson(body));
  return parsed.success ? parsed.data.error.message : body.trim().slice(0, 120);
}
