/**
 * The dashboards' WebSockets, with the hibernation API so idle dashboards cost nothing: the shell
 * accepts them and broadcasts to them; these are the messages and the closing handshake.
 */
import { PROTOCOL_VERSION, type DashboardEvent } from "../../common/protocol.ts";

/** Accepts a dashboard's socket (the upgrade request is the shell's `fetch`) and greets it. */
export function acceptDashboard(ctx: DurableObjectState, request: Request): Response {
  if (request.headers.get("Upgrade")?.toLowerCase() !== "websocket") return new Response("expected a WebSocket upgrade", { status: 426 });
  const pair = new WebSocketPair();
  ctx.acceptWebSocket(pair[1]);
  pair[1].send(JSON.stringify({ type: "hello", protocol: PROTOCOL_VERSION } satisfies DashboardEvent));
  return new Response(null, { status: 101, webSocket: pair[0] });
}

/** Dashboards only listen; a ping keeps proxies from cutting an idle socket. */
export function answerDashboard(ws: WebSocket, message: string | ArrayBuffer): void {
  if (message === "ping") ws.send(JSON.stringify({ type: "pong" } satisfies DashboardEvent));
}

export function closeDashboard(ws: WebSocket, code: number): void {
  // 1005 (no code), 1006 (dropped) and 1015 (TLS) describe a close; they may not be sent in one.
  const reserved = code === 1005 || code === 1006 || code === 1015;
  try {
    ws.close(reserved ? 1000 : code, "closing");
  } catch {
    // Already closed from the other side: nothing left to answer.
  }
}

export function broadcastTo(sockets: WebSocket[], event: DashboardEvent): void {
  const text = JSON.stringify(event);
  for (const ws of sockets) {
    try {
      ws.send(text);
    } catch {
      // A socket closing under us is not our error; the dashboard resynchronises on reconnect.
    }
  }
}
