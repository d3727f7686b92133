/** Agent polls held open until a command is queued for their host or their wait runs out: memory only. */
import type { CommandDelivery } from "../../common/protocol.ts";

/**
 * Resolves a turn of the event loop later, when the answers a step handed to waiting polls have left the
 * object. Every reply of the object waits for the step's storage commit (the output gate) and then goes in
 * the order it was returned; the polls' replies are returned a few microtasks after the step, a caller
 * returning straight from it is first. An entry point that answered polls and awaits this lets the agents'
 * answers go before its own reply: on workerd's one thread, the Worker then writes the poll's answer before
 * the caller's (bench:dispatch: the agent had its command before the admin had the 202 in no sample, and in
 * every sample after this).
 */
export const answersSent = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

interface WaitingPoll {
  resolve: (commands: CommandDelivery[]) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class WaitingPolls {
  private readonly polls = new Map<string, WaitingPoll>();

  has(hostId: string): boolean {
    return this.polls.has(hostId);
  }

  get size(): number {
    return this.polls.size;
  }

  /**
   * Holds the host's poll (answering an older one of the host first); `onTimeout` runs when its wait
   * ends with nothing to hand over. Registered synchronously: a command queued right after finds it.
   */
  hold(hostId: string, waitSeconds: number, onTimeout: () => void): Promise<CommandDelivery[]> {
    this.end(hostId);
    return new Promise<CommandDelivery[]>((resolve) => {
      const waiter: WaitingPoll = {
        resolve,
        timer: setTimeout(() => {
          // Only this poll's own entry: a newer poll of the host may have replaced it.
          if (this.polls.get(hostId) === waiter) this.polls.delete(hostId);
          resolve([]);
          onTimeout();
        }, waitSeconds * 1000),
      };
      this.polls.set(hostId, waiter);
    });
  }

  /** Answers every waiting poll with no commands (main moved: each agent hears of it in its answer). */
  endAll(): void {
    for (const hostId of [...this.polls.keys()]) this.end(hostId);
  }

  /** Answers the host's waiting poll, if any, and forgets it. */
  end(hostId: string, commands: CommandDelivery[] = []): void {
    const waiter = this.polls.get(hostId);
    if (!waiter) return;
    this.polls.delete(hostId);
    clearTimeout(waiter.timer);
    waiter.resolve(commands);
  }
}
