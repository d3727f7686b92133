// GET /metrics: its own bearer auth outside Access, and what it exposes,
// read back with a real Prometheus text-format parser.
import { env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import parsePrometheusTextFormat, { type ParsedFamily } from "parse-prometheus-text-format";
import { describe, expect, it } from "vitest";
import { ErrorBody, PollResponse } from "../../common/protocol.ts";
import { app } from "../../worker/index.ts";
import { renderExposition } from "../../worker/metrics/exposition.ts";
import { MinuteWindow } from "../../worker/metrics/window.ts";
import { agentFetch, api, createHost, pollBody, sampleReport } from "./helpers.ts";

const stub = () => env.COORDINATOR.getByName("fleet");
const TOKEN = "test-metrics-token";

function scrape(token: string | null = TOKEN): Promise<Response> {
  const headers = new Headers();
  if (token !== null) headers.set("authorization", `Bearer ${token}`);
  return exports.default.fetch(new Request("http://localhost/metrics", { headers }));
}

async function exposition(): Promise<string> {
  const res = await scrape();
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("text/plain; version=0.0.4");
  return res.text();
}

async function metrics(): Promise<Map<string, ParsedFamily>> {
  return new Map(parsePrometheusTextFormat(await exposition()).map((family) => [family.name, family]));
}

/**
 * One series of a histogram. The parser folds a histogram's series into one
 * when they carry labels besides `le`, so this hands it the family with only
 * that series, its own label taken off.
 */
function histogramSeries(text: string, name: string, label: string, labelValue: string): { buckets: Record<string, string>; count?: string; sum?: string } {
  const own = `${label}="${labelValue}"`;
  const lines = text
    .split("\n")
    .filter((line) => line === `# TYPE ${name} histogram` || (line.startsWith(name) && line.includes(own)))
    .map((line) => line.replace(`{${own}}`, "").replace(`${own},`, ""));
  const [family] = parsePrometheusTextFormat(`${lines.join("\n")}\n`);
  expect(family?.type).toBe("HISTOGRAM");
  const series = family!.metrics[0]!;
  return { buckets: series.buckets ?? {}, count: series.count, sum: series.sum };
}

/** The value of the sample of `name` whose labels include `labels`. */
function value(families: Map<string, ParsedFamily>, name: string, labels: Record<string, string> = {}): number | undefined {
  const sample = families.get(name)?.metrics.find((m) => Object.entries(labels).every(([key, v]) => m.labels?.[key] === v));
  return sample?.value === undefined ? undefined : Number(sample.value);
}

/** An agent that polls once with its report and runs one queued command to `outcome`. */
async function runCommand(token: string, session: string, host: string, kind: string, outcome: "succeeded" | "failed"): Promise<void> {
  expect((await api(`/api/hosts/${host}/commands`, { method: "POST", json: { kind } })).status).toBe(202);
  const { commands } = PollResponse.parse(await (await agentFetch(token, "/poll?wait=0", pollBody({ agentSession: session }))).json());
  const command = commands.find((c) => c.kind === kind)!;
  const started = new Date(Date.now() - 42_000).toISOString();
  expect((await agentFetch(token, `/commands/${command.id}/events`, { type: "started", at: started })).status).toBe(200);
  const finished = { type: "finished", at: new Date().toISOString(), outcome, exitCode: outcome === "succeeded" ? 0 : 1 };
  expect((await agentFetch(token, `/commands/${command.id}/events`, finished)).status).toBe(200);
}

describe("the exposition writer and the minute window", () => {
  it("escapes label values and help text so a parser reads them back exactly", () => {
    const awkward = 'a "quoted" back\\slash\nnew line';
    const text = renderExposition([
      { name: "x_total", help: "help with \\ and\na new line", type: "counter", samples: [{ labels: { what: awkward }, value: 3 }] },
      { name: "y", help: "special values", type: "gauge", samples: [{ labels: { v: "inf" }, value: Number.POSITIVE_INFINITY }, { labels: { v: "nan" }, value: Number.NaN }] },
    ]);
    const [x, y] = parsePrometheusTextFormat(text);
    expect(x).toMatchObject({ name: "x_total", type: "COUNTER", help: "help with \\ and\na new line", metrics: [{ labels: { what: awkward }, value: "3" }] });
    expect(y!.metrics.map((m) => m.value)).toEqual(["+Inf", "NaN"]);
  });

  it.each([
    { adds: [0, 500, 59_999], at: 59_999, expected: 3, why: "everything within the minute counts" },
    { adds: [0, 500, 59_999], at: 60_000, expected: 1, why: "the first second drops out after 60 s" },
    { adds: [1_000, 61_000], at: 61_000, expected: 1, why: "a slot reused a minute later starts from zero" },
    { adds: [0], at: 10 * 60_000, expected: 0, why: "an idle window reads zero" },
  ])("minute window: $why", ({ adds, at, expected }) => {
    const window = new MinuteWindow();
    for (const t of adds) window.add(t);
    expect(window.count(at)).toBe(expected);
  });
});

describe("GET /metrics: its own bearer token, not Access", () => {
  it("refuses a scrape without the token, or with a wrong one, in the one error shape", async () => {
    for (const [token, status] of [[null, 401], ["wrong-token", 401], ["", 400]] as const) {
      const res = await scrape(token);
      expect(res.status, `token ${token}`).toBe(status);
      expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
      expect(ErrorBody.safeParse(await res.json()).success).toBe(true);
    }
  });

  it("answers 503 saying to set METRICS_TOKEN when none is configured", async () => {
    const res = await app.request("/metrics", { headers: { authorization: `Bearer ${TOKEN}` } }, { ...env, METRICS_TOKEN: undefined });
    expect(res.status).toBe(503);
    const body = ErrorBody.parse(await res.json());
    expect(body.error.code).toBe("metrics_not_configured");
    expect(body.error.message).toContain("METRICS_TOKEN");
  });

  it("needs no Cloudflare Access assertion where the dashboard API does", async () => {
    const withAccess = { ...env, ACCESS_AUD: "aud-tag", ACCESS_TEAM_DOMAIN: "https://team.cloudflareaccess.com" };
    expect((await app.request("/api/hosts", {}, withAccess)).status).toBe(401);
    const res = await app.request("/metrics", { headers: { authorization: `Bearer ${TOKEN}` } }, withAccess);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("nixfleet_hosts ");
  });
});

describe("GET /metrics: what a scrape exposes", () => {
  it("hosts by compartment and state, hosts online, commands by kind and outcome with their durations, polls and reports per minute", async () => {
    const before = await metrics();
    const polls = value(before, "nixfleet_agent_polls_per_minute")!;
    const a = await createHost("metrics-a");
    const b = await createHost("metrics-b");
    for (const [host, name] of [[a, "metrics-a"], [b, "metrics-b"]] as const) {
      const res = await agentFetch(host.token, "/poll?wait=0", pollBody({ agentSession: `s-${name}`, report: sampleReport({ hostname: name }) }));
      expect(res.status).toBe(200);
    }
    await runCommand(a.token, "s-metrics-a", "metrics-a", "test", "succeeded");
    await runCommand(b.token, "s-metrics-b", "metrics-b", "pull", "failed");

    const text = await exposition();
    const after = new Map(parsePrometheusTextFormat(text).map((family) => [family.name, family]));
    const hosts = value(after, "nixfleet_hosts")!;
    expect(hosts).toBeGreaterThanOrEqual(2);
    expect(value(after, "nixfleet_hosts_online")).toBeGreaterThanOrEqual(2);
    for (const compartment of ["agent", "git", "lock", "system", "tests"]) {
      const states = after.get("nixfleet_host_compartments")!.metrics.filter((m) => m.labels?.compartment === compartment);
      expect(states.map((m) => m.labels?.state).sort()).toEqual(["blue", "gray", "green", "red", "yellow"]);
      expect(states.reduce((sum, m) => sum + Number(m.value), 0), compartment).toBe(hosts);
    }
    expect(after.get("nixfleet_commands_total")?.type).toBe("COUNTER");
    expect(value(after, "nixfleet_commands_total", { kind: "test", outcome: "succeeded" })).toBe(1);
    expect(value(after, "nixfleet_commands_total", { kind: "pull", outcome: "failed" })).toBe(1);
    expect(value(after, "nixfleet_commands_total", { kind: "switch", outcome: "succeeded" })).toBe(0);

    expect(after.get("nixfleet_command_duration_seconds")?.type).toBe("HISTOGRAM");
    const test = histogramSeries(text, "nixfleet_command_duration_seconds", "kind", "test");
    expect(Number(test.count)).toBe(1);
    expect(Number(test.sum)).toBeGreaterThanOrEqual(42);
    // It ran 42 s: counted in the 60 s bucket and every one above, not in the 30 s one.
    expect(Number(test.buckets["30"])).toBe(0);
    expect(Number(test.buckets["60"])).toBe(1);
    expect(Number(test.buckets["+Inf"])).toBe(1);
    expect(Number(histogramSeries(text, "nixfleet_command_duration_seconds", "kind", "switch").count)).toBe(0);

    expect(value(after, "nixfleet_agent_polls_per_minute")).toBeGreaterThanOrEqual(polls + 4);
    expect(value(after, "nixfleet_agent_reports_per_minute")).toBeGreaterThanOrEqual(2);
    expect(value(after, "nixfleet_commands_active", { kind: "test", state: "running" })).toBe(0);
  });

  it("command totals are stored, not in memory: they survive the coordinator's restart", async () => {
    const totalBefore = value(await metrics(), "nixfleet_commands_total", { kind: "test", outcome: "succeeded" })!;
    const host = await createHost("metrics-restart");
    await agentFetch(host.token, "/poll?wait=0", pollBody({ agentSession: "s-restart", report: sampleReport() }));
    await runCommand(host.token, "s-restart", "metrics-restart", "test", "succeeded");
    await evictDurableObject(stub());
    expect(value(await metrics(), "nixfleet_commands_total", { kind: "test", outcome: "succeeded" })).toBe(totalBefore + 1);
  });

  it("rollouts by state, kept as each rollout moves", async () => {
    const host = await createHost("metrics-rollout");
    await agentFetch(host.token, "/poll?wait=0", pollBody({ agentSession: "s-rollout", report: sampleReport() }));
    const before = await metrics();
    const started = await api("/api/rollouts", { method: "POST", json: { commit: "c".repeat(40), hosts: ["metrics-rollout"] } });
    expect(started.status, await started.clone().text()).toBe(201);
    const { rollout } = await started.json<{ rollout: { id: string; state: string } }>();
    const running = await metrics();
    expect(value(running, "nixfleet_rollouts", { state: rollout.state })).toBe(value(before, "nixfleet_rollouts", { state: rollout.state })! + 1);
    expect((await api(`/api/rollouts/${rollout.id}/cancel`, { method: "POST" })).status).toBe(200);
    const cancelled = await metrics();
    expect(value(cancelled, "nixfleet_rollouts", { state: "cancelled" })).toBe(value(before, "nixfleet_rollouts", { state: "cancelled" })! + 1);
    expect(value(cancelled, "nixfleet_rollouts", { state: rollout.state })).toBe(value(before, "nixfleet_rollouts", { state: rollout.state }));
    expect(cancelled.get("nixfleet_rollouts")!.metrics.map((m) => m.labels?.state).sort()).toEqual(
      ["cancelled", "failed", "planned", "running", "soaking", "succeeded", "waiting-window"],
    );
  });

  it("the age of the newest webhook delivery, and none before the first", async () => {
    await env.DB.prepare("delete from github_deliveries").run();
    expect((await metrics()).get("nixfleet_github_webhook_last_age_seconds")?.metrics ?? []).toEqual([]);
    const at = new Date(Date.now() - 90_000).toISOString();
    await env.DB.prepare("insert into github_deliveries (id, event, action, received_at, outcome, attempts) values (?, 'push', null, ?, 'processed', 1)")
      .bind(crypto.randomUUID(), at)
      .run();
    const age = value(await metrics(), "nixfleet_github_webhook_last_age_seconds")!;
    expect(age).toBeGreaterThanOrEqual(90);
    expect(age).toBeLessThan(120);
  });

  it("GitHub's rate limit: the newest reading the coordinator is told, kept across a restart, an older one arriving late ignored", async () => {
    // Readings reach the coordinator from the Worker's GitHub clients: test/worker/github-rate-limit.test.ts proves that wiring.
    expect((await metrics()).get("nixfleet_github_rate_limit_remaining")?.metrics ?? []).toEqual([]);
    await stub().recordGitHubRateLimit({ remaining: 4321, limit: 5000, resetAt: "2030-01-01T00:00:00.000Z", at: new Date().toISOString() });
    expect(value(await metrics(), "nixfleet_github_rate_limit_remaining")).toBe(4321);
    await stub().recordGitHubRateLimit({ remaining: 1, limit: 5000, resetAt: null, at: "2000-01-01T00:00:00.000Z" });
    await evictDurableObject(stub());
    expect(value(await metrics(), "nixfleet_github_rate_limit_remaining")).toBe(4321);
  });

  it("command totals do not come from the command history: pruned commands stay counted", async () => {
    const before = value(await metrics(), "nixfleet_commands_total", { kind: "test", outcome: "succeeded" })!;
    expect(before).toBeGreaterThan(0);
    await runInDurableObject(stub(), (_instance, state) => {
      state.storage.sql.exec("delete from command_output");
      state.storage.sql.exec("delete from commands");
    });
    expect(value(await metrics(), "nixfleet_commands_total", { kind: "test", outcome: "succeeded" })).toBe(before);
  });
});

describe("GET /metrics: reboots needed", () => {
  it("counts the hosts whose latest report says a reboot is needed, and stops counting one once it rebooted", async () => {
    const reboot = (needed: boolean) => ({ value: { needed, changed: needed ? ["kernel" as const] : [], kernel: needed ? { booted: "6.6.1", next: "6.6.8" } : null } });
    const report = (name: string, needed: boolean | null) => {
      const base = sampleReport({ hostname: name });
      return { ...base, system: { ...base.system, ...(needed === null ? {} : { reboot: reboot(needed) }) } };
    };
    const send = async (token: string, name: string, needed: boolean | null) => {
      expect((await agentFetch(token, "/poll?wait=0", pollBody({ agentSession: `s-${name}`, report: report(name, needed) }))).status).toBe(200);
    };
    const before = value(await metrics(), "nixfleet_hosts_reboot_needed")!;
    expect(before).toBeGreaterThanOrEqual(0);
    const due = await createHost("reboot-due");
    const none = await createHost("reboot-none");
    const older = await createHost("reboot-older");
    await send(due.token, "reboot-due", true);
    await send(none.token, "reboot-none", false);
    await send(older.token, "reboot-older", null);

    const families = await metrics();
    expect(families.get("nixfleet_hosts_reboot_needed")?.type).toBe("GAUGE");
    expect(value(families, "nixfleet_hosts_reboot_needed")).toBe(before + 1);

    await send(due.token, "reboot-due", false);
    expect(value(await metrics(), "nixfleet_hosts_reboot_needed")).toBe(before);
  });
});
