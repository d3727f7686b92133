import { describe, expect, it } from "vitest";
import { CommandDelivery, CommandView, ErrorBody, PollResponse, type Generation } from "../../common/protocol.ts";
import { api, createHost, poll, sampleReport } from "./helpers.ts";

const generation = (number: number, current = false): Generation => ({
  number,
  createdAt: "2026-12-01T00:00:00.000Z",
  storePath: `/nix/store/${String(number).padStart(32, "a")}-nixos-system-web1`,
  label: "25.05.20250101.abcdef0",
  current,
  booted: current,
});

async function hostWithGenerations(name: string, generations: Generation[] | null): Promise<string> {
  const { token } = await createHost(name);
  const report = sampleReport({ hostname: name, generations: generations === null ? { value: null, reason: "no nixos profile found" } : { value: generations } });
  const polled = await poll(token, { report }, 0);
  expect(polled.status, await polled.clone().text()).toBe(200);
  return token;
}

const send = (host: string, json: Record<string, unknown>) => api(`/api/hosts/${host}/commands`, { method: "POST", json });
const commandsOf = async (host: string) => (await (await api(`/api/hosts/${host}/commands`)).json<{ commands: unknown[] }>()).commands;

describe("rollback to a generation and gc at the control plane", () => {
  it("delivers a rollback to a generation the last report lists, with the generation, and audits who sent it, the generation and its system", async () => {
    const token = await hostWithGenerations("gen-a", [generation(4), generation(5), generation(6, true)]);
    const res = await send("gen-a", { kind: "rollback", generation: 4 });
    expect(res.status, await res.clone().text()).toBe(202);
    const command = CommandView.parse((await res.json<{ command: unknown }>()).command);
    const polled = PollResponse.parse(await (await poll(token, {}, 0)).json());
    expect(polled.commands.map((c) => CommandDelivery.parse(c))).toEqual([expect.objectContaining({ id: command.id, kind: "rollback", generation: 4, dryRun: false, gc: null })]);
    const audit = await (await api("/api/audit")).json<{ entries: Array<{ action: string; target: string; details: unknown }> }>();
    expect(audit.entries).toContainEqual(
      expect.objectContaining({ actor: "developer@localhost", action: "command.rollback", target: "gen-a", details: { commandId: command.id, generation: 4, system: generation(4).storePath }, result: "queued" }),
    );
  });

  it("refuses with 409 a generation the last report does not list, the current one, or when the host lists none, and queues nothing", async () => {
    await hostWithGenerations("gen-b", [generation(4), generation(5, true)]);
    await hostWithGenerations("gen-c", null);
    const cases = [
      { host: "gen-b", generation: 9, code: "generation_unknown", message: "gen-b has no generation 9 in its last report (it lists 2: 4–5)" },
      { host: "gen-b", generation: 5, code: "generation_current", message: "generation 5 is gen-b's current generation already: there is nothing to roll back to" },
      {
        host: "gen-c",
        generation: 1,
        code: "generation_unknown",
        message: "gen-c has not reported its generations (no nixos profile found): a rollback to generation 1 cannot be checked",
      },
    ];
    for (const { host, generation: target, code, message } of cases) {
      const res = await send(host, { kind: "rollback", generation: target });
      expect(res.status).toBe(409);
      expect(ErrorBody.parse(await res.json()).error).toEqual({ code, message });
    }
    expect(await commandsOf("gen-b")).toEqual([]);
    expect(await commandsOf("gen-c")).toEqual([]);
  });

  it("refuses with 400 a generation that is not a positive integer, a generation on another kind and dryRun on another kind", async () => {
    await hostWithGenerations("gen-d", [generation(1), generation(2, true)]);
    const cases = [
      { body: { kind: "rollback", generation: 0 }, path: "generation" },
      { body: { kind: "rollback", generation: 1.5 }, path: "generation" },
      { body: { kind: "rollback", generation: "1" }, path: "generation" },
      { body: { kind: "switch", generation: 1 }, path: "generation", message: "only rollback takes a generation" },
      { body: { kind: "rollback", dryRun: true }, path: "dryRun", message: "only gc takes dryRun" },
    ];
    for (const { body, path, message } of cases) {
      const res = await send("gen-d", body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      const { error } = ErrorBody.parse(await res.json());
      expect(error.code).toBe("invalid_request");
      expect(error.message).toContain(path);
      if (message !== undefined) expect(error.message).toContain(message);
    }
    expect(await commandsOf("gen-d")).toEqual([]);
  });

  it("delivers a gc with its dry run and the fleet's defaults from the settings, one at a time with a switch", async () => {
    const token = await hostWithGenerations("gen-e", [generation(1, true)]);
    const settings = await (await api("/api/settings")).json<{ settings: { version: number } & Record<string, unknown> }>();
    const put = await api("/api/settings", { method: "PUT", json: { ...settings.settings, gc: { keepGenerations: 3, keepDays: 7 } } });
    expect(put.status, await put.clone().text()).toBe(200);
    const res = await send("gen-e", { kind: "gc", dryRun: true });
    expect(res.status, await res.clone().text()).toBe(202);
    const busy = await send("gen-e", { kind: "switch" });
    expect(busy.status).toBe(409);
    expect(ErrorBody.parse(await busy.json()).error.code).toBe("host_busy");
    const polled = PollResponse.parse(await (await poll(token, {}, 0)).json());
    expect(polled.commands.map((c) => CommandDelivery.parse(c))).toEqual([
      expect.objectContaining({ kind: "gc", dryRun: true, generation: null, gc: { keepGenerations: 3, keepDays: 7 } }),
    ]);
  });
});
