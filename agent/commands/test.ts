/**
 * `test`: run every configured test — each of `tests.commands` with `sh -c`,
 * then every executable file in `tests.directory`, sorted by name. One failing
 * test fails the run. The run is kept for the report (Tests compartment) with
 * the system it ran against, so a later switch makes it visibly stale.
 */
import * as path from "node:path";
import type { TestResult, TestRun } from "../../common/protocol.ts";
import { hasClone } from "../git.ts";
import { testsConfigured } from "../report.ts";
import { readCurrentSystem } from "../system.ts";
import { cancelled, failed, succeeded, type CommandContext, type CommandOutcome, type HostContext } from "./context.ts";

const OUTPUT_LINES = 40;
const OUTPUT_CHARS = 4000;

interface PlannedTest {
  name: string;
  argv: string[];
}

export type TestsOutcome = { kind: "none" } | { kind: "ran"; run: TestRun; cancelled: boolean };

export async function runTestCommand(ctx: CommandContext): Promise<CommandOutcome> {
  const outcome = await runTests(ctx, ctx.cancel);
  if (outcome.kind === "none") return failed("no tests configured for this host");
  const { run } = outcome;
  if (outcome.cancelled) return cancelled({ tests: run });
  await ctx.store.recordTestRun(run);
  const failing = run.results.filter((result) => !result.passed);
  if (failing.length === 0) return succeeded({ tests: run });
  return failed(
    `${failing.length} of ${run.results.length} tests failed: ${failing.map((result) => result.name).join(", ")}`,
    { tests: run },
    failing[0]?.exitCode ?? null,
  );
}

/** Runs the tests one after the other; used by the `test` command and after an automatic switch. */
export async function runTests(ctx: HostContext, cancel: AbortSignal): Promise<TestsOutcome> {
  const { config, platform, runner, store } = ctx;
  if (!testsConfigured(config)) return { kind: "none" };
  const system = await readCurrentSystem(platform, runner);
  const cwd = (await hasClone(runner, store.cloneDir)) ? store.cloneDir : store.stateDir;
  const planned: PlannedTest[] = config.tests.commands.map((test) => ({ name: test.name, argv: ["/bin/sh", "-c", test.command] }));
  const results: TestResult[] = [];

  const directory = config.tests.directory;
  if (directory !== undefined) {
    try {
      const entries = await runner.listDirectory(directory);
      for (const entry of entries.filter((e) => e.isFile && e.executable).sort((a, b) => a.name.localeCompare(b.name, "en"))) {
        planned.push({ name: entry.name.slice(0, 200), argv: [path.join(directory, entry.name)] });
      }
    } catch (error) {
      // A configured directory that cannot be read is a failure, not "no tests".
      results.push({
        name: path.basename(directory).slice(0, 200) || "tests",
        passed: false,
        exitCode: null,
        durationMs: 0,
        output: `cannot read the test directory ${directory}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      });
    }
  }

  for (const test of planned) {
    if (cancel.aborted) break;
    ctx.say(`== test ${test.name}`);
    const started = performance.now();
    let tail = "";
    const result = await runner.run(test.argv, {
      cwd,
      signal: cancel,
      onOutput: (stream, data) => {
        tail = (tail + data).slice(-OUTPUT_CHARS * 2);
        ctx.output(stream, data);
      },
    });
    if (result.aborted) break;
    const passed = result.exitCode === 0;
    results.push({
      name: test.name,
      passed,
      exitCode: result.exitCode,
      durationMs: Math.round(performance.now() - started),
      output: lastLines(result.spawnError ?? tail),
    });
    ctx.say(`== test ${test.name}: ${passed ? "passed" : `FAILED (${result.exitCode !== null ? `exit ${result.exitCode}` : result.signal ?? "no exit code"})`}`);
  }

  const run: TestRun = { system: system.value, finishedAt: new Date().toISOString(), results: results.slice(0, 200) };
  return { kind: "ran", run, cancelled: cancel.aborted };
}

function lastLines(text: string): string {
  return text.trimEnd().split("\n").slice(-OUTPUT_LINES).join("\n").slice(-OUTPUT_CHARS);
}
