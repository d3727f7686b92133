/**
 * The only code that talks to the control plane's HTTP API. Every answer is
 * parsed with its zod schema; every failure becomes an `ApiError` whose
 * message can be shown to a person as it is.
 */
import type * as z from "zod";
import type {
  ErrorIssue,
  CommandKind,
  CreateCommandRequest,
  CreateHostRequest,
  MergeAndDeployRequest,
  PlanRolloutRequest,
  SetHoldRequest,
  StartRolloutRequest,
} from "../../common/protocol.ts";
import { answerChecks } from "./answer-checks.ts";
import type { FleetResponse, HealthResponse, MeResponse } from "./schemas.ts";

type Schemas = typeof import("./schemas.ts");
/**
 * A schema of ./schemas.ts by its name, loaded with the others (and zod) the first time an answer needs
 * one: the first table's answers are checked without them (./answer-checks.ts), so zod stays out of the
 * first paint's bundle.
 */
const schemaNamed =
  <K extends keyof Schemas>(name: K) =>
  (): Promise<Schemas[K]> =>
    import("./schemas.ts").then((schemas) => schemas[name]);

export class ApiError extends Error {
  /** HTTP status; 0 when the request never got an answer. */
  readonly status: number;
  /** The worker's error code (`host_busy`, `host_exists`, …) or `network` / `bad_response`. */
  readonly code: string;
  /** Where in the request body each problem is, when the worker said (a refused settings change). */
  readonly issues: ErrorIssue[];
  constructor(status: number, code: string, message: string, issues: ErrorIssue[] = []) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.issues = issues;
  }
}

/** What some kinds take besides their kind: a rollback's target generation, a gc's dry run. */
export type CommandOptions = Pick<CreateCommandRequest, "generation" | "dryRun" | "force">;

export interface ApiOptions {
  /** Defaults to the page's own origin (relative URLs). */
  baseUrl?: string;
  fetch?: typeof fetch;
  /**
   * The fleet answer the page came with (GET / writes it in, worker/fleet-page.ts): the first fleet() takes it
   * instead of asking, so the first table renders in the task that defines the components.
   */
  pageFleet?: string | null;
  /** The health answer the page came with (the same page): the first health() takes it, so the banner is in that task too. */
  pageHealth?: string | null;
  /**
   * The identity the page was written for (the same page): the first me() takes it, so what the role may not do
   * is disabled in the components' first frame, as the written page had it.
   */
  pageMe?: string | null;
}

type Method = "GET" | "POST" | "PUT" | "DELETE";

export class DashboardApi {
  readonly baseUrl: string;
  private readonly fetchImpl: typeof fetch;
  /** The last fleet answer: the same text again (the resynchronising refetch on connect, mostly) needs no second parse. */
  private lastFleet: { text: string; fleet: FleetResponse } | null = null;
  private pageFleet: string | null;
  private pageHealth: string | null;
  private pageMe: string | null;

  constructor(options: ApiOptions = {}) {
    this.baseUrl = (options.baseUrl ?? "").replace(/\/+$/, "");
    // Browsers refuse a fetch called with another `this`.
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.pageFleet = options.pageFleet ?? null;
    this.pageHealth = options.pageHealth ?? null;
    this.pageMe = options.pageMe ?? null;
  }

  health() {
    const answered = this.pageHealth ?? undefined;
    this.pageHealth = null;
    return this.request(schemaNamed("HealthResponse"), "GET", "/api/health", undefined, {
      answered,
      checked: (json) => (answerChecks.health?.(json) ? (json as HealthResponse) : undefined),
    });
  }

  /** Whether the page came with the identity: its first me() then asks nothing and loads no schema. */
  get carriesMe(): boolean {
    return this.pageMe !== null;
  }

  /** Who the dashboard acts as, and the role that decides what it may do. */
  me() {
    const answered = this.pageMe ?? undefined;
    this.pageMe = null;
    return this.request(schemaNamed("MeResponse"), "GET", "/api/me", undefined, {
      answered,
      checked: (json) => (answerChecks.me?.(json) ? (json as MeResponse) : undefined),
    });
  }

