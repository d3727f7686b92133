import { execFile } from "node:child_process";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { gcPolicy, parseGcSummary } from "../../agent/commands/gc.ts";
import { planGc } from "../../agent/generations.ts";
import { SafetyNetDir } from "../../agent/safety-net/record.ts";
import type { Generation } from "../../common/protocol.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { createHarness, type Harness } from "./harness.ts";

const run = promisify(execFile);
const DAY = 86_400_000;
const MiB = 1024 * 1024;

describe("which generations a gc keeps", () => {
  const now = Date.parse("2026-12-06T12:00:00Z");
  const generation = (number: number, ageDays: number, marks: Partial<Generation> = {}): Generation => ({
    number,
    createdAt: new Date(now - ageDays * DAY).toISOString(),
    storePath: `/nix/store/${String(number).padStart(32, "a")}-system`,
    label: null,
    current: false,
    booted: false,
    ...marks,
  });

  it.each([
    { name: "the newest N, when all are old", policy: { keepGenerations: 2, keepDays: 14 }, ages: [40, 30, 20, 15], marks: {}, kept: [3, 4] },
    { name: "every generation younger than D days", policy: { keepGenerations: 1, keepDays: 14 }, ages: [40, 13, 2, 1], marks: {}, kept: [2, 3, 4] },
    { name: "the current one, however old", policy: { keepGenerations: 1, keepDays: 0 }, ages: [40, 30, 20], marks: { 1: { current: true } }, kept: [1, 3] },
    { name: "the booted one, however old", policy: { keepGenerations: 1, keepDays: 0 }, ages: [40, 30, 20], marks: { 2: { booted: true } }, kept: [2, 3] },
  ])("keeps $name", ({ policy, ages, marks, kept }) => {
    const generations = ages.map((age, i) => generation(i + 1, age, (marks as Record<number, Partial<Generation>>)[i + 1]));
    const plan = planGc(generations, policy, new Set(), now);
    expect(plan.keep.map((k) => k.generation.number)).toEqual(kept);
    expect(plan.remove.map((g) => g.number)).toEqual(generations.map((g) => g.number).filter((n) => !kept.includes(n)));
  });

  it("keeps a generation whose system the safety net may go back to", () => {
    const generations = [generation(1, 40), generation(2, 30), generation(3, 1)];
    const plan = planGc(generations, { keepGenerations: 1, keepDays: 7 }, new Set([generations[0]!.storePath]), now);
    expect(plan.keep.map((k) => [k.generation.number, k.reasons])).toEqual([
      [1, ["safety-net"]],
      [3, ["newest", "recent"]],
    ]);
    expect(plan.remove.map((g) => g.number)).toEqual([2]);
  });

  it("takes the host's own options first, then the fleet's defaults the command carries, then 5 generations and 14 days", () => {
    expect(gcPolicy({ keepGenerations: 3, keepDays: 1 }, { keepGenerations: 9, keepDays: 30 })).toEqual({ keepGenerations: 3, keepDays: 1 });
    expect(gcPolicy({ keepGenerations: null, keepDays: 1 }, { keepGenerations: 9, keepDays: 30 })).toEqual({ keepGenerations: 9, keepDays: 1 });
    expect(gcPolicy({ keepGenerations: null, keepDays: null }, null)).toEqual({ keepGenerations: 5, keepDays: 14 });
  });

  it("reads what nix says it freed", () => {
    expect(parseGcSummary("deleting unused links...\n3 store paths deleted, 12.50 MiB freed\n")).toEqual({ storePaths: 3, bytesFreed: Math.round(12.5 * MiB) });
    expect(parseGcSummary("1 store path deleted, 0.00 MiB freed")).toEqual({ storePaths: 1, bytesFreed: 0 });
    expect(parseGcSummary("error: something else")).toBeNull();
  });
});

let h: Harness | null = null;
let storeRoot: string | null = null;

