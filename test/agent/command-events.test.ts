import { describe, expect, it } from "vitest";
import type { CommandEvent } from "../../common/protocol.ts";
import { CommandEventSender } from "../../agent/command-events.ts";
import type { EventOutcome } from "../../agent/control-plane-client.ts";
import { silentLogger } from "../../agent/logger.ts";
import { eventually } from "../support/wait.ts";

const ID = "cmd_0123456789abcdef";
const finished = { type: "finished", at: "2025-01-01T00:00:00.000Z", outcome: "succeeded", exitCode: 0, error: null, result: {} } as const;

/** A control plane client that records what it is given and answers from a script. */
function recordingClient(answers: EventOutcome["kind"][] = []) {
  const posted: CommandEvent[] = [];
  return {
    posted,
    client: {
      async postEvent(_id: string, event: CommandEvent): Promise<EventOutcome> {
        posted.push(event);
        const kind = answers.shift() ?? "stored";
        return kind === "stored" || kind === "aborted" ? { kind } : { kind, message: kind };
      },
    },
  };
}

const sender = (client: ReturnType<typeof recordingClient>["client"], flushIntervalMs = 10) =>
  new CommandEventSender({ client, logger: silentLogger, backoff: { initialMs: 1, maxMs: 5 }, flushIntervalMs });