  /** The fleet; an answer identical to the last one comes back as the same object, so callers can skip it. */
  async fleet(): Promise<FleetResponse> {
    let text = "";
    const answered = this.pageFleet ?? undefined;
    this.pageFleet = null;
    const fleet = await this.request(schemaNamed("FleetResponse"), "GET", "/api/hosts", undefined, {
      answered,
      known: (raw) => {
        text = raw;
        return this.lastFleet?.text === raw ? this.lastFleet.fleet : undefined;
      },
      checked: (json) => (answerChecks.fleet?.(json) ? (json as FleetResponse) : undefined),
    });
    this.lastFleet = { text, fleet };
    return fleet;
  }

  host(name: string) {
    return this.request(schemaNamed("HostDetail"), "GET", `/api/hosts/${encodeURIComponent(name)}`);
  }

  createHost(request: CreateHostRequest) {
    return this.request(schemaNamed("CreateHostResponse"), "POST", "/api/hosts", request);
  }

  removeHost(name: string) {
    return this.request(schemaNamed("RemoveHostResponse"), "DELETE", `/api/hosts/${encodeURIComponent(name)}`);
  }

  rotateToken(name: string) {
    return this.request(schemaNamed("RotateTokenResponse"), "POST", `/api/hosts/${encodeURIComponent(name)}/token`, {});
  }

  async sendCommand(host: string, kind: CommandKind, options: CommandOptions = {}) {
    const body = await this.request(schemaNamed("CommandResponse"), "POST", `/api/hosts/${encodeURIComponent(host)}/commands`, { kind, ...options });
    return body.command;
  }

  async hostCommands(host: string, limit = 50) {
    const body = await this.request(schemaNamed("CommandsResponse"), "GET", `/api/hosts/${encodeURIComponent(host)}/commands?limit=${limit}`);
    return body.commands;
  }

  async command(id: string) {
    const body = await this.request(schemaNamed("CommandResponse"), "GET", `/api/commands/${encodeURIComponent(id)}`);
    return body.command;
  }

  /** One page of a command's output after sequence number `after` (-1: from the start). */
  commandOutput(id: string, after = -1) {
    return this.request(schemaNamed("OutputResponse"), "GET", `/api/commands/${encodeURIComponent(id)}/output?after=${after}`);
  }

  async audit(options: { limit?: number; before?: number } = {}) {
    const params = new URLSearchParams({ limit: String(options.limit ?? 100) });
    if (options.before !== undefined) params.set("before", String(options.before));
    const body = await this.request(schemaNamed("AuditResponse"), "GET", `/api/audit?${params}`);
    return body.entries;
  }

  /** What a deploy would do now; nothing is sent. */
  async planRollout(request: PlanRolloutRequest) {
    return (await this.request(schemaNamed("PlanResponse"), "POST", "/api/rollouts/plan", request)).plan;
  }

  /** Deploy the branch head (or `commit`); supersedes a running rollout. */
  async startRollout(request: Partial<StartRolloutRequest>) {
    return (await this.request(schemaNamed("RolloutResponse"), "POST", "/api/rollouts", request)).rollout;
  }

  /** Merges the update PR on GitHub and starts the rollout of its merge commit. */
  async mergeAndDeploy(pr: number, request: Partial<MergeAndDeployRequest>) {
    return (await this.request(schemaNamed("RolloutResponse"), "POST", `/api/update-prs/${pr}/merge-and-deploy`, request)).rollout;
  }

  /** Builds the update PR's head on every host again (docs/fleet-build.md); the answer is the new fleet build. */
  async buildUpdatePr(pr: number) {
    return (await this.request(schemaNamed("FleetBuildResponse"), "POST", `/api/update-prs/${pr}/build`, {})).fleetBuild;
  }

  /** The update PRs with their fleet builds, which the fleet answer leaves out. */
  async updatePrs() {
    return (await this.request(schemaNamed("UpdatePrsResponse"), "GET", "/api/update-prs")).updatePrs;
  }

