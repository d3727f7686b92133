import { Hono } from "hono";
import { CreateCommandRequest, CreateHostRequest, HostName, SetHoldRequest } from "../../common/protocol.ts";
import { z } from "zod";
import { PER_HOST_MAX } from "../commands/history.ts";
import { writeAudit } from "../db/audit.ts";
import { findHostByName, type Host } from "../db/hosts.ts";
import { coordinator } from "../coordinator.ts";
import type { AppEnv } from "../env.ts";
import { ApiError, refused } from "../errors.ts";
import { loadFleet, loadHostView } from "../fleet.ts";
import { newAgentToken, newId, sha256Hex } from "../ids.ts";
import { mark } from "../server-timing.ts";
import { jsonBody, pageLimit, parseWith, readQuery } from "../validation.ts";

/** At most what a host keeps (worker/commands/history.ts): the whole of its history in one page. */
const CommandsQuery = z.object({ limit: pageLimit(50, PER_HOST_MAX) });

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
  .post("/", ...jsonBody(CreateHostRequest), async (c) => {
    const request = c.req.valid("json");
    const db = c.get("db");
    const host: Host = {
      id: newId("host"),
      name: request.name,
      platform: request.platform,
      flakeAttr: request.flakeAttr ?? request.name,
      createdAt: new Date().toISOString(),
      lastSeenAt: null,
    };
    const { token, ...stored } = await issueToken();
    // The coordinator is the catalogue's one writer: the name check and the insert cannot race another create.
    const created = await coordinator(c.env).createHost(host, stored);
    if (!created.ok) throw refused(created);
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
    const name = parseWith(HostName, c.req.param("name"), "invalid host name");
    const db = c.get("db");
    // Through the coordinator, which refuses the host's agent from the removal's first step.
    const removed = await coordinator(c.env).removeHost(name);
    if (!removed.ok) throw refused(removed);
    const host = removed.host;
    await writeAudit(db, { at: new Date().toISOString(), actor: c.get("actor"), action: "host.remove", target: host.name, details: null, result: "ok" });
    return c.json({ ok: true, removed: host.name });
  })
  .post("/:name/token", async (c) => {
    const name = parseWith(HostName, c.req.param("name"), "invalid host name");
    const db = c.get("db");
    const { token, ...stored } = await issueToken();
    const at = new Date().toISOString();
    // The old token is refused from this answer on: the coordinator writes and forgets in one step.
    const rotated = await coordinator(c.env).rotateToken(name, stored, at);
    if (!rotated.ok) throw refused(rotated);
    const host = rotated.host;
    await writeAudit(db, { at, actor: c.get("actor"), action: "host.rotate-token", target: host.name, details: null, result: "ok" });
    return c.json({ host: host.name, token });
  })
  .get("/:name/commands", async (c) => {
    const host = await hostNamed(c, c.req.param("name"));
    const { limit } = readQuery(c, CommandsQuery);
    const { commands, prunedCommands } = await coordinator(c.env).hostLive(host.id, limit);
    return c.json({ commands, prunedCommands });
  })
  .post("/:name/commands", ...jsonBody(CreateCommandRequest), async (c) => {
    const name = parseWith(HostName, c.req.param("name"), "invalid host name");
    const request = c.req.valid("json");
    const actor = c.get("actor");
    mark(c, "routed");
    // The coordinator resolves the host from memory: no D1 read between the click and the agent.
    const outcome = await coordinator(c.env).enqueue(name, request.kind, actor, {
      commit: request.commit ?? null,
      force: request.force === true,
      generation: request.generation,
      dryRun: request.dryRun,
      activation: request.activation ?? null,
    });
    mark(c, "enqueued");
    if (!outcome.ok && outcome.code === "host_not_found") throw refused(outcome);
    await writeAudit(c.get("db"), {
      at: new Date().toISOString(),
      actor,
      action: `command.${request.kind}`,
      target: name,
      details: outcome.ok
        ? {
            commandId: outcome.command.id,
            ...(request.force === true ? { force: true } : {}),
            // A rollback to a generation is the one way back past substitute mode's rule against older
            // manifests (docs/cache.md): the entry names the generation and the system it runs.
            ...(outcome.rollbackTo !== null ? { generation: outcome.rollbackTo.generation, system: outcome.rollbackTo.system } : {}),
            ...(request.dryRun === true ? { dryRun: true } : {}),
            ...(request.activation != null ? { activation: request.activation } : {}),
          }
        : { code: outcome.code },
      result: outcome.ok ? "queued" : `refused: ${outcome.message}`,
    });
    mark(c, "audited");
    if (!outcome.ok) throw refused(outcome);
    return c.json({ command: outcome.command }, 202);
  })
  .put("/:name/hold", ...jsonBody(SetHoldRequest), async (c) => {
    const name = parseWith(HostName, c.req.param("name"), "invalid host name");
    const request = c.req.valid("json");
    if (request.until && Date.parse(request.until) <= Date.now()) throw new ApiError(400, "invalid_request", "until is in the past");
    const actor = c.get("actor");
    const held = await coordinator(c.env).setHold(name, { reason: request.reason, until: request.until ?? null }, actor);
    if (!held.ok) throw refused(held);
    await writeAudit(c.get("db"), { at: held.hold.at, actor, action: "host.hold", target: name, details: { reason: held.hold.reason, until: held.hold.until }, result: "ok" });
    return c.json({ hold: held.hold });
  })
  .delete("/:name/hold", async (c) => {
    const name = parseWith(HostName, c.req.param("name"), "invalid host name");
    const released = await coordinator(c.env).releaseHold(name);
    if (!released.ok) throw refused(released);
    await writeAudit(c.get("db"), { at: new Date().toISOString(), actor: c.get("actor"), action: "host.release", target: name, details: null, result: released.released ? "ok" : "was not held" });
    return c.json({ ok: true, released: released.released });
  });
