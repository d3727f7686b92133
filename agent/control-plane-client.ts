/**
 * The agent's HTTP side of the protocol: the long poll and command events.
 * Every answer is parsed with the protocol's schemas; nothing here throws —
 * the caller gets an outcome it can act on (retry, back off, drop).
 */
import { CommandEvent, ErrorBody, PollRequest, PollResponse, SwitchConfirmation, SwitchConfirmed } from "../common/protocol.ts";
import * as z from "zod";
import { answerCause, networkCause, type AnswerCause } from "../common/answer-cause.ts";
import { requestOverNodeHttp, type HttpTransport } from "./http.ts";

export type PollOutcome =
  | { kind: "ok"; response: PollResponse }
  /** The token is unknown or revoked. */
  | { kind: "unauthorized"; message: string }
  /**
   * Network error, cut connection, our own timeout, a 5xx, or an answer that does not parse; `cause` when
   * something else answered for the control plane (Access, a site that is not NixFleet) or TLS failed.
   */
  | { kind: "failed"; message: string; cause?: AnswerCause["cause"] }
  /** The caller aborted (the agent stops, or wants to send a fresh report now). */
  | { kind: "aborted" };

export type EventOutcome =
  /** `serverTiming`: the Worker's Server-Timing marks, when a local deployment sends them (the benchmarks read them). */
  | { kind: "stored"; serverTiming?: string }
  /** 404/409: the command is unknown or already final; the server will not take more events for it. */
  | { kind: "unwanted"; message: string }
  /** 400 and friends: this event will never be accepted; retrying is pointless. */
  | { kind: "rejected"; message: string }
  | { kind: "unauthorized"; message: string }
  /** Worth retrying: network error, timeout, 5xx. */
  | { kind: "retry"; message: string }
  | { kind: "aborted" };

export type ManifestOutcome =
  /** The control plane's answer, not yet checked: anything a compromised one could send. */
  | { kind: "found"; manifest: unknown }
  /** No builder published a manifest for the commit. */
  | { kind: "missing" }
  | { kind: "failed"; message: string };

export interface ControlPlaneClientOptions {
  /** Base URL, e.g. https://fleet.example.com (a path prefix is kept). */
  url: string;
  /** Read at every request, so a rotated token file takes effect without a restart. */
  token: () => string;
  /** Defaults to node:http (agent/http.ts says why not fetch). */
  fetch?: HttpTransport;
  /** How long past the server's hold time before the agent gives up on a poll. */
  pollGraceMs?: number;
  /** Timeout for an event post. */
  eventTimeoutMs?: number;
}

export class ControlPlaneClient {
  readonly #base: string;
  readonly #token: () => string;
  readonly #fetch: HttpTransport;
  readonly #pollGraceMs: number;
  readonly #eventTimeoutMs: number;

  constructor(options: ControlPlaneClientOptions) {
    this.#base = options.url.replace(/\/+$/, "");
    this.#token = options.token;
    this.#fetch = options.fetch ?? requestOverNodeHttp;
    this.#pollGraceMs = options.pollGraceMs ?? 15_000;
    this.#eventTimeoutMs = options.eventTimeoutMs ?? 30_000;
  }

  /** `POST /api/agent/poll?wait=…`: held by the server until a command is queued or the wait ends. */
  async poll(body: PollRequest, waitSeconds: number, signal: AbortSignal): Promise<PollOutcome> {
    const url = `${this.#base}/api/agent/poll?wait=${waitSeconds}`;
    // Checked on the way out too: a bug on our side shows in our log, not as a 400 from the server.
    const request = PollRequest.safeParse(body);
    if (!request.success) return { kind: "failed", message: `the agent built an invalid poll: ${z.prettifyError(request.error)}` };
    const answer = await this.#send("POST", url, request.data, signal, waitSeconds * 1000 + this.#pollGraceMs);
    if (answer.kind === "aborted") return answer;
    if (answer.kind === "network" || answer.kind === "stopped") return { kind: "failed", message: answer.message, ...causeOf(answer) };
    if (answer.status === 401 || answer.status === 403) {
      return { kind: "unauthorized", message: `${answer.status}: ${errorMessage(answer.text)}` };
    }
    if (answer.status !== 200) return { kind: "failed", message: `poll answered ${answer.status}: ${errorMessage(answer.text)}` };
    const parsed = parseJson(answer.text, PollResponse);
    if (!parsed.ok) return { kind: "failed", message: `poll answer is malformed: ${parsed.message}` };
    return { kind: "ok", response: parsed.value };
  }

