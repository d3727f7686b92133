/**
 * classifyLines against what real git and nix print, captured here through
 * the agent's own runner (the chunks arrive as the agent would send them):
 * their progress on stderr is not an error, their failures are.
 */
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CommandState, StoredOutputChunk } from "../../common/protocol.ts";
import { createNodeRunner, type HostRunner } from "../../agent/runner.ts";
import { isolatedHostEnv } from "../../tools/fleet-kit/host-env.ts";
import { classifyLines, outputLines, type LineKind } from "../../ui/common/output-lines.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";

interface Classified {
  stream: string;
  text: string;
  kind: LineKind;
}

/** One command's output as the agent streams it: its narration (`$ git …`) and each program's chunks. */
class Transcript {
  readonly chunks: StoredOutputChunk[] = [];
  private readonly runner: HostRunner;
  private readonly cwd: string;
  constructor(runner: HostRunner, cwd: string) {
    this.runner = runner;
    this.cwd = cwd;
  }

  async run(argv: string[], env: Record<string, string> = {}): Promise<number | null> {
    this.push("system", `$ ${argv.join(" ")}\n`);
    const result = await this.runner.run(argv, { cwd: this.cwd, env, onOutput: (stream, data) => this.push(stream, data) });
    if (result.spawnError !== null) throw new Error(result.spawnError);
    return result.exitCode;
  }

  classify(state: CommandState): Classified[] {
    const lines = outputLines(this.chunks);
    const kinds = classifyLines(lines, state);
    return lines.map((line, i) => ({ ...line, kind: kinds[i]! }));
  }

  private push(stream: StoredOutputChunk["stream"], data: string): void {
    this.chunks.push({ seq: this.chunks.length, stream, data, at: new Date().toISOString() });
  }
}

let root: string;
let runner: HostRunner;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-output-"));
  runner = createNodeRunner({ env: isolatedHostEnv(root) });
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

