import { execFile } from "node:child_process";
import { statSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { diffFlakeLocks, LockDiffJson, renderLockJson } from "../../common/lock-diff.ts";
import { main, USAGE } from "../../cli/nixfleet.ts";
import { fixtureLock, fixturePath } from "./helpers.ts";

const BIN = fileURLToPath(new URL("../../bin/nixfleet.js", import.meta.url));
// The project's pinned Node, unless vitest already runs on one that strips types.
const NODE = process.features.typescript
  ? process.execPath
  : fileURLToPath(new URL("../../node_modules/.bin/node", import.meta.url));
const BEFORE = fixturePath("large-before.lock");
const AFTER = fixturePath("large-after.lock");

/** Runs the CLI in-process against real files, capturing what it prints. */
async function cli(...argv: string[]) {
  let stdout = "";
  let stderr = "";
  const code = await main(argv, {
    stdout: (text) => void (stdout += text),
    stderr: (text) => void (stderr += text),
    readFile: (path) => readFile(path, "utf8"),
    env: {},
    cwd: process.cwd(),
  });
  return { code, stdout, stderr };
}

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "nixfleet-lock-diff-"));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe("nixfleet lock-diff", () => {
  it("prints one human-readable line per changed input and exits 0", async () => {
    const { code, stdout, stderr } = await cli("lock-diff", BEFORE, AFTER);
    expect(code).toBe(0);
    expect(stderr).toBe("");
    const lines = stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(17);
    expect(lines).toContain(
      "nixpkgs: b0a433e → 4c0e023 (2025-12-06 → 2025-12-13) https://github.com/NixOS/nixpkgs/compare/b0a433e26d48d6c4f8bac71e9277744aa404f730...4c0e02330c815905448c749f307620123f79ea84",
    );
    expect(lines).toContain("impermanence: added 2a252ed (2025-11-01)");
    expect(lines).toContain("emacs-overlay: removed 7cfa574 (2025-11-19)");
  });

  it("prints JSON in the documented shape with --json", async () => {
    const { code, stdout } = await cli("lock-diff", BEFORE, AFTER, "--json");
    expect(code).toBe(0);
    const json = LockDiffJson.parse(JSON.parse(stdout));
    expect(json).toEqual(renderLockJson(diffFlakeLocks(fixtureLock("large-before.lock"), fixtureLock("large-after.lock"))));
    expect(json.changes.map((c) => c.kind)).toContain("added");
  });

  it("prints the Updated inputs Markdown section with --markdown", async () => {
    const { code, stdout } = await cli("lock-diff", "--markdown", BEFORE, AFTER);
    expect(code).toBe(0);
    expect(stdout.startsWith("### Updated inputs\n\n- determinate: [ca831dc](https://api.flakehub.com/")).toBe(true);
    expect(stdout).toContain("- impermanence: added [2a252ed](https://github.com/nix-community/impermanence/tree/");
    expect(stdout.trimEnd().split("\n").filter((line) => line.startsWith("- "))).toHaveLength(17);
  });

  it("exits 0 and says so when the two locks pin the same inputs", async () => {
    const { code, stdout } = await cli("lock-diff", AFTER, AFTER);
    expect(code).toBe(0);
    expect(stdout).toBe("No input changes.\n");
    expect(JSON.parse((await cli("lock-diff", AFTER, AFTER, "--json")).stdout)).toEqual({ changes: [] });
  });

  it("exits 2 naming every file it cannot read", async () => {
    const missing = join(scratch, "nope.lock");
    const { code, stdout, stderr } = await cli("lock-diff", missing, join(scratch, "gone.lock"));
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toContain(`nixfleet lock-diff: cannot read ${missing}: ENOENT`);
    expect(stderr).toContain("gone.lock");
  });

  it("exits 2 naming the file that is not a valid flake.lock and what is wrong with it", async () => {
    const broken = join(scratch, "broken.lock");
    await writeFile(broken, '{ "nodes": ');
    const rootless = join(scratch, "rootless.lock");
    await writeFile(rootless, JSON.stringify({ nodes: {}, version: 7 }));
    const first = await cli("lock-diff", BEFORE, broken);
    expect(first.code).toBe(2);
    expect(first.stderr).toMatch(new RegExp(`^nixfleet lock-diff: ${broken}: flake\\.lock is not valid JSON: `));
    const second = await cli("lock-diff", rootless, AFTER);
    expect(second.code).toBe(2);
    expect(second.stderr).toBe(`nixfleet lock-diff: ${rootless}: flake.lock has no root node (the "root" field is missing)\n`);
  });

  it("exits 2 with the usage on stderr for bad arguments", async () => {
    for (const argv of [
      ["lock-diff", BEFORE],
      ["lock-diff", BEFORE, AFTER, AFTER],
      ["lock-diff", BEFORE, AFTER, "--json", "--markdown"],
      ["lock-diff", BEFORE, AFTER, "--yaml"],
    ]) {
      const { code, stdout, stderr } = await cli(...argv);
      expect(code, argv.join(" ")).toBe(2);
      expect(stdout).toBe("");
      expect(stderr).toContain(USAGE);
    }
  });

  it("exits 2 with the usage for an unknown command or none", async () => {
    const unknown = await cli("lock-dif", BEFORE, AFTER);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe(`nixfleet: unknown command "lock-dif"\n\n${USAGE}`);
    const none = await cli();
    expect(none.code).toBe(2);
    expect(none.stderr).toBe(`nixfleet: no command given\n\n${USAGE}`);
  });

  it("prints the usage on stdout and exits 0 for --help", async () => {
    for (const argv of [["--help"], ["-h"], ["lock-diff", "--help"]]) {
      const { code, stdout, stderr } = await cli(...argv);
      expect(code).toBe(0);
      expect(stdout).toBe(USAGE);
      expect(stderr).toBe("");
    }
  });
});

describe("bin/nixfleet.js as a process", () => {
  const spawnCli = (...args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(NODE, [BIN, ...args], { encoding: "utf8" }, (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === "number" ? error.code : null) : 0, stdout, stderr });
      });
    });

  it("is an executable node script", () => {
    expect(statSync(BIN).mode & 0o111).not.toBe(0);
  });

  it("runs lock-diff --json and exits 0", async () => {
    const { code, stdout, stderr } = await spawnCli("lock-diff", BEFORE, AFTER, "--json");
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(LockDiffJson.parse(JSON.parse(stdout)).changes).toHaveLength(17);
  });

  it("exits 2 with the message on stderr for a missing file", async () => {
    const { code, stdout, stderr } = await spawnCli("lock-diff", join(scratch, "missing.lock"), AFTER);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toContain("missing.lock: ENOENT");
  });
});
