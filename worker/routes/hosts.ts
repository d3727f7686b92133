import { Hono } from "hono";
import { CreateCommandRequest, CreateHostRequest, HostName } from "../../common/protocol.ts";
import { listHostCommands, toCommandView } from "../db/commands.ts";
import { writeAudit } from "../db/audit.ts";
import { deleteHost, findHostByName, insertHostWithToken, rotateHostToken, type Host } from "../db/hosts.ts";
import { coordinator } from "../coordinator.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../errors.ts";
import { loadFleet, loadHostView } from "../fleet.ts";
import { newAgentToken, newId, sha256Hex } from "../ids.ts";
import { parseWith, readJson } from "../validation.ts";

async function hostNamed(c: { get(key: "db"): AppEnv["Variables"]["db"] }, rawName: string): Promise<Host> {
  const name = parseWith(HostName, rawName, "invalid host name");
  const host = await findHostByName(c.get("db"), name);
  if (!host) throw new ApiError(404, "host_not_found", `no host named ${name}`);
  return host;
}

async function issueToken(): Promise<{ token: string; id: string; tokenHash: string }> {
  const token = newAgentToken();
  return { token, id: newId("tok"), tokenHash: await sha256Hex(token) };
}

export const hostsRoutes = new Hono<AppEnv>()
  .get("/", async (c) => c.json(await loadFleet(c.env, c.get("db"))))
  .post("/", async (c) => {
    const request = await readJson(c, CreateHostRequest);
    const db = c.get("db");
    if (await findHostByName(db, request.name)) {
      throw new ApiError(409, "host_exists", `a host named ${request.name} already exists`);
    }
    const host: Host = {
      id: newId("host"),
      name: request.name,
      platform: request.platform,
      flakeAttr: request.flakeAttr ?? request.name,
      createdAt: new Date().toISOString(),
      lastSeenAt: null,
    };
    const { token, ...stored } = await issueToken();
    await insertHostWithToken(db, host, stored);
    await writeAudit(db, {
      at: host.createdAt,
      actor: c.get("actor"),
      action: "host.create",
      target: host.name,
      details: { platform: host.platform, flakeAttr: host.flakeAttr },
      result: "ok",
    });
    // The token is in this answer and nowhere else: only its hash is stored.
    return c.json({ host: await loadHostView(c.env, db, host), token }, 201);
  })
  .get("/:name", async (c) => {
    const host = await hostNamed(c, c.req.param("name"));
    return c.json(await loadHostView(c.env, c.get("db"), host));
  })
  .delete("/:name", async (c) => {
    const host = await hostNamed(c, c.req.param("name"));
    const db = c.get("db");
    await deleteHost(db, host.id);
    await coordinator(c.env).forgetHost(host.id);
    await coordinator(c.env).notify({ type: "host", host: host.name, removed: true });
    await writeAudit(db, { at: new Date().toISOString(), actor: c.get("actor"), action: "host.remove", target: host.name, details: null, result: "ok" });
    return c.json({ ok: true, removed: host.name });
  })
  .post("/:name/token", async (c) => {
    const host = await hostNamed(c, c.req.param("name"));
    const db = c.get("db");
    const { token, ...stored } = await issueToken();
    const at = new Date().toISOString();
    await rotateHostToken(db, host.id, stored, at);
    await coordinator(c.env).forgetTokens(host.id);
    await writeAudit(db, { at, actor: c.get("actor"), action: "host.rotate-token", target: host.name, details: null, result: "ok" });
    return c.json({ host: host.name, token });
  })
  .get("/:name/commands", async (c) => {
    const host = await hostNamed(c, c.req.param("name"));
    const limit = Math.max(1, Math.min(200, Number(c.req.query("limit") ?? 50) || 50));
    const records = await listHostCommands(c.get("db"), host.id, limit);
    return c.json({ commands: records.map((record) => toCommandView(record, host.name)) });
  })
  .post("/:name/commands", async (c) => {
    const name = parseWith(HostName, c.req.param("name"), "invalid host name");
    const request = await readJson(c, CreateCommandRequest);
    const actor = c.get("actor");
    // The coordinator resolves the host from memory: no D1 read between the click and the agent.
    const outcome = await coordinator(c.env).enqueue(name, request.kind, actor);
    if (!outcome.ok && outcome.code === "host_not_found") throw new ApiError(404, outcome.code, outcome.message);
    await writeAudit(c.get("db"), {
      at: new Date().toISOString(),
      actor,
      action: `command.${request.kind}`,
      target: name,
      details: outcome.ok ? { commandId: outcome.command.id } : { code: outcome.code },
      result: outcome.ok ? "queued" : `refused: ${outcome.message}`,
    });
    if (!outcome.ok) throw new ApiError(outcome.status, outcome.code, outcome.message);
    return c.json({ command: outcome.command }, 202);
  });
