/**
 * `npm start` (scripts/start.mjs) as a developer runs it, once for the file, on a free PORT with a state
 * directory of its own, and requests written byte by byte on a socket: what a DNS-rebinding page can make a
 * browser send (a foreign Host, absolute-form targets, two Host headers, host-rewriting headers, a WebSocket
 * from a foreign page) is refused before wrangler dev sees it, while localhost gets everything through
 * unchanged: bodies, a long poll held and then answered, the dashboard's event socket.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs/promises";
import { connect } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { z } from "zod";
import { CommandView, DashboardEvent, ErrorBody, PROTOCOL_VERSION, PollResponse, type PollRequest } from "../../common/protocol.ts";
import { buildReport } from "../compartments/builders.ts";
import { freePort, wranglerEnv } from "../support/control-plane.ts";
import { eventually } from "../support/wait.ts";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 180_000 });

const START = fileURLToPath(new URL("../../scripts/start.mjs", import.meta.url));
const FOREIGN = "rebind.attacker.example";

interface RawResponse {
  status: number;
  headers: Map<string, string>;
  body: string;
}

/** Splits what a server sent into status, headers and body (chunked bodies decoded). */
function parseResponse(bytes: Buffer): RawResponse {
  const split = bytes.indexOf("\r\n\r\n");
  if (split < 0) throw new Error(`no complete response head in ${JSON.stringify(bytes.toString("latin1"))}`);
  const [statusLine, ...lines] = bytes.subarray(0, split).toString("latin1").split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine!)?.[1]);
  const headers = new Map(lines.map((line) => [line.slice(0, line.indexOf(":")).toLowerCase(), line.slice(line.indexOf(":") + 1).trim()]));
  let rest = bytes.subarray(split + 4);
  if (headers.get("transfer-encoding") !== "chunked") return { status, headers, body: rest.toString("utf8") };
  const chunks: Buffer[] = [];
  for (;;) {
    const lineEnd = rest.indexOf("\r\n");
    const size = parseInt(rest.subarray(0, lineEnd).toString("latin1"), 16);
    if (!size) break;
    chunks.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
    rest = rest.subarray(lineEnd + 2 + size + 2);
  }
  return { status, headers, body: Buffer.concat(chunks).toString("utf8") };
}

/** Whether `bytes` hold a whole response: its head and the body its Content-Length or chunked framing promises. */
function isComplete(bytes: Buffer): boolean {
  const split = bytes.indexOf("\r\n\r\n");
  if (split < 0) return false;
  const head = bytes.subarray(0, split).toString("latin1").toLowerCase();
  const length = /\r\ncontent-length:\s*(\d+)/.exec(head)?.[1];
  if (length !== undefined) return bytes.length - split - 4 >= Number(length);
  return /\r\ntransfer-encoding:\s*chunked/.test(head) && bytes.subarray(-5).toString("latin1") === "0\r\n\r\n";
}

/**
 * Writes `head` (request line and header lines, exactly as given) and `body`, and reads one whole response.
 * The socket stays open for writing until then, as a browser's does (Node's servers drop a half-closed request).
 */
function raw(port: number, head: string[], body = ""): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(`${head.join("\r\n")}\r\n\r\n${body}`));
    let received = Buffer.alloc(0);
    const settle = () => {
      socket.destroy();
      try {
        resolve(parseResponse(received));
      } catch (error) {
        reject(error);
      }
    };
    socket.on("data", (data: Buffer) => {
      received = Buffer.concat([received, data]);
      if (isComplete(received)) settle();
    });
    socket.on("error", reject);
    socket.on("close", settle);
  });
}

function refusedWith(response: RawResponse, status: number, code: string): string {
  expect(response.status, response.body).toBe(status);
  expect(response.headers.get("content-type")).toBe("application/json");
  const { error } = ErrorBody.parse(JSON.parse(response.body));
  expect(error.code).toBe(code);
  return error.message;
}

/**
 * A WebSocket handshake written by hand (so Host and Origin are whatever the test says), kept open:
 * the answer's head, then the server's text frames as they come.
 */