describe("command output of real git", () => {
  let clone: string;

  beforeAll(async () => {
    const git = new Transcript(runner, root);
    expect(await git.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", "origin.git"])).toBe(0);
    expect(await git.run(["git", "clone", "--quiet", "origin.git", "seed"])).toBe(0);
    const seed = new Transcript(runner, path.join(root, "seed"));
    for (const message of ["one", "two"]) expect(await seed.run(["git", "commit", "--quiet", "--allow-empty", "-m", message])).toBe(0);
    expect(await seed.run(["git", "push", "--quiet", "origin", "HEAD~1:refs/heads/main"])).toBe(0);
    expect(await git.run(["git", "clone", "--quiet", "origin.git", "clone"])).toBe(0);
    expect(await seed.run(["git", "push", "--quiet", "origin", "HEAD:refs/heads/main"])).toBe(0);
    clone = path.join(root, "clone");
  });

  it("a successful fetch, worktree add, checkout and reset write progress to stderr that is not an error", async () => {
    const pull = new Transcript(runner, clone);
    expect(await pull.run(["git", "fetch", "--prune", "--no-tags", "origin", "+refs/heads/main:refs/remotes/origin/main"])).toBe(0);
    expect(await pull.run(["git", "worktree", "add", path.join(root, "worktree"), "origin/main"])).toBe(0);
    expect(await pull.run(["git", "checkout", "--force", "-B", "main", "origin/main"])).toBe(0);
    expect(await pull.run(["git", "reset", "--hard", "origin/main"])).toBe(0);

    const lines = pull.classify("succeeded");
    const stderr = lines.filter((line) => line.stream === "stderr");
    // The samples the issue names, as git really wrote them ("HEAD is now at" is on stdout in git 2.39, on stderr in others).
    for (const start of ["From ", "Preparing worktree"]) {
      expect(stderr.map((line) => line.text).some((text) => text.startsWith(start)), `git wrote "${start}…" to stderr`).toBe(true);
    }
    expect(lines.some((line) => line.text.startsWith("HEAD is now at "))).toBe(true);
    expect(stderr.map((line) => line.kind)).toEqual(stderr.map(() => "stderr"));
    expect(lines.filter((line) => line.kind === "error")).toEqual([]);
  });

  it("a failed fetch's fatal: is an error and the successful fetch before it is not", async () => {
    const pull = new Transcript(runner, clone);
    await runner.run(["git", "update-ref", "-d", "refs/remotes/origin/main"], { cwd: clone });
    expect(await pull.run(["git", "fetch", "--no-tags", "origin", "+refs/heads/main:refs/remotes/origin/main"])).toBe(0);
    expect(await pull.run(["git", "fetch", "origin", "refs/heads/no-such-branch"])).toBe(128);

    const lines = pull.classify("failed");
    const fatal = lines.filter((line) => line.text.startsWith("fatal:"));
    expect(fatal.map((line) => [line.stream, line.kind])).toEqual([["stderr", "error"]]);
    const from = lines.filter((line) => line.text.startsWith("From "));
    expect(from.map((line) => line.kind)).toEqual(["stderr"]);
  });

  it("git's error: is an error whatever the command's state", async () => {
    const checkout = new Transcript(runner, clone);
    expect(await checkout.run(["git", "checkout", "no-such-branch"])).toBe(1);
    for (const state of ["running", "failed"] as const) {
      const errors = checkout.classify(state).filter((line) => line.text.startsWith("error: pathspec"));
      expect(errors.map((line) => line.kind)).toEqual(["error"]);
    }
  });
});

describeWithNix("command output of real nix", () => {
  const nix = ["nix", "--extra-experimental-features", "nix-command flakes"];
  // Unique per run, so nix builds it instead of finding it in the store.
  const derivation = (script: string) =>
    `derivation { name = "nixfleet-output-test"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" ${JSON.stringify(script)} ]; nonce = "${Date.now()}-${Math.random()}"; }`;

  it("a successful build's 'building …' on stderr is not an error", async () => {
    const build = new Transcript(runner, root);
    expect(await build.run([...nix, "build", "--impure", "--no-link", "-L", "--expr", derivation("echo progress >&2; echo done > $out")])).toBe(0);
    const stderr = build.classify("succeeded").filter((line) => line.stream === "stderr");
    expect(stderr.map((line) => line.text).some((text) => text.startsWith("building '/nix/store/"))).toBe(true);
    expect(stderr.map((line) => line.kind)).toEqual(stderr.map(() => "stderr"));
  });

  it("a failed build's error: and the log lines nix quotes under it are the failure", async () => {
    const build = new Transcript(runner, root);
    expect(await build.run([...nix, "build", "--impure", "--no-link", "--expr", derivation("echo about to fail; echo oops >&2; exit 3")])).toBe(1);
    const lines = build.classify("failed");
    const failure = lines.slice(lines.findIndex((line) => line.text.startsWith("error: builder for")));
    expect(failure.length).toBeGreaterThan(1);
    expect(failure.some((line) => line.text.trim() === "> oops")).toBe(true);
    expect(failure.map((line) => line.kind)).toEqual(failure.map(() => "error"));
  });

  it("a failed eval's error: is an error, also in colour through a terminal", async () => {
    const plain = new Transcript(runner, root);
    expect(await plain.run([...nix, "eval", "--expr", 'let x = 1; in x + "a"'])).toBe(1);
    const plainErrors = plain.classify("failed").filter((line) => line.text.startsWith("error: cannot add"));
    expect(plainErrors.map((line) => [line.stream, line.kind])).toEqual([["stderr", "error"]]);

    // On a terminal nix paints "error:" red; script(1) gives it one and merges its streams into stdout.
    const coloured = new Transcript(runner, root);
    const command = `${nix.map((arg) => `'${arg}'`).join(" ")} eval --expr '1 + "a"'`;
    expect(await coloured.run(["script", "--quiet", "--return", "--command", command, "/dev/null"], { TERM: "xterm" })).toBe(1);
    expect(coloured.chunks.map((chunk) => chunk.data).join("")).toMatch(/\x1b\[31;1merror:/);
    const colouredErrors = coloured.classify("running").filter((line) => line.text.startsWith("error: cannot add"));
    expect(colouredErrors.map((line) => [line.stream, line.kind])).toEqual([["stdout", "error"]]);
  });
});
