// The front of `npm start` and `npm run demo`: the public port (8787) on 127.0.0.1, in front of `wrangler dev`
// on an internal loopback port. A DNS-rebinding page (rebind.attacker.example resolving to 127.0.0.1) is
// same-origin with whatever it reaches, and wrangler's dev server rebuilds the request's URL and Host from
// MF-Original-URL before the Worker runs, so only a server that reads the bytes the browser sent can tell a
// foreign Host: this one refuses it, as Vite's `server.allowedHosts` does, and proves to the Worker with a
// per-run secret header that a request came through here (docs/operations.md, "How local development is protected").
import { createServer } from "node:http";
import { createProxyServer } from "http-proxy-3";

/** The header that carries the per-run secret from the front to the Worker (worker/auth.ts reads it). */
export const LOCAL_FRONT_HEADER = "x-nixfleet-local-front";

const LOCAL_HOSTNAMES = ["localhost", "127.0.0.1", "[::1]"];

// Headers a proxy uses to say which host or URL a request was really for. wrangler and Miniflare act on their
// own (MF-Original-URL, MF-Route-Override, …); nothing on this machine has a reason to send any of them here,
// nor the front's own secret header, which only the front sets.
const HOST_REWRITING = /^(mf-|x-forwarded-|forwarded$|x-original-url$|x-rewrite-url$|x-host$|x-nixfleet-local-front$)/i;

const errorBody = (code, message) => JSON.stringify({ error: { code, message } });

/**
 * Why `req` must not reach the dev server, as { status, code, message }, or null when it may.
 * Reads `req.rawHeaders`: `req.headers` keeps only the first of two Host headers.
 */
export function refusal(req, port, { upgrade = false } = {}) {
  const open = `open http://localhost:${port}`;
  const allowedHosts = new Set(LOCAL_HOSTNAMES.flatMap((name) => [name, `${name}:${port}`]));
  const hosts = [];
  const rewriting = [];
  const origins = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i];
    if (/^host$/i.test(name)) hosts.push(req.rawHeaders[i + 1]);
    else if (/^origin$/i.test(name)) origins.push(req.rawHeaders[i + 1]);
    else if (HOST_REWRITING.test(name)) rewriting.push(name);
  }
  if (hosts.length !== 1) {
    return { status: 400, code: "ambiguous_host", message: `a request must carry exactly one Host header, this one has ${hosts.length}: ${open}` };
  }
  if (!allowedHosts.has(hosts[0].toLowerCase())) {
    return {
      status: 403,
      code: "foreign_host",
      message: `this development server answers only requests for localhost, 127.0.0.1 or [::1] on port ${port}, not for ${JSON.stringify(hosts[0])} (a DNS-rebinding page sends its own name): ${open}`,
    };
  }
  if (!req.url?.startsWith("/")) {
    return { status: 400, code: "absolute_form_target", message: `the request target must be a path, not ${JSON.stringify(req.url)}: ${open}` };
  }
  if (rewriting.length > 0) {
    return { status: 403, code: "host_rewriting_header", message: `${rewriting.join(", ")} would rewrite the host this request is for, so it is refused: ${open} without a proxy in between` };
  }
  if (upgrade) {
    const allowedOrigins = new Set(LOCAL_HOSTNAMES.map((name) => `http://${name}:${port}`));
    if (origins.length > 1 || (origins.length === 1 && !allowedOrigins.has(origins[0].toLowerCase()))) {
      return { status: 403, code: "foreign_origin", message: `a WebSocket is accepted only from a page of http://localhost:${port}, not from ${JSON.stringify(origins.join(", "))}: ${open}` };
    }
  }
  return null;
}

function refuseSocket(socket, { status, code, message }) {
  const body = errorBody(code, message);
  const reason = status === 400 ? "Bad Request" : status === 502 ? "Bad Gateway" : "Forbidden";
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

function refuseResponse(res, { status, code, message }) {
  const body = errorBody(code, message);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body), connection: "close" });
  res.end(body);
}

/**
 * Listens on 127.0.0.1:`port` and passes every request with a local Host (and, for a WebSocket, a local
 * Origin) to the dev server on 127.0.0.1:`targetPort` as it came — body, streaming answers, upgrades —
 * adding `secret` in LOCAL_FRONT_HEADER; everything else gets a JSON 4xx that says which address to open.
 */
export async function startLocalDevFront({ port, targetPort, secret, log = () => {} }) {
  const proxy = createProxyServer({ target: { host: "127.0.0.1", port: targetPort }, ws: true, xfwd: false, headers: { [LOCAL_FRONT_HEADER]: secret } });
  const unreachable = (error) => ({ status: 502, code: "dev_server_unreachable", message: `wrangler dev on 127.0.0.1:${targetPort} did not answer (${error.message}); it may still be starting` });
  proxy.on("error", (error, _req, res) => {
    if ("writeHead" in res) {
      if (res.headersSent) res.destroy();
      else refuseResponse(res, unreachable(error));
    } else if (res.writable) refuseSocket(res, unreachable(error));
    else res.destroy();
  });

  const upgraded = new Set();
  const server = createServer((req, res) => {
    const refused = refusal(req, port);
    if (refused) {
      log(`refused ${req.method} ${req.url}: ${refused.code}`);
      refuseResponse(res, refused);
      return;
    }
    proxy.web(req, res);
  });
  server.on("upgrade", (req, socket, head) => {
    const refused = refusal(req, port, { upgrade: true });
    if (refused) {
      log(`refused the WebSocket ${req.url}: ${refused.code}`);
      refuseSocket(socket, refused);
      return;
    }
    upgraded.add(socket);
    socket.once("close", () => upgraded.delete(socket));
    proxy.ws(req, socket, head);
  });

  await new Promise((resolve, reject) => {
    const failed = (error) =>
      reject(error.code === "EADDRINUSE" ? new Error(`port ${port} on 127.0.0.1 is taken by another program: stop it, or choose another port with PORT=…`) : error);
    server.once("error", failed);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", failed);
      resolve();
    });
  });
  return {
    close: () =>
      new Promise((resolve) => {
        for (const socket of upgraded) socket.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