function openSocket(port: number, head: string[]) {
  const socket = connect(port, "127.0.0.1", () => socket.write(`${head.join("\r\n")}\r\n\r\n`));
  let buffer = Buffer.alloc(0);
  let answer: RawResponse | null = null;
  const frames: string[] = [];
  const waiters: (() => void)[] = [];
  const readFrames = () => {
    // Server frames are unmasked; the events here are far below 64 KiB.
    while (buffer.length >= 2) {
      const short = buffer[1]! & 0x7f;
      const [offset, length] = short === 126 ? [4, buffer.readUInt16BE(2)] : [2, short];
      if (buffer.length < offset + length) return;
      if ((buffer[0]! & 0x0f) === 1) frames.push(buffer.subarray(offset, offset + length).toString("utf8"));
      buffer = buffer.subarray(offset + length);
    }
  };
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  socket.on("data", (data: Buffer) => {
    buffer = Buffer.concat([buffer, data]);
    if (!answer) {
      const split = buffer.indexOf("\r\n\r\n");
      if (split < 0) return;
      answer = parseResponse(buffer.subarray(0, split + 4));
      if (answer.status !== 101) {
        answer = parseResponse(buffer);
        return;
      }
      buffer = buffer.subarray(split + 4);
    }
    readFrames();
    for (const wake of waiters.splice(0)) wake();
  });
  socket.on("close", () => {
    if (answer && answer.status !== 101) answer = parseResponse(buffer);
    for (const wake of waiters.splice(0)) wake();
  });
  socket.on("error", () => {});
  const changed = () => new Promise<void>((resolve) => waiters.push(resolve));
  return {
    socket,
    closed,
    frames,
    /** The handshake's answer; for a refusal, once the server has closed (its whole body read). */
    async answer(): Promise<RawResponse> {
      for (;;) {
        if (answer && (answer.status === 101 || socket.closed)) return answer;
        if (socket.closed) throw new Error("the socket closed before any answer");
        await changed();
      }
    },
    async event(matches: (event: DashboardEvent) => boolean): Promise<DashboardEvent> {
      for (;;) {
        const found = frames.map((frame) => DashboardEvent.parse(JSON.parse(frame))).find(matches);
        if (found) return found;
        if (socket.closed) throw new Error(`the event socket closed; frames: ${frames.join(" ")}`);
        await changed();
      }
    },
  };
}

const handshake = (port: number, host: string, origin?: string) => [
  "GET /api/events HTTP/1.1",
  `Host: ${host}`,
  "Upgrade: websocket",
  "Connection: Upgrade",
  "Sec-WebSocket-Version: 13",
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
  ...(origin ? [`Origin: ${origin}`] : []),
];

let started: ChildProcess | null = null;
const output: string[] = [];
let stateDir = "";
let port = 0;
let devPort = 0;

