/**
 * CPU profiles for the benchmarks, through the Chrome DevTools Protocol: of workerd's isolates (their
 * inspector, which Miniflare serves) and of a Node process (node:inspector). Profiles are sampled, so
 * unlike workerd's Server-Timing marks (whole milliseconds, moving with I/O only) they see the CPU a part
 * spends between two pieces of I/O. `summarize` turns one into what a reader of the JSON needs: busy time
 * and the functions that spent it.
 */
import { z } from "zod";

const CallFrame = z.object({ functionName: z.string(), url: z.string(), lineNumber: z.number() });
const ProfileNode = z.object({ id: z.number(), callFrame: CallFrame, children: z.array(z.number()).optional() });
export const CpuProfile = z.object({
  nodes: z.array(ProfileNode),
  startTime: z.number(),
  endTime: z.number(),
  samples: z.array(z.number()).default([]),
  timeDeltas: z.array(z.number()).default([]),
});
export type CpuProfile = z.infer<typeof CpuProfile>;

/** Sampling interval: fine enough to see a part of a 1 ms round trip, coarse enough not to swamp the thread. */
export const SAMPLING_INTERVAL_US = 100;

/** A DevTools Protocol connection to one target: calls answered in turn by id. */
export class DevToolsSession {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (result: unknown) => void; reject: (error: Error) => void }>();

  private readonly socket: WebSocket;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.addEventListener("message", (message) => {
      const data = JSON.parse(String(message.data)) as { id?: number; result?: unknown; error?: { message: string } };
      const waiter = data.id === undefined ? undefined : this.pending.get(data.id);
      if (!waiter || data.id === undefined) return;
      this.pending.delete(data.id);
      if (data.error) waiter.reject(new Error(data.error.message));
      else waiter.resolve(data.result);
    });
  }

  static async open(url: string): Promise<DevToolsSession> {
    const socket = new WebSocket(url);
    await new Promise((resolve, reject) => {
      socket.addEventListener("open", resolve);
      socket.addEventListener("error", () => reject(new Error(`inspector ${url} did not open`)));
    });
    return new DevToolsSession(socket);
  }

  /** `nudge`: a request that makes workerd run the isolate, which reads its inspector's messages only then. */
  call(method: string, params: Record<string, unknown> = {}, nudge?: () => Promise<unknown>): Promise<unknown> {
    const id = this.next++;
    const answer = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`inspector: no answer to ${method} within 60 s`)), 60_000);
      this.pending.set(id, {
        resolve: (result) => (clearTimeout(timer), resolve(result)),
        reject: (error) => (clearTimeout(timer), reject(error)),
      });
    });
    this.socket.send(JSON.stringify({ id, method, params }));
    void nudge?.();
    return answer;
  }

  close(): void {
    this.socket.close();
  }
}

/** The DevTools calls that start a profile; `stopProfile` ends it. */
export async function startProfile(session: { call(method: string, params?: Record<string, unknown>): Promise<unknown> }): Promise<void> {
  await session.call("Profiler.enable");
  await session.call("Profiler.setSamplingInterval", { interval: SAMPLING_INTERVAL_US });
  await session.call("Profiler.start");
}

export async function stopProfile(session: { call(method: string, params?: Record<string, unknown>): Promise<unknown> }): Promise<CpuProfile> {
  return CpuProfile.parse(z.object({ profile: z.unknown() }).parse(await session.call("Profiler.stop")).profile);
}

/** V8's pseudo-frame for a thread with nothing to run. */
const IDLE = "(idle)";

/**
 * Busy milliseconds and the functions with the most self time (by name and bundle line: the bundle is not
 * minified), over the whole profile and per `per` (one dispatch, say). workerd's profiler samples an isolate
 * only while it runs, so the gap after a sample is no measure of that sample's time: each sample counts
 * as the profile's typical (median) interval instead, and busy time is the count of samples not idle.
 */
export function summarize(profile: CpuProfile, per: number, top = 15) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const deltas = [...profile.timeDeltas].sort((a, b) => a - b);
  const intervalUs = deltas[Math.floor(deltas.length / 2)] ?? SAMPLING_INTERVAL_US;
  const self = new Map<string, number>();
  let busy = 0;
  for (const nodeId of profile.samples) {
    const frame = byId.get(nodeId)?.callFrame;
    if (!frame || frame.functionName === IDLE) continue;
    busy++;
    const where = frame.url ? ` ${frame.url.split("/").at(-1)}:${frame.lineNumber + 1}` : "";
    const key = `${frame.functionName || "(anonymous)"}${where}`;
    self.set(key, (self.get(key) ?? 0) + 1);
  }
  const ms = (samples: number) => Math.round((samples * intervalUs) / 10) / 100;
  return {
    profiled_ms: Math.round((profile.endTime - profile.startTime) / 1000),
    sample_interval_us: intervalUs,
    busy_samples: busy,
    busy_ms: ms(busy),
    busy_ms_per: Math.round(((busy * intervalUs) / per / 1000) * 1000) / 1000,
    top_self: [...self].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, samples]) => ({ name, samples, ms: ms(samples), share: Math.round((samples / Math.max(1, busy)) * 1000) / 1000 })),
  };
}
