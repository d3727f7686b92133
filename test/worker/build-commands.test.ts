// `build` as the control plane queues it: a commit is required, the delivery
// carries it, and any other exclusive command preempts a build (cancelled, or stopped once delivered).
import { describe, expect, it } from "vitest";
import { CommandView, ErrorBody, PollResponse } from "../../common/protocol.ts";
import { api, createHost, poll } from "./helpers.ts";

const COMMIT = "c".repeat(40);
const queue = (host: string, body: unknown) => api(`/api/hosts/${host}/commands`, { method: "POST", json: body });
const view = async (res: Response) => CommandView.parse((await res.json<{ command: unknown }>()).command);
const state = async (id: string) => CommandView.parse((await (await api(`/api/commands/${id}`)).json<{ command: unknown }>()).command).state;

describe("build commands", () => {
  it("a build needs a commit, and only build, pull and pull-switch take one", async () => {
    await createHost("b-rules");
    const noCommit = await queue("b-rules", { kind: "build" });
    expect(noCommit.status).toBe(400);
    expect(ErrorBody.parse(await noCommit.json()).error.message).toContain("commit");
    expect((await queue("b-rules", { kind: "test", commit: COMMIT })).status).toBe(400);
    expect((await queue("b-rules", { kind: "build", commit: "abc" })).status).toBe(400);
  });

  it("the delivery carries the commit", async () => {
    const { token } = await createHost("b-deliver");
    const build = await view(await queue("b-deliver", { kind: "build", commit: COMMIT }));
    const delivered = PollResponse.parse(await (await poll(token, {}, 0)).json());
    expect(delivered.commands).toEqual([expect.objectContaining({ id: build.id, kind: "build", commit: COMMIT })]);
  });

  it("a switch queued while a build waits cancels the build; while it runs, stops it and queues behind it", async () => {
    await createHost("b-preempt");
    const queuedBuild = await view(await queue("b-preempt", { kind: "build", commit: COMMIT }));
    const first = await queue("b-preempt", { kind: "switch" });
    expect(first.status).toBe(202);
    expect(await state(queuedBuild.id)).toBe("cancelled");

    const { token: token2 } = await createHost("b-running");
    const runningBuild = await view(await queue("b-running", { kind: "build", commit: COMMIT }));
    PollResponse.parse(await (await poll(token2, {}, 0)).json());
    const second = await view(await queue("b-running", { kind: "pull-switch" }));
    const next = PollResponse.parse(await (await poll(token2, { acks: [runningBuild.id], activeCommands: [runningBuild.id] }, 0)).json());
    expect(next.commands.map((c) => c.kind)).toEqual(["stop", "pull-switch"]);
    expect(next.commands[0]!.target).toBe(runningBuild.id);
    expect(next.commands[1]!.id).toBe(second.id);
    // A build is never started during a switch.
    const refused = await queue("b-running", { kind: "build", commit: COMMIT });
    expect(refused.status).toBe(409);
  });

  it("a person's pull, test or rollback never waits behind a build either; a second build does", async () => {
    for (const kind of ["pull", "test", "rollback", "restart-agent"] as const) {
      const host = `b-pre-${kind}`;
      const { token } = await createHost(host);
      const build = await view(await queue(host, { kind: "build", commit: COMMIT }));
      PollResponse.parse(await (await poll(token, {}, 0)).json());
      const second = await queue(host, { kind: "build", commit: COMMIT });
      expect(second.status).toBe(409);
      expect(ErrorBody.parse(await second.json()).error.code).toBe("host_busy");
      const wanted = await view(await queue(host, { kind }));
      const next = PollResponse.parse(await (await poll(token, { acks: [build.id], activeCommands: [build.id] }, 0)).json());
      expect(next.commands.map((c) => [c.kind, c.target ?? c.id])).toEqual([["stop", build.id], [kind, wanted.id]]);
    }
  });
});
