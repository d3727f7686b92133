/**
 * The gateway in the control plane's workerd process (bench/fronts.ts): the fronts' one way in. It answers
 * their JS RPC `forward` by handing the request to the control plane's Worker over a service binding in
 * the same process, and their few plain fetches (the dashboard's WebSocket) the same way.
 */
import { WorkerEntrypoint } from "cloudflare:workers";
import type { ForwardedRequest, ForwardedResponse } from "./forwarded.ts";

interface GatewayEnv {
  CONTROL_PLANE: Fetcher;
}

/** Statuses whose response has no body: a Response built with one throws. */
const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

export default class Gateway extends WorkerEntrypoint<GatewayEnv> {
  override fetch(request: Request): Promise<Response> {
    return this.env.CONTROL_PLANE.fetch(request);
  }

  async forward(forwarded: ForwardedRequest): Promise<ForwardedResponse> {
    const response = await this.env.CONTROL_PLANE.fetch(new Request(forwarded.url, { method: forwarded.method, headers: forwarded.headers, body: forwarded.body }));
    const body = NULL_BODY_STATUSES.has(response.status) ? null : await response.arrayBuffer();
    return { status: response.status, headers: [...response.headers], body };
  }
}
