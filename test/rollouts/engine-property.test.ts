/**
 * The engine under any delivery order: events for different hosts interleaved at random, repeated,
 * stale, with ticks and hosts coming back online in between, and the rollout stored as JSON between
 * every step. Whatever happens: no host is sent twice, no wave starts before the ones before it passed,
 * a rollout where every host succeeds ends succeeded with every host done, and one failing host stops
 * it: later waves never receive a command and the revert comes once, after every sent command ended.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { RolloutAction, RolloutEvent } from "../../worker/rollouts/engine.ts";
import { COMMIT, World, commandIdOf, planHost } from "./world.ts";

interface Scenario {
  hostCount: number;
  waveSize: number;
  canary: number;
  soak: number;
  failing: number | null;
  failMode: "command" | "health";
  offline: number | null;
  choices: number[];
}

function run(s: Scenario): void {
  const names = Array.from({ length: s.hostCount }, (_, i) => `host${i}`);
  const failing = s.failing === null ? null : names[s.failing % s.hostCount]!;
  const offlineCandidate = s.offline === null ? null : names[s.offline % s.hostCount]!;
  const offline = offlineCandidate === failing ? null : offlineCandidate;
  const w = new World({
    hosts: names.map((name, i) => planHost(name, { priority: (i * 7) % 5, online: name !== offline })),
    waveSize: s.waveSize,
    canary: s.canary,
    soakSeconds: s.soak,
    canarySoakSeconds: s.soak,
    roundTrip: true,
  });
  const waveOf = new Map(w.rollout.hosts.map((h) => [h.name, h.wave]));
  const queues = new Map<string, RolloutEvent[]>();
  const past: RolloutEvent[] = [];
  const sends = new Map<string, number>();
  let reverts = 0;

  const script = (host: string): RolloutEvent[] => {
    const id = commandIdOf(host);
    const fails = host === failing;
    return [
      { type: "command-queued", host, commandId: id },
      { type: "command-started", host, commandId: id },
      {
        type: "command-finished",
        host,
        commandId: id,
        outcome: fails && s.failMode === "command" ? "failed" : "succeeded",
        error: null,
        commitAfter: fails && s.failMode === "command" ? null : COMMIT,
      },
      {
        type: "host-health",
        host,
        commit: COMMIT,
        system: fails ? "red" : "green",
        tests: "green",
        testsConfigured: true,
        reason: fails ? "1 failed unit" : "",
      },
    ];
  };

  // A host whose command waited for it offline does not hold its wave; once back it moves on its own,
  // so a later wave may start while it is still pulling or verifying (docs/rollouts.md, "Offline hosts").
  const wasPending = new Set<string>();
  const react = (actions: RolloutAction[]) => {
    for (const h of w.rollout.hosts) if (h.state === "pending") wasPending.add(h.name);
    for (const a of actions) {
      if (a.type === "send") {
        sends.set(a.host, (sends.get(a.host) ?? 0) + 1);
        expect(sends.get(a.host), `${a.host} sent twice`).toBe(1);
        const wave = waveOf.get(a.host)!;
        for (const earlier of w.rollout.waves.filter((x) => x.index < wave)) expect(earlier.state).toBe("passed");
        for (const h of w.rollout.hosts.filter((x) => x.wave < wave)) {
          const allowed = ["soaking", "done", "pending", "skipped", ...(wasPending.has(h.name) ? ["pulling", "verifying"] : [])];
          expect(allowed, `${h.name} of wave ${h.wave} is ${h.state} when wave ${wave} starts`).toContain(h.state);
        }
        queues.set(a.host, script(a.host));
      } else if (a.type === "cancel-command") {
        // The coordinator cancels a command that has not started.
        queues.set(a.host, [{ type: "command-finished", host: a.host, commandId: a.commandId, outcome: "cancelled", error: null, commitAfter: null }]);
      } else if (a.type === "revert") {
        reverts += 1;
        for (const h of w.rollout.hosts) if (h.sent) expect(h.commandFinished, `${h.name} still running at the revert`).toBe(true);
      }
    }
  };

  const deliverable = () =>
    [...queues.entries()].filter(
      ([host, q]) => q.length > 0 && (w.online[host] || q[0]!.type === "command-queued" || q[0]!.type === "command-finished"),
    );
  const deliver = (host: string) => {
    const event = queues.get(host)!.shift()!;
    past.push(event);
    react(w.step(event));
  };

  react(w.step({ type: "start" }));
  for (const c of s.choices) {
    const ready = deliverable();
    const options = ready.length + 4;
    const pick = c % options;
    if (pick < ready.length) deliver(ready[pick]![0]);
    else if (pick === ready.length && past.length > 0) react(w.step(past[c % past.length]!));
    else if (pick === ready.length + 1) {
      const host = names[c % names.length]!;
      react(w.step({ type: "command-finished", host, commandId: commandIdOf(host, 99), outcome: "failed", error: "stale", commitAfter: null }));
    } else if (pick === ready.length + 2) {
      w.advanceClock(31);
      react(w.step({ type: "tick" }));
    } else if (offline !== null) {
      w.online[offline] = true;
      react(w.step({ type: "tick" }));
    }
  }
  // Then let everything arrive.
  for (const name of names) w.online[name] = true;
  for (let i = 0; i < 1000; i++) {
    const ready = deliverable();
    if (ready.length > 0) deliver(ready[0]![0]);
    else {
      w.advanceClock(61);
      react(w.step({ type: "tick" }));
      if (deliverable().length === 0 && w.rollout.wakeAt === null) break;
    }
  }

  const view = w.view();
  if (failing === null) {
    expect(view.state).toBe("succeeded");
    expect(view.done).toBe(view.total);
    expect([...sends.keys()].sort()).toEqual([...names].sort());
    expect(reverts).toBe(0);
  } else {
    expect(view.state).toBe("failed");
    expect(view.failure?.host).toBe(failing);
    expect(reverts).toBe(1);
    const failedWave = waveOf.get(failing)!;
    for (const h of w.rollout.hosts) {
      if (h.wave > failedWave) expect(sends.has(h.name), `${h.name} of a later wave was sent`).toBe(false);
      if (h.wave <= failedWave) expect(sends.has(h.name)).toBe(true);
    }
    expect(view.finishedAt).toBeDefined();
  }
}

describe("the engine under any delivery order", () => {
  it("keeps its promises", () => {
    fc.assert(
      fc.property(
        fc.record({
          hostCount: fc.integer({ min: 1, max: 7 }),
          waveSize: fc.integer({ min: 1, max: 3 }),
          canary: fc.integer({ min: 0, max: 2 }),
          soak: fc.constantFrom(0, 60),
          failing: fc.option(fc.nat({ max: 6 })),
          failMode: fc.constantFrom("command" as const, "health" as const),
          offline: fc.option(fc.nat({ max: 6 })),
          choices: fc.array(fc.nat({ max: 10_000 }), { maxLength: 200 }),
        }),
        (scenario) => run(scenario),
      ),
      { numRuns: 300 },
    );
  });
});
