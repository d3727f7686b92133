/**
 * Main's head as the agents hear of it in every poll answer: a copy of D1's repository state
 * (worker/db/github.ts, the truth, written by the push webhook and the repository sync), read on the
 * first poll and again whenever the repository changed. When main moves, every held poll is answered
 * at once, so each agent starts evaluating its desired system without waiting out its poll.
 */
import type { PollResponse } from "../../common/protocol.ts";
import type { Database } from "../db/client.ts";
import { loadMainHead } from "../db/github.ts";
import type { WaitingPolls } from "./waiting-polls.ts";

export type MainHeadView = NonNullable<PollResponse["main"]>;

export class MainHead {
  private head: MainHeadView | null = null;
  private loading: Promise<void> | null = null;
  /** Counts the reads, so a slow read never overwrites a newer one. */
  private reads = 0;
  private readonly db: Database;
  private readonly waiting: Pick<WaitingPolls, "endAll">;

  constructor(db: Database, waiting: Pick<WaitingPolls, "endAll">) {
    this.db = db;
    this.waiting = waiting;
  }

  /** What a poll answer says; null while main has not been read (no push seen, no sync ran). */
  current(): MainHeadView | null {
    return this.head;
  }

  /** Read once before the first poll's answer; later polls do not wait for D1. */
  async ensureLoaded(): Promise<void> {
    this.loading ??= this.reread().catch((error: unknown) => {
      this.loading = null;
      console.error("main head: could not read the repository state", error);
    });
    await this.loading;
  }

  /** The repository changed: read main's head again and, when it moved, answer every held poll now. */
  async reread(): Promise<void> {
    const read = ++this.reads;
    const row = await loadMainHead(this.db);
    if (read !== this.reads) return;
    const next = row === null ? null : { branch: row.branch, commit: row.commit };
    const moved = next?.commit !== this.head?.commit || next?.branch !== this.head?.branch;
    this.head = next;
    this.loading ??= Promise.resolve();
    if (moved) this.waiting.endAll();
  }
}