  /** `POST /api/agent/commands/{id}/events`. */
  async postEvent(commandId: string, event: CommandEvent, signal: AbortSignal): Promise<EventOutcome> {
    const url = `${this.#base}/api/agent/commands/${encodeURIComponent(commandId)}/events`;
    const checked = CommandEvent.safeParse(event);
    if (!checked.success) return { kind: "rejected", message: `the agent built an invalid event: ${z.prettifyError(checked.error)}` };
    const answer = await this.#send("POST", url, checked.data, signal, this.#eventTimeoutMs);
    if (answer.kind === "aborted") return answer;
    if (answer.kind === "network" || answer.kind === "stopped") return { kind: "retry", message: answer.message };
    const message = `${answer.status}: ${errorMessage(answer.text)}`;
    if (answer.status >= 200 && answer.status < 300) return answer.serverTiming === null ? { kind: "stored" } : { kind: "stored", serverTiming: answer.serverTiming };
    if (answer.status === 404 || answer.status === 409 || answer.status === 410) return { kind: "unwanted", message };
    if (answer.status === 401 || answer.status === 403) return { kind: "unauthorized", message };
    if (answer.status === 408 || answer.status === 429 || answer.status >= 500) return { kind: "retry", message };
    return { kind: "rejected", message };
  }

  /**
   * `POST /api/agent/confirm` on a connection opened for it. Only the control plane's own answer
   * confirms: a 200 whose JSON body is a `SwitchConfirmed` for this very command (an Access login
   * page or a proxy's answer is not).
   */
  async confirm(body: SwitchConfirmation, signal: AbortSignal): Promise<{ ok: true } | { ok: false; message: string }> {
    const checked = SwitchConfirmation.safeParse(body);
    if (!checked.success) return { ok: false, message: `the agent built an invalid confirmation: ${z.prettifyError(checked.error)}` };
    const answer = await this.#send("POST", `${this.#base}/api/agent/confirm`, checked.data, signal, this.#eventTimeoutMs, true);
    if (answer.kind === "aborted") return { ok: false, message: "aborted" };
    if (answer.kind === "network" || answer.kind === "stopped") return { ok: false, message: answer.message };
    if (answer.status !== 200) return { ok: false, message: `confirm answered ${answer.status}: ${errorMessage(answer.text)}` };
    const parsed = parseJson(answer.text, SwitchConfirmed);
    if (!parsed.ok) return { ok: false, message: `the answer is not the control plane's confirmation: ${parsed.message}` };
    if (parsed.value.commandId !== body.commandId) return { ok: false, message: `the answer confirms ${parsed.value.commandId}, not ${body.commandId}` };
    return { ok: true };
  }

