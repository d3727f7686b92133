import * as fs from "node:fs/promises";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { nixAvailable } from "../fixtures/nix/require-nix.ts";
import { createHarness, type Harness } from "./harness.ts";

let h: Harness;

beforeEach(async () => {
  h = await createHarness({ lock: nixAvailable });
});

afterEach(async () => {
  await h.cleanup();
  expect(h.plane.protocolErrors).toEqual([]);
});

describe("test command", () => {
  it("runs every test, fails the run when the middle one fails, and reports each result", async () => {
    await h.startAgent({
      tests: {
        commands: [
          { name: "first", command: "echo first ok" },
          { name: "middle", command: "echo middle is broken >&2; exit 3" },
          { name: "last", command: "echo last ok" },
        ],
      },
    });
    const { id, finished } = await h.run("test");
    expect(finished.outcome).toBe("failed");
    expect(finished.exitCode).toBe(3);
    expect(finished.error).toBe("1 of 3 tests failed: middle");
    const results = finished.result.tests?.results ?? [];
    expect(results.map(({ name, passed, exitCode, output }) => ({ name, passed, exitCode, output }))).toEqual([
      { name: "first", passed: true, exitCode: 0, output: "first ok" },
      { name: "middle", passed: false, exitCode: 3, output: "middle is broken" },
      { name: "last", passed: true, exitCode: 0, output: "last ok" },
    ]);
    for (const result of results) expect(result.durationMs).toBeGreaterThanOrEqual(0);
    expect(h.plane.output(id)).toContain("== test middle: FAILED (exit 3)");

    const report = await h.plane.waitFor(() => (h.plane.lastReport()?.tests.last ? h.plane.lastReport() : undefined), "a report with the test run");
    expect(report.tests.configured).toBe(true);
    expect(report.tests.last?.results.map((r) => r.passed)).toEqual([true, false, true]);
  });

  it("runs the executable files of the tests directory in name order, skipping the rest", async () => {
    const dir = path.join(h.root, "tests.d");
    await fs.mkdir(dir);
    await fs.writeFile(path.join(dir, "20-network"), "#!/bin/sh\necho network ok\n", { mode: 0o755 });
    await fs.writeFile(path.join(dir, "10-disk"), "#!/bin/sh\necho disk ok\n", { mode: 0o755 });
    await fs.writeFile(path.join(dir, "README"), "not a test\n", { mode: 0o644 });
    await h.startAgent({ tests: { directory: dir, commands: [{ name: "inline", command: "true" }] } });
    const { finished } = await h.run("test");
    expect(finished.outcome).toBe("succeeded");
    expect(finished.result.tests?.results.map((r) => [r.name, r.passed])).toEqual([
      ["inline", true],
      ["10-disk", true],
      ["20-network", true],
    ]);
  });

  it("fails when the configured tests directory is missing", async () => {
    await h.startAgent({ tests: { directory: path.join(h.root, "missing.d") } });
    const { finished } = await h.run("test");
    expect(finished.outcome).toBe("failed");
    expect(finished.result.tests?.results[0]).toMatchObject({ name: "missing.d", passed: false, output: expect.stringContaining("ENOENT") });
  });

  it("fails with a clear reason when the host has no tests", async () => {
    await h.startAgent();
    const { finished } = await h.run("test");
    expect(finished).toMatchObject({ outcome: "failed", error: "no tests configured for this host" });
  });
});
