/**
 * nix/agent-lockfile.nix cuts the agent's runtime dependencies out of the
 * repository's package.json and package-lock.json for the Nix package. Checked
 * the way the Nix build uses it, minus Nix's store: real npm installs from the
 * cut lockfile, and the agent and the CLI start from that install on Node 24.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { beforeAll, expect, it } from "vitest";
import { z } from "zod";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { evalNix, NIX_DIR, nixString, REPO_ROOT } from "./nix-eval.ts";

const exec = promisify(execFile);

const LockEntry = z.looseObject({
  version: z.string().optional(),
  resolved: z.string().optional(),
  integrity: z.string().optional(),
  dev: z.boolean().optional(),
  devDependencies: z.record(z.string(), z.string()).optional(),
  bin: z.record(z.string(), z.string()).optional(),
});
const AgentLock = z.object({
  manifest: z.looseObject({
    name: z.string(),
    version: z.string(),
    type: z.literal("module"),
    dependencies: z.record(z.string(), z.string()),
    bin: z.record(z.string(), z.string()),
  }),
  lockfile: z.looseObject({ lockfileVersion: z.number(), packages: z.record(z.string(), LockEntry) }),
});
type AgentLock = z.infer<typeof AgentLock>;

const RepoManifest = z.looseObject({
  version: z.string(),
  dependencies: z.record(z.string(), z.string()),
  bin: z.record(z.string(), z.string()),
});

/** Node ≥ 22.18 strips types without a flag; the project pins Node 24 as a devDependency. */
function node24(): string {
  const pinned = path.join(REPO_ROOT, "node_modules", ".bin", "node");
  return fs.existsSync(pinned) ? pinned : process.execPath;
}

/** npm's own environment variables from the test runner's parent npm must not steer the install. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith("npm_")));
}

describeWithNix("the agent's own lockfile for the Nix package", () => {
  let agentLock: AgentLock;

  beforeAll(async () => {
    const read = (file: string) => `builtins.fromJSON (builtins.readFile ${nixString(path.join(REPO_ROOT, file))})`;
    agentLock = AgentLock.parse(
      await evalNix(
        `import ${nixString(path.join(NIX_DIR, "agent-lockfile.nix"))} { manifest = ${read("package.json")}; lockfile = ${read("package-lock.json")}; }`,
      ),
    );
  });

  it("keeps the runtime dependencies and the two commands, and drops the development dependencies", async () => {
    const repo = RepoManifest.parse(JSON.parse(await fsp.readFile(path.join(REPO_ROOT, "package.json"), "utf8")));
    expect(agentLock.manifest.dependencies).toEqual(repo.dependencies);
    expect(agentLock.manifest.version).toBe(repo.version);
    expect(agentLock.manifest).not.toHaveProperty("devDependencies");
    expect(agentLock.manifest.bin).toEqual(repo.bin);
    expect(Object.keys(agentLock.manifest.bin).sort()).toEqual(["nixfleet", "nixfleet-agent"]);
    const root = agentLock.lockfile.packages[""];
    expect(root?.devDependencies).toBeUndefined();
    expect(root?.bin).toEqual(repo.bin);
    const devEntries = Object.entries(agentLock.lockfile.packages).filter(([, entry]) => entry.dev === true);
    expect(devEntries).toEqual([]);
    expect(agentLock.lockfile.packages).not.toHaveProperty(["node_modules/vitest"]);
    expect(agentLock.lockfile.packages).not.toHaveProperty(["node_modules/wrangler"]);
  });

  it("gives every package its registry tarball URL, pinned by the lockfile's integrity hash", () => {
    const entries = Object.entries(agentLock.lockfile.packages).filter(([key]) => key !== "");
    expect(entries.length).toBeGreaterThan(0);
    for (const [key, entry] of entries) {
      const name = key.slice(key.lastIndexOf("node_modules/") + "node_modules/".length);
      const basename = name.startsWith("@") ? name.slice(name.indexOf("/") + 1) : name;
      expect(entry.resolved, key).toBe(`https://registry.npmjs.org/${name}/-/${basename}-${entry.version}.tgz`);
      expect(entry.integrity, key).toMatch(/^sha512-/);
    }
  });

  it("installs with `npm ci` to exactly its own packages, from which the agent and the CLI start on Node 24", async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "nixfleet-agent-package-"));
    try {
      // The same files the Nix package's source holds.
      await fsp.writeFile(path.join(dir, "package.json"), JSON.stringify(agentLock.manifest));
      await fsp.writeFile(path.join(dir, "package-lock.json"), JSON.stringify(agentLock.lockfile));
      await fsp.mkdir(path.join(dir, "bin"));
      for (const file of ["nixfleet-agent.js", "nixfleet.js"]) {
        await fsp.copyFile(path.join(REPO_ROOT, "bin", file), path.join(dir, "bin", file));
      }
      for (const folder of ["agent", "cli", "common"]) {
        await fsp.cp(path.join(REPO_ROOT, folder), path.join(dir, folder), { recursive: true });
      }

      await exec("npm", ["ci", "--ignore-scripts", "--prefer-offline", "--no-audit", "--no-fund"], { cwd: dir, env: cleanEnv() });

      const { stdout: tree } = await exec("npm", ["ls", "--all", "--parseable"], { cwd: dir, env: cleanEnv() });
      const installed = tree
        .split("\n")
        .filter((line) => line.trim() !== "")
        .map((line) => path.relative(dir, line));
      expect(installed.sort()).toEqual(Object.keys(agentLock.lockfile.packages).sort());

      const { stdout: version } = await exec(node24(), [path.join(dir, "bin", "nixfleet-agent.js"), "--version"], {
        cwd: dir,
        env: cleanEnv(),
      });
      expect(version.trim()).toBe(agentLock.manifest.version);
      const { stdout: usage } = await exec(node24(), [path.join(dir, "bin", "nixfleet.js"), "--help"], { cwd: dir, env: cleanEnv() });
      expect(usage).toContain("lock-diff OLD NEW");
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
