import { verify } from "@octokit/webhooks-methods";
import { Hono } from "hono";
import { claimDelivery, finishDelivery, MAX_DELIVERY_ATTEMPTS } from "../db/github.ts";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../errors.ts";
import { readGitHubConfig } from "../github/config.ts";
import { GitHubNotConfiguredError } from "../github/errors.ts";
import { isHandledEvent, parseWebhookEvent } from "../github/events.ts";
import { updatePrContext } from "../update-prs/context.ts";
import { handleWebhookEvent } from "../update-prs/webhook-events.ts";
import type { HandlerResult } from "../update-prs/webhook-result.ts";
import { describeIssues } from "../validation.ts";

/** GitHub caps webhook payloads at 25 MB. */
const MAX_WEBHOOK_BYTES = 25 * 1024 * 1024;

/** HMAC-SHA256 of the raw body, compared in constant time; a malformed header is simply wrong. */
async function signatureValid(secret: string, body: string, signature: string): Promise<boolean> {
  if (!/^sha256=[0-9a-f]{64}$/i.test(signature)) return false;
  try {
    return await verify(secret, body, signature);
  } catch {
    return false;
  }
}

const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * `POST /webhooks/github`: GitHub's repository webhook. Authenticated by its
 * signature (not by Access); deduplicated by delivery id; answers within
 * milliseconds and leaves GitHub API calls to `waitUntil`.
 */
export const webhooks = new Hono<AppEnv>().post("/", async (c) => {
  const secret = readGitHubConfig(c.env).webhookSecret;
  if (secret === null) {
    throw new ApiError(
      503,
      "webhook_secret_missing",
      "GITHUB_WEBHOOK_SECRET is not set, so webhooks cannot be verified: set it (wrangler secret put GITHUB_WEBHOOK_SECRET) to the webhook's secret",
    );
  }
  if (Number(c.req.header("content-length") ?? "0") > MAX_WEBHOOK_BYTES) {
    throw new ApiError(413, "payload_too_large", `webhook payload is larger than ${MAX_WEBHOOK_BYTES} bytes`);
  }
  // The signature covers the exact bytes: verify before parsing anything.
  const body = await c.req.text();
  const signature = c.req.header("x-hub-signature-256");
  if (!signature) throw new ApiError(401, "missing_signature", "X-Hub-Signature-256 is missing: configure the webhook with a secret");
  if (!(await signatureValid(secret, body, signature))) {
    throw new ApiError(401, "bad_signature", "X-Hub-Signature-256 does not match the payload and GITHUB_WEBHOOK_SECRET");
  }
  const deliveryId = c.req.header("x-github-delivery");
  const eventName = c.req.header("x-github-event");
  if (!deliveryId || !eventName || deliveryId.length > 100 || eventName.length > 100) {
    throw new ApiError(400, "missing_headers", "X-GitHub-Delivery and X-GitHub-Event are required");
  }

  let payload: unknown;
  let malformed = false;
  try {
    payload = JSON.parse(body);
  } catch {
    malformed = true;
  }
  const action =
    typeof payload === "object" && payload !== null && "action" in payload && typeof payload.action === "string" ? payload.action : null;

  const db = c.get("db");
  const claim = await claimDelivery(db, { id: deliveryId, event: eventName, action, receivedAt: new Date().toISOString() });
  if (claim === "duplicate") return c.json({ status: "duplicate", delivery: deliveryId });
  if (claim === "exhausted") {
    throw new ApiError(
      409,
      "delivery_exhausted",
      `delivery ${deliveryId} failed ${MAX_DELIVERY_ATTEMPTS} times and is not processed again; the 5-minute sync (or POST /api/repo/refresh) reads the repository once the cause is fixed`,
    );
  }

  if (malformed) {
    await finishDelivery(db, deliveryId, "rejected", "malformed JSON");
    throw new ApiError(400, "malformed_json", "webhook body is not valid JSON (the webhook's content type must be application/json)");
  }
  if (!isHandledEvent(eventName)) {
    const reason = `event ${eventName} is not handled`;
    await finishDelivery(db, deliveryId, "ignored", reason);
    return c.json({ status: "ignored", delivery: deliveryId, reason }, 202);
  }
  const parsed = parseWebhookEvent(eventName, payload);
  if (!parsed.ok) {
    const problem = `${eventName} payload: ${describeIssues(parsed.error)}`;
    await finishDelivery(db, deliveryId, "rejected", problem);
    throw new ApiError(400, "invalid_payload", problem);
  }
  const ctx = updatePrContext(c.env, db);
  let result: HandlerResult;
  try {
    result = await handleWebhookEvent(ctx, parsed.event);
  } catch (error) {
    await finishDelivery(db, deliveryId, "failed", errorMessage(error));
    if (error instanceof GitHubNotConfiguredError) throw new ApiError(503, "github_not_configured", error.message);
    throw error;
  }
  if (result.outcome === "ignored") {
    await finishDelivery(db, deliveryId, "ignored", result.reason);
    return c.json({ status: "ignored", delivery: deliveryId, reason: result.reason }, 202);
  }
  const followUp = result.followUp;
  if (followUp === undefined) {
    await finishDelivery(db, deliveryId, "processed");
    return c.json({ status: "processed", delivery: deliveryId });
  }
  c.executionCtx.waitUntil(
    followUp().then(
      () => finishDelivery(db, deliveryId, "processed"),
      async (error: unknown) => {
        console.error(`github: delivery ${deliveryId} (${eventName}) failed after the answer:`, errorMessage(error));
        await finishDelivery(db, deliveryId, "failed", errorMessage(error));
      },
    ),
  );
  return c.json({ status: "accepted", delivery: deliveryId }, 202);
});
