/**
 * A real HTTP server on an ephemeral port that answers the admin API from
 * handlers a test sets, and records every request: the data layer's tests
 * go through real fetch and real sockets.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
}

export interface Answer {
  status?: number;
  /** Serialised as JSON unless `raw` is given. */
  json?: unknown;
  raw?: string;
  /** Hold the answer back until this resolves. */
  delay?: Promise<void>;
}

type Handler = (request: RecordedRequest) => Answer | Promise<Answer>;

export class FakeControlPlane {
  readonly requests: RecordedRequest[] = [];
  private readonly handlers = new Map<string, Handler>();
  private server: Server | null = null;
  url = "";

  /** `"GET /api/hosts"`; the query string is not part of the key. */
  on(route: string, handler: Handler | Answer): this {
    this.handlers.set(route, typeof handler === "function" ? handler : () => handler);
    return this;
  }

  count(route: string): number {
    return this.requests.filter((request) => `${request.method} ${request.path.split("?")[0]}` === route).length;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      // A handler that throws is a broken test: answer 500 with its message so the page shows it,
      // instead of leaving the request hanging and the rejection unhandled.
      this.answer(req, res).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
        res.end(`fake control plane handler failed: ${error instanceof Error ? error.message : String(error)}`);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  private async answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const request = { method: req.method ?? "GET", path: req.url ?? "/", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") };
    this.requests.push(request);
    const handler = this.handlers.get(`${request.method} ${request.path.split("?")[0]}`);
    const answer: Answer = handler ? await handler(request) : { status: 404, json: { error: { code: "not_found", message: `no route for ${request.method} ${request.path}` } } };
    await answer.delay;
    res.writeHead(answer.status ?? 200, { "content-type": answer.raw === undefined ? "application/json" : "text/plain" });
    res.end(answer.raw ?? JSON.stringify(answer.json ?? null));
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
