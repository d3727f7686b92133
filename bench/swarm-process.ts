/**
 * One client process of simulated agents (bench/fleet.ts forks several, so thousands of held polls are
 * not one event loop's, nor one process's descriptors). Each agent speaks the real protocol with no
 * host work: it long-polls, and ends each command it receives at once (with the events the parent asked
 * for: fleet-protocol.ts's `commandEvents`), acknowledging it in its next poll. Times are wall-clock milliseconds with sub-millisecond precision
 * (performance.timeOrigin + performance.now()), so the parent lines them up with its own and with the
 * Worker's Server-Timing marks.
 */
import { Agent, fetch as undiciFetch } from "undici";
import { PROTOCOL_VERSION, PollResponse } from "../common/protocol.ts";
import { benchReport, FromParent, serverMark, type FromSwarm } from "./fleet-protocol.ts";

const now = () => performance.timeOrigin + performance.now();
// One connection per waiting poll, as N real agents would hold.
const dispatcher = new Agent({ connections: null, pipelining: 1, keepAliveTimeout: 120_000, headersTimeout: 0, bodyTimeout: 0 });
let requests = 0;
let errors = 0;
let running = true;
const send = (message: FromSwarm) => process.send?.(message);

/**
 * The agent's headers, with no compression asked for: the real agent (agent/http.ts, node:http) sends no
 * Accept-Encoding, so its answers come uncompressed. fetch asks for gzip by default, and Miniflare then
 * compressed every poll's answer inside workerd (as Cloudflare's edge would for such a client) and undici
 * inflated it in the thread pool: 3 to 7 ms of a dispatch at load 20 that no real agent spends.
 * (node:http itself, tried here too, made the dispatch slower at 1,000 agents than fetch without gzip.)
 */
async function request(url: string, token: string, body: unknown) {
  requests++;
  const res = await undiciFetch(url, { method: "POST", dispatcher, headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "accept-encoding": "identity" }, body: JSON.stringify(body) });
  const json: unknown = await res.json();
  if (!res.ok) throw new Error(`${url}: ${res.status} ${JSON.stringify(json)}`);
  return { json, serverTiming: res.headers.get("server-timing") };
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
    try {
      const res = await request(`${url}/api/agent/poll?wait=${pollSeconds}`, token, body);
      response = PollResponse.parse(res.json);
      answeredMark = serverMark(res.serverTiming, "answered");
    } catch (error) {
      if (!running) return;
      errors++;
      send({ type: "error", host: name, message: error instanceof Error ? error.message : String(error) });
      await new Promise((resolve) => setTimeout(resolve, 1000));
      continue;
    }
    const at = now();
    reportNext = response.wantReport || (commandEvents === "as-agent" && response.commands.length > 0);
    for (const command of response.commands) {
      send({ type: "received", host: name, command: command.id, at, answeredMark });
      acks.push(command.id);
      const events = commandEvents === "as-agent" ? agentEvents(command.id) : [{ type: "finished", at: new Date().toISOString(), outcome: "succeeded", exitCode: 0, result: {} }];
      try {
        for (const event of events) await request(`${url}/api/agent/commands/${command.id}/events`, token, event);
      } catch (error) {
        errors++;
        send({ type: "error", host: name, message: error instanceof Error ? error.message : String(error) });
      }
    }
  }
}

process.on("message", (raw) => {
  const message = FromParent.parse(raw);
  switch (message.type) {
    case "start":
      for (const agent of message.agents) void agentLoop(message.url, agent.name, agent.token, agent.session, message.pollSeconds, message.commandEvents);
      return;
    case "counters":
      return send({ type: "counters", requests, errors });
    case "stop":
      running = false;
      void dispatcher.destroy().finally(() => process.exit(0));
      return;
  }
});
send({ type: "ready" });
