/**
 * The platform profile's generations (docs/hosts.md "Generations and garbage collection"): the
 * `<name>-<N>-link` links nix makes beside the profile link, each pointing at a system's store path,
 * dated by the link's mtime (what `nix-env --list-generations` shows). Which generations a `gc`
 * keeps is a pure rule here too.
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import type { Generation, GcPolicy } from "../common/protocol.ts";
import { known, unknown, type Known } from "./known.ts";
import type { GenerationSource, HostPlatform } from "./platforms/platform.ts";
import type { HostRunner } from "./runner.ts";
import { SafetyNetDir } from "./safety-net/record.ts";

/** The report's bound: a profile with more lists its newest. */
export const MAX_REPORTED_GENERATIONS = 200;
const MAX_LABEL_CHARS = 200;

/** The generations of `source.profile`, oldest first, or why they cannot be read. */
export async function readGenerations(source: GenerationSource): Promise<Known<Generation[]>> {
  const dir = path.dirname(source.profile);
  const name = path.basename(source.profile);
  let entries: string[];
  try {
    entries = await fs.readdir(dir);
  } catch (error) {
    return unknown(`cannot list the profile's generations in ${dir}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  const pattern = new RegExp(`^${escapeRegExp(name)}-(\\d+)-link$`);
  const current = await fs.readlink(source.profile).catch(() => null);
  const booted = source.bootedLink !== null ? await linkTarget(source.bootedLink) : null;
  const generations: Generation[] = [];
  for (const entry of entries) {
    const number = pattern.exec(entry)?.[1];
    if (number === undefined) continue;
    const link = path.join(dir, entry);
    const [stat, target] = await Promise.all([fs.lstat(link).catch(() => null), fs.readlink(link).catch(() => null)]);
    // A link deleted while we read (a gc elsewhere) is no generation.
    if (stat === null || target === null) continue;
    const storePath = path.resolve(dir, target);
    generations.push({
      number: Number(number),
      createdAt: stat.mtime.toISOString(),
      storePath,
      label: source.labelFile !== null ? await readLabel(path.join(storePath, source.labelFile)) : null,
      current: current !== null && path.basename(current) === entry,
      booted: booted !== null && booted === storePath,
    });
  }
  generations.sort((a, b) => a.number - b.number);
  return known(generations.slice(-MAX_REPORTED_GENERATIONS));
}

/** The running platform's generations, for the report. */
export async function readHostGenerations(platform: HostPlatform, runner: HostRunner): Promise<Known<Generation[]>> {
  const source = await platform.generationSource(runner).catch(() => null);
  if (source === null) return unknown(`no ${platform.name} profile found to list generations of`);
  return readGenerations(source);
}

/** Where a link points: fully resolved where it can be, else its own target (a store of another root). */
async function linkTarget(link: string): Promise<string | null> {
  const resolved = await fs.realpath(link).catch(() => null);
  if (resolved !== null) return resolved;
  const target = await fs.readlink(link).catch(() => null);
  return target === null ? null : path.resolve(path.dirname(link), target);
}

async function readLabel(file: string): Promise<string | null> {
  const text = await fs.readFile(file, "utf8").catch(() => null);
  const line = text?.trim().split("\n")[0]?.trim() ?? "";
  return line === "" ? null : line.slice(0, MAX_LABEL_CHARS);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Why a generation stays, for the command's output. */
export type KeepReason = "newest" | "recent" | "current" | "booted" | "safety-net";

export interface GcPlan {
  keep: { generation: Generation; reasons: KeepReason[] }[];
  remove: Generation[];
}

/**
 * Which generations a `gc` deletes: every one that is not among the newest `keepGenerations`, not
 * younger than `keepDays`, not the current or booted one and not a system the safety net may go back to.
 */
export function planGc(generations: readonly Generation[], policy: GcPolicy, safetyNetSystems: ReadonlySet<string>, now: number): GcPlan {
  const newest = new Set([...generations].sort((a, b) => b.number - a.number).slice(0, policy.keepGenerations).map((g) => g.number));
  const youngerThan = now - policy.keepDays * 86_400_000;
  const plan: GcPlan = { keep: [], remove: [] };
  for (const generation of generations) {
    const reasons: KeepReason[] = [];
    if (newest.has(generation.number)) reasons.push("newest");
    if (Date.parse(generation.createdAt) > youngerThan) reasons.push("recent");
    if (generation.current) reasons.push("current");
    if (generation.booted) reasons.push("booted");
    if (safetyNetSystems.has(generation.storePath)) reasons.push("safety-net");
    if (reasons.length > 0) plan.keep.push({ generation, reasons });
    else plan.remove.push(generation);
  }
  return plan;
}

/**
 * The systems the safety net may still need (agent/safety-net/record.ts): the previous and the new
 * system of every switch not yet confirmed or rolled back. Their generations are never deleted.
 */
export async function safetyNetSystems(stateDir: string): Promise<Set<string>> {
  const root = path.join(stateDir, "safety-net");
  const names = await fs.readdir(root).catch(() => [] as string[]);
  const systems = new Set<string>();
  for (const name of names.filter((n) => !n.includes("."))) {
    const dir = new SafetyNetDir(path.join(root, name));
    const [record, decision] = await Promise.all([dir.readRecord(), dir.readDecision()]);
    if (record === null || decision !== null) continue;
    systems.add(record.previous);
    systems.add(record.next);
  }
  return systems;
}
