/**
 * Runs real `nix-instantiate` for the tests in this folder: plain evaluation,
 * no nixpkgs, nothing built. Results come back as `unknown` for zod to parse.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { TEST_NIX_CONFIG } from "../../tools/fleet-kit/host-env.ts";

const exec = promisify(execFile);

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const NIX_DIR = path.join(REPO_ROOT, "nix");

function nixEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, NIX_CONFIG: TEST_NIX_CONFIG, ...extra };
}

/**
 * `nix-instantiate --eval --strict --json --expr EXPR`, parsed as JSON. With
 * `copySources`, paths the expression turns into strings are copied into the
 * store (`--eval` alone only computes their store paths), so a test can read them.
 */
export async function evalNix(expr: string, env: NodeJS.ProcessEnv = {}, { copySources = false } = {}): Promise<unknown> {
  const args = [...(copySources ? ["--read-write-mode"] : []), "--eval", "--strict", "--json", "--expr", expr];
  const { stdout } = await exec("nix-instantiate", args, {
    env: nixEnv(env),
    maxBuffer: 64 * 1024 * 1024,
  });
  const parsed: unknown = JSON.parse(stdout);
  return parsed;
}

/** `nix-instantiate --parse FILE`: resolves when the file is valid Nix syntax, rejects with Nix's message otherwise. */
export async function parseNixFile(file: string): Promise<void> {
  await exec("nix-instantiate", ["--parse", file], { env: nixEnv(), maxBuffer: 64 * 1024 * 1024 });
}

/** A Nix string literal holding `value` (safe for any text: `"`, `\` and `${` are escaped). */
export function nixString(value: string): string {
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\$\{/g, "\\${").replace(/\n/g, "\\n")}"`;
}

/** Evaluates `fn` (a Nix expression of one argument) applied to `input`, passed through a JSON file. */
export async function evalNixWith(fn: string, input: unknown): Promise<unknown> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-nix-"));
  try {
    const file = path.join(dir, "input.json");
    await fs.writeFile(file, JSON.stringify(input));
    return await evalNix(`(${fn}) (builtins.fromJSON (builtins.readFile ${nixString(file)}))`);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