  /** The automation's merge of an update PR, now (409 ci_not_green while CI has not passed). */
  async mergeUpdatePrNow(pr: number) {
    return (await this.request(schemaNamed("AutomationResponse"), "POST", `/api/update-prs/${pr}/merge-now`, {})).automation;
  }

  /** The automation leaves the update PR's current head alone. */
  async skipUpdatePr(pr: number) {
    return (await this.request(schemaNamed("AutomationResponse"), "POST", `/api/update-prs/${pr}/skip`, {})).automation;
  }

  /** Newest first; `before` is the id of the last rollout of the previous page. */
  async rollouts(options: { limit?: number; before?: string } = {}) {
    const params = new URLSearchParams({ limit: String(options.limit ?? 20) });
    if (options.before !== undefined) params.set("before", options.before);
    return (await this.request(schemaNamed("RolloutsResponse"), "GET", `/api/rollouts?${params}`)).rollouts;
  }

  rollout(id: string) {
    return this.request(schemaNamed("RolloutDetail"), "GET", `/api/rollouts/${encodeURIComponent(id)}`);
  }

  async cancelRollout(id: string) {
    return (await this.request(schemaNamed("RolloutResponse"), "POST", `/api/rollouts/${encodeURIComponent(id)}/cancel`, {})).rollout;
  }

  async setHold(host: string, request: SetHoldRequest) {
    return (await this.request(schemaNamed("HoldResponse"), "PUT", `/api/hosts/${encodeURIComponent(host)}/hold`, request)).hold;
  }

  async releaseHold(host: string): Promise<void> {
    await this.request(schemaNamed("OkResponse"), "DELETE", `/api/hosts/${encodeURIComponent(host)}/hold`);
  }

  /**
   * One API call, its answer parsed with `schema` (or the function that loads it). Public for the data
   * modules of rarely shown pages (ui/data/notifications.ts), whose schemas stay out of the first paint's bundle.
   * `known` may hand back an answer already parsed from the same text; `checked`, the answer itself when a
   * check without zod finds it to be what zod would return (./answer-checks.ts).
   */
  async request<S extends z.ZodType>(
    schema: S | (() => Promise<S>),
    method: Method,
    path: string,
    body?: unknown,
    shortcuts: {
      known?: (text: string) => z.output<S> | undefined;
      checked?: (json: unknown) => z.output<S> | undefined;
      /** The answer's text, had without a request (a 200's). */
      answered?: string;
    } = {},
  ): Promise<z.output<S>> {
    const answered = shortcuts.answered;
    const { ok, status, statusText, text } = answered !== undefined ? { ok: true, status: 200, statusText: "", text: answered } : await this.send(method, path, body);
    const parsedBefore = ok ? shortcuts.known?.(text) : undefined;
    if (parsedBefore !== undefined) return parsedBefore;
    let json: unknown = undefined;
    try {
      json = text === "" ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!ok) {
      const error = (await schemaNamed("ErrorBody")()).safeParse(json);
      if (error.success) throw new ApiError(status, error.data.error.code, error.data.error.message, error.data.error.issues);
      throw new ApiError(status, "http_error", `${method} ${path} failed: ${status}${statusText ? ` ${statusText}` : ""}`);
    }
    const checked = shortcuts.checked?.(json);
    if (checked !== undefined) return checked;
    const parsed = (typeof schema === "function" ? await schema() : schema).safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue ? `${issue.path.join(".") || "(root)"}: ${issue.message}` : "unreadable";
      throw new ApiError(status, "bad_response", `unexpected answer from ${method} ${path} (${where})`);
    }
    return parsed.data;
  }

  private async send(method: Method, path: string, body: unknown): Promise<{ ok: boolean; status: number; statusText: string; text: string }> {
    let response: Response;
    try {
      response = await this.fetchImpl(`${this.baseUrl}${path}`, {
        method,
        headers: body === undefined ? { accept: "application/json" } : { accept: "application/json", "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
      });
    } catch (err) {
      throw new ApiError(0, "network", `cannot reach the control plane: ${err instanceof Error ? err.message : String(err)}`);
    }
    return { ok: response.ok, status: response.status, statusText: response.statusText, text: await response.text() };
  }
}
