import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { verify } from "@octokit/webhooks-methods";
import { z } from "zod";
import { GitHubEmulator, type GitHubEmulatorOptions } from "../../tools/github-emulator/emulator.ts";

const run = promisify(execFile);

export const SECRET = "emulator-test-secret";

/** One request the receiver got, with its signature checked the way a real receiver does. */
export interface ReceivedWebhook {
  event: string;
  deliveryId: string;
  headers: Record<string, string>;
  body: string;
  payload: unknown;
  signatureValid: boolean;
}

/** A real HTTP webhook receiver on 127.0.0.1 that verifies `X-Hub-Signature-256`. */
export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  /** The status to answer with (set 500 to simulate a failing receiver). */
  status = 200;
  readonly #secret: string;
  #server: Server | null = null;

  constructor(secret = SECRET) {
    this.#secret = secret;
  }

  async start(): Promise<string> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        void (async () => {
          const body = Buffer.concat(chunks).toString("utf8");
          const headers: Record<string, string> = {};
          for (const [name, value] of Object.entries(req.headers)) if (typeof value === "string") headers[name] = value;
          const signature = headers["x-hub-signature-256"] ?? "";
          this.received.push({
            event: headers["x-github-event"] ?? "",
            deliveryId: headers["x-github-delivery"] ?? "",
            headers,
            body,
            payload: JSON.parse(body),
            signatureValid: signature !== "" && (await verify(this.#secret, body, signature)),
          });
          res.writeHead(this.status, { "content-type": "text/plain" });
          res.end("ok");
        })();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.#server = server;
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("receiver has no TCP address");
    return `http://127.0.0.1:${address.port}/webhooks/github`;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  of(event: string): ReceivedWebhook[] {
    return this.received.filter((r) => r.event === event);
  }

  /** Payloads of `event`, parsed with `schema` (parse, don't cast). */
  payloads<T extends z.ZodType>(event: string, schema: T): Array<z.infer<T>> {
    return this.of(event).map((r) => schema.parse(r.payload));
  }
}

/** An emulator in a fresh temp dir with a receiver wired to it, started. */
export async function startEmulator(options: Partial<GitHubEmulatorOptions> = {}): Promise<{
  emulator: GitHubEmulator;
  receiver: WebhookReceiver;
  workDir: string;
  close: () => Promise<void>;
}> {
  const workDir = await mkdtemp(join(tmpdir(), "github-emulator-test-"));
  const receiver = new WebhookReceiver();
  const webhookUrl = await receiver.start();
  const emulator = new GitHubEmulator({
    owner: "example",
    repo: "fleet",
    workDir,
    webhookUrl,
    webhookSecret: SECRET,
    ...options,
  });
  await emulator.start();
  return {
    emulator,
    receiver,
    workDir,
    close: async () => {
      await emulator.stop();
      await receiver.stop();
      await rm(workDir, { recursive: true, force: true });
    },
  };
}

/** Runs git in `cwd` with no user or system config, like a fresh machine. */
export async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run("git", args, {
    cwd,
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: cwd,
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_CONFIG_GLOBAL: "/dev/null",
      GIT_AUTHOR_NAME: "Test Person",
      GIT_AUTHOR_EMAIL: "test@example.org",
      GIT_COMMITTER_NAME: "Test Person",
      GIT_COMMITTER_EMAIL: "test@example.org",
    },
  });
  return stdout.trim();
}

/** `fetch` against the emulator's API, returning status, headers and parsed JSON (or text). */
export async function api(
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; json: unknown; text: string }> {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { accept: "application/vnd.github+json", ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json: unknown = null;
  if ((response.headers.get("content-type") ?? "").includes("application/json") && text) json = JSON.parse(text);
  return { status: response.status, headers: response.headers, json, text };
}

// -- the parts of GitHub's payloads the tests read ---------------------------------

export const Repository = z.object({
  full_name: z.string(),
  default_branch: z.string(),
  html_url: z.string(),
  clone_url: z.string(),
});

export const Sender = z.object({ login: z.string() });

export const PushPayload = z.object({
  ref: z.string(),
  before: z.string(),
  after: z.string(),
  created: z.boolean(),
  deleted: z.boolean(),
  forced: z.boolean(),
  commits: z.array(
    z.object({
      id: z.string(),
      message: z.string(),
      added: z.array(z.string()),
      removed: z.array(z.string()),
      modified: z.array(z.string()),
    }),
  ),
  head_commit: z.object({ id: z.string() }).nullable(),
  repository: Repository,
  sender: Sender,
});

export const PullRequestJson = z.object({
  number: z.number(),
  state: z.enum(["open", "closed"]),
  title: z.string(),
  merged: z.boolean().optional(),
  merge_commit_sha: z.string().nullable(),
  labels: z.array(z.object({ name: z.string() })),
  head: z.object({ ref: z.string(), sha: z.string() }),
  base: z.object({ ref: z.string(), sha: z.string() }),
  html_url: z.string(),
  user: z.object({ login: z.string() }),
});

export const PullRequestPayload = z.object({
  action: z.string(),
  number: z.number(),
  pull_request: PullRequestJson,
  label: z.object({ name: z.string() }).optional(),
  before: z.string().optional(),
  after: z.string().optional(),
  repository: Repository,
  sender: Sender,
});

export const GitHubError = z.object({ message: z.string(), documentation_url: z.string() });
