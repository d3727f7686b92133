/**
 * `nixfleet`: the administrator's command line: `lock-diff` (the lock diff an
 * update PR carries, computed locally from two flake.lock files), `doctor`
 * (checks a deployment from outside) and `setup` (creates one).
 *
 * Exit codes: 0 success (also when nothing changed), 1 a doctor check or a
 * setup step failed, 2 bad usage or a file that cannot be read or is not a
 * flake.lock.
 */
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { createInterface } from "node:readline/promises";
import { fileURLToPath } from "node:url";
import { renderResults, runDoctor } from "./doctor.ts";
import { runSetup, SetupError } from "./setup.ts";
import { parseArgs } from "node:util";
import {
  diffFlakeLocks,
  LockFileError,
  parseFlakeLock,
  renderLockJson,
  renderLockMarkdown,
  renderLockText,
  type FlakeLock,
} from "../common/lock-diff.ts";

/** What the CLI touches of the outside world, so tests can hand it their own. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** The file's text; rejects with a Node-style error (`ENOENT: …`) when it cannot be read. */
  readFile(path: string): Promise<string>;
  env: NodeJS.ProcessEnv;
  /** The working directory relative paths are read from. */
  cwd: string;
  /** Asks a question on a terminal; absent when input is not one (then the flags must answer). */
  ask?: (question: string) => Promise<string>;
}

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export const USAGE = `Usage: nixfleet <command> [options]

Commands:
  lock-diff OLD NEW [--json | --markdown]
      Show the flake inputs that changed between two flake.lock files.
      --json      machine-readable: { "changes": [ { input, kind, old, new, compareUrl, commits } ] }
      --markdown  the "Updated inputs" section for a PR comment or commit message

  doctor URL [--access-client-id ID --access-client-secret SECRET] [--host-token FILE] [--workers-dev URL]
      Check a deployment from outside, one line per check (✓, or ✗ with the fix); exit 1 on any ✗.
      The service token (also NIXFLEET_ACCESS_CLIENT_ID, NIXFLEET_ACCESS_CLIENT_SECRET) reaches the checks
      behind Access; without it they are listed as skipped. --host-token polls as that host: its queued
      commands are taken and its agent's session ends, so use a host added for the check.
      --webhook-max-age-hours N (default 168): an older last webhook fails.

  setup [--hostname HOST] [--repository OWNER/NAME] [--name WORKER] [--database NAME] [--dir DIR]
        [--keep-workers-dev] [--access-aud TAG --access-team-domain URL] [--dry-run]
      Create or complete a deployment with your Cloudflare account (after \`npx wrangler login\`): the D1
      database, its migrations, the Worker (workers.dev off unless --keep-workers-dev), its secrets (only
      those absent; ACCESS_AUD and ACCESS_TEAM_DOMAIN once given), the GitHub App (GitHub's manifest flow,
      through a local page), then the Access steps.
      A second run does only what is missing. --dry-run prints the plan. The deployment's own wrangler
      configuration and state live in DIR (default .nixfleet); asked for when not given on a terminal.
      --github-url URL, --github-api-url URL: GitHub Enterprise Server (or the GitHub emulator).

Options:
  -h, --help  Show this help.

Exit status: 0 on success (also when no input changed), 2 on bad usage or an unreadable or invalid file.
`;

