/**
 * A small real HTTP server on 127.0.0.1 that speaks the agent protocol:
 * `POST /api/agent/poll` (long poll, answered at once when a command is queued)
 * `POST /api/agent/commands/:id/events`, `POST /api/agent/confirm` and the builders' signed manifests,
 * `GET /cache/manifests/:commit` (served as stored, untrusted, as the Worker would), and a builder's uploads with
 * the cache token (`HEAD`/`PUT` narinfos, `PUT` NARs, `PUT` manifests, kept as sent). Every body is validated with the
 * protocol's zod schemas; anything that does not parse is recorded in
 * `protocolErrors` (tests assert it stays empty) and answered 400.
 *
 * Delivery follows the contract: a delivered command counts as received only
 * when the next poll acks it; otherwise it is delivered again.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { z } from "zod";
import {
  COMMAND_DEADLINE_SECONDS,
  CommandEvent,
  PollRequest,
  PROTOCOL_VERSION,
  WORKER_MARKER_HEADER,
  SignedCacheManifest,
  SwitchConfirmation,
  type ActivationMode,
  type CommandDelivery,
  type CommandKind,
  type OutputChunk,
  type PollResponse,
  type Report,
  type SwitchConfirmed,
} from "../../common/protocol.ts";

export type FinishedEvent = Extract<CommandEvent, { type: "finished" }>;

export interface FakeCommand {
  delivery: CommandDelivery;
  state: "queued" | "delivered" | "acked" | "final";
  /** How many poll answers carried it. */
  deliveries: number;
  /** Indexes (in `polls`) of the polls whose answers carried it. */
  deliveredInPolls: number[];
  events: CommandEvent[];
  /** Output chunks by seq (a retried post does not duplicate). */
  chunks: Map<number, OutputChunk>;
}

export interface RecordedPoll {
  at: number;
  request: PollRequest;
}

interface Held {
  wake: () => void;
}

export class FakeControlPlane {
  readonly url: string;
  token: string;
  readonly polls: RecordedPoll[] = [];
  readonly protocolErrors: string[] = [];
  readonly commands = new Map<string, FakeCommand>();
  /** Polls that arrived with a wrong or missing token. */
  unauthorizedPolls = 0;
  /** Answers for the next polls instead of the protocol (status and raw body). */
  readonly pollFaults: Array<{ status: number; body: string }> = [];
  /**
   * Answers for the next event posts instead of 200: only for events of `type`
   * when given; `afterStoring` keeps the event first (an answer lost on the way back).
   */
  readonly eventFaults: Array<{ status: number; body: string; type?: CommandEvent["type"]; afterStoring?: boolean }> = [];
  /** Set `wantReport` in the next poll answer. */
  wantReport = false;
  /** Main's head in every poll answer, as the worker fills it from the push webhook; null leaves it out. */
  main: { branch: string; commit: string } | null = null;
  /** Every `POST /api/agent/confirm`, parsed, with the remote port of its connection. */
  readonly confirmations: Array<{ at: number; request: SwitchConfirmation; remotePort: number | undefined }> = [];
  /** Answers for the next confirmations instead of the protocol (an Access login page, say). */
  readonly confirmFaults: Array<{ status: number; contentType: string; body: string }> = [];
  /** What `GET /cache/manifests/:commit` answers, by commit: anything, signed or not (the host must judge it). */
  readonly manifests = new Map<string, unknown>();
  /** What it answers for `?tree=` when it has nothing for the commit (a merge of an update PR's head). */
  readonly manifestsByTree = new Map<string, unknown>();
  /** The commits the agent asked a manifest for, in order. */
  readonly manifestRequests: string[] = [];
  /** The cache token a builder uploads with. */
  readonly cacheToken = `cache-${randomBytes(12).toString("hex")}`;
  /** What a builder uploaded: narinfos by their `<hash>.narinfo` name, NAR names, manifests by commit. */
  readonly uploadedNarinfos = new Map<string, string>();
  readonly uploadedNars: string[] = [];
  readonly publishedManifests = new Map<string, unknown>();

  readonly #server: Server;
  readonly #holdCapSeconds: number;
  readonly #held = new Set<Held>();
  /** Every report the agent sent, in the order they arrived. */
  readonly #reports: Report[] = [];

