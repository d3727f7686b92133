// Many requests at once against the real coordinator Durable Object: the
// single-writer guarantees that one-request-at-a-time tests cannot show.
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CommandView, ErrorBody, PollResponse } from "../../common/protocol.ts";
import { agentFetch, api, createHost, poll, queueCommand, sampleReport } from "./helpers.ts";

/** A host whose agent has reported, so its polls are held rather than answered with `wantReport`. */
async function reportingHost(name: string): Promise<{ token: string; id: string }> {
  const host = await createHost(name);
  expect((await poll(host.token, { report: sampleReport() }, 0)).status).toBe(200);
  return host;
}

const stub = () => env.COORDINATOR.getByName("fleet");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function commandOf(res: Response): Promise<CommandView> {
  return CommandView.parse((await res.json<{ command: unknown }>()).command);
}

async function stateOf(id: string): Promise<string> {
  return (await commandOf(await api(`/api/commands/${id}`))).state;
}

async function activeCommandsOf(host: string): Promise<CommandView[]> {
  const { commands } = await (await api(`/api/hosts/${host}/commands`)).json<{ commands: unknown[] }>();
  return commands.map((c) => CommandView.parse(c)).filter((c) => ["queued", "delivered", "running"].includes(c.state));
}

describe("one exclusive command per host, under concurrency", () => {
  for (const withPoll of [false, true]) {
    it(`20 simultaneous switches on one host: exactly one is accepted, the rest refused naming it (${withPoll ? "a poll held" : "new host, no poll"})`, async () => {
      const name = withPoll ? "race-held" : "race-new";
      const { token } = await reportingHost(name);
      const held = withPoll ? poll(token, {}, 2) : null;
      if (withPoll) await sleep(50);
      const answers = await Promise.all(Array.from({ length: 20 }, () => queueCommand(name, "switch")));
      const accepted = answers.filter((res) => res.status === 202);
      expect(accepted).toHaveLength(1);
      const winner = await commandOf(accepted[0]!);
      for (const refused of answers.filter((res) => res.status !== 202)) {
        expect(refused.status).toBe(409);
        const error = ErrorBody.parse(await refused.json()).error;
        expect(error.code).toBe("host_busy");
        expect(error.message).toContain(winner.id);
      }
      expect((await activeCommandsOf(name)).map((c) => c.id)).toEqual([winner.id]);
      if (held) {
        const delivered = PollResponse.parse(await (await held).json());
        expect(delivered.commands.map((c) => c.id)).toEqual([winner.id]);
      }
    });
  }
});

describe("wake-ups", () => {
  it("200 polls and enqueues interleaved at random: every poll gets its command, none waits out its hold", async () => {
    const { token } = await reportingHost("interleave");
    let previous: string | null = null;
    let lost = 0;
    for (let trial = 0; trial < 200; trial++) {
      const acks: string[] = previous ? [previous] : [];
      const pollFirst = trial % 2 === 0;
      const jitter = trial % 5;
      const started = Date.now();
      const [polled, queued]: [PollResponse, CommandView] = await Promise.all([
        (async () => {
          if (!pollFirst) await sleep(jitter);
          return PollResponse.parse(await (await poll(token, { acks }, 2)).json());
        })(),
        (async () => {
          if (pollFirst) await sleep(jitter);
          const res = await queueCommand("interleave", "refresh");
          expect(res.status).toBe(202);
          return commandOf(res);
        })(),
      ]);
      const got = polled.commands.map((c: { id: string }) => c.id);
      if (!got.includes(queued.id) || Date.now() - started > 1500) lost++;
      previous = queued.id;
    }
    expect(lost).toBe(0);
  }, 60_000);
});

