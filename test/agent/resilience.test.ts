import * as fs from "node:fs/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { nixAvailable } from "../fixtures/nix/require-nix.ts";
import { createHarness, type Harness } from "./harness.ts";

let h: Harness;

beforeEach(async () => {
  h = await createHarness({ lock: nixAvailable });
});

afterEach(async () => {
  await h.cleanup();
  expect(h.plane.protocolErrors).toEqual([]);
});

describe("a control plane that misbehaves", () => {
  it("backs off on 500s and garbage answers, never crashes, and runs commands once the server recovers", async () => {
    h.plane.pollFaults.push(
      { status: 500, body: '{"error":{"code":"internal","message":"boom"}}' },
      { status: 200, body: "<html>not json</html>" },
      { status: 200, body: '{"protocol":1,"commands":"nope"}' },
      { status: 502, body: "" },
    );
    await h.startAgent();
    await h.plane.waitFor(() => h.plane.pollFaults.length === 0, "the faulty answers to be used up");
    const { finished } = await h.run("refresh");
    expect(finished.outcome).toBe("succeeded");
    const warnings = h.logs.filter((line) => line.includes("poll failed"));
    expect(warnings.some((line) => line.includes("poll answered 500: internal: boom"))).toBe(true);
    expect(warnings.some((line) => line.includes("poll answer is malformed: not JSON"))).toBe(true);
    expect(warnings.some((line) => line.includes("poll answer is malformed") && line.includes("commands"))).toBe(true);
    expect(warnings.some((line) => /failures=4 /.test(line))).toBe(true);
  });

  it("keeps trying after a 401, logs it loudly, and picks up a corrected token file", async () => {
    h.plane.token = "the-real-token";
    await h.startAgent();
    await h.plane.waitFor(() => h.plane.unauthorizedPolls >= 2, "two refused polls");
    expect(h.logs.some((line) => line.includes("ERROR CONTROL PLANE REJECTED THE AGENT TOKEN"))).toBe(true);

    await fs.writeFile(h.config.tokenFile, "the-real-token\n");
    const { finished } = await h.run("refresh");
    expect(finished.outcome).toBe("succeeded");
  });

  it("retries command events after server errors and lost answers, without duplicating output", async () => {
    // "one" is posted as output once the flush interval has passed; "two" travels with the end.
    await h.startAgent({ tests: { commands: [{ name: "talks", command: "echo one; sleep 1; echo two" }] } });
    await h.plane.waitForPoll(() => true, "the first poll");
    h.plane.eventFaults.push(
      { status: 500, body: "", type: "started" },
      // Stored, but the answer is lost: the retry carries the same seqs.
      { status: 502, body: "", type: "output", afterStoring: true },
      { status: 503, body: "", type: "output" },
      // Stored, answer lost: the retry gets 409 (already final) and is dropped quietly.
      { status: 500, body: "", type: "finished", afterStoring: true },
    );
    const { id, finished } = await h.run("test");
    expect(finished.outcome).toBe("succeeded");
    await h.plane.waitFor(() => h.plane.eventFaults.length === 0, "every fault to be used");
    await h.plane.waitFor(() => h.logs.some((line) => line.includes("answer=\"409: conflict")), "the retried finished event to meet 409");
    const events = h.plane.events(id);
    expect(events.filter((e) => e.type === "output").length).toBeGreaterThan(1);
    expect(h.plane.output(id).match(/one\ntwo\n/g)).toHaveLength(1);
    expect(events.filter((e) => e.type === "finished")).toHaveLength(1);
    expect(events.filter((e) => e.type === "started")).toHaveLength(1);
  });

  it("drops the events of a command the server no longer wants (404) and carries on", async () => {
    await h.startAgent();
    await h.plane.waitForPoll(() => true, "the first poll");
    h.plane.eventFaults.push({ status: 404, body: '{"error":{"code":"not_found","message":"no such command"}}' });
    const dropped = h.plane.queue("refresh");
    await h.plane.waitFor(() => h.logs.some((line) => line.includes("no longer wants events for this command")), "the drop to be logged");
    const { finished } = await h.run("refresh");
    expect(finished.outcome).toBe("succeeded");
    // Its started event got the 404; nothing after it was sent.
    expect(h.plane.events(dropped)).toEqual([]);
  });
});
