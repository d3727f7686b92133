import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

type FetchHandler = (request: Request) => Response | Promise<Response>;

async function toRequest(req: IncomingMessage, origin: string): Promise<Request> {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  const method = req.method ?? "GET";
  let body: Uint8Array<ArrayBuffer> | undefined;
  if (method !== "GET" && method !== "HEAD") {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
    body = new Uint8Array(Buffer.concat(chunks));
  }
  return new Request(new URL(req.url ?? "/", origin), { method, headers, body });
}

async function writeResponse(res: ServerResponse, response: Response, method: string): Promise<void> {
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, name) => {
    if (name === "set-cookie") return;
    headers[name] = value;
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) headers["set-cookie"] = cookies;
  const body = method === "HEAD" || !response.body ? undefined : Buffer.from(await response.arrayBuffer());
  if (body) headers["content-length"] = String(body.length);
  res.writeHead(response.status, headers);
  res.end(body);
}

/** A node:http server in front of a fetch-style handler (Hono's `app.fetch`), on 127.0.0.1 only. */
export class LoopbackServer {
  readonly #handler: FetchHandler;
  #server: Server | null = null;
  #origin = "";

  constructor(handler: FetchHandler) {
    this.#handler = handler;
  }

  get origin(): string {
    return this.#origin;
  }

  async listen(port: number): Promise<string> {
    const server = createServer((req, res) => {
      void (async () => {
        try {
          const response = await this.#handler(await toRequest(req, this.#origin));
          await writeResponse(res, response, req.method ?? "GET");
        } catch (error) {
          res.writeHead(500, { "content-type": "application/json; charset=utf-8" });
          res.end(JSON.stringify({ message: error instanceof Error ? error.message : "Server Error" }));
        }
      })();
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.#server = server;
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("server is not listening on TCP");
    this.#origin = `http://127.0.0.1:${address.port}`;
    return this.#origin;
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = null;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}