describe("final states", () => {
  it("`finished` racing the deadline alarm: exactly one final state, the first, and it never changes", async () => {
    const { token } = await createHost("deadline-race");
    for (let trial = 0; trial < 10; trial++) {
      const command = await commandOf(await queueCommand("deadline-race", "pull"));
      PollResponse.parse(await (await poll(token, {}, 0)).json());
      await agentFetch(token, `/commands/${command.id}/events`, { type: "started", at: new Date().toISOString() });
      await runInDurableObject(stub(), (_instance, state) => {
        state.storage.sql.exec("update commands set deadline_at = ? where id = ?", new Date(Date.now() - 1).toISOString(), command.id);
      });
      const finish = () =>
        agentFetch(token, `/commands/${command.id}/events`, { type: "finished", at: new Date().toISOString(), outcome: "succeeded", exitCode: 0 });
      const [finished] = await Promise.all(trial % 2 === 0 ? [finish(), runDurableObjectAlarm(stub())] : [finish(), runDurableObjectAlarm(stub())].reverse());
      const finishedResponse = finished instanceof Response ? finished : null;
      const state = await stateOf(command.id);
      if (finishedResponse?.status === 200) expect(state).toBe("succeeded");
      else {
        expect(state).toBe("timed-out");
      }
      // Whoever came second changes nothing.
      expect((await finish()).status).toBe(409);
      await runDurableObjectAlarm(stub());
      expect(await stateOf(command.id)).toBe(state);
    }
  });
});

describe("the host catalogue", () => {
  it("rotation racing 20 polls: the old token is refused from the rotation's answer on", async () => {
    const { token: oldToken } = await createHost("rekey");
    let rotatedAt = Number.POSITIVE_INFINITY;
    const polls = Array.from({ length: 20 }, async (_, i) => {
      await sleep(i);
      const sentAt = Date.now();
      const res = await poll(oldToken, {}, 0);
      return { sentAt, status: res.status };
    });
    const rotation = (async () => {
      await sleep(5);
      const res = await api("/api/hosts/rekey/token", { method: "POST" });
      expect(res.status).toBe(200);
      rotatedAt = Date.now();
      return (await res.json<{ token: string }>()).token;
    })();
    const [results, newToken] = await Promise.all([Promise.all(polls), rotation]);
    for (const { sentAt, status } of results) {
      expect([200, 401]).toContain(status);
      if (sentAt > rotatedAt) expect(status).toBe(401);
    }
    const after = await Promise.all(Array.from({ length: 20 }, () => poll(oldToken, {}, 0)));
    expect(after.map((res) => res.status)).toEqual(Array(20).fill(401));
    expect((await poll(newToken, {}, 0)).status).toBe(200);
  });

  it("10 simultaneous creates of one name: one host, the others 409 (never a 500)", async () => {
    const answers = await Promise.all(Array.from({ length: 10 }, () => api("/api/hosts", { method: "POST", json: { name: "twin", platform: "nixos" } })));
    const statuses = answers.map((res) => res.status).sort();
    expect(statuses).toEqual([201, ...Array(9).fill(409)]);
    for (const res of answers.filter((r) => r.status === 409)) expect(ErrorBody.parse(await res.json()).error.code).toBe("host_exists");
    expect(await env.DB.prepare("select count(*) as n from hosts where name = 'twin'").first("n")).toBe(1);
  });

  it("removal racing enqueues and polls: afterwards the host has no commands and its token is dead", async () => {
    const { token, id } = await createHost("doomed");
    const [removed, ...rest] = await Promise.all([
      api("/api/hosts/doomed", { method: "DELETE" }),
      ...Array.from({ length: 10 }, () => queueCommand("doomed", "refresh")),
      ...Array.from({ length: 10 }, () => poll(token, {}, 0)),
    ]);
    expect(removed.status).toBe(200);
    for (const res of rest) expect([200, 202, 401, 404]).toContain(res.status);
    const live = await stub().hostLive(id, 50);
    expect(live.commands).toEqual([]);
    expect((await poll(token, {}, 0)).status).toBe(401);
    expect((await queueCommand("doomed", "refresh")).status).toBe(404);
  });
});
