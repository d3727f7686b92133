/**
 * The tests do not depend on the developer's machine: with the `.dev.vars` that docs/github.md has
 * developers write for the emulator demo beside wrangler.toml, the worker project still passes, and a
 * control plane started by test/support/control-plane.ts (the e2e, browser and benchmark runs) sees none
 * of it. Both run in a copy of the repository under the temporary directory (node_modules linked), never
 * with a file written into the developer's tree.
 */
import { spawn } from "node:child_process";
import { cp, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { unstable_getVarsForDev } from "wrangler";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** docs/github.md's `.dev.vars` for the emulator demo: GitHub configured, pointing at a local emulator. */
const DEMO_DEV_VARS = ["GITHUB_REPOSITORY=example/fleet", "GITHUB_API_URL=http://127.0.0.1:8788", "GITHUB_TOKEN=demo-token", "GITHUB_WEBHOOK_SECRET=demo-secret", ""].join("\n");

/**
 * The worker project's tests that fail when the Worker gets those settings: GitHub counts as configured,
 * so the repository answer, the push handling and the bad-input route sweep (which then reaches the
 * missing emulator) change. The sweep runs fewer requests here; it meets POST /api/repo/refresh early.
 */
const WORKER_FILES = ["test/worker/webhooks.test.ts", "test/worker/bad-input.test.ts"];
const PROPERTY_RUNS = 300;
const ONCE_BROKEN = [
  "GET /api/repo says which settings are missing and keeps answering",
  "GET /api/repo reports incomplete GitHub App credentials by name",
  "push stores the new head at once and reads flake.lock through the API when a commit changed it",
  `generated bad input ${PROPERTY_RUNS} generated requests over every route: no 5xx, errors in one shape, refusals change nothing`,
];

/** Installed, built, generated or the developer's own: not part of the copy. */
const NOT_COPIED_AT_ROOT = new Set([".git", ".wrangler", "dist", join("test", ".artifacts")]);
const isLocalSettings = (name: string) => name.startsWith(".dev.vars") || name.startsWith(".env");

let copy: string;

beforeAll(async () => {
  copy = await mkdtemp(join(tmpdir(), "nixfleet-dev-vars-"));
  await cp(root, copy, {
    recursive: true,
    filter: (source) => {
      const name = basename(source);
      return !NOT_COPIED_AT_ROOT.has(relative(root, source)) && name !== "node_modules" && !isLocalSettings(name);
    },
  });
  await symlink(join(root, "node_modules"), join(copy, "node_modules"), "dir");
  // The dashboard the control plane serves: the copy's own build, never the tree's dist/.
  const { buildUi } = await import(pathToFileURL(join(copy, "scripts/build-ui.mjs")).href);
  await buildUi();
  await writeFile(join(copy, ".dev.vars"), DEMO_DEV_VARS);
  // The fixture is what wrangler itself would give a Worker configured by the copy's wrangler.toml.
  const vars = unstable_getVarsForDev(join(copy, "wrangler.toml"), undefined, {}, undefined, true);
  expect(vars.GITHUB_REPOSITORY).toEqual({ type: "secret_text", value: "example/fleet" });
}, 120_000);

afterAll(async () => {
  if (copy) await rm(copy, { recursive: true, force: true });
});

/** Runs the copy's vitest, as a developer runs it there, and returns its exit code and output. */
function runVitest(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  // The outer run's own markers (its worker ids, its emulator port) are not the developer's shell.
  const shell = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("VITEST") && key !== "NIXFLEET_TEST_GITHUB_EMULATOR_PORT"));
  const child = spawn(process.execPath, [join(copy, "node_modules/vitest/vitest.mjs"), ...args], {
    cwd: copy,
    env: { ...shell, ...env, NO_COLOR: "1", FORCE_COLOR: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  child.stdout.on("data", (data: Buffer) => output.push(data.toString()));
  child.stderr.on("data", (data: Buffer) => output.push(data.toString()));
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, output: output.join("") }));
  });
}

const VitestReport = z.object({
  testResults: z.array(z.object({ assertionResults: z.array(z.object({ fullName: z.string(), status: z.string() })) })),
});

describe("the tests with the emulator demo's .dev.vars beside wrangler.toml", () => {
  it("the worker project passes: the plugin gives its Worker none of the .dev.vars", async () => {
    const reportFile = join(copy, "vitest-report.json");
    const run = await runVitest(
      // The module cache lives in the copy: entries for its throw-away paths must not pile up in node_modules.
      ["run", "--project", "worker", "--cache=false", `--fsModuleCachePath=${join(copy, ".vitest-cache")}`, "--reporter=json", `--outputFile=${reportFile}`, ...WORKER_FILES],
      { NIXFLEET_PROPERTY_RUNS: String(PROPERTY_RUNS) },
    );
    const tail = run.output.slice(-6000);
    const report = VitestReport.parse(JSON.parse(await readFile(reportFile, "utf8")));
    const results = report.testResults.flatMap((file) => file.assertionResults);
    expect(results.filter((result) => result.status !== "passed").map((result) => `${result.status}: ${result.fullName}`), tail).toEqual([]);
    expect(results.map((result) => result.fullName)).toEqual(expect.arrayContaining(ONCE_BROKEN));
    expect(run.code, tail).toBe(0);
  }, 300_000);

  it("a control plane from test/support/control-plane.ts has GitHub unconfigured", async () => {
    const harness: typeof import("../support/control-plane.ts") = await import(pathToFileURL(join(copy, "test/support/control-plane.ts")).href);
    const controlPlane = await harness.startControlPlane();
    try {
      const res = await fetch(`${controlPlane.url}/api/repo`);
      expect(res.status).toBe(200);
      const body = z.object({ repository: z.string().nullable(), problems: z.array(z.string()) }).parse(await res.json());
      expect(body.repository, controlPlane.logs()).toBeNull();
      expect(body.problems.join("\n")).toMatch(/GITHUB_REPOSITORY is not configured/);
      expect(body.problems.join("\n")).toMatch(/no GitHub API credentials: set GITHUB_TOKEN/);
      expect(body.problems.join("\n")).toMatch(/GITHUB_WEBHOOK_SECRET is not set/);
    } finally {
      await controlPlane.stop();
    }
  }, 180_000);
});
