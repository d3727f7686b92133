import { describe, expect, it } from "vitest";
import { CommandView, ErrorBody, PROTOCOL_VERSION, SwitchConfirmed } from "../../common/protocol.ts";
import { agentFetch, api, createHost, poll, queueCommand, sampleReport } from "./helpers.ts";

const SYSTEM = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-web1";

async function queued(host: string, kind: string, json: Record<string, unknown> = {}): Promise<CommandView> {
  const res = await api(`/api/hosts/${host}/commands`, { method: "POST", json: { kind, ...json } });
  expect(res.status, await res.clone().text()).toBe(202);
  return CommandView.parse((await res.json<{ command: unknown }>()).command);
}

const confirmation = (commandId: string, extra: Record<string, unknown> = {}) => ({
  protocol: PROTOCOL_VERSION,
  agentSession: "session-one",
  commandId,
  system: SYSTEM,
  ...extra,
});

const errorCode = async (res: Response) => ErrorBody.parse(await res.json()).error.code;

describe("POST /api/agent/confirm", () => {
  it("confirms the host's own running switch with the control plane's JSON answer, stores the report it carries, and writes an audit entry", async () => {
    const { token } = await createHost("confirm-a");
    const command = await queued("confirm-a", "switch");
    const report = sampleReport({ hostname: "confirm-a", system: { current: { value: SYSTEM }, builtFromCommit: null } });
    const res = await agentFetch(token, "/confirm", confirmation(command.id, { report }));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(SwitchConfirmed.parse(await res.json())).toEqual({ confirmed: true, commandId: command.id, system: SYSTEM });
    const host = await (await api("/api/hosts/confirm-a")).json<{ report: { system: { current: { value: string } } } | null }>();
    expect(host.report?.system.current.value).toBe(SYSTEM);
    const audit = await (await api("/api/audit")).json<{ entries: Array<{ action: string; actor: string; target: string; details: unknown }> }>();
    expect(audit.entries).toContainEqual(expect.objectContaining({ action: "command.confirm", actor: "host confirm-a", target: "confirm-a", details: { commandId: command.id, system: SYSTEM } }));
  });

  it("refuses another host's command, a command that is not a switch, a finished one, a bad body and a missing token, and confirms nothing", async () => {
    const a = await createHost("confirm-b");
    const b = await createHost("confirm-c");
    const theirs = await queued("confirm-b", "switch");
    const res404 = await agentFetch(b.token, "/confirm", confirmation(theirs.id));
    expect(res404.status).toBe(404);
    expect(await errorCode(res404)).toBe("unknown_command");

    const pull = await queued("confirm-c", "pull");
    const notSwitch = await agentFetch(b.token, "/confirm", confirmation(pull.id));
    expect(notSwitch.status).toBe(409);
    expect(await errorCode(notSwitch)).toBe("not_a_switch");

    expect((await poll(a.token, {}, 0)).status).toBe(200);
    const ended = await agentFetch(a.token, `/commands/${theirs.id}/events`, { type: "finished", at: new Date().toISOString(), outcome: "succeeded", exitCode: 0 });
    expect(ended.status, await ended.clone().text()).toBe(200);
    const late = await agentFetch(a.token, "/confirm", confirmation(theirs.id));
    expect(late.status).toBe(409);
    expect(await errorCode(late)).toBe("command_final");

    const bad = await agentFetch(a.token, "/confirm", { protocol: PROTOCOL_VERSION, commandId: "nope" });
    expect(bad.status).toBe(400);
    const anonymous = await api("/api/agent/confirm", { method: "POST", json: confirmation(theirs.id) });
    expect(anonymous.status).toBe(401);
    const audit = await (await api("/api/audit")).json<{ entries: Array<{ action: string; target: string }> }>();
    expect(audit.entries.filter((entry) => entry.action === "command.confirm" && ["confirm-b", "confirm-c"].includes(entry.target))).toEqual([]);
  });
});

describe("a switch the host rolled back by itself", () => {
  const rolledBack = "c".repeat(40);

  async function hostThatRolledBack(name: string): Promise<string> {
    const { token } = await createHost(name);
    const report = sampleReport({
      hostname: name,
      repo: { commit: { value: rolledBack }, branch: { value: "main" }, dirty: false },
      safetyNet: {
        enabled: true,
        confirmTimeoutSeconds: 120,
        pending: null,
        lastRollback: null,
        rejected: [{ storePath: SYSTEM, commit: rolledBack, at: "2026-12-06T18:00:00.000Z" }],
      },
    });
    const polled = await poll(token, { report }, 0);
    expect(polled.status, await polled.clone().text()).toBe(200);
    return token;
  }

  it("is not sent again to that commit (a pull-switch to it, or a switch of the clone at it) without force", async () => {
    await hostThatRolledBack("rolled-a");
    for (const body of [{ kind: "pull-switch", commit: rolledBack }, { kind: "switch" }]) {
      const res = await api("/api/hosts/rolled-a/commands", { method: "POST", json: body });
      expect(res.status, `${JSON.stringify(body)}: ${await res.clone().text()}`).toBe(409);
      const { error } = ErrorBody.parse(await res.json());
      expect(error.code).toBe("system_rolled_back");
      expect(error.message).toBe(
        `rolled-a rolled nixos-system-web1 (commit ${rolledBack.slice(0, 7)}) back by itself at 2026-12-06T18:00:00.000Z: it is not switched to it again unless the command is sent with "force": true`,
      );
    }
    const commands = await (await api("/api/hosts/rolled-a/commands")).json<{ commands: unknown[] }>();
    expect(commands.commands).toEqual([]);
  });

  it("is sent with force, to another commit, and other kinds go as ever", async () => {
    await hostThatRolledBack("rolled-b");
    const other = await queued("rolled-b", "pull-switch", { commit: "d".repeat(40) });
    expect(other.kind).toBe("pull-switch");
    await hostThatRolledBack("rolled-c");
    const forced = await queued("rolled-c", "pull-switch", { commit: rolledBack, force: true });
    expect(forced.kind).toBe("pull-switch");
    expect((await queueCommand("rolled-c", "refresh")).status).toBe(202);
  });
});
