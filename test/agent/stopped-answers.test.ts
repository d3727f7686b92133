/**
 * What stands between the agent and the control plane, named: Cloudflare
 * Access's login redirect or page, a site that is not NixFleet, a TLS failure
 * (issue 24). The agent's own client on node:http against real local servers,
 * plain and TLS (a self-signed certificate made by openssl for the test).
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs/promises";
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ConnectionLog, describeConnection } from "../../agent/connection-state.ts";
import { ControlPlaneClient, type PollOutcome } from "../../agent/control-plane-client.ts";
import { createLogger } from "../../agent/logger.ts";
import { ACCESS_BLOCKED } from "../../common/answer-cause.ts";
import { PROTOCOL_VERSION, WORKER_MARKER_HEADER } from "../../common/protocol.ts";

const exec = promisify(execFile);
const servers: Array<http.Server | https.Server> = [];
let dir: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-stopped-"));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function listen(server: http.Server | https.Server, scheme: "http" | "https"): Promise<string> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const serve = (handler: http.RequestListener) => listen(http.createServer(handler), "http");

const poll = (url: string): Promise<PollOutcome> =>
  new ControlPlaneClient({ url, token: () => "t0ken" }).poll(
    { protocol: PROTOCOL_VERSION, agentSession: "s".repeat(24), activeCommands: [], acks: [] },
    1,
    new AbortController().signal,
  );

const postEvent = (url: string) =>
  new ControlPlaneClient({ url, token: () => "t0ken" }).postEvent(
    "cmd_0123456789ab",
    { type: "started", at: new Date().toISOString() },
    new AbortController().signal,
  );

/** What Access answers a request without a CF_Authorization cookie: a redirect to the team's login page. */
function accessLoginRedirect(_req: http.IncomingMessage, res: http.ServerResponse): void {
  res.writeHead(302, {
    location: "https://myteam.cloudflareaccess.com/cdn-cgi/access/login/fleet.example.com?kid=abc&redirect_url=%2Fapi%2Fagent%2Fpoll",
    "set-cookie": "CF_AppSession=n0nce; Secure; HttpOnly",
    "content-type": "text/html",
  });
  res.end("<html><body>Redirecting…</body></html>");
}

describe("an answer that is not the Worker's", () => {
  it("names Cloudflare Access and the bypass to add when a poll is answered with Access's login redirect", async () => {
    const url = await serve(accessLoginRedirect);
    expect(await poll(url)).toEqual({ kind: "failed", message: ACCESS_BLOCKED, cause: "access" });
  });

  it("names Cloudflare Access for its login page served without a redirect, and for an event post", async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, { "content-type": "text/html" }).end('<html><form action="https://myteam.cloudflareaccess.com/cdn-cgi/access/login">Sign in</form></html>');
    });
    expect(await poll(url)).toEqual({ kind: "failed", message: ACCESS_BLOCKED, cause: "access" });
    expect(await postEvent(url)).toEqual({ kind: "retry", message: ACCESS_BLOCKED });
  });

  it("says a URL that answers 404 without the Worker's marker is not a NixFleet control plane", async () => {
    const url = await serve((_req, res) => res.writeHead(404, { "content-type": "text/html" }).end("<h1>Not Found</h1>"));
    const outcome = await poll(url);
    expect(outcome).toMatchObject({ kind: "failed", cause: "not-nixfleet" });
    expect(outcome.kind === "failed" && outcome.message).toBe(
      `${url} is not a NixFleet control plane: it answered 404 without the Worker's x-nixfleet header (check the url in the agent's config)`,
    );
  });

  it("keeps the Worker's own refusals as they were: its 401 is the token's, its 404 drops the command's events", async () => {
    const url = await serve((req, res) => {
      const status = req.url?.startsWith("/api/agent/poll") ? 401 : 404;
      res.writeHead(status, { "content-type": "application/json", [WORKER_MARKER_HEADER]: "1" });
      res.end(JSON.stringify({ error: { code: status === 401 ? "unauthorized" : "not_found", message: "from the Worker" } }));
    });
    expect(await poll(url)).toEqual({ kind: "unauthorized", message: "401: unauthorized: from the Worker" });
    expect(await postEvent(url)).toEqual({ kind: "unwanted", message: "404: not_found: from the Worker" });
  });

  it("leaves an unmarked 502 (a proxy's) a plain failure, retried without a named cause", async () => {
    const url = await serve((_req, res) => res.writeHead(502).end("bad gateway"));
    expect(await poll(url)).toEqual({ kind: "failed", message: "poll answered 502: bad gateway" });
  });
});

describe("a TLS failure", () => {
  it("is named with openssl's code when the control plane's certificate is not trusted", async () => {
    const key = path.join(dir, "key.pem");
    const cert = path.join(dir, "cert.pem");
    await exec("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"]);
    const server = https.createServer({ key: await fs.readFile(key), cert: await fs.readFile(cert) }, (_req, res) => res.end("{}"));
    const url = await listen(server, "https");
    const outcome = await poll(url);
    expect(outcome).toMatchObject({ kind: "failed", cause: "tls" });
    expect(outcome.kind === "failed" && outcome.message).toMatch(
      new RegExp(`^TLS to ${url.replace(/[.]/g, "\\.")} failed \\(DEPTH_ZERO_SELF_SIGNED_CERT: self[- ]signed certificate\\): this host does not trust the control plane's certificate$`),
    );
  });

  it("is named when the URL says https and the server speaks plain HTTP", async () => {
    const plain = await serve((_req, res) => res.end("{}"));
    const outcome = await poll(plain.replace("http:", "https:"));
    expect(outcome).toMatchObject({ kind: "failed", cause: "tls" });
    expect(outcome.kind === "failed" && outcome.message).toBe(
      `TLS to ${plain.replace("http:", "https:")} failed (EPROTO: wrong version number): the server there does not speak TLS (check http/https in the url)`,
    );
  });
});

describe("the connection state nixfleet-agent status reads", () => {
  it("records the Access stop once, with when it began, and its end at the next answered poll", async () => {
    const answered: PollOutcome = { kind: "ok", response: { protocol: PROTOCOL_VERSION, commands: [], wantReport: false, pollTimeoutSeconds: 1 } };
    let now = Date.parse("2026-12-06T10:00:00Z");
    const stateDir = await fs.mkdtemp(path.join(dir, "state-"));
    const connection = new ConnectionLog(stateDir, createLogger({ level: "error" }), () => now);
    expect(describeConnection(await ConnectionLog.read(stateDir))).toBe("not polled yet (is the agent running?)");

    connection.record(answered);
    now += 60_000;
    connection.record({ kind: "failed", message: ACCESS_BLOCKED, cause: "access" });
    now += 60_000;
    connection.record({ kind: "failed", message: ACCESS_BLOCKED, cause: "access" });
    await connection.flush();
    const stopped = await ConnectionLog.read(stateDir);
    expect(stopped).toEqual({
      reachedAt: "2026-12-06T10:00:00.000Z",
      problem: { message: ACCESS_BLOCKED, cause: "access", since: "2026-12-06T10:01:00.000Z" },
    });
    expect(describeConnection(stopped)).toBe(
      `NOT REACHED since 2026-12-06T10:01:00.000Z (last reached at 2026-12-06T10:00:00.000Z): ${ACCESS_BLOCKED}`,
    );

    now += 60_000;
    connection.record(answered);
    await connection.flush();
    expect(describeConnection(await ConnectionLog.read(stateDir))).toBe("reached, last at 2026-12-06T10:03:00.000Z");
  });
});
