/**
 * One client process of simulated agents (bench/fleet.ts forks several, so thousands of held polls are
 * not one event loop's, nor one process's descriptors). Each agent speaks the real protocol with no
 * host work: it long-polls, and ends each command it receives at once (with the events the parent asked
 * for: fleet-protocol.ts's `commandEvents`), acknowledging it in its next poll. Times are wall-clock
 * milliseconds with sub-millisecond precision (performance.timeOrigin + performance.now()), so the
 * parent lines them up with its own and with the Worker's Server-Timing marks.
 *
 * The swarm is a load generator, so it spends as little as it can per poll: undici's `request` (no
 * WHATWG streams, no Headers object; fetch cost about twice its CPU per poll here), and an agent has its
 * answer when the body is read and JSON-parsed: the receive time is taken there, before the answer is
 * validated against the protocol's schema. A probe process (`role: "probe"`) holds the few agents the
 * parent dispatches to, sends the admin's requests that dispatch to them, and takes the bare round trips
 * the ratio divides by, all with the same client: a dispatch and its baseline are timed by one quiet
 * event loop on one clock.
 */
import { Session } from "node:inspector/promises";
import { Agent, request as undiciRequest } from "undici";
import { PROTOCOL_VERSION, PollResponse } from "../common/protocol.ts";
import { SAMPLING_INTERVAL_US } from "./cpu-profile.ts";
import { benchReport, FromParent, serverMark, type FromSwarm } from "./fleet-protocol.ts";

/**
 * This process's wall clock with sub-millisecond precision, lined up with the system clock workerd's marks
 * read: performance.timeOrigin alone was off by up to 3 ms in a process started on a loaded machine (its
 * start read the two clocks apart), which no part of a 4 ms dispatch can afford. So the offset is taken
 * where Date.now() ticks to the next millisecond, the moment the wall clock is a whole number, keeping the
 * largest of a few such readings (a reading taken late, after the process was put aside, comes out smaller).
 */
function wallClockOffset(): number {
  let best = Number.NEGATIVE_INFINITY;
  for (let ticks = 0; ticks < 8; ticks++) {
    const start = Date.now();
    let before = performance.now();
    let wall = Date.now();
    while (wall === start) {
      before = performance.now();
      wall = Date.now();
    }
    const after = performance.now();
    // A tick seen within a few microseconds of the reading before it, and only one: the reading is sharp.
    if (wall === start + 1 && after - before < 0.02) best = Math.max(best, wall - after);
  }
  return Number.isFinite(best) ? best : performance.timeOrigin;
}
const offset = wallClockOffset();
const now = () => offset + performance.now();
// One connection per waiting poll, as N real agents would hold.
const dispatcher = new Agent({ connections: null, pipelining: 1, keepAliveTimeout: 120_000, headersTimeout: 0, bodyTimeout: 0 });
let requests = 0;
let errors = 0;
let running = true;
const send = (message: FromSwarm) => process.send?.(message);

/**
 * The agent's headers, with no compression asked for: the real agent (agent/http.ts, node:http) sends no
 * Accept-Encoding, so its answers come uncompressed. (Asking for gzip, Miniflare compressed every poll's
 * answer inside workerd, as Cloudflare's edge would for such a client, and the client inflated it: 3 to
 * 7 ms of a dispatch at load 20 that no real agent spends.) `at`: when the answer was read and parsed.
 */
async function call(url: string, init: { method: "GET" } | { method: "POST"; token: string; body: unknown }) {
  requests++;
  const res = await undiciRequest(url, {
    method: init.method,
    dispatcher,
    headers: init.method === "POST" ? { authorization: `Bearer ${init.token}`, "content-type": "application/json", "accept-encoding": "identity" } : { "accept-encoding": "identity" },
    ...(init.method === "POST" ? { body: JSON.stringify(init.body) } : {}),
  });
  const json: unknown = JSON.parse(await res.body.text());
  const at = now();
  if (res.statusCode >= 400) throw new Error(`${url}: ${res.statusCode} ${JSON.stringify(json)}`);
  const timing = res.headers["server-timing"];
  return { json, at, serverTiming: typeof timing === "string" ? timing : null };
}

/** The events of one command that ran and printed a few lines, as agent/command-events.ts sends them. */
function agentEvents(commandId: string): unknown[] {
  const at = () => new Date().toISOString();
  const lines = [`refreshing ${commandId}`, "collected the report", "done"];
  return [
    { type: "started", at: at() },
    { type: "output", chunks: lines.map((line, seq) => ({ seq, stream: "stdout", data: `${line}\n` })) },
    { type: "finished", at: at(), outcome: "succeeded", exitCode: 0, result: {} },
  ];
}

