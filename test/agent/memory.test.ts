/**
 * agent/memory.ts: a full collection after a command when Node exposes gc
 * (the Nix package's flags), nothing otherwise. Each case in its own Node
 * process, so the flags are the ones under test.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { z } from "zod";

const exec = promisify(execFile);
const MODULE = fileURLToPath(new URL("../../agent/memory.ts", import.meta.url));

/** Leaves about 20 MB of garbage in the old generation, then releases memory; prints the heap before and after. */
const SCRIPT = `
  const { releaseMemory } = await import(${JSON.stringify(MODULE)});
  let kept = [];
  for (let i = 0; i < 200; i++) kept.push(new Array(12_500).fill(i));
  kept = null;
  const before = process.memoryUsage().heapUsed;
  releaseMemory();
  console.log(JSON.stringify({ before, after: process.memoryUsage().heapUsed }));
`;

async function heap(flags: string[]): Promise<{ before: number; after: number }> {
  const { stdout } = await exec(process.execPath, [...flags, "--input-type=module", "-e", SCRIPT]);
  return z.object({ before: z.number(), after: z.number() }).parse(JSON.parse(stdout));
}

it("collects a finished command's garbage when Node exposes gc", async () => {
  const { before, after } = await heap(["--expose-gc", "--max-semi-space-size=1"]);
  expect(before - after).toBeGreaterThan(10_000_000);
});

it("does nothing, and does not fail, when Node does not expose gc", async () => {
  const { before, after } = await heap(["--max-semi-space-size=1"]);
  expect(before - after).toBeLessThan(1_000_000);
});
