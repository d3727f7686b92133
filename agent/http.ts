/**
 * The agent's HTTP requests, on node:http and node:https rather than fetch.
 *
 * Why: Node's fetch is undici, loaded on first use, which costs an agent
 * about 15 MB of RSS (measured on Node 24, docs/hosts.md); and undici parses
 * HTTP in WebAssembly, which the packaged agent's V8 lite mode does not have
 * (AGENT_NODE_FLAGS in scripts/build-agent.mjs). The modules are taken with
 * `process.getBuiltinModule`, not `import`: an ESM import of node:http reads
 * every export, and its lazy `WebSocket` export loads undici all the same.
 */
import type * as Http from "node:http";

/** What the control-plane client sends. */
export interface HttpRequest {
  method: string;
  headers: Record<string, string>;
  /** None for a GET. */
  body?: string;
  signal: AbortSignal;
  /** A redirect is an answer to read (Access's login redirect), never followed. node:http never follows; fetch needs this. */
  redirect: "manual";
  /**
   * A new connection, closed after the answer: never a kept-alive socket opened earlier
   * (the safety net's confirmation must prove the host reaches the control plane now).
   */
  freshConnection?: boolean;
}

/** The answer, with its body already read (a connection cut mid-body fails the request). */
export interface HttpAnswer {
  status: number;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}

/** `fetch` is one (tests may pass it); `requestOverNodeHttp` is the agent's own. */
export type HttpTransport = (url: string, init: HttpRequest) => Promise<HttpAnswer>;

/** An answer larger than this is cut off and fails: no control-plane answer comes near it. */
const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

export const requestOverNodeHttp: HttpTransport = (url, init) =>
  new Promise<HttpAnswer>((resolve, reject) => {
    const target = new URL(url);
    const send: typeof Http.request =
      target.protocol === "https:" ? process.getBuiltinModule("node:https").request : process.getBuiltinModule("node:http").request;
    const body = Buffer.from(init.body ?? "", "utf8");
    const request = send(
      target,
      {
        method: init.method,
        headers: { ...init.headers, "content-length": String(body.length), ...(init.freshConnection === true ? { connection: "close" } : {}) },
        signal: init.signal,
        ...(init.freshConnection === true ? { agent: false } : {}),
      },
      (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) {
            response.destroy(new Error(`answer larger than ${MAX_ANSWER_BYTES} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        response.once("error", reject);
        response.once("close", () => {
          if (!response.complete) reject(new Error("the connection was cut before the answer ended"));
        });
        response.once("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const headers = response.headers;
          resolve({
            status: response.statusCode ?? 0,
            headers: {
              get: (name) => {
                const value = headers[name.toLowerCase()];
                return value === undefined ? null : Array.isArray(value) ? value.join(", ") : value;
              },
            },
            text: () => Promise.resolve(text),
          });
        });
      },
    );
    request.once("error", reject);
    request.end(body);
  });
