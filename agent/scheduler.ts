/**
 * The commands the agent holds, and its one exclusive slot. Commands that
 * change or build the system (EXCLUSIVE_COMMAND_KINDS) run one at a time in
 * delivery order; the others run at once, so a `stop` reaches a running
 * switch. Work that is not a delivered command — a detached job resumed after
 * a restart, the tests after a switch — holds the same slot.
 */
import { EXCLUSIVE_COMMAND_KINDS, type CommandDelivery, type CommandKind } from "../common/protocol.ts";

export interface ActiveCommand {
  id: string;
  kind: CommandKind;
  state: "queued" | "running";
  /** Null for a job resumed from an earlier agent process. */
  delivery: CommandDelivery | null;
  /** Aborted by a `stop` naming this command. */
  stop: AbortController;
  /** Settles when the command finished (or was left running at shutdown). */
  done: Promise<void>;
}

export interface CommandSchedulerOptions {
  /** Runs a delivered command to its end. */
  execute(entry: ActiveCommand): Promise<void>;
  /** True once the agent is stopping: no queued command starts. */
  stopping(): boolean;
  /** The exclusive slot went free with nothing waiting. */
  onIdle(): void;
}

export class CommandScheduler {
  readonly #options: CommandSchedulerOptions;
  readonly #active = new Map<string, ActiveCommand>();
  readonly #queue: ActiveCommand[] = [];
  /** Exclusive work in progress: a command, a resumed job, or tests after a switch (which run inside their switch). */
  #busy = 0;

  constructor(options: CommandSchedulerOptions) {
    this.#options = options;
  }

  has(id: string): boolean {
    return this.#active.has(id);
  }

  get(id: string): ActiveCommand | undefined {
    return this.#active.get(id);
  }

  ids(): string[] {
    return [...this.#active.keys()];
  }

  /** Settles when every command held now has settled. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#active.values()].map((entry) => entry.done));
  }

  /** Takes a delivered command: an exclusive one waits for the slot, any other runs now. */
  admit(delivery: CommandDelivery): void {
    const entry: ActiveCommand = {
      id: delivery.id,
      kind: delivery.kind,
      state: "queued",
      delivery,
      stop: new AbortController(),
      done: Promise.resolve(),
    };
    this.#active.set(delivery.id, entry);
    if (EXCLUSIVE_COMMAND_KINDS.has(delivery.kind)) {
      this.#queue.push(entry);
      this.#pump();
    } else {
      entry.done = this.#options.execute(entry);
    }
  }

  /** Runs `work` for an already running command in the exclusive slot now, ahead of anything queued. */
  occupy(id: string, kind: CommandKind, work: (entry: ActiveCommand) => Promise<void>): void {
    const entry: ActiveCommand = { id, kind, state: "running", delivery: null, stop: new AbortController(), done: Promise.resolve() };
    this.#active.set(id, entry);
    this.#busy++;
    entry.done = work(entry).finally(() => {
      this.#active.delete(id);
      this.#slotFreed();
    });
  }

  /** The command ended; it is no longer reported as active. */
  release(id: string): void {
    this.#active.delete(id);
  }

  /** Takes a command out of the queue before it started; false when it was not waiting. */
  dequeue(entry: ActiveCommand): boolean {
    if (entry.state !== "queued") return false;
    const index = this.#queue.indexOf(entry);
    if (index >= 0) this.#queue.splice(index, 1);
    this.#active.delete(entry.id);
    return true;
  }

  #pump(): void {
    if (this.#busy > 0 || this.#options.stopping()) return;
    const next = this.#queue.shift();
    if (next === undefined) return;
    this.#busy++;
    next.done = this.#options.execute(next).finally(() => this.#slotFreed());
  }

  #slotFreed(): void {
    this.#busy--;
    this.#pump();
    if (this.#busy === 0) this.#options.onIdle();
  }
}
