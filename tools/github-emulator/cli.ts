/**
 * Runs the GitHub emulator for demos:
 *   node tools/github-emulator/cli.ts --repo owner/name --port 8788 \
 *     --webhook http://127.0.0.1:8787/webhooks/github --secret S --dir /tmp/x --seed-example
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { GitHubEmulator } from "./emulator.ts";

const USAGE = `usage: node tools/github-emulator/cli.ts --repo owner/name [--port 8788] [--webhook URL] [--secret S]
                                          [--token T] [--dir DIR] [--branch main] [--seed-example]`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      repo: { type: "string" },
      port: { type: "string", default: "8788" },
      webhook: { type: "string" },
      secret: { type: "string" },
      token: { type: "string" },
      dir: { type: "string" },
      branch: { type: "string", default: "main" },
      "seed-example": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const [owner, repo, extra] = (values.repo ?? "").split("/");
  if (!owner || !repo || extra !== undefined) throw new Error(`--repo must be owner/name\n${USAGE}`);
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be a port number\n${USAGE}`);
  const workDir = values.dir ?? (await mkdtemp(join(tmpdir(), "github-emulator-")));

  const emulator = new GitHubEmulator({
    owner,
    repo,
    defaultBranch: values.branch,
    workDir,
    webhookUrl: values.webhook,
    webhookSecret: values.secret,
    token: values.token,
  });
  const url = await emulator.start(port);
  if (values["seed-example"]) {
    if (await emulator.branchSha(emulator.defaultBranch)) console.log("repository already has commits: not seeding");
    else console.log(`seeded example flake: ${await emulator.seedExampleFlake()}`);
  }

  console.log(`GitHub emulator for ${owner}/${repo}
  API URL (GITHUB_API_URL): ${url}
  clone URL:                ${emulator.cloneUrl}
  webhooks:                 ${values.webhook ?? "(none: pass --webhook)"}
  work dir:                 ${workDir}

Open (or refresh) a flake.lock update PR labelled "automated":
  curl -X POST ${url}/_emulator/update-pr
Mark its head green:
  curl -X POST -H 'content-type: application/json' -d '{"name":"build","conclusion":"success"}' ${url}/_emulator/commits/<sha>/check-runs
See tools/github-emulator/README.md for every /_emulator endpoint.`);

  const shutdown = (): void => {
    void emulator.stop().then(() => process.exit(0));
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
