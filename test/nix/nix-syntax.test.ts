/**
 * Every Nix file in the repository parses (`nix-instantiate --parse`): the
 * flake, the modules, the templates, the test fixtures. Nix evaluates lazily,
 * so a syntax error in a file nothing else here evaluates would otherwise
 * surface only on a user's host.
 */
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { expect, it } from "vitest";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { parseNixFile, REPO_ROOT } from "./nix-eval.ts";

/** Not the project's own files. */
const SKIPPED_DIRS = new Set(["node_modules", ".git", ".wrangler", "dist", ".artifacts"]);

async function nixFilesUnder(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map(async (entry) => {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) return SKIPPED_DIRS.has(entry.name) ? [] : nixFilesUnder(full);
      return entry.isFile() && entry.name.endsWith(".nix") ? [full] : [];
    }),
  );
  return nested.flat();
}

describeWithNix("Nix syntax", () => {
  it("parses every .nix file in the repository, the flake and the agent's modules among them", async () => {
    const files = await nixFilesUnder(REPO_ROOT);
    const relative = files.map((file) => path.relative(REPO_ROOT, file));
    expect(relative).toEqual(
      expect.arrayContaining([
        "flake.nix",
        "nix/package.nix",
        "nix/module-options.nix",
        "nix/agent-config.nix",
        "nix/nixos-module.nix",
        "nix/darwin-module.nix",
        "nix/home-manager-module.nix",
      ]),
    );
    const failures: string[] = [];
    for (const file of files) {
      await parseNixFile(file).catch((error: unknown) => {
        failures.push(`${path.relative(REPO_ROOT, file)}: ${error instanceof Error ? error.message : String(error)}`);
      });
    }
    expect(failures).toEqual([]);
  });
});