type CommandEvents = Extract<FromParent, { type: "start" }>["commandEvents"];

async function agentLoop(url: string, name: string, token: string, session: string, pollSeconds: number, commandEvents: CommandEvents): Promise<void> {
  const started = Date.now();
  let acks: string[] = [];
  // The first poll carries the report; later ones when the coordinator asks for it (or after a command,
  // as a real agent's do after a `refresh`).
  let reportNext = true;
  while (running) {
    const report = { ...benchReport(name), agentUptimeSeconds: Math.round((Date.now() - started) / 1000) };
    const body = { protocol: PROTOCOL_VERSION, agentSession: session, acks, activeCommands: [], ...(reportNext ? { report } : {}) };
    acks = [];
    let response: PollResponse;
    let answeredMark: number | null;
    let at: number;
    try {
      const res = await call(`${url}/api/agent/poll?wait=${pollSeconds}`, { method: "POST", token, body });
      at = res.at;
      response = PollResponse.parse(res.json);
      answeredMark = serverMark(res.serverTiming, "answered");
    } catch (error) {
      if (!running) return;
      errors++;
      send({ type: "error", host: name, message: error instanceof Error ? error.message : String(error) });
      await new Promise((resolve) => setTimeout(resolve, 1000));
      continue;
    }
    reportNext = response.wantReport || (commandEvents === "as-agent" && response.commands.length > 0);
    for (const command of response.commands) {
      send({ type: "received", host: name, command: command.id, at, answeredMark });
      acks.push(command.id);
      const events = commandEvents === "as-agent" ? agentEvents(command.id) : [{ type: "finished", at: new Date().toISOString(), outcome: "succeeded", exitCode: 0, result: {} }];
      try {
        for (const event of events) await call(`${url}/api/agent/commands/${command.id}/events`, { method: "POST", token, body: event });
      } catch (error) {
        errors++;
        send({ type: "error", host: name, message: error instanceof Error ? error.message : String(error) });
      }
    }
  }
}

const inspector = new Session();
async function profile(action: "start" | "stop"): Promise<unknown> {
  if (action === "start") {
    inspector.connect();
    await inspector.post("Profiler.enable");
    await inspector.post("Profiler.setSamplingInterval", { interval: SAMPLING_INTERVAL_US });
    await inspector.post("Profiler.start");
    return null;
  }
  const { profile } = await inspector.post("Profiler.stop");
  inspector.disconnect();
  return profile;
}

process.on("message", (raw) => {
  const message = FromParent.parse(raw);
  switch (message.type) {
    case "start":
      for (const agent of message.agents) void agentLoop(message.url, agent.name, agent.token, agent.session, message.pollSeconds, message.commandEvents);
      return;
    case "bare": {
      // Not counted in `requests`: those are the agents' own, which the idle window counts.
      requests--;
      const sent = now();
      void call(message.url, { method: "GET" }).then(
        ({ at }) => send({ type: "bare", ms: at - sent }),
        (error: unknown) => send({ type: "bare", ms: null, error: error instanceof Error ? error.message : String(error) }),
      );
      return;
    }
    case "enqueue": {
      const sent = now();
      void undiciRequest(`${message.url}/api/hosts/${message.host}/commands`, {
        method: "POST",
        dispatcher,
        headers: { origin: message.url, "content-type": "application/json", "accept-encoding": "identity" },
        body: JSON.stringify({ kind: message.kind }),
      })
        .then(async (res) => {
          const json: unknown = JSON.parse(await res.body.text());
          const answered = now();
          const timing = res.headers["server-timing"];
          send({ type: "enqueued", sent, answered, status: res.statusCode, json, serverTiming: typeof timing === "string" ? timing : null });
        })
        .catch((error: unknown) => send({ type: "enqueued", sent, answered: now(), status: 0, json: { error: error instanceof Error ? error.message : String(error) }, serverTiming: null }));
      return;
    }
    case "counters":
      return send({ type: "counters", requests, errors });
    case "profile":
      void profile(message.action).then((result) => send({ type: "profile", profile: result }));
      return;
    case "stop":
      running = false;
      void dispatcher.destroy().finally(() => process.exit(0));
      return;
  }
});
send({ type: "ready" });
