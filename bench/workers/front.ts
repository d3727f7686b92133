/**
 * A front (bench/fronts.ts): where the simulated agents' connections end, as Cloudflare's edge ends real
 * ones. Each request goes to the control plane's process as one JS RPC call on the Cap'n Proto connection
 * the front holds to it, so thousands of held polls share that one connection there instead of holding a
 * socket each. A WebSocket upgrade goes as a plain fetch (a connection of its own; the bench opens one).
 */
import type Gateway from "./gateway.ts";

interface FrontEnv {
  GATEWAY: Service<Gateway>;
}

export default {
  async fetch(request, env) {
    if (request.headers.get("upgrade")?.toLowerCase() === "websocket") return env.GATEWAY.fetch(request);
    const hasBody = request.method !== "GET" && request.method !== "HEAD";
    const answer = await env.GATEWAY.forward({ method: request.method, url: request.url, headers: [...request.headers], body: hasBody ? await request.arrayBuffer() : null });
    return new Response(answer.body, { status: answer.status, headers: answer.headers });
  },
} satisfies ExportedHandler<FrontEnv>;
