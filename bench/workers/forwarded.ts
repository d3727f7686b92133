/**
 * One HTTP exchange as the front (front.ts) hands it to the gateway (gateway.ts) by JS RPC: plain data, so
 * it crosses the processes inside one Cap'n Proto message each way, with no stream of its own. The
 * benchmarks' bodies are small JSON.
 */
export interface ForwardedRequest {
  method: string;
  url: string;
  headers: [string, string][];
  body: ArrayBuffer | null;
}

export interface ForwardedResponse {
  status: number;
  headers: [string, string][];
  body: ArrayBuffer | null;
}
