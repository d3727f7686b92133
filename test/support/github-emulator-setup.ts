// Vitest global setup of the `automation` project: the local GitHub emulator on the port
// vitest.config.ts chose (and named in the workerd bindings), seeded with the example fleet flake.
// Tests drive it over HTTP through its /_emulator endpoints; nothing here is shared with other projects.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exampleFlakeFiles } from "../../tools/github-emulator/example-flake.ts";
import { GitHubEmulator } from "../../tools/github-emulator/emulator.ts";

export default async function setup(): Promise<() => Promise<void>> {
  const port = Number(process.env.NIXFLEET_TEST_GITHUB_EMULATOR_PORT);
  if (!Number.isInteger(port) || port <= 0) throw new Error("NIXFLEET_TEST_GITHUB_EMULATOR_PORT is not set (vitest.config.ts sets it)");
  const workDir = await mkdtemp(join(tmpdir(), "nixfleet-worker-github-"));
  const gh = new GitHubEmulator({ owner: "example", repo: "fleet", workDir, token: "ghp_worker_github_test" });
  await gh.start(port);
  console.log(`automation project: the GitHub emulator listens on ${port}`);
  await gh.seed(exampleFlakeFiles(new Date()), "Initial commit");
  return async () => {
    await gh.stop();
    await rm(workDir, { recursive: true, force: true });
  };
}