describe("command events", () => {
  it("sends started, batched output and finished in order, one chunk per stream run; the output not sent yet goes with finished", async () => {
    const { client, posted } = recordingClient();
    const events = sender(client);
    events.started(ID, "2025-01-01T00:00:00.000Z");
    events.output(ID, "stdout", "a");
    events.output(ID, "stdout", "b");
    events.output(ID, "stderr", "c");
    await eventually("the first output batch to be posted", () => posted.some((event) => event.type === "output"), { timeoutMs: 10_000 });
    events.output(ID, "stdout", "d");
    events.output(ID, "stderr", "e");
    expect(await events.finished(ID, finished)).toBe("stored");
    expect(posted).toEqual([
      { type: "started", at: "2025-01-01T00:00:00.000Z" },
      {
        type: "output",
        chunks: [
          { seq: 0, stream: "stdout", data: "ab" },
          { seq: 1, stream: "stderr", data: "c" },
        ],
      },
      {
        ...finished,
        output: [
          { seq: 2, stream: "stdout", data: "d" },
          { seq: 3, stream: "stderr", data: "e" },
        ],
      },
    ]);
  });

  it("does not wait behind a slow output post: finished takes that post's output and everything queued behind it, and the post is aborted", async () => {
    const posted: CommandEvent[] = [];
    const signals: AbortSignal[] = [];
    const client = {
      async postEvent(_id: string, event: CommandEvent, signal: AbortSignal): Promise<EventOutcome> {
        posted.push(event);
        signals.push(signal);
        // The first post hangs until it is aborted: only the sender's abort can end it.
        if (posted.length === 1) return new Promise((resolve) => signal.addEventListener("abort", () => resolve({ kind: "aborted" }), { once: true }));
        return { kind: "stored" };
      },
    };
    // Flushed at every byte: each write while the first post hangs queues an output event of its own.
    const events = new CommandEventSender({ client, logger: silentLogger, flushBytes: 1 });
    events.output(ID, "stdout", "a");
    await eventually("the first output post to be in flight", () => posted.length === 1, { timeoutMs: 10_000 });
    for (const data of ["b", "c", "d", "e"]) events.output(ID, data === "e" ? "stdout" : "stderr", data);
    expect(await events.finished(ID, finished)).toBe("stored");
    expect(signals[0]!.aborted).toBe(true);
    expect(posted).toEqual([
      { type: "output", chunks: [{ seq: 0, stream: "stdout", data: "a" }] },
      {
        ...finished,
        output: [
          { seq: 0, stream: "stdout", data: "a" },
          { seq: 1, stream: "stderr", data: "b" },
          { seq: 2, stream: "stderr", data: "c" },
          { seq: 3, stream: "stderr", data: "d" },
          { seq: 4, stream: "stdout", data: "e" },
        ],
      },
    ]);
  });

  it("does not wait behind a detached job's output posts and progress marks: finished goes at once with all of the output", async () => {
    const posted: CommandEvent[] = [];
    const client = {
      async postEvent(_id: string, event: CommandEvent, signal: AbortSignal): Promise<EventOutcome> {
        posted.push(event);
        if (posted.length === 1) return new Promise((resolve) => signal.addEventListener("abort", () => resolve({ kind: "aborted" }), { once: true }));
        return { kind: "stored" };
      },
    };
    const events = new CommandEventSender({ client, logger: silentLogger });
    const marked: number[] = [];
    // As agent/detached-jobs.ts tails a job's log: each read is output, then a mark of the progress.
    for (const data of ["one\n", "two\n", "three\n"]) {
      events.output(ID, "stdout", data);
      events.mark(ID, (seq) => void marked.push(seq));
      if (data === "one\n") await eventually("the first output post to be in flight", () => posted.length === 1, { timeoutMs: 10_000 });
    }
    expect(await events.finished(ID, finished)).toBe("stored");
    expect(posted).toEqual([
      { type: "output", chunks: [{ seq: 0, stream: "stdout", data: "one\n" }] },
      {
        ...finished,
        output: [
          { seq: 0, stream: "stdout", data: "one\n" },
          { seq: 1, stream: "stdout", data: "two\n" },
          { seq: 2, stream: "stdout", data: "three\n" },
        ],
      },
    ]);
    // The job's end is recorded: its place in the log no longer matters.
    expect(marked).toEqual([]);
  });

  it("waits for a post in flight that is not output: started still goes before finished", async () => {
    const posted: CommandEvent[] = [];
    let answerFirst = () => {};
    const firstAnswered = new Promise<void>((resolve) => (answerFirst = resolve));
    const client = {
      async postEvent(_id: string, event: CommandEvent): Promise<EventOutcome> {
        posted.push(event);
        if (posted.length === 1) await firstAnswered;
        return { kind: "stored" };
      },
    };
    const events = new CommandEventSender({ client, logger: silentLogger, flushBytes: 1 });
    events.started(ID, "2025-01-01T00:00:00.000Z");
    await eventually("started to be in flight", () => posted.length === 1, { timeoutMs: 10_000 });
    events.output(ID, "stdout", "a");
    const delivery = events.finished(ID, finished);
    // Nothing overtakes the started event.
    await new Promise((resolve) => setImmediate(resolve));
    expect(posted).toHaveLength(1);
    answerFirst();
    expect(await delivery).toBe("stored");
    expect(posted).toEqual([{ type: "started", at: "2025-01-01T00:00:00.000Z" }, { ...finished, output: [{ seq: 0, stream: "stdout", data: "a" }] }]);
  });

  it("flushes at 32 KiB without waiting for the interval", async () => {
    const { client, posted } = recordingClient();
    const events = sender(client, 60_000);
    events.output(ID, "stdout", "x".repeat(40 * 1024));
    const sent = () => posted.flatMap((event) => (event.type === "output" ? event.chunks : []));
    // Far less than the 60 s interval: only the size can have sent it.
    await eventually("all 40 KiB to be posted", () => sent().reduce((bytes, chunk) => bytes + chunk.data.length, 0) === 40 * 1024, { timeoutMs: 10_000 });
    const chunks = sent();
    expect(chunks.map((chunk) => [chunk.seq, chunk.data.length])).toEqual([
      [0, 32 * 1024],
      [1, 8 * 1024],
    ]);
    events.stop();
  });

  it("retries with the same seq after a failure, and marks progress once stored", async () => {
    const { client, posted } = recordingClient(["retry", "retry"]);
    const events = sender(client);
    events.setNextSeq(ID, 7);
    events.output(ID, "stdout", "line\n");
    const marked = new Promise<number>((resolve) => events.mark(ID, resolve));
    expect(await marked).toBe(8);
    expect(posted).toHaveLength(3);
    expect(new Set(posted.map((event) => JSON.stringify(event))).size).toBe(1);
    events.stop();
  });

  it("drops everything for a command the server no longer wants", async () => {
    const { client, posted } = recordingClient(["unwanted"]);
    const events = sender(client);
    events.started(ID, "2025-01-01T00:00:00.000Z");
    expect(await events.finished(ID, finished)).toBe("dropped");
    events.output(ID, "stdout", "late");
    expect(await events.finished(ID, finished)).toBe("dropped");
    expect(posted).toEqual([{ type: "started", at: "2025-01-01T00:00:00.000Z" }]);
  });

  it("abandons queued events when stopped", async () => {
    const { client, posted } = recordingClient(Array.from({ length: 100 }, () => "retry" as const));
    const events = sender(client);
    const result = events.finished(ID, finished);
    // Stopped while it is retrying, not before it began.
    await eventually("a refused post to be retried", () => posted.length >= 2);
    events.stop();
    expect(await result).toBe("abandoned");
  });
});
