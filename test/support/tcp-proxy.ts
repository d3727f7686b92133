/**
 * A TCP proxy in front of a control plane, for the safety net's cut-off tests: `refuseNew()` resets
 * every connection opened from then on while the ones already open keep working in both directions
 * (a kept-alive socket, a held long poll), as a switch that breaks the host's network or DNS does to
 * new connections only. `reopen()` lets new connections through again.
 */
import * as net from "node:net";

export interface TcpProxy {
  /** `http://127.0.0.1:<port>`: the URL the agent is given. */
  url: string;
  /** New connections are reset from now on; open ones go on. */
  refuseNew(): void;
  reopen(): void;
  /** Connections accepted and passed on, and those reset while refusing. */
  counts(): { accepted: number; refused: number; open: number };
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let refusing = false;
  let accepted = 0;
  let refused = 0;
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (refusing) {
      refused++;
      client.resetAndDestroy();
      return;
    }
    accepted++;
    const upstream = net.connect(target.port, target.host);
    open.add(client);
    open.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    refuseNew: () => {
      refusing = true;
    },
    reopen: () => {
      refusing = false;
    },
    counts: () => ({ accepted, refused, open: open.size / 2 }),
    close: async () => {
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The host and port of an `http://host:port` URL. */
export function hostAndPort(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: Number(parsed.port) };
}
