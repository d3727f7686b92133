/**
 * `nixfleet`: the administrator's command line. Today one command,
 * `nixfleet lock-diff OLD NEW`, the lock diff an update PR carries, computed
 * locally from two flake.lock files.
 *
 * Exit codes: 0 success (also when nothing changed), 2 bad usage or a file
 * that cannot be read or is not a flake.lock.
 */
import { readFile } from "node:fs/promises";
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
}

export const EXIT_OK = 0;
export const EXIT_USAGE = 2;

export const USAGE = `Usage: nixfleet <command> [options]

Commands:
  lock-diff OLD NEW [--json | --markdown]
      Show the flake inputs that changed between two flake.lock files.
      --json      machine-readable: { "changes": [ { input, kind, old, new, compareUrl, commits } ] }
      --markdown  the "Updated inputs" section for a PR comment or commit message

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
  });
}

if (import.meta.main) await run();
