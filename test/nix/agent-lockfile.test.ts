/**
 * nix/agent-lockfile.nix cuts what the agent's bundles are built from (the
 * runtime dependencies, and esbuild for this machine) out of the repository's
 * package.json and package-lock.json for the Nix package. Checked the way the
 * Nix build uses it, minus Nix's store: real npm installs from the cut
 * lockfile, the build script bundles from that install, and the agent and the
 * CLI start from the two bundles alone, as the package installs them.
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
  devDependencies: z.record(z.string(), z.string()),
  bin: z.record(z.string(), z.string()),
});

/** npm's names for this machine, the ones package.nix passes for the build machine. */
const NPM_OS = process.platform;
const NPM_CPU = process.arch;

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
        `import ${nixString(path.join(NIX_DIR, "agent-lockfile.nix"))} { manifest = ${read("package.json")}; lockfile = ${read("package-lock.json")}; os = ${nixString(NPM_OS)}; cpu = ${nixString(NPM_CPU)}; }`,
      ),
    );
  });

  it("keeps the runtime dependencies, esbuild for this platform and the two commands, and drops the other development dependencies", async () => {
    const repo = RepoManifest.parse(JSON.parse(await fsp.readFile(path.join(REPO_ROOT, "package.json"), "utf8")));
    expect(agentLock.manifest.dependencies).toEqual(repo.dependencies);
    expect(agentLock.manifest.version).toBe(repo.version);
    expect(agentLock.manifest.devDependencies).toEqual({ esbuild: repo.devDependencies.esbuild });
    expect(agentLock.manifest.bin).toEqual(repo.bin);
    expect(Object.keys(agentLock.manifest.bin).sort()).toEqual(["nixfleet", "nixfleet-agent"]);
    const root = agentLock.lockfile.packages[""];
    expect(root?.devDependencies).toEqual({ esbuild: repo.devDependencies.esbuild });
    expect(root?.bin).toEqual(repo.bin);
    const devEntries = Object.keys(agentLock.lockfile.packages).filter((key) => agentLock.lockfile.packages[key]?.dev === true);
    expect(devEntries.length).toBeGreaterThan(2);
    expect(devEntries.every((key) => key === "node_modules/esbuild" || key.startsWith("node_modules/@esbuild/"))).toBe(true);
    expect(agentLock.lockfile.packages).not.toHaveProperty(["node_modules/vitest"]);
    expect(agentLock.lockfile.packages).not.toHaveProperty(["node_modules/wrangler"]);
  });

  it("gives every package for this machine its registry tarball URL, pinned by the lockfile's integrity hash, and the others none", () => {
    const entries = Object.entries(agentLock.lockfile.packages).filter(([key]) => key !== "");
    expect(entries.length).toBeGreaterThan(0);
    const fetched: string[] = [];
    for (const [key, entry] of entries) {
      const name = key.slice(key.lastIndexOf("node_modules/") + "node_modules/".length);
      if (!name.startsWith("@esbuild/")) expect(entry.resolved, key).toBeDefined();
      if (entry.resolved === undefined) continue;
      fetched.push(name);
      const basename = name.startsWith("@") ? name.slice(name.indexOf("/") + 1) : name;
      expect(entry.resolved, key).toBe(`https://registry.npmjs.org/${name}/-/${basename}-${entry.version}.tgz`);
      expect(entry.integrity, key).toMatch(/^sha512-/);
    }
    // esbuild's binary for this machine only: importNpmLock fetches what has a URL, and npm skips the rest.
    expect(fetched.filter((name) => name.startsWith("@esbuild/"))).toEqual([`@esbuild/${NPM_OS}-${NPM_CPU}`]);
  });

  it("installs with `npm ci` to exactly its own packages, bundles from them, and the bundles alone start on Node 24", async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "nixfleet-agent-package-"));
    try {
      // The same files the Nix package's source holds.
      const src = path.join(dir, "src");
      await fsp.mkdir(path.join(src, "scripts"), { recursive: true });
      await fsp.writeFile(path.join(src, "package.json"), JSON.stringify(agentLock.manifest));
      await fsp.writeFile(path.join(src, "package-lock.json"), JSON.stringify(agentLock.lockfile));
      for (const file of ["scripts/build-agent.mjs", "scripts/zod-without-json-schema.mjs", "tsconfig.base.json"]) {
        await fsp.copyFile(path.join(REPO_ROOT, file), path.join(src, file));
      }
      for (const folder of ["agent", "cli", "common"]) {
        await fsp.cp(path.join(REPO_ROOT, folder), path.join(src, folder), { recursive: true });
      }

      await exec("npm", ["ci", "--prefer-offline", "--no-audit", "--no-fund"], { cwd: src, env: cleanEnv() });

      const { stdout: tree } = await exec("npm", ["ls", "--all", "--parseable"], { cwd: src, env: cleanEnv() });
      const installed = tree
        .split("\n")
        .filter((line) => line.trim() !== "")
        .map((line) => path.relative(src, line));
      // Everything but the other platforms' esbuild binaries, which npm skips (and Nix never fetches).
      const forThisMachine = Object.keys(agentLock.lockfile.packages).filter((key) => key === "" || agentLock.lockfile.packages[key]?.resolved !== undefined);
      expect(installed.sort()).toEqual(forThisMachine.sort());

      // package.nix's buildPhase, then its installPhase: the bundles and nothing else.
      await exec(node24(), ["scripts/build-agent.mjs", path.join(src, "dist", "agent")], { cwd: src, env: cleanEnv() });
      const out = path.join(dir, "out");
      await fsp.mkdir(out);
      for (const file of ["nixfleet-agent.mjs", "nixfleet-watchdog.mjs", "nixfleet.mjs"]) {
        await fsp.copyFile(path.join(src, "dist", "agent", file), path.join(out, file));
      }

      // With the flags the wrapper passes, and without type stripping: the installed agent is plain JavaScript.
      const flags = (await fsp.readFile(path.join(src, "dist", "agent", "node-flags"), "utf8")).trim().split(" ");
      expect(flags).toContain("--lite-mode");
      await fsp.rm(src, { recursive: true });
      const { stdout: version } = await exec(node24(), [...flags, "--no-experimental-strip-types", path.join(out, "nixfleet-agent.mjs"), "--version"], {
        cwd: out,
        env: cleanEnv(),
      });
      expect(version.trim()).toBe(agentLock.manifest.version);
      const { stdout: usage } = await exec(node24(), ["--no-experimental-strip-types", path.join(out, "nixfleet.mjs"), "--help"], {
        cwd: out,
        env: cleanEnv(),
      });
      expect(usage).toContain("lock-diff OLD NEW");
      // The safety net's watchdog runs from its own bundle alone: here it finds no record to watch and says so.
      const noRecord = path.join(dir, "no-record");
      const watched = await exec(node24(), [...flags, "--no-experimental-strip-types", path.join(out, "nixfleet-watchdog.mjs"), "watchdog", noRecord], { cwd: out, env: cleanEnv() }).then(
        () => ({ code: 0, stdout: "" }),
        (error: { code: number; stdout: string }) => error,
      );
      expect(watched.code).toBe(1);
      expect(watched.stdout).toContain(`no readable record in ${noRecord}: nothing to watch`);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