  /**
   * `GET /cache/manifests/<commit>?tree=<tree>` (docs/cache.md "The signed intent"): a builder's signed
   * manifest of the commit, or else of the latest commit with that tree, unparsed, as the control plane
   * relays it; the host's own rule reads it (common/cache-manifest.ts).
   */
  async manifest(commit: string, tree: string | null, signal: AbortSignal): Promise<ManifestOutcome> {
    const query = tree === null ? "" : `?tree=${encodeURIComponent(tree)}`;
    const answer = await this.#send("GET", `${this.#base}/cache/manifests/${encodeURIComponent(commit)}${query}`, undefined, signal, this.#eventTimeoutMs);
    if (answer.kind === "aborted") return { kind: "failed", message: "stopped" };
    if (answer.kind === "network" || answer.kind === "stopped") return { kind: "failed", message: answer.message };
    if (answer.status === 404) {
      const body = parseJson(answer.text, ErrorBody);
      if (body.ok && body.value.error.code === "manifest_not_found") return { kind: "missing" };
    }
    if (answer.status !== 200) return { kind: "failed", message: `the control plane answered ${answer.status}: ${errorMessage(answer.text)}` };
    try {
      return { kind: "found", manifest: JSON.parse(answer.text) as unknown };
    } catch {
      return { kind: "failed", message: `the manifest is not JSON: ${JSON.stringify(answer.text.slice(0, 120))}` };
    }
  }

  async #send(
    method: "GET" | "POST",
    url: string,
    body: unknown,
    signal: AbortSignal,
    timeoutMs: number,
    freshConnection = false,
  ): Promise<
    | { kind: "http"; status: number; text: string; serverTiming: string | null }
    | { kind: "network"; message: string; cause?: AnswerCause }
    /** Something that is not the Worker answered (answer-cause.ts). */
    | { kind: "stopped"; message: string; cause: AnswerCause }
    | { kind: "aborted" }
  > {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    timer.unref();
    const onAbort = () => controller.abort();
    if (signal.aborted) controller.abort();
    else signal.addEventListener("abort", onAbort, { once: true });
    try {
      const response = await this.#fetch(url, {
        method,
        ...(body === undefined
          ? { headers: { authorization: `Bearer ${this.#token()}` } }
          : { headers: { authorization: `Bearer ${this.#token()}`, "content-type": "application/json" }, body: JSON.stringify(body) }),
        signal: controller.signal,
        redirect: "manual",
        ...(freshConnection ? { freshConnection } : {}),
      });
      // Reading the body is part of the request: a connection cut mid-answer is a network error.
      const text = await response.text();
      const cause = answerCause(url, { status: response.status, header: (name) => response.headers.get(name), body: text });
      if (cause !== null) return { kind: "stopped", message: cause.message, cause };
      return { kind: "http", status: response.status, text, serverTiming: response.headers.get("server-timing") };
    } catch (error) {
      if (signal.aborted && !timedOut) return { kind: "aborted" };
      if (timedOut) return { kind: "network", message: `no answer within ${Math.round(timeoutMs / 1000)} s` };
      const cause = networkCause(url, error);
      return cause === null ? { kind: "network", message: describeNetworkError(error) } : { kind: "network", message: cause.message, cause };
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    }
  }
}

function causeOf(answer: { cause?: AnswerCause }): { cause?: AnswerCause["cause"] } {
  return answer.cause === undefined ? {} : { cause: answer.cause.cause };
}

function parseJson<T extends z.ZodType>(text: string, schema: T): { ok: true; value: z.infer<T> } | { ok: false; message: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, message: `not JSON: ${JSON.stringify(text.slice(0, 120))}` };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) return { ok: false, message: z.prettifyError(parsed.error).slice(0, 500) };
  return { ok: true, value: parsed.data };
}

/** The server's `{error: {message}}` when it sent one, else the start of the body. */
function errorMessage(text: string): string {
  const parsed = parseJson(text, ErrorBody);
  if (parsed.ok) return `${parsed.value.error.code}: ${parsed.value.error.message}`;
  const trimmed = text.trim().slice(0, 200);
  return trimmed === "" ? "(empty body)" : trimmed;
}

function describeNetworkError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // fetch (undici), when a test passes it, puts the useful part (ECONNREFUSED, ECONNRESET…) in `cause`.
  const cause = (error as Error & { cause?: unknown }).cause;
  const causeText = cause instanceof Error ? `: ${(cause as NodeJS.ErrnoException).code ?? cause.message}` : "";
  return `${error.message}${causeText}`;
}
