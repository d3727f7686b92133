/**
 * Sends each command's events to the control plane in order: `started`, output
 * batched (every ~250 ms or 32 KiB), `rebooting` before a reboot, `finished` (with the output not sent yet). Network trouble is retried
 * with backoff; a retried output post is harmless because chunks carry `seq`.
 * When the server says it no longer wants a command (404/409), everything
 * still queued for it is dropped.
 */
import type { CommandEvent, OutputChunk, OutputStream } from "../common/protocol.ts";
import { backoffDelay, DEFAULT_BACKOFF, sleep, type BackoffPolicy } from "./backoff.ts";
import type { ControlPlaneClient } from "./control-plane-client.ts";
import type { FinishedEvent } from "./job-store.ts";
import type { Logger } from "./logger.ts";

/** What became of a finished event. */
export type Delivery = "stored" | "dropped" | "abandoned";

export interface CommandEventSenderOptions {
  client: Pick<ControlPlaneClient, "postEvent">;
  logger: Logger;
  backoff?: BackoffPolicy;
  random?: () => number;
  flushIntervalMs?: number;
  flushBytes?: number;
}

const MAX_CHUNK_CHARS = 32 * 1024;
const MAX_CHUNKS_PER_EVENT = 200;

type QueueItem =
  /** `queuedAt`: when the event was handed to the sender (wall clock, ms), for the finished event's timeline in the debug log. */
  | { kind: "event"; event: CommandEvent; settle?: (delivery: Delivery) => void; queuedAt?: number }
  /** Reached once everything queued before it was stored; `nextSeq` is the seq after it. */
  | { kind: "mark"; nextSeq: number; reached: (nextSeq: number) => void | Promise<void> };

interface CommandStream {
  queue: QueueItem[];
  pending: OutputChunk[];
  pendingChars: number;
  nextSeq: number;
  timer: NodeJS.Timeout | undefined;
  sending: boolean;
  /** The post in flight, to abort when the finished event takes its output along. */
  posting: { item: QueueItem; abort: AbortController } | undefined;
  /** The finished event is queued: once the queue empties, the stream is forgotten. */
  closing: boolean;
}

export class CommandEventSender {
  readonly #client: Pick<ControlPlaneClient, "postEvent">;
  readonly #logger: Logger;
  readonly #backoff: BackoffPolicy;
  readonly #random: () => number;
  readonly #flushIntervalMs: number;
  readonly #flushBytes: number;
  readonly #streams = new Map<string, CommandStream>();
  /** Commands the server said it no longer wants (bounded; only to keep quiet about them). */
  readonly #unwanted = new Set<string>();
  readonly #stop = new AbortController();
  readonly #idle = new Set<() => void>();

  constructor(options: CommandEventSenderOptions) {
    this.#client = options.client;
    this.#logger = options.logger;
    this.#backoff = options.backoff ?? { initialMs: DEFAULT_BACKOFF.initialMs, maxMs: 30_000 };
    this.#random = options.random ?? Math.random;
    this.#flushIntervalMs = options.flushIntervalMs ?? 250;
    this.#flushBytes = options.flushBytes ?? 32 * 1024;
  }

  /** Continue a command's output numbering (a detached job resumed by a new agent process). */
  setNextSeq(commandId: string, seq: number): void {
    const stream = this.#stream(commandId);
    stream.nextSeq = Math.max(stream.nextSeq, seq);
  }

  started(commandId: string, at: string): void {
    this.#enqueue(commandId, { kind: "event", event: { type: "started", at } });
  }