/** Runs the CLI on `argv` (without the node and script paths) and returns the exit code. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  if (command === "-h" || command === "--help" || command === "help") {
    io.stdout(USAGE);
    return EXIT_OK;
  }
  if (command === "lock-diff") return lockDiff(rest, io);
  if (command === "doctor") return doctor(rest, io);
  if (command === "setup") return setup(rest, io);
  return usageError(io, command === undefined ? "no command given" : `unknown command "${command}"`);
}

async function lockDiff(args: readonly string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: {
        json: { type: "boolean", default: false },
        markdown: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (error) {
    return usageError(io, error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout(USAGE);
    return EXIT_OK;
  }
  if (values.json && values.markdown) return usageError(io, "choose one of --json and --markdown");
  const [oldPath, newPath, ...extra] = positionals;
  if (oldPath === undefined || newPath === undefined || extra.length > 0) {
    return usageError(io, "lock-diff needs exactly two files: OLD and NEW");
  }

  // Read both before reporting, so one run names every bad file.
  const [oldLock, newLock] = await Promise.all([readLock(oldPath, io), readLock(newPath, io)]);
  const failures = [oldLock, newLock].filter((result) => "problem" in result);
  if (!("lock" in oldLock) || !("lock" in newLock)) {
    for (const failure of failures) io.stderr(`nixfleet lock-diff: ${failure.problem}\n`);
    return EXIT_USAGE;
  }

  const changes = diffFlakeLocks(oldLock.lock, newLock.lock);
  if (values.json) io.stdout(JSON.stringify(renderLockJson(changes), null, 2) + "\n");
  else if (values.markdown) io.stdout(renderLockMarkdown(changes));
  else io.stdout(renderLockText(changes));
  return EXIT_OK;
}

async function doctor(args: readonly string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: {
        "access-client-id": { type: "string" },
        "access-client-secret": { type: "string" },
        "host-token": { type: "string" },
        "workers-dev": { type: "string" },
        "webhook-max-age-hours": { type: "string", default: "168" },
      },
    });
  } catch (error) {
    return usageError(io, error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  const [url, ...extra] = positionals;
  if (url === undefined || extra.length > 0 || !/^https?:\/\//.test(url)) return usageError(io, "doctor needs the deployment's URL, e.g. https://fleet.example.com");
  const clientId = values["access-client-id"] ?? io.env.NIXFLEET_ACCESS_CLIENT_ID;
  const clientSecret = values["access-client-secret"] ?? io.env.NIXFLEET_ACCESS_CLIENT_SECRET;
  if ((clientId === undefined) !== (clientSecret === undefined)) return usageError(io, "give both --access-client-id and --access-client-secret, or neither");
  const maxAgeHours = Number(values["webhook-max-age-hours"]);
  if (!(maxAgeHours > 0)) return usageError(io, "--webhook-max-age-hours must be a positive number");
  let hostToken: string | undefined;
  if (values["host-token"] !== undefined) {
    try {
      hostToken = (await io.readFile(values["host-token"])).trim();
    } catch (error) {
      io.stderr(`nixfleet doctor: cannot read ${values["host-token"]}: ${error instanceof Error ? error.message : String(error)}\n`);
      return EXIT_USAGE;
    }
  }
  const results = await runDoctor({
    url,
    ...(clientId !== undefined && clientSecret !== undefined ? { access: { clientId, clientSecret } } : {}),
    ...(hostToken === undefined ? {} : { hostToken }),
    ...(values["workers-dev"] === undefined ? {} : { workersDevUrl: values["workers-dev"] }),
    webhookMaxAgeMs: maxAgeHours * 3_600_000,
  });
  io.stdout(renderResults(results));
  return results.some((result) => result.status === "failed") ? EXIT_FAILED : EXIT_OK;
}

async function setup(args: readonly string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      strict: true,
      options: {
        hostname: { type: "string" },
        repository: { type: "string" },
        name: { type: "string", default: "nixfleet" },
        database: { type: "string" },
        dir: { type: "string", default: ".nixfleet" },
        "keep-workers-dev": { type: "boolean", default: false },
        "access-aud": { type: "string" },
        "access-team-domain": { type: "string" },
        "dry-run": { type: "boolean", default: false },
        "github-url": { type: "string", default: "https://github.com" },
        "github-api-url": { type: "string", default: "https://api.github.com" },
        "callback-port": { type: "string", default: "0" },
      },
    });
  } catch (error) {
    return usageError(io, error instanceof Error ? error.message : String(error));
  }
  const { values } = parsed;
  const hostname = values.hostname ?? (await io.ask?.("The dashboard's hostname (e.g. fleet.example.com): "));
  const repository = values.repository ?? (await io.ask?.("The fleet repository on GitHub (owner/name): "));
  if (!hostname || !/^[a-z0-9.-]+$/i.test(hostname)) return usageError(io, "setup needs --hostname, the dashboard's hostname (e.g. fleet.example.com)");
  if (!repository || !/^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+$/.test(repository)) return usageError(io, "setup needs --repository owner/name, the fleet's repository");
  const root = fileURLToPath(new URL("..", import.meta.url));
  try {
    return await runSetup({
      root,
      dir: path.resolve(io.cwd, values.dir),
      name: values.name,
      database: values.database ?? values.name,
      hostname,
      repository,
      keepWorkersDev: values["keep-workers-dev"],
      ...(values["access-aud"] === undefined ? {} : { accessAud: values["access-aud"] }),
      ...(values["access-team-domain"] === undefined ? {} : { accessTeamDomain: values["access-team-domain"].replace(/\/+$/, "") }),
      dryRun: values["dry-run"],
      githubUrl: values["github-url"].replace(/\/+$/, ""),
      githubApiUrl: values["github-api-url"].replace(/\/+$/, ""),
      callbackPort: Number(values["callback-port"]),
      env: io.env,
      out: io.stdout,
    });
  } catch (error) {
    if (!(error instanceof SetupError)) throw error;
    io.stderr(`nixfleet setup: ${error.message}\n`);
    return EXIT_FAILED;
  }
}

async function readLock(path: string, io: CliIo): Promise<{ lock: FlakeLock } | { problem: string }> {
  let text: string;
  try {
    text = await io.readFile(path);
  } catch (error) {
    return { problem: `cannot read ${path}: ${error instanceof Error ? error.message : String(error)}` };
  }
  try {
    return { lock: parseFlakeLock(text) };
  } catch (error) {
    if (error instanceof LockFileError) return { problem: `${path}: ${error.message}` };
    throw error;
  }
}

function usageError(io: CliIo, problem: string): number {
  io.stderr(`nixfleet: ${problem}\n\n${USAGE}`);
  return EXIT_USAGE;
}

/** The CLI as a process: real files, real streams, `process.exitCode`. */
export async function run(): Promise<void> {
  process.exitCode = await main(process.argv.slice(2), {
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
    readFile: (path) => readFile(path, "utf8"),
    env: process.env,
    cwd: process.cwd(),
    ...(process.stdin.isTTY ? { ask } : {}),
  });
}

async function ask(question: string): Promise<string> {
  const prompt = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return (await prompt.question(question)).trim();
  } finally {
    prompt.close();
  }
}

if (import.meta.main) await run();
