import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { nixAvailable } from "../fixtures/nix/require-nix.ts";
import { createHarness, type Harness } from "./harness.ts";

let h: Harness;

beforeEach(async () => {
  // A short hold: several tests wait for a held poll to end.
  h = await createHarness({ lock: nixAvailable, holdCapSeconds: 1 });
});

afterEach(async () => {
  await h.cleanup();
  expect(h.plane.protocolErrors).toEqual([]);
});

describe("long poll", () => {
  it("sends its report with the first poll and then only when it changed", async () => {
    await h.startAgent();
    const first = await h.plane.waitForPoll(() => true, "the first poll");
    expect(first.request.report?.agentVersion).toBeDefined();
    expect(first.request.agentSession).toBe(h.agent?.session);
    // A held poll that times out is followed by another one, without the unchanged report.
    const second = await h.plane.waitForPoll(() => true, "a second poll", 1);
    expect(second.request.report).toBeUndefined();
  });

  it("holds the poll until a command is queued, then delivers it in that poll's answer", async () => {
    await h.cleanup();
    h = await createHarness({ lock: nixAvailable, holdCapSeconds: 30 });
    await h.startAgent({ pollTimeoutSeconds: 30 });
    await h.plane.waitForPoll(() => true, "the first poll");
    const heldPoll = h.plane.polls.length - 1;
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(h.plane.polls.length - 1).toBe(heldPoll);
    const id = h.plane.queue("refresh");
    const finished = await h.plane.waitForFinished(id);
    expect(finished.outcome).toBe("succeeded");
    expect(h.plane.commands.get(id)?.deliveredInPolls).toEqual([heldPoll]);
  });

  it("acknowledges a delivered command in the next poll and lists it as active while it runs", async () => {
    await h.startAgent({ tests: { commands: [{ name: "slow", command: "sleep 1" }] } });
    const id = h.plane.queue("test");
    const ack = await h.plane.waitForPoll((poll) => poll.request.acks.includes(id), "the ack");
    expect(ack.request.activeCommands).toContain(id);
    await h.plane.waitForFinished(id);
    const ackIndex = h.plane.polls.indexOf(ack);
    await h.plane.waitForPoll((poll) => !poll.request.activeCommands.includes(id), "a poll not listing it as active", ackIndex + 1);
    expect(h.plane.commands.get(id)?.state).toBe("final");
    // Once a poll carrying the ack was answered, the ack is not repeated.
    const answered = h.plane.polls.length;
    await h.plane.waitForPoll((poll) => !poll.request.acks.includes(id), "a poll without the ack", answered);
  });

  it("never runs a redelivered command twice, but acknowledges it again", async () => {
    const marker = `${h.root}/runs`;
    await h.startAgent({ tests: { commands: [{ name: "count", command: `echo run >> ${marker}` }] } });
    const { id } = await h.run("test");
    const polls = h.plane.polls.length;
    h.plane.redeliver(id);
    await h.plane.waitForPoll((poll) => poll.request.acks.includes(id), "the second ack", polls);
    expect(h.plane.commands.get(id)?.deliveries).toBe(2);
    const { readFile } = await import("node:fs/promises");
    expect((await readFile(marker, "utf8")).trim().split("\n")).toEqual(["run"]);
  });

  it("remembers seen commands across agent restarts", async () => {
    const marker = `${h.root}/runs`;
    const config = { tests: { commands: [{ name: "count", command: `echo run >> ${marker}` }] } };
    await h.startAgent(config);
    const { id } = await h.run("test");
    await h.stopAgent();
    await h.startAgent(config);
    const polls = h.plane.polls.length;
    h.plane.redeliver(id);
    await h.plane.waitForPoll((poll) => poll.request.acks.includes(id), "the ack by the new process", polls);
    const { readFile } = await import("node:fs/promises");
    expect((await readFile(marker, "utf8")).trim().split("\n")).toEqual(["run"]);
  });

  it("sends the report again when the server asks for it", async () => {
    await h.startAgent();
    await h.plane.waitForPoll((poll) => poll.request.report === undefined, "a poll without a report");
    h.plane.wantReport = true;
    h.plane.queue("refresh"); // answers the held poll, carrying wantReport
    const from = h.plane.polls.length;
    const poll = await h.plane.waitForPoll((p) => p.request.report !== undefined, "a poll with the report", from);
    expect(poll.request.report?.hostname).toBeTruthy();
  });

  it("sends a fresh report right after a command finished, cutting a held poll short", async () => {
    await h.cleanup();
    h = await createHarness({ lock: nixAvailable, holdCapSeconds: 30 });
    await h.startAgent({ pollTimeoutSeconds: 30 });
    await h.plane.waitForPoll((poll) => poll.request.report !== undefined, "the first report");
    const { id } = await h.run("refresh");
    const ackPoll = h.plane.polls.findIndex((poll) => poll.request.acks.includes(id));
    // Within the 30 s hold of the poll that carried the ack, a poll with the report arrives.
    const poll = await h.plane.waitForPoll((p) => p.request.report !== undefined, "the report after refresh", ackPoll, 10_000);
    expect(poll.request.report?.protocol).toBe(1);
  });
});