  output(commandId: string, streamName: OutputStream, data: string): void {
    if (data === "" || this.#stop.signal.aborted) return;
    if (this.#unwanted.has(commandId)) return;
    const stream = this.#stream(commandId);
    for (let start = 0; start < data.length; start += MAX_CHUNK_CHARS) {
      const piece = data.slice(start, start + MAX_CHUNK_CHARS);
      const last = stream.pending.at(-1);
      if (last !== undefined && last.stream === streamName && last.data.length + piece.length <= MAX_CHUNK_CHARS) {
        last.data += piece;
      } else {
        stream.pending.push({ seq: stream.nextSeq++, stream: streamName, data: piece });
      }
      stream.pendingChars += piece.length;
    }
    if (stream.pendingChars >= this.#flushBytes) this.#flushOutput(commandId, stream);
    else if (stream.timer === undefined) {
      stream.timer = setTimeout(() => this.#flushOutput(commandId, stream), this.#flushIntervalMs);
      stream.timer.unref();
    }
  }

  /** Calls `reached(nextSeq)` once all output given so far is stored (used to persist a job's progress). */
  mark(commandId: string, reached: (nextSeq: number) => void | Promise<void>): void {
    const stream = this.#stream(commandId);
    this.#flushOutput(commandId, stream);
    this.#enqueue(commandId, { kind: "mark", nextSeq: stream.nextSeq, reached });
  }

  /** Queues the rebooting event after any output; resolves when the server stored it (or will never): the reboot waits for it. */
  rebooting(commandId: string, event: Extract<CommandEvent, { type: "rebooting" }>): Promise<Delivery> {
    return new Promise((settle) => this.#enqueue(commandId, { kind: "event", event, settle }));
  }

  /** Queues the finished event after any output; resolves when the server stored it (or will never). */
  finished(commandId: string, event: FinishedEvent): Promise<Delivery> {
    return new Promise((settle) => this.#enqueue(commandId, { kind: "event", event, settle, queuedAt: Date.now() }));
  }

  /** Resolves when nothing is queued any more, or after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    for (const [id, stream] of this.#streams) this.#flushOutput(id, stream);
    const idle = () => [...this.#streams.values()].every((stream) => stream.queue.length === 0 && stream.pending.length === 0);
    if (idle()) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#idle.delete(check);
        resolve();
      };
      const check = () => {
        if (idle()) done();
      };
      const timer = setTimeout(done, timeoutMs);
      timer.unref();
      this.#idle.add(check);
    });
  }

  /** Stops sending; whatever is still queued is abandoned (finished events are kept by the job store). */
  stop(): void {
    this.#stop.abort();
    for (const stream of this.#streams.values()) {
      clearTimeout(stream.timer);
      for (const item of stream.queue) if (item.kind === "event") item.settle?.("abandoned");
      stream.queue = [];
    }
    this.#streams.clear();
  }

  #stream(commandId: string): CommandStream {
    let stream = this.#streams.get(commandId);
    if (stream === undefined) {
      stream = { queue: [], pending: [], pendingChars: 0, nextSeq: 0, timer: undefined, sending: false, posting: undefined, closing: false };
      this.#streams.set(commandId, stream);
    }
    return stream;
  }

  #enqueue(commandId: string, item: QueueItem): void {
    if (this.#stop.signal.aborted) {
      if (item.kind === "event") item.settle?.("abandoned");
      return;
    }
    if (this.#unwanted.has(commandId)) {
      if (item.kind === "event") item.settle?.("dropped");
      return;
    }
    const stream = this.#stream(commandId);
    if (item.kind === "event" && item.event.type === "finished") {
      stream.closing = true;
      // The last lines go with the end: one request, not output posts and then the end. That includes output queued
      // behind a post in flight: when the control plane answers slower than the flushes, one post per flush would
      // stand between the end and the server (a rollout's wave waits for it). And the output of an output post in
      // flight, when nothing else is queued: that post is aborted and the end goes at once with all of it (the
      // server keeps each seq once, and refuses output after the end, so a late copy changes nothing).
      const queued = this.#takeQueuedOutput(stream);
      const inFlight = this.#overtakable(stream);
      const last = [...(inFlight?.chunks ?? []), ...queued, ...this.#takePending(stream)];
      if (last.length > 0 && last.length <= MAX_CHUNKS_PER_EVENT) {
        item = { ...item, event: { ...item.event, output: last } };
        inFlight?.abort();
      } else if (last.length > 0) stream.pending = last.slice(inFlight?.chunks.length ?? 0);
    }
    this.#flushOutput(commandId, stream);
    stream.queue.push(item);
    void this.#pump(commandId, stream);
  }

  /**
   * The output events at the end of the queue that are not being posted (the head may be), in order. The progress
   * marks among them are dropped: they keep a detached job's place in its log for a resumed agent, which the job
   * store's record of the end (written before the finished event is queued) makes moot.
   */
  #takeQueuedOutput(stream: CommandStream): OutputChunk[] {
    const taken: OutputChunk[][] = [];
    for (let last = stream.queue.at(-1); stream.queue.length > 1 && last !== undefined && (last.kind === "mark" || last.event.type === "output"); last = stream.queue.at(-1)) {
      if (last.kind === "event" && last.event.type === "output") taken.unshift(last.event.chunks);
      stream.queue.pop();
    }
    return taken.flat();
  }

  /** The output post in flight when it is all that is queued: its chunks, and how to abort it. */
  #overtakable(stream: CommandStream): { chunks: OutputChunk[]; abort: () => void } | null {
    const posting = stream.posting;
    if (posting === undefined || stream.queue.length !== 1 || stream.queue[0] !== posting.item) return null;
    const { item } = posting;
    if (item.kind !== "event" || item.event.type !== "output") return null;
    return { chunks: item.event.chunks, abort: () => posting.abort.abort() };
  }

  #takePending(stream: CommandStream): OutputChunk[] {
    clearTimeout(stream.timer);
    stream.timer = undefined;
    const chunks = stream.pending;
    stream.pending = [];
    stream.pendingChars = 0;
    return chunks;
  }

  #flushOutput(commandId: string, stream: CommandStream): void {
    const chunks = this.#takePending(stream);
    if (chunks.length === 0) return;
    for (let i = 0; i < chunks.length; i += MAX_CHUNKS_PER_EVENT) {
      stream.queue.push({ kind: "event", event: { type: "output", chunks: chunks.slice(i, i + MAX_CHUNKS_PER_EVENT) } });
    }
    void this.#pump(commandId, stream);
  }

  async #pump(commandId: string, stream: CommandStream): Promise<void> {
    if (stream.sending) return;
    stream.sending = true;
    let failures = 0;
    try {
      while (stream.queue.length > 0 && !this.#stop.signal.aborted) {
        const item = stream.queue[0]!;
        if (item.kind === "mark") {
          stream.queue.shift();
          await item.reached(item.nextSeq);
          continue;
        }
        const postedAt = Date.now();
        const posting = { item, abort: new AbortController() };
        stream.posting = posting;
        const outcome = await this.#client.postEvent(commandId, item.event, AbortSignal.any([this.#stop.signal, posting.abort.signal]));
        stream.posting = undefined;
        if (outcome.kind === "aborted" && posting.abort.signal.aborted && !this.#stop.signal.aborted) {
          // The finished event behind it took its output along (#enqueue) and goes now, in its place.
          stream.queue.shift();
          continue;
        }
        if (outcome.kind === "aborted") return;
        if (outcome.kind === "stored") {
          failures = 0;
          // A command's end → the control plane's answer, step by step: bench:rollout lines these up with the rollout's gate.
          if (item.event.type === "finished") {
            this.#logger.debug("finished event stored", { command: commandId, at: item.event.at, queuedAt: item.queuedAt, postedAt, answeredAt: Date.now(), serverTiming: outcome.serverTiming });
          }
          stream.queue.shift();
          item.settle?.("stored");
          continue;
        }
        if (outcome.kind === "unwanted") {
          this.#logger.warn("control plane no longer wants events for this command; dropping them", {
            command: commandId,
            answer: outcome.message,
          });
          this.#markUnwanted(commandId);
          for (const dropped of stream.queue) if (dropped.kind === "event") dropped.settle?.("dropped");
          clearTimeout(stream.timer);
          stream.queue = [];
          stream.pending = [];
          this.#streams.delete(commandId);
          return;
        }
        if (outcome.kind === "rejected") {
          this.#logger.error("control plane rejected a command event; dropping it", {
            command: commandId,
            event: item.event.type,
            answer: outcome.message,
          });
          stream.queue.shift();
          item.settle?.("dropped");
          continue;
        }
        failures++;
        const wait = backoffDelay(this.#backoff, failures, this.#random);
        const fields = { command: commandId, event: item.event.type, problem: outcome.message, retryInMs: wait };
        if (outcome.kind === "unauthorized") this.#logger.error("control plane refused the agent token; retrying", fields);
        else this.#logger.warn("could not send command event; retrying", fields);
        await sleep(wait, this.#stop.signal);
      }
    } finally {
      stream.sending = false;
      // The numbering is kept while the command may still produce output; once
      // its finished event went out the stream is forgotten.
      if (stream.closing && stream.queue.length === 0 && this.#streams.get(commandId) === stream) {
        this.#streams.delete(commandId);
      }
      for (const check of [...this.#idle]) check();
    }
  }

  #markUnwanted(commandId: string): void {
    this.#unwanted.add(commandId);
    if (this.#unwanted.size > 500) {
      const oldest = this.#unwanted.values().next().value;
      if (oldest !== undefined) this.#unwanted.delete(oldest);
    }
  }
}
