/**
 * Fronts: workerd processes that hold the simulated agents' connections and pass each request to the
 * control plane's workerd process over one multiplexed connection, so that process holds a handful of
 * descriptors however many polls are held (bench/dispatch.ts).
 *
 * Why: workerd holds every accepted HTTP connection under two descriptors (bench/workerd.ts says why), so
 * 10,000 held polls in one process need 20,000, the whole hard limit of this machine, which cannot be
 * raised here. In production no such limit meets a coordinator: agents' connections end at Cloudflare's
 * edge, and the Worker reaches the Durable Object over Cloudflare's internal RPC. The fronts stand in for
 * the edge.
 *
 * How: the control plane's process also runs the gateway (workers/gateway.ts) on a socket of its own
 * configured with workerd's `capnpConnectHost` (Miniflare's `unsafeDirectSockets` sets it). Each front's
 * Worker (workers/front.ts) has a service binding to that socket as an external server; workerd sends JS
 * RPC on such a binding as Cap'n Proto calls on ONE connection, opened by an HTTP CONNECT and reused for
 * every call (`ExternalHttpService::getOutgoingCapnp` in workerd's server.c++), while a plain fetch on it
 * would take an HTTP connection per request in flight. So the front calls `forward()` with the request as
 * plain data, and the gateway hands it to the control plane's Worker over a service binding in its process.
 */
import { build } from "esbuild";
import { convertV4MiniflareOptions, Log, LogLevel, Miniflare } from "miniflare";
import { cpuSecondsOf, type Descriptors, descriptorsOf, rssOf, workerdChildren } from "./proc.ts";

export const GATEWAY_WORKER = "bench-gateway";
/** A cheap route of the control plane, for a front's first call. */
const WARM_UP_PATH = "/api/health";

/** One of bench/workers/*.ts as the single ES module workerd runs. */
async function bundle(name: "front" | "gateway"): Promise<string> {
  const result = await build({
    entryPoints: [new URL(`./workers/${name}.ts`, import.meta.url).pathname],
    bundle: true,
    format: "esm",
    platform: "neutral",
    external: ["cloudflare:workers"],
    write: false,
    logLevel: "silent",
  });
  return result.outputFiles[0]!.text;
}

/** The gateway, as one more Worker of the control plane's Miniflare: `controlPlane` names the Worker it hands requests to. */
export async function gatewayWorker(controlPlane: string, compatibilityDate: string) {
  return {
    name: GATEWAY_WORKER,
    modules: true,
    script: await bundle("gateway"),
    compatibilityDate,
    serviceBindings: { CONTROL_PLANE: controlPlane },
    unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
  };
}

export interface Front {
  /** Where agents connect. */
  url: string;
  descriptors(): Promise<Descriptors>;
  rssBytes(): Promise<number>;
  cpuSeconds(): Promise<number>;
  stop(): Promise<void>;
}

/** `count` fronts, started one after another (each one's workerd is told apart by the children that appear). */
export async function startFronts(gateway: URL, count: number, compatibilityDate: string): Promise<Front[]> {
  const script = await bundle("front");
  const fronts: Front[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const before = new Set(await workerdChildren());
      const mf = new Miniflare(
        convertV4MiniflareOptions({
          host: "127.0.0.1",
          port: 0,
          cf: false,
          log: new Log(LogLevel.WARN),
          workers: [
            {
              name: "bench-front",
              modules: true,
              script,
              compatibilityDate,
              // `http: {}`: Miniflare adds workerd's capnpConnectHost, the one the gateway's socket answers.
              serviceBindings: { GATEWAY: { external: { address: gateway.host, http: {} } } },
              // Straight to the front's Worker, past Miniflare's entry worker (the control plane's side has none either).
              unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
            },
          ],
        }),
      );
      await mf.ready;
      const url = (await mf.unsafeGetDirectURL("bench-front")).origin;
      // One call before the agents come opens the Cap'n Proto connection. A front whose first calls came
      // 150 at once opened one for each of them instead (150 `CONNECT miniflare-unsafe-internal-capnp-connect`
      // requests read by the control plane's process under strace, 150 connections in `ss -tnp`) and kept
      // them while their polls were held; one warmed this way held 300 polls on its one connection.
      const warm = await fetch(new URL(WARM_UP_PATH, url));
      await warm.text();
      if (!warm.ok) throw new Error(`front ${i}: ${WARM_UP_PATH} through it answered ${warm.status}`);
      const pids = (await workerdChildren()).filter((pid) => !before.has(pid));
      if (pids.length !== 1) throw new Error(`front ${i}: expected one new workerd process, found ${pids.length}`);
      const pid = pids[0]!;
      fronts.push({
        url,
        descriptors: () => descriptorsOf(pid),
        rssBytes: () => rssOf(pid),
        cpuSeconds: () => cpuSecondsOf(pid),
        stop: () => mf.dispose(),
      });
    }
  } catch (error) {
    await Promise.all(fronts.map((front) => front.stop()));
    throw error;
  }
  return fronts;
}