  private constructor(server: Server, url: string, token: string, holdCapSeconds: number) {
    this.#server = server;
    this.url = url;
    this.token = token;
    this.#holdCapSeconds = holdCapSeconds;
  }

  /** Starts the server on an ephemeral port. `holdCapSeconds` caps the long poll's hold. */
  static async start(options: { token?: string; holdCapSeconds?: number } = {}): Promise<FakeControlPlane> {
    let plane: FakeControlPlane | undefined;
    const server = createServer((req, res) => {
      // It stands in for the Worker, whose every answer carries the marker (common/protocol/errors.ts).
      res.setHeader(WORKER_MARKER_HEADER, "1");
      void plane?.handle(req, res).catch((error: unknown) => {
        plane?.protocolErrors.push(`server error: ${String(error)}`);
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    plane = new FakeControlPlane(server, `http://127.0.0.1:${port}`, options.token ?? "test-token", options.holdCapSeconds ?? 30);
    return plane;
  }

  async close(): Promise<void> {
    for (const held of this.#held) held.wake();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** Queues a command for the agent; answers a held poll at once. */
  queue(
    kind: CommandKind,
    options: { target?: string; id?: string; commit?: string; deadlineSeconds?: number; activation?: ActivationMode } & Partial<Pick<CommandDelivery, "generation" | "dryRun" | "gc" | "builds">> = {},
  ): string {
    const id = options.id ?? `cmd_${randomBytes(9).toString("base64url")}`;
    const now = Date.now();
    this.commands.set(id, {
      delivery: {
        id,
        kind,
        target: options.target ?? null,
        commit: options.commit ?? null,
        generation: options.generation ?? null,
        dryRun: options.dryRun ?? false,
        gc: options.gc ?? null,
        activation: options.activation ?? null,
        builds: options.builds ?? [],
        createdAt: new Date(now).toISOString(),
        deadlineAt: new Date(now + (options.deadlineSeconds ?? COMMAND_DEADLINE_SECONDS[kind]) * 1000).toISOString(),
      },
      state: "queued",
      deliveries: 0,
      deliveredInPolls: [],
      events: [],
      chunks: new Map(),
    });
    this.#wakeAll();
    return id;
  }

  /** Delivers a command again, as a server that lost track of the ack would. */
  redeliver(id: string): void {
    const command = this.#command(id);
    command.state = "queued";
    this.#wakeAll();
  }

  events(id: string): CommandEvent[] {
    return this.#command(id).events;
  }

  finished(id: string): FinishedEvent | undefined {
    return this.#command(id).events.find((event): event is FinishedEvent => event.type === "finished");
  }

  /** The command's output as the server stored it, in seq order. */
  output(id: string): string {
    return [...this.#command(id).chunks.values()]
      .sort((a, b) => a.seq - b.seq)
      .map((chunk) => chunk.data)
      .join("");
  }

  /** The most recent report the agent sent: with a poll, or with a command's end (the Worker stores both as the host's latest). */
  lastReport(): Report | undefined {
    return this.#reports.at(-1);
  }

  /** Sets main's head and answers a held poll at once, as the worker does after a push. */
  moveMain(commit: string, branch = "main"): void {
    this.main = { branch, commit };
    this.#wakeAll();
  }

  /** Waits until `probe` returns something other than undefined/false. */
  async waitFor<T>(probe: () => T | undefined | false, what: string, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = probe();
      if (value !== undefined && value !== false) return value;
      if (Date.now() > deadline) {
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; protocol errors: ${JSON.stringify(this.protocolErrors)}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  waitForFinished(id: string, timeoutMs = 30_000): Promise<FinishedEvent> {
    return this.waitFor(() => this.finished(id), `the finished event of ${id}`, timeoutMs);
  }

  /** Waits for a poll after the `from`-th one that satisfies `probe`. */
  waitForPoll(probe: (poll: RecordedPoll) => boolean, what: string, from = 0, timeoutMs = 30_000): Promise<RecordedPoll> {
    return this.waitFor(() => this.polls.slice(from).find(probe), what, timeoutMs);
  }

  #command(id: string): FakeCommand {
    const command = this.commands.get(id);
    if (command === undefined) throw new Error(`no command ${id}`);
    return command;
  }

  #wakeAll(): void {
    for (const held of this.#held) held.wake();
  }

  // -- HTTP ----------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    const body = await readBody(req);
    const authorized = req.headers.authorization === `Bearer ${this.token}`;
    const manifest = /^\/cache\/manifests\/([^/]+)$/.exec(url.pathname);
    if (manifest !== null && req.method === "GET") {
      if (!authorized) return sendError(res, 401, "unauthorized", "unknown or revoked agent token");
      const commit = decodeURIComponent(manifest[1]!);
      this.manifestRequests.push(commit);
      const tree = url.searchParams.get("tree");
      const served = this.manifests.has(commit) ? this.manifests.get(commit) : tree === null ? undefined : this.manifestsByTree.get(tree);
      if (served === undefined) return sendError(res, 404, "manifest_not_found", `no signed manifest for ${commit} yet`);
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(served));
      return;
    }
    const upload = /^\/cache\/(manifests\/[^/]+|nar\/[^/]+|[^/]+\.narinfo)$/.exec(url.pathname);
    if (upload !== null && (req.method === "PUT" || req.method === "HEAD")) {
      if (req.headers.authorization !== `Bearer ${this.cacheToken}`) return sendError(res, 401, "unauthorized", "uploads take the cache token");
      return this.#upload(upload[1]!, req.method, body, res);
    }
    if (req.method !== "POST") return sendError(res, 405, "method_not_allowed", "POST only");
    if (url.pathname === "/api/agent/poll") {
      if (!authorized) {
        this.unauthorizedPolls++;
        return sendError(res, 401, "unauthorized", "unknown or revoked agent token");
      }
      return this.#poll(url, body, req, res);
    }
    if (url.pathname === "/api/agent/confirm") {
      if (!authorized) return sendError(res, 401, "unauthorized", "unknown or revoked agent token");
      return this.#confirm(body, req, res);
    }
    const match = /^\/api\/agent\/commands\/([^/]+)\/events$/.exec(url.pathname);
    if (match !== null) {
      if (!authorized) return sendError(res, 401, "unauthorized", "unknown or revoked agent token");
      return this.#event(decodeURIComponent(match[1]!), body, res);
    }
    return sendError(res, 404, "not_found", `no route ${url.pathname}`);
  }

  #upload(key: string, method: string, body: string, res: ServerResponse): void {
    if (key.endsWith(".narinfo")) {
      if (method === "HEAD") return void res.writeHead(this.uploadedNarinfos.has(key) ? 200 : 404).end();
      this.uploadedNarinfos.set(key, body);
    } else if (key.startsWith("nar/")) {
      this.uploadedNars.push(key.slice("nar/".length));
    } else {
      const signed = parse(body, SignedCacheManifest);
      if (!signed.ok) {
        this.protocolErrors.push(`manifest: ${signed.message}`);
        return sendError(res, 400, "invalid_request", signed.message);
      }
      this.publishedManifests.set(signed.value.manifest.commit, signed.value);
      res.writeHead(201, { "content-type": "application/json" }).end(JSON.stringify({ commit: signed.value.manifest.commit, hosts: Object.keys(signed.value.manifest.hosts).length }));
      return;
    }
    res.writeHead(201).end();
  }

  async #poll(url: URL, text: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parsed = parse(text, PollRequest);
    if (!parsed.ok) {
      this.protocolErrors.push(`poll: ${parsed.message}`);
      return sendError(res, 400, "invalid_request", parsed.message);
    }
    const request = parsed.value;
    const pollIndex = this.polls.push({ at: Date.now(), request }) - 1;
    if (request.report !== undefined) this.#reports.push(request.report);
    const fault = this.pollFaults.shift();
    if (fault !== undefined) {
      res.writeHead(fault.status, { "content-type": "application/json" }).end(fault.body);
      return;
    }
    for (const id of request.acks) {
      const command = this.commands.get(id);
      if (command?.state === "delivered") command.state = "acked";
    }
    // Delivered in an answer the agent never acknowledged: deliver again.
    for (const command of this.commands.values()) {
      if (command.state === "delivered") command.state = "queued";
    }
    const wait = Math.min(Number(url.searchParams.get("wait") ?? "30"), this.#holdCapSeconds);
    const closed = new Promise<void>((resolve) => res.once("close", resolve));
    if (this.#deliverable().length === 0) {
      await new Promise<void>((resolve) => {
        const held: Held = { wake: () => finish() };
        const timer = setTimeout(() => finish(), wait * 1000);
        const finish = () => {
          clearTimeout(timer);
          this.#held.delete(held);
          resolve();
        };
        this.#held.add(held);
        void closed.then(finish);
      });
    }
    if (res.destroyed || res.writableEnded) return;
    const commands = this.#deliverable();
    for (const command of commands) {
      command.state = "delivered";
      command.deliveries++;
      command.deliveredInPolls.push(pollIndex);
    }
    const answer: PollResponse = {
      protocol: PROTOCOL_VERSION,
      commands: commands.map((command) => command.delivery),
      wantReport: this.wantReport,
      pollTimeoutSeconds: Math.max(1, wait),
      ...(this.main !== null ? { main: this.main } : {}),
    };
    this.wantReport = false;
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
  }

  #confirm(text: string, req: IncomingMessage, res: ServerResponse): void {
    const parsed = parse(text, SwitchConfirmation);
    if (!parsed.ok) {
      this.protocolErrors.push(`confirm: ${parsed.message}`);
      return sendError(res, 400, "invalid_request", parsed.message);
    }
    this.confirmations.push({ at: Date.now(), request: parsed.value, remotePort: req.socket.remotePort });
    const fault = this.confirmFaults.shift();
    if (fault !== undefined) {
      res.writeHead(fault.status, { "content-type": fault.contentType }).end(fault.body);
      return;
    }
    const command = this.commands.get(parsed.value.commandId);
    if (command === undefined) return sendError(res, 404, "unknown_command", `no command ${parsed.value.commandId}`);
    const answer: SwitchConfirmed = { confirmed: true, commandId: parsed.value.commandId, system: parsed.value.system };
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
  }

  #deliverable(): FakeCommand[] {
    return [...this.commands.values()].filter((command) => command.state === "queued");
  }

  #event(id: string, text: string, res: ServerResponse): void {
    const parsed = parse(text, CommandEvent);
    if (!parsed.ok) {
      this.protocolErrors.push(`event for ${id}: ${parsed.message}`);
      return sendError(res, 400, "invalid_request", parsed.message);
    }
    const event = parsed.value;
    const faultIndex = this.eventFaults.findIndex((fault) => fault.type === undefined || fault.type === event.type);
    const fault = faultIndex >= 0 ? this.eventFaults.splice(faultIndex, 1)[0] : undefined;
    if (fault !== undefined && !fault.afterStoring) {
      res.writeHead(fault.status, { "content-type": "application/json" }).end(fault.body);
      return;
    }
    const command = this.commands.get(id);
    if (command === undefined) return sendError(res, 404, "not_found", `no command ${id}`);
    if (command.state === "final") return sendError(res, 409, "conflict", `command ${id} is already final`);
    command.events.push(event);
    const chunks = event.type === "output" ? event.chunks : event.type === "finished" ? (event.output ?? []) : [];
    for (const chunk of chunks) if (!command.chunks.has(chunk.seq)) command.chunks.set(chunk.seq, chunk);
    if (event.type === "finished") command.state = "final";
    if (event.type === "finished" && event.report !== undefined) this.#reports.push(event.report.report);
    if (fault !== undefined) {
      res.writeHead(fault.status, { "content-type": "application/json" }).end(fault.body);
      return;
    }
    res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
  }
}

function parse<T extends z.ZodType>(text: string, schema: T): { ok: true; value: z.infer<T> } | { ok: false; message: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, message: "body is not JSON" };
  }
  const result = schema.safeParse(json);
  return result.success ? { ok: true, value: result.data } : { ok: false, message: z.prettifyError(result.error) };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    req.setEncoding("utf8");
    req.on("data", (data: string) => (text += data));
    req.on("end", () => resolve(text));
    req.on("error", reject);
  });
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify({ error: { code, message } }));
}
