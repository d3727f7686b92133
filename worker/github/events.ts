/**
 * The webhook payloads NixFleet acts on, with only the fields it reads.
 * Unknown fields are allowed (GitHub adds them all the time) and dropped.
 * https://docs.github.com/webhooks/webhook-events-and-payloads
 */
import { z } from "zod";
import { Sha1 } from "../../common/protocol.ts";

export const WebhookRepository = z.object({
  full_name: z.string().min(3),
  default_branch: z.string().optional(),
});

const Label = z.object({ name: z.string() });

/** A pull request as both the REST API and the `pull_request` webhook describe it. */
export const PullRequestFields = z.object({
  number: z.number().int().positive(),
  title: z.string(),
  html_url: z.string(),
  state: z.enum(["open", "closed"]),
  draft: z.boolean().optional(),
  head: z.object({ sha: Sha1, ref: z.string() }),
  base: z.object({ sha: Sha1, ref: z.string() }),
  labels: z.array(Label).default([]),
  /** Only in the single-PR answer and webhooks; null while GitHub is still computing it. */
  mergeable: z.boolean().nullable().optional(),
  merged: z.boolean().nullable().optional(),
  created_at: z.string(),
  updated_at: z.string(),
  merged_at: z.string().nullable().default(null),
  merge_commit_sha: Sha1.nullable().default(null),
});
export type PullRequestFields = z.infer<typeof PullRequestFields>;

export const PingEvent = z.object({
  zen: z.string().optional(),
  hook_id: z.number().int().optional(),
  repository: WebhookRepository.optional(),
});

const PushCommit = z.object({
  id: z.string(),
  added: z.array(z.string()).default([]),
  removed: z.array(z.string()).default([]),
  modified: z.array(z.string()).default([]),
});

export const PushEvent = z.object({
  ref: z.string(),
  before: z.string(),
  after: z.string(),
  created: z.boolean().default(false),
  deleted: z.boolean().default(false),
  forced: z.boolean().default(false),
  repository: WebhookRepository,
  commits: z.array(PushCommit).default([]),
  head_commit: z
    .object({
      id: Sha1,
      /** The commit's git tree: desired systems evaluated at another commit of the same tree are main's. */
      tree_id: Sha1.optional(),
      message: z.string(),
      timestamp: z.string(),
      author: z.object({ name: z.string(), username: z.string().optional() }),
      added: z.array(z.string()).default([]),
      removed: z.array(z.string()).default([]),
      modified: z.array(z.string()).default([]),
    })
    .nullable()
    .default(null),
});
export type PushEvent = z.infer<typeof PushEvent>;

/** The pull_request actions that can change what the fleet is offered; others are recorded and ignored. */
export const HANDLED_PULL_REQUEST_ACTIONS = new Set([
  "opened",
  "reopened",
  "synchronize",
  "edited",
  "labeled",
  "unlabeled",
  "closed",
]);

export const PullRequestEvent = z.object({
  action: z.string(),
  number: z.number().int().positive(),
  pull_request: PullRequestFields,
  repository: WebhookRepository,
});
export type PullRequestEvent = z.infer<typeof PullRequestEvent>;

export const CheckRunEvent = z.object({
  action: z.string(),
  check_run: z.object({
    id: z.number().int(),
    name: z.string(),
    head_sha: Sha1,
    status: z.string(),
    conclusion: z.string().nullable().default(null),
    check_suite: z.object({ id: z.number().int() }).nullable().optional(),
  }),
  repository: WebhookRepository,
});
export type CheckRunEvent = z.infer<typeof CheckRunEvent>;

export const CheckSuiteEvent = z.object({
  action: z.string(),
  check_suite: z.object({
    id: z.number().int(),
    head_sha: Sha1,
    status: z.string().nullable().default(null),
    conclusion: z.string().nullable().default(null),
    latest_check_runs_count: z.number().int().nonnegative().optional(),
    updated_at: z.string().nullable().optional(),
    app: z.object({ name: z.string().optional(), slug: z.string().optional() }).nullable().optional(),
  }),
  repository: WebhookRepository,
});
export type CheckSuiteEvent = z.infer<typeof CheckSuiteEvent>;

export const StatusEvent = z.object({
  sha: Sha1,
  state: z.enum(["pending", "success", "failure", "error"]),
  context: z.string(),
  updated_at: z.string().nullable().optional(),
  repository: WebhookRepository,
});
export type StatusEvent = z.infer<typeof StatusEvent>;

export const WorkflowRunEvent = z.object({
  action: z.string(),
  workflow_run: z.object({
    id: z.number().int(),
    name: z.string().nullable().optional(),
    head_sha: Sha1,
    status: z.string().nullable().default(null),
    conclusion: z.string().nullable().default(null),
    updated_at: z.string().nullable().optional(),
  }),
  repository: WebhookRepository,
});
export type WorkflowRunEvent = z.infer<typeof WorkflowRunEvent>;

/** Every event NixFleet handles, by its `X-GitHub-Event` name. */
export const WEBHOOK_EVENTS = {
  ping: PingEvent,
  push: PushEvent,
  pull_request: PullRequestEvent,
  check_run: CheckRunEvent,
  check_suite: CheckSuiteEvent,
  status: StatusEvent,
  workflow_run: WorkflowRunEvent,
} as const;
export type WebhookEventName = keyof typeof WEBHOOK_EVENTS;

export const isHandledEvent = (name: string): name is WebhookEventName => Object.hasOwn(WEBHOOK_EVENTS, name);

type Parsed<E extends WebhookEventName> = { name: E; payload: z.infer<(typeof WEBHOOK_EVENTS)[E]> };

/** A handled event with its parsed payload; `name` tells which payload it is. */
export type WebhookEvent = { [E in WebhookEventName]: Parsed<E> }[WebhookEventName];

type ParseResult = { ok: true; event: WebhookEvent } | { ok: false; error: z.ZodError };

function result<E extends WebhookEventName>(name: E, parsed: z.ZodSafeParseResult<Parsed<E>["payload"]>): { ok: true; event: Parsed<E> } | { ok: false; error: z.ZodError } {
  return parsed.success ? { ok: true, event: { name, payload: parsed.data } } : { ok: false, error: parsed.error };
}

/** Parses `payload` with the schema of the event `name`. */
export function parseWebhookEvent(name: WebhookEventName, payload: unknown): ParseResult {
  switch (name) {
    case "ping":
      return result(name, PingEvent.safeParse(payload));
    case "push":
      return result(name, PushEvent.safeParse(payload));
    case "pull_request":
      return result(name, PullRequestEvent.safeParse(payload));
    case "check_run":
      return result(name, CheckRunEvent.safeParse(payload));
    case "check_suite":
      return result(name, CheckSuiteEvent.safeParse(payload));
    case "status":
      return result(name, StatusEvent.safeParse(payload));
    case "workflow_run":
      return result(name, WorkflowRunEvent.safeParse(payload));
  }
}
