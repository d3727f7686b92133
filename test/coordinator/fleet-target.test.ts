/**
 * The coordinator's copy of the fleet's target (worker/coordinator/fleet-target.ts): read once for every
 * judgement waiting meanwhile, kept until GitHub state changes or it ages out, and never kept when a
 * change overtook the read. The reads are answered by hand, so each interleaving is exact.
 */
import { describe, expect, it } from "vitest";
import { FleetTargetCopy, MAX_AGE_MS, type FleetTarget } from "../../worker/coordinator/fleet-target.ts";

const targetAt = (sha: string): FleetTarget => ({
  repo: {
    repository: "example/fleet",
    branch: "main",
    head: { sha, message: "", author: "", committedAt: "2026-12-07T00:00:00Z", tree: null },
    lock: { hash: null, lastModified: {} },
    updatedAt: "2026-12-07T00:00:00Z",
    source: "webhook",
  },
  updatePrs: [],
});

/** D1 as the copy sees it: each read waits until the test answers it with the state of that moment. */
function handReads() {
  const pending: { resolve: (target: FleetTarget) => void; reject: (error: Error) => void }[] = [];
  const load = () => new Promise<FleetTarget>((resolve, reject) => pending.push({ resolve, reject }));
  const answer = (target: FleetTarget) => pending.shift()!.resolve(target);
  const fail = (error: Error) => pending.shift()!.reject(error);
  return { load, answer, fail, pending };
}

const headOf = (target: FleetTarget) => target.repo?.head?.sha;
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

describe("the coordinator's copy of the fleet's target", () => {
  it("ten judgements at once share one read, and later ones take the copy without a read", async () => {
    const d1 = handReads();
    const copy = new FleetTargetCopy(d1.load, () => 0);
    expect(copy.current()).toBeNull();
    const judged = Promise.all(Array.from({ length: 10 }, () => copy.read()));
    await settle();
    expect(d1.pending).toHaveLength(1);
    d1.answer(targetAt("a"));
    expect((await judged).map(headOf)).toEqual(Array.from({ length: 10 }, () => "a"));
    expect(headOf(copy.current()!)).toBe("a");
    expect(headOf(await copy.read())).toBe("a");
    expect(copy.reads).toBe(1);
  });

  it("a change drops the copy: the next judgement reads the new state", async () => {
    const d1 = handReads();
    const copy = new FleetTargetCopy(d1.load, () => 0);
    const first = copy.read();
    await settle();
    d1.answer(targetAt("a"));
    await first;
    copy.changed();
    expect(copy.current()).toBeNull();
    const next = copy.read();
    await settle();
    d1.answer(targetAt("b"));
    expect(headOf(await next)).toBe("b");
    expect(copy.reads).toBe(2);
  });

  it("a read that a change overtook is read again, and its answer is never kept", async () => {
    const d1 = handReads();
    const copy = new FleetTargetCopy(d1.load, () => 0);
    const judged = copy.read();
    await settle();
    // A webhook stored a new head while the read was under way; the read still answers with the old one.
    copy.changed();
    d1.answer(targetAt("a"));
    await settle();
    expect(d1.pending).toHaveLength(1);
    expect(copy.current()).toBeNull();
    d1.answer(targetAt("b"));
    expect(headOf(await judged)).toBe("b");
    expect(headOf(copy.current()!)).toBe("b");
  });

  it("a copy older than the scheduled refresh's period is read again without a nudge", async () => {
    const d1 = handReads();
    let now = 0;
    const copy = new FleetTargetCopy(d1.load, () => now);
    const first = copy.read();
    await settle();
    d1.answer(targetAt("a"));
    await first;
    now = MAX_AGE_MS - 1;
    expect(headOf(copy.current()!)).toBe("a");
    now = MAX_AGE_MS;
    expect(copy.current()).toBeNull();
    const again = copy.read();
    await settle();
    d1.answer(targetAt("b"));
    expect(headOf(await again)).toBe("b");
  });

  it("a failed read fails its judgements and is not shared with the next one, which reads anew", async () => {
    const d1 = handReads();
    const copy = new FleetTargetCopy(d1.load, () => 0);
    const failed = copy.read();
    await settle();
    d1.fail(new Error("D1 unavailable"));
    await expect(failed).rejects.toThrow("D1 unavailable");
    const next = copy.read();
    await settle();
    expect(d1.pending).toHaveLength(1);
    d1.answer(targetAt("a"));
    expect(headOf(await next)).toBe("a");
    expect(copy.reads).toBe(2);
  });
});