describeWithNix("gc on a profile and a store of the test's own, with real nix", () => {
  afterEach(async () => {
    await h?.cleanup();
    h = null;
    if (storeRoot !== null) await fs.rm(storeRoot, { recursive: true, force: true });
    storeRoot = null;
  });

  it("a dry run deletes nothing; the gc deletes the old generations but the newest, young, current, booted and pending ones, rewrites the boot menu and frees their store paths", async () => {
    storeRoot = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-gc-store-"));
    h = await createHarness({ lock: false, nixStoreRoot: storeRoot });
    const env = h.env;
    const profile = h.shim.systemProfileLink;
    await fs.mkdir(path.dirname(profile), { recursive: true });
    const addToStore = async (name: string, sizeMiB: number): Promise<string> => {
      const file = path.join(h!.root, name);
      await fs.writeFile(file, Buffer.alloc(sizeMiB * MiB, name));
      return (await run("nix-store", ["--add", file], { env })).stdout.trim();
    };
    const root = storeRoot;
    const inStore = (storePath: string) => fs.lstat(path.join(root, storePath)).then(() => true, () => false);

    const systems: string[] = [];
    for (let n = 1; n <= 8; n++) {
      systems.push(await addToStore(`system-${n}`, 1));
      await run("nix-env", ["--profile", profile, "--set", systems[n - 1]!], { env });
    }
    const unrooted = await addToStore("unrooted", 1);
    // Generation 3 is current, 2 booted and 4 the system a pending switch would roll back to.
    await run("nix-env", ["--profile", profile, "--switch-generation", "3"], { env });
    await fs.symlink(systems[1]!, h.shim.bootedSystemLink);
    await new SafetyNetDir(path.join(h.stateDir, "safety-net", "cmd_pendingswitch01")).writeRecord({
      version: 1,
      commandId: "cmd_pendingswitch01",
      commit: null,
      platform: "nixos",
      previous: systems[3]!,
      next: systems[7]!,
      confirmTimeoutSeconds: 120,
      armedAt: new Date().toISOString(),
      activationExitFile: null,
      activationGiveUpAt: new Date(Date.now() + 60_000).toISOString(),
      rollbackArgv: ["true"],
      runningSystemLink: h.shim.currentSystemLink,
      bootIdFile: path.join(h.root, "boot-id"),
      failedUnitsBefore: null,
    });
    // 1–5 a month old, 6 two days old, 7 and 8 new: keeping the newest 2 and 14 days leaves 6, 7, 8.
    for (let n = 1; n <= 6; n++) {
      const at = new Date(Date.now() - (n <= 5 ? 30 : 2) * DAY);
      await fs.lutimes(`${profile}-${n}-link`, at, at);
    }

    await h.startAgent({
      systemProfileLink: profile,
      bootedSystemLink: h.shim.bootedSystemLink,
      tools: { ...h.config.tools, installBootMenu: h.shim.installBootMenu },
      gc: { keepGenerations: null, keepDays: 14 },
    });
    const fleetDefaults = { keepGenerations: 2, keepDays: 30 };
    const dry = await h.run("gc", { dryRun: true, gc: fleetDefaults });
    expect(dry.finished.outcome).toBe("succeeded");
    expect(dry.finished.result.gc).toMatchObject({ dryRun: true, keepGenerations: 2, keepDays: 14, deletedGenerations: [1, 5], keptGenerations: [2, 3, 4, 6, 7, 8], bytesFreed: null, bootMenu: "unchanged" });
    expect(dry.finished.result.gc?.storePaths).toBeGreaterThanOrEqual(1);
    expect(h.plane.output(dry.id)).toContain(unrooted);
    expect(await h.shim.generations()).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(await inStore(unrooted)).toBe(true);
    expect(await h.shim.bootMenu()).toBeNull();

    const gc = await h.run("gc", { gc: fleetDefaults });
    expect(gc.finished.error).toBeNull();
    expect(gc.finished.outcome).toBe("succeeded");
    expect(gc.finished.result.gc).toMatchObject({ dryRun: false, deletedGenerations: [1, 5], keptGenerations: [2, 3, 4, 6, 7, 8], bootMenu: "rewritten" });
    expect(await h.shim.generations()).toEqual([2, 3, 4, 6, 7, 8]);
    expect(await h.shim.bootMenu()).toEqual([2, 3, 4, 6, 7, 8]);
    expect(await fs.readlink(profile)).toBe("system-3-link");
    expect(await Promise.all([systems[0]!, systems[4]!, unrooted].map(inStore))).toEqual([false, false, false]);
    expect(await Promise.all([1, 2, 3, 5, 6, 7].map((i) => inStore(systems[i]!)))).toEqual([true, true, true, true, true, true]);
    await h.run("refresh");
    const listed = await h.plane.waitFor(() => {
      const generations = h!.plane.lastReport()?.generations?.value;
      return generations?.length === 6 ? generations : undefined;
    }, "a report listing the generations the gc kept");
    expect(listed.map((g) => [g.number, g.storePath, g.current, g.booted])).toEqual(
      [2, 3, 4, 6, 7, 8].map((n) => [n, systems[n - 1], n === 3, n === 2]),
    );
    expect(Date.parse(listed[0]!.createdAt)).toBeLessThan(Date.now() - 29 * DAY);
    // Three 1 MiB files went: nix rounds what it freed to hundredths of a MiB.
    expect(gc.finished.result.gc?.storePaths).toBeGreaterThanOrEqual(3);
    expect(gc.finished.result.gc?.bytesFreed).toBeGreaterThanOrEqual(Math.round(2.99 * MiB));
  });
});
