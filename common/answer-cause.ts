/**
 * Names what stood between the agent and the control plane when an answer is
 * not the Worker's own (it lacks WORKER_MARKER_HEADER) or the request failed
 * in TLS. Without this, an agent behind Cloudflare Access without a Bypass
 * policy logs `poll answered 302: <html…`, which names neither Access nor the
 * fix (issue 24). The agent and `nixfleet doctor` (cli/doctor.ts) share it.
 */
import { WORKER_MARKER_HEADER } from "./protocol.ts";

export const ACCESS_BLOCKED =
  "Cloudflare Access stopped the agent: add a Bypass policy for /api/agent/* (docs/operations.md#cloudflare-access)";

export type AnswerCause = { cause: "access" | "not-nixfleet" | "tls"; message: string };

/** The parts of an answer the diagnosis reads. */
export interface AnswerSeen {
  status: number;
  header(name: string): string | null;
  body: string;
}

/** Access's team domains, its login path on any host, and the cookies it sets or reads. */
const ACCESS_SIGNS = /cloudflareaccess\.com|\/cdn-cgi\/access\/|CF_Authorization|CF_AppSession/i;

/** True when the answer came from Cloudflare Access (a login redirect or page), not from the Worker. */
export function isAccessAnswer(answer: AnswerSeen): boolean {
  if (answer.header(WORKER_MARKER_HEADER) !== null) return false;
  const location = answer.header("location") ?? "";
  const cookies = answer.header("set-cookie") ?? "";
  return ACCESS_SIGNS.test(location) || ACCESS_SIGNS.test(cookies) || ACCESS_SIGNS.test(answer.body.slice(0, 64 * 1024));
}

/** Why an answer that is not the Worker's came back, or null when it is the Worker's (or says nothing). */
export function answerCause(url: string, answer: AnswerSeen): AnswerCause | null {
  if (answer.header(WORKER_MARKER_HEADER) !== null) return null;
  if (isAccessAnswer(answer)) return { cause: "access", message: ACCESS_BLOCKED };
  if (answer.status === 404) {
    return {
      cause: "not-nixfleet",
      message: `${origin(url)} is not a NixFleet control plane: it answered 404 without the Worker's ${WORKER_MARKER_HEADER} header (check the url in the agent's config)`,
    };
  }
  return null;
}

/** Node's certificate errors (openssl's verify codes, node:tls's host name check). */
const CERTIFICATE_CODES = /^(CERT_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT$|SELF_SIGNED_CERT_IN_CHAIN$|ERR_TLS_CERT_)/;
/** The handshake itself failed: most often https to a port that speaks plain HTTP. */
const HANDSHAKE_CODES = /^(EPROTO$|ERR_SSL_|ERR_TLS_)/;

/** A TLS failure, named with its code and what to check; null for any other network error. */
export function networkCause(url: string, error: unknown): AnswerCause | null {
  for (let current: unknown = error, depth = 0; current instanceof Error && depth < 4; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && CERTIFICATE_CODES.test(code)) {
      // Node appends advice on --use-system-ca after a ";": the agent's own fix is below.
      const reason = current.message.split(";")[0]!.trim();
      return { cause: "tls", message: `TLS to ${origin(url)} failed (${code}: ${reason}): this host does not trust the control plane's certificate` };
    }
    if (typeof code === "string" && HANDSHAKE_CODES.test(code)) {
      const reason = /SSL routines:[^:]*:([^:]+)/.exec(current.message)?.[1] ?? current.message.split("\n")[0]!;
      return { cause: "tls", message: `TLS to ${origin(url)} failed (${code}: ${reason}): the server there does not speak TLS (check http/https in the url)` };
    }
    current = (current as Error & { cause?: unknown }).cause;
  }
  return null;
}

/** Scheme and host of a URL (common/ has no URL class: it runs in no particular runtime). */
function origin(url: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\/[^/?#]+/i.exec(url)?.[0] ?? url;
}
