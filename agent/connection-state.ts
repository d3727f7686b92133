/**
 * How the agent's last polls went, kept in `<stateDir>/connection.json` so
 * `nixfleet-agent status` (another process) can say whether the control plane
 * is reached and, when not, what stops it and what to fix. Written only when
 * the state changes, not at every poll.
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import * as z from "zod";
import type { PollOutcome } from "./control-plane-client.ts";
import type { Logger } from "./logger.ts";

export const ConnectionState = z.object({
  /** The last poll the control plane answered. */
  reachedAt: z.string().nullable(),
  /** The failure of the polls since then; null while polls succeed. */
  problem: z
    .object({ message: z.string(), cause: z.enum(["access", "not-nixfleet", "tls", "token", "other"]), since: z.string() })
    .nullable(),
});
export type ConnectionState = z.infer<typeof ConnectionState>;

const FILE = "connection.json";

export class ConnectionLog {
  readonly #file: string;
  readonly #logger: Logger;
  readonly #now: () => number;
  #state: ConnectionState = { reachedAt: null, problem: null };
  #written = "";
  #writing: Promise<void> = Promise.resolve();

  constructor(stateDir: string, logger: Logger, now: () => number = Date.now) {
    this.#file = path.join(stateDir, FILE);
    this.#logger = logger;
    this.#now = now;
  }

  /** Records a poll's outcome; the file changes when success turns to failure, back, or the failure changes. */
  record(outcome: PollOutcome): void {
    if (outcome.kind === "aborted") return;
    const at = new Date(this.#now()).toISOString();
    if (outcome.kind === "ok") {
      // The time of the last success is only worth a write when it ends a problem (or is the first).
      const changed = this.#state.problem !== null || this.#state.reachedAt === null;
      this.#state = { reachedAt: at, problem: null };
      if (changed) this.#write();
      return;
    }
    const cause = outcome.kind === "unauthorized" ? "token" : (outcome.cause ?? "other");
    if (this.#state.problem?.message === outcome.message) return;
    this.#state = { reachedAt: this.#state.reachedAt, problem: { message: outcome.message, cause, since: this.#state.problem?.since ?? at } };
    this.#write();
  }

  /** Resolves when the last recorded state is on disk. */
  flush(): Promise<void> {
    return this.#writing;
  }

  #write(): void {
    const text = `${JSON.stringify(this.#state, null, 2)}\n`;
    if (text === this.#written) return;
    this.#written = text;
    const tmp = `${this.#file}.tmp`;
    this.#writing = this.#writing
      .then(async () => {
        await fs.writeFile(tmp, text);
        await fs.rename(tmp, this.#file);
      })
      .catch((error: unknown) => this.#logger.warn("could not record the connection state", { problem: String(error) }));
  }

  /** The state the running agent recorded; null when it has not polled yet (or the file is damaged). */
  static async read(stateDir: string): Promise<ConnectionState | null> {
    let text: string;
    try {
      text = await fs.readFile(path.join(stateDir, FILE), "utf8");
    } catch {
      return null;
    }
    try {
      const parsed = ConnectionState.safeParse(JSON.parse(text));
      return parsed.success ? parsed.data : null;
    } catch {
      return null;
    }
  }
}

/** The line `nixfleet-agent status` shows for the control plane. */
export function describeConnection(state: ConnectionState | null): string {
  if (state === null) return "not polled yet (is the agent running?)";
  if (state.problem === null) return `reached, last at ${state.reachedAt ?? "unknown"}`;
  const last = state.reachedAt === null ? "never reached" : `last reached at ${state.reachedAt}`;
  return `NOT REACHED since ${state.problem.since} (${last}): ${state.problem.message}`;
}