beforeAll(async () => {
  stateDir = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-front-"));
  port = await freePort();
  // An empty env file instead of the developer's .dev.vars, and no CLOUDFLARE_* / WRANGLER_* from the shell.
  const envFile = path.join(stateDir, "empty.env");
  await fs.writeFile(envFile, "");
  // Its own process group: afterAll ends start.mjs with the wrangler and workerd it started, whatever happened.
  started = spawn(process.execPath, [START], {
    env: { ...wranglerEnv(), PORT: String(port), NIXFLEET_STATE_DIR: stateDir, NIXFLEET_UI_DIR: path.join(stateDir, "ui"), NIXFLEET_ENV_FILE: envFile },
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  started.stdout?.on("data", (data: Buffer) => output.push(data.toString()));
  started.stderr?.on("data", (data: Buffer) => output.push(data.toString()));
  const front = started;
  await eventually(
    "npm start to answer /api/health through its front",
    async () => {
      devPort ||= Number(/wrangler dev answers behind it on 127\.0\.0\.1:(\d+)/.exec(output.join(""))?.[1] ?? 0);
      const healthy = await fetch(`http://127.0.0.1:${port}/api/health`).then(
        (res) => res.ok,
        () => false,
      );
      return healthy && devPort !== 0;
    },
    {
      timeoutMs: 150_000,
      intervalMs: 250,
      details: () => output.join(""),
      giveUpWhen: () => (front.exitCode !== null ? `npm start exited (${front.exitCode})` : null),
    },
  );
});

afterAll(async () => {
  if (started?.pid !== undefined && started.exitCode === null && started.signalCode === null) {
    const exited = new Promise((resolve) => started!.once("exit", resolve));
    process.kill(-started.pid, "SIGTERM");
    const timer = setTimeout(() => process.kill(-started!.pid!, "SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  }
  // What outlived start.mjs in its group (a workerd whose wrangler went first).
  try {
    if (started?.pid !== undefined) process.kill(-started.pid, "SIGKILL");
  } catch {
    // the group is gone
  }
  if (stateDir) await fs.rm(stateDir, { recursive: true, force: true });
});

describe("npm start refuses what a DNS-rebinding page can send", () => {
  it("the rebinding request (foreign Host, MF-Original-URL naming localhost) is a 403 that says which address to open", async () => {
    const response = await raw(port, [
      "GET /api/audit HTTP/1.1",
      `Host: ${FOREIGN}:${port}`,
      "Sec-Fetch-Site: same-origin",
      `MF-Original-URL: http://localhost:${port}/api/audit`,
      "Connection: close",
    ]);
    expect(refusedWith(response, 403, "foreign_host")).toContain(`open http://localhost:${port}`);
  });

  it("a foreign Host is refused on a page path and on the health check too, not only on the API", async () => {
    for (const target of ["/", "/api/health", "/api/hosts"]) {
      refusedWith(await raw(port, [`GET ${target} HTTP/1.1`, `Host: ${FOREIGN}`, "Connection: close"]), 403, "foreign_host");
    }
  });

  it("an absolute-form target naming localhost does not make a foreign Host local, and is refused with a local Host too", async () => {
    refusedWith(await raw(port, [`GET http://localhost:${port}/api/audit HTTP/1.1`, `Host: ${FOREIGN}:${port}`, "Connection: close"]), 403, "foreign_host");
    refusedWith(await raw(port, [`GET http://localhost:${port}/api/audit HTTP/1.1`, `Host: localhost:${port}`, "Connection: close"]), 400, "absolute_form_target");
  });

  it("two Host headers are refused in either order", async () => {
    for (const hosts of [
      [FOREIGN, `localhost:${port}`],
      [`localhost:${port}`, FOREIGN],
      [`localhost:${port}`, `127.0.0.1:${port}`],
    ]) {
      const response = await raw(port, ["GET /api/audit HTTP/1.1", ...hosts.map((host) => `Host: ${host}`), "Connection: close"]);
      expect(refusedWith(response, 400, "ambiguous_host")).toContain("exactly one Host header");
    }
  });

  it("a local Host with another port is foreign", async () => {
    refusedWith(await raw(port, ["GET /api/audit HTTP/1.1", `Host: localhost:${devPort}`, "Connection: close"]), 403, "foreign_host");
  });

  it("X-Original-URL, X-Forwarded-Host and Forwarded with a foreign Host are 403s", async () => {
    for (const header of [`X-Original-URL: http://localhost:${port}/api/audit`, `X-Forwarded-Host: localhost:${port}`, `Forwarded: host=localhost:${port}`]) {
      const response = await raw(port, ["GET /api/audit HTTP/1.1", `Host: ${FOREIGN}:${port}`, header, "Connection: close"]);
      expect(response.status, `${header}: ${response.body}`).toBe(403);
      ErrorBody.parse(JSON.parse(response.body));
    }
  });

  it("a host-rewriting header is refused even with a local Host: nothing on this machine has a reason to send one", async () => {
    for (const header of [`MF-Original-URL: http://localhost:${port}/api/audit`, `X-Original-URL: /api/audit`, `X-Forwarded-Host: ${FOREIGN}`, `Forwarded: host=${FOREIGN}`, `X-Forwarded-Proto: https`]) {
      const response = await raw(port, ["GET /api/health HTTP/1.1", `Host: localhost:${port}`, header, "Connection: close"]);
      expect(refusedWith(response, 403, "host_rewriting_header")).toContain(header.slice(0, header.indexOf(":")));
    }
  });

  it("wrangler dev's own port behind the front refuses the dashboard API to the rebinding request, for want of the front's secret", async () => {
    const response = await raw(devPort, [
      "GET /api/audit HTTP/1.1",
      `Host: ${FOREIGN}:${devPort}`,
      `MF-Original-URL: http://localhost:${devPort}/api/audit`,
      "Connection: close",
    ]);
    expect(refusedWith(response, 403, "local_front_required")).toContain("http://localhost:8787");
    // Even one that guesses the header's name: the value is new every run.
    const guessed = await raw(devPort, ["GET /api/audit HTTP/1.1", `Host: localhost:${devPort}`, "X-NixFleet-Local-Front: guess", "Connection: close"]);
    refusedWith(guessed, 403, "local_front_required");
  });
});

describe("npm start passes localhost through unchanged", () => {
  it("Host localhost:PORT, 127.0.0.1:PORT, [::1]:PORT or localhost with no other header gets 200 on /api/health and /api/audit", async () => {
    const answers = { "/api/health": z.object({ ok: z.literal(true) }), "/api/audit": z.object({ entries: z.array(z.unknown()) }) };
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, "localhost"]) {
      for (const [target, shape] of Object.entries(answers)) {
        const response = await raw(port, [`GET ${target} HTTP/1.1`, `Host: ${host}`]);
        expect(response.status, `${host} ${target}: ${response.body}`).toBe(200);
        shape.parse(JSON.parse(response.body));
      }
    }
  });

  it("a POST body reaches the Worker (the host it names is enrolled), and an agent's long poll is held and then answered through the front", async () => {
    const name = "front-host";
    const body = JSON.stringify({ name, platform: "nixos" });
    const created = await raw(
      port,
      ["POST /api/hosts HTTP/1.1", `Host: localhost:${port}`, `Origin: http://localhost:${port}`, "Content-Type: application/json", `Content-Length: ${Buffer.byteLength(body)}`],
      body,
    );
    expect(created.status, created.body).toBe(201);
    const { token, host } = z.object({ token: z.string(), host: z.object({ name: z.string(), platform: z.string() }) }).parse(JSON.parse(created.body));
    expect([host.name, host.platform]).toEqual([name, "nixos"]);

    const api = `http://localhost:${port}`;
    const pollRequest = (report: boolean): PollRequest => ({
      protocol: PROTOCOL_VERSION,
      agentSession: "front-session-1",
      activeCommands: [],
      acks: [],
      ...(report ? { report: buildReport({ hostname: name }) } : {}),
    });
    const agentPoll = (wait: number, report: boolean) =>
      fetch(`${api}/api/agent/poll?wait=${wait}`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(pollRequest(report)),
      });
    expect((await agentPoll(0, true)).status).toBe(200);

    const polledAt = Date.now();
    let answered = false;
    const held = agentPoll(25, false).then((res) => {
      answered = true;
      return res;
    });
    const Stats = z.object({ waitingPolls: z.number() });
    for (;;) {
      const { waitingPolls } = Stats.parse(await (await fetch(`${api}/api/stats`)).json());
      if (waitingPolls === 1) break;
      if (answered) throw new Error(`the poll was answered before it was held: ${await (await held).text()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(answered).toBe(false);
    const queued = await fetch(`${api}/api/hosts/${name}/commands`, {
      method: "POST",
      headers: { origin: api, "content-type": "application/json" },
      body: JSON.stringify({ kind: "switch" }),
    });
    expect(queued.status).toBe(202);
    const command = CommandView.parse(z.object({ command: z.unknown() }).parse(await queued.json()).command);
    const delivered = await held;
    expect(delivered.status).toBe(200);
    expect(PollResponse.parse(await delivered.json()).commands.map((c) => c.id)).toEqual([command.id]);
    // Woken by the enqueue, not by the end of its 25 s hold.
    expect(Date.now() - polledAt).toBeLessThan(25_000);
  });
});

describe("the dashboard's event socket behind npm start", () => {
  it("a WebSocket with a foreign Host is refused", async () => {
    const refused = openSocket(port, handshake(port, `${FOREIGN}:${port}`));
    refusedWith(await refused.answer(), 403, "foreign_host");
  });

  it("a WebSocket from a foreign page (Origin) is refused, even with a local Host", async () => {
    for (const origin of [`http://${FOREIGN}:${port}`, "null", `http://localhost:${devPort}`]) {
      const refused = openSocket(port, handshake(port, `localhost:${port}`, origin));
      expect(refusedWith(await refused.answer(), 403, "foreign_origin")).toContain(`http://localhost:${port}`);
    }
  });

  it("from the dashboard's own origin the socket opens (101), says hello and carries the fleet's events", async () => {
    const events = openSocket(port, handshake(port, `localhost:${port}`, `http://localhost:${port}`));
    try {
      const answer = await events.answer();
      expect(answer.status).toBe(101);
      expect(answer.headers.get("upgrade")?.toLowerCase()).toBe("websocket");
      expect(await events.event((e) => e.type === "hello")).toEqual({ type: "hello", protocol: expect.any(Number) });
      // Enrolling is silent on the socket; removing a host tells every dashboard.
      const api = `http://localhost:${port}`;
      const write = (method: string, pathname: string, body?: unknown) =>
        fetch(`${api}${pathname}`, { method, headers: { origin: api, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
      expect((await write("POST", "/api/hosts", { name: "front-events", platform: "nixos" })).status).toBe(201);
      expect((await write("DELETE", "/api/hosts/front-events")).status).toBe(200);
      expect(await events.event((e) => e.type === "host" && e.host === "front-events")).toEqual({ type: "host", host: "front-events", removed: true });
    } finally {
      events.socket.destroy();
      await events.closed;
    }
  });
});
