/**
 * The agent as the Nix package installs it: dist/agent/nixfleet-agent.mjs
 * (built by the test run's global setup) copied alone into an empty
 * directory, run by Node 24 with the package's Node flags (low-memory V8,
 * no JIT) and type stripping switched off, against the
 * real control plane (wrangler dev, local D1, the coordinator) with a real
 * fleet repository and the nixos-rebuild stand-in that builds with real Nix.
 * Its `cache push`, and Nix's own `nix copy --to`, fill the control plane's binary cache (local R2), from
 * which another Nix store substitutes through a netrc with the host's token (docs/cache.md); a second bundled
 * agent in substitute mode switches to a closure and signed manifest that `cache push` published, evaluating
 * and building nothing; the workflow template's publish-cache step, run by bash, does the same from a checkout.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import { randomUUID } from "node:crypto";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { z } from "zod";
import { acceptManifest } from "../../common/cache-manifest.ts";
import { parseNixPublicKey } from "../../common/nix-keys.ts";
import { CommandView, HostView } from "../../common/protocol.ts";
import { AGENT_NODE_FLAGS } from "../../scripts/build-agent.mjs";
import { createFleetRepo, type FleetRepo } from "../../tools/fleet-kit/fleet-repo.ts";
import { isolatedHostEnv, TEST_NIX_CONFIG } from "../../tools/fleet-kit/host-env.ts";
import { TEST_CACHE_KEYS } from "../fixtures/cache-keys.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { adminApi } from "../support/admin-api.ts";
import { startControlPlane, type ControlPlane } from "../support/control-plane.ts";
import { writeE2eHost } from "../support/e2e-agent.ts";
import { installNixRecorder } from "../support/nix-recorder.ts";
import { eventuallyWith } from "../support/wait.ts";
import { removeHostRoot } from "../support/host-root.ts";

vi.setConfig({ testTimeout: 120_000, hookTimeout: 180_000 });

const BUNDLE = fileURLToPath(new URL("../../dist/agent/nixfleet-agent.mjs", import.meta.url));
const HOST = "bundled";
const POLL_SECONDS = 5;

let root: string;
let cp: ControlPlane;
let fleet: FleetRepo;
let agent: ChildProcess | null = null;
const log: string[] = [];

const admin = adminApi(() => cp.url);

/** The public key of the builder key `nix-store --generate-binary-cache-key` makes in beforeAll: trusted by the Worker and the host. */
let builderPublicKey: string;
/** The host's agent token: the password of its netrc entry for the cache. */
let hostToken: string;

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end, without a shell. */
const runProgram = (argv: readonly string[], env: NodeJS.ProcessEnv): Promise<Ran> =>
  new Promise((resolve) => {
    execFile(argv[0]!, argv.slice(1), { env, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr });
    });
  });

const TEMPLATE = fileURLToPath(new URL("../../templates/github/update-flake-lock.yml", import.meta.url));

/**
 * One step of a workflow file: its `env:` names and its `run: |` script, de-indented, as GitHub Actions
 * hands them to bash. Only the shape the template uses (block scalars, `KEY: value` lines).
 */
function workflowStep(workflow: string, name: string): { env: Record<string, string>; run: string } {
  const lines = workflow.split("\n");
  const start = lines.findIndex((line) => line.trim() === `- name: ${name}`);
  expect(start, `a step named ${name}`).toBeGreaterThan(-1);
  const indentOf = (line: string) => line.length - line.trimStart().length;
  const env: Record<string, string> = {};
  let i = start + 1;
  let inEnv = false;
  for (; i < lines.length && !/^\s*run: \|$/.test(lines[i]!); i++) {
    const line = lines[i]!;
    if (line.trim() === "env:") inEnv = true;
    else if (inEnv && /^\s+[A-Z_]+: /.test(line)) env[line.trim().split(":")[0]!] = line.slice(line.indexOf(":") + 2);
  }
  const runIndent = indentOf(lines[i] ?? "");
  const body: string[] = [];
  for (i += 1; i < lines.length && (lines[i]!.trim() === "" || indentOf(lines[i]!) > runIndent); i++) body.push(lines[i]!);
  const bodyIndent = Math.min(...body.filter((line) => line.trim() !== "").map(indentOf));
  return { env, run: body.map((line) => line.slice(bodyIndent)).join("\n") };
}

const eventually = eventuallyWith({ timeoutMs: 60_000, intervalMs: 200, failFast: true, details: () => log.slice(-30).join("") });

async function run(kind: string, host = HOST): Promise<CommandView> {
  const { command } = await admin(z.object({ command: CommandView }), `/api/hosts/${host}/commands`, { body: { kind } });
  return eventually(`${kind} to finish`, async () => {
    const view = (await admin(z.object({ command: CommandView }), `/api/commands/${command.id}`)).command;
    return ["succeeded", "failed", "cancelled", "timed-out", "lost"].includes(view.state) ? view : null;
  });
}

describeWithNix("the bundled agent, alone in a directory, against the local control plane", () => {
  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-bundled-"));
    const keys = path.join(root, "cache-keys");
    await fs.mkdir(keys);
    const generated = await runProgram(["nix-store", "--generate-binary-cache-key", "e2e-builder-1", path.join(keys, "builder.secret"), path.join(keys, "builder.public")], process.env);
    expect(generated.code, generated.stderr).toBe(0);
    builderPublicKey = await fs.readFile(path.join(keys, "builder.public"), "utf8");
    [cp, fleet] = await Promise.all([
      // The Worker also trusts the fixture's "trusted" key, which the host below does not.
      startControlPlane({ vars: { POLL_TIMEOUT_SECONDS: String(POLL_SECONDS), CACHE_TRUSTED_KEYS: `${builderPublicKey} ${TEST_CACHE_KEYS.trusted.public}` } }),
      createFleetRepo({ root: path.join(root, "fleet"), hosts: [HOST], env: isolatedHostEnv(path.join(root, "fleet-env")) }),
    ]);
    const { token } = await admin(z.object({ token: z.string() }), "/api/hosts", { body: { name: HOST, platform: "nixos" } });
    hostToken = token;
    const host = await writeE2eHost({
      dir: path.join(root, HOST),
      name: HOST,
      token,
      url: cp.url,
      repoUrl: fleet.origin,
      branch: fleet.branch,
      pollTimeoutSeconds: POLL_SECONDS,
      tests: { commands: [{ name: "responds", command: "true" }] },
    });

    // Only the bundle: no node_modules, no sources beside it or above it.
    const installed = path.join(root, "lib", "nixfleet-agent.mjs");
    await fs.mkdir(path.dirname(installed));
    await fs.copyFile(BUNDLE, installed);
    // With the Node flags the package's wrapper passes.
    agent = spawn(process.execPath, [...AGENT_NODE_FLAGS, "--no-experimental-strip-types", installed, "run", "--config", host.configFile], {
      cwd: root,
      env: host.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    agent.stdout?.on("data", (data: Buffer) => log.push(data.toString()));
    agent.stderr?.on("data", (data: Buffer) => log.push(data.toString()));
  }, 180_000);

  afterAll(async () => {
    if (agent !== null && agent.exitCode === null) agent.kill("SIGKILL");
    await cp?.stop();
    if (root) await removeHostRoot(root);
  });

  it("comes online and reports", async () => {
    const view = await eventually("the first report", async () => {
      const current = await admin(HostView, `/api/hosts/${HOST}`);
      return current.online && current.report ? current : null;
    });
    expect(view.report?.platform).toBe("nixos");
    expect(view.report?.agentVersion).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("pulls, switches and tests, and its next report shows the new commit and system", async () => {
    const head = await fleet.setHost(HOST, "bundled generation 2");
    const expectedSystem = await fleet.systemPath(HOST);
    const pull = await run("pull");
    expect(pull.state, pull.error ?? "").toBe("succeeded");
    expect(pull.result?.commitAfter).toBe(head);
    const switched = await run("switch");
    expect(switched.state, switched.error ?? "").toBe("succeeded");
    expect(switched.result?.systemAfter).toBe(expectedSystem);
    const tested = await run("test");
    expect(tested.state, tested.error ?? "").toBe("succeeded");

    await eventually("the report of the new commit and system", async () => {
      const report = (await admin(HostView, `/api/hosts/${HOST}`)).report;
      return report?.repo.commit.value === head && report.system.current.value === expectedSystem ? report : null;
    });
  });

  it("cache push uploads a signed closure (an 11 MiB NAR in 5 MiB parts), nix copy --to uploads another; a second store substitutes both through netrc with the host's token, and refuses a path signed by a key it does not trust", async () => {
    const dir = path.join(root, "binary-cache");
    await fs.mkdir(dir);
    const secretKey = path.join(root, "cache-keys", "builder.secret");
    // Stores of their own (chroot stores under `dir`): builds there run in Nix's sandbox, which needs /bin/sh.
    const nixEnv = (home: string) => ({ ...isolatedHostEnv(path.join(dir, home)), NIX_CONFIG: `${TEST_NIX_CONFIG}extra-sandbox-paths = /bin /usr /lib /lib64\nnarinfo-cache-negative-ttl = 0\n` });
    const builder = path.join(dir, "builder-store");
    const consumer = path.join(dir, "host-store");
    await fs.writeFile(
      path.join(dir, "paths.nix"),
      `let
        mk = name: script: builtins.derivation { inherit name; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" script ]; };
        big = mk "cache-e2e-big" "/usr/bin/head -c ${11 * 1024 * 1024} /dev/urandom > $out";
      in {
        top = mk "cache-e2e-top" "echo \${big} > $out";
        small = mk "cache-e2e-small" "echo small > $out";
        foreign = mk "cache-e2e-foreign" "echo foreign > $out";
        refused = mk "cache-e2e-refused" "echo refused > $out";
      }`,
    );
    const built = await runProgram(["nix-build", "--store", builder, path.join(dir, "paths.nix"), "-A", "top", "-A", "small", "-A", "foreign", "-A", "refused", "--no-out-link"], nixEnv("build-home"));
    expect(built.code, built.stderr).toBe(0);
    const [top, small, foreign, refused] = built.stdout.trim().split("\n");

    const { token: cacheToken } = await admin(z.object({ token: z.string() }), "/api/cache-token", { body: {} });
    const cacheTokenFile = path.join(dir, "cache-token");
    await fs.writeFile(cacheTokenFile, cacheToken, { mode: 0o600 });
    const netrc = async (name: string, login: string, password: string) => {
      const file = path.join(dir, name);
      await fs.writeFile(file, `machine 127.0.0.1 login ${login} password ${password}\n`, { mode: 0o600 });
      return file;
    };
    const uploaderNetrc = await netrc("uploader.netrc", "uploader", cacheToken);
    const hostNetrc = await netrc("host.netrc", HOST, hostToken);
    const cacheUrl = `${cp.url}/cache`;

    // The bundled agent, as a builder host runs it: the part size lowered so that `big` goes up in three parts.
    const installed = path.join(root, "lib", "nixfleet-agent.mjs");
    const pushed = await runProgram(
      [process.execPath, ...AGENT_NODE_FLAGS, "--no-experimental-strip-types", installed, "cache", "push", "--url", cp.url, "--token-file", cacheTokenFile, "--secret-key-file", secretKey, "--from", builder, "--part-size", String(5 * 1024 * 1024), "--compression", "none", top!],
      nixEnv("push-home"),
    );
    expect(pushed.code, pushed.stderr).toBe(0);
    expect(pushed.stdout).toContain("2 paths uploaded");
    expect(pushed.stderr).toMatch(/\(11534\d{3} bytes, in 3 parts\) for \/nix\/store\/\w{32}-cache-e2e-big$/m);
    // Nix itself, PUTting through the Worker with the cache token from its netrc.
    const copy = (storePath: string, key: string) => runProgram(["nix", "copy", "--from", builder, "--to", `${cacheUrl}?secret-key=${key}`, "--option", "netrc-file", uploaderNetrc, storePath], nixEnv("copy-home"));
    const copied = await copy(small!, secretKey);
    expect(copied.code, copied.stderr).toBe(0);

    const substitute = (...paths: string[]) =>
      runProgram(["nix-store", "--store", consumer, "--realise", ...paths, "--option", "substituters", cacheUrl, "--option", "trusted-public-keys", builderPublicKey, "--option", "netrc-file", hostNetrc], nixEnv("host-home"));
    const substituted = await substitute(top!, small!);
    expect(substituted.code, substituted.stderr).toBe(0);
    expect(substituted.stderr).toContain(`copying path '${top}' from '${cacheUrl}'`);
    const storeFile = (storePath: string) => path.join(consumer, storePath);
    const bigPath = (await fs.readFile(storeFile(top!), "utf8")).trim();
    expect((await fs.stat(storeFile(bigPath))).size).toBe(11 * 1024 * 1024);
    expect(await fs.readFile(storeFile(small!), "utf8")).toBe("small\n");

    // Signed by a key the Worker trusts and the host does not: the Worker takes it, the host's Nix refuses it.
    const foreignKey = path.join(dir, "foreign.secret");
    await fs.writeFile(foreignKey, TEST_CACHE_KEYS.trusted.secret);
    expect((await copy(foreign!, foreignKey)).code).toBe(0);
    const unsigned = await substitute(foreign!);
    expect(unsigned.code).not.toBe(0);
    expect(unsigned.stderr).toContain("is not signed by any of the keys in 'trusted-public-keys'");
    await expect(fs.stat(storeFile(foreign!))).rejects.toThrow();

    // Signed by a key the Worker does not trust: real Nix's upload fails with the Worker's refusal.
    const untrustedKey = path.join(dir, "untrusted.secret");
    await fs.writeFile(untrustedKey, TEST_CACHE_KEYS.untrusted.secret);
    const refusedCopy = await copy(refused!, untrustedKey);
    expect(refusedCopy.code).not.toBe(0);
    expect(refusedCopy.stderr).toContain("narinfo_key_untrusted");
  });

  it("a bundled agent in substitute mode switches to the closure cache push uploaded and whose signed manifest it published, fetched through its netrc, running no nix eval or build", async () => {
    const name = "substituter";
    const dir = path.join(root, "substitute");
    await fs.mkdir(dir);
    const secretKey = path.join(root, "cache-keys", "builder.secret");
    const nixEnv = (home: string) => ({ ...isolatedHostEnv(path.join(dir, home)), NIX_CONFIG: `${TEST_NIX_CONFIG}extra-sandbox-paths = /bin /usr /lib /lib64\n` });
    // The builder's store is its own: the host's store gets the system only from the cache. New every run, so never there before.
    const builder = path.join(dir, "builder-store");
    const nonce = randomUUID();
    await fs.writeFile(
      path.join(dir, "system.nix"),
      `let
        mk = name: script: builtins.derivation { inherit name; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" script ]; };
        dep = mk "substituter-dep" "echo ${nonce} > $out";
      in mk "nixos-system-${name}" "echo \${dep} > $out"`,
    );
    const built = await runProgram(["nix-build", "--store", builder, path.join(dir, "system.nix"), "--no-out-link"], nixEnv("build-home"));
    expect(built.code, built.stderr).toBe(0);
    const system = built.stdout.trim();
    await expect(fs.stat(system)).rejects.toThrow();

    const { token: cacheToken } = await admin(z.object({ token: z.string() }), "/api/cache-token", { body: {} });
    const cacheTokenFile = path.join(dir, "cache-token");
    await fs.writeFile(cacheTokenFile, cacheToken, { mode: 0o600 });
    const commit = await fleet.head();
    const tree = (await runProgram(["git", "-C", fleet.origin, "rev-parse", `${commit}^{tree}`], fleet.env)).stdout.trim();
    const installed = path.join(root, "lib", "nixfleet-agent.mjs");
    const pushed = await runProgram(
      [process.execPath, ...AGENT_NODE_FLAGS, "--no-experimental-strip-types", installed, "cache", "push", "--url", cp.url, "--token-file", cacheTokenFile, "--secret-key-file", secretKey, "--from", builder, "--commit", commit, "--tree", tree, "--host", `${name}=${system}`],
      nixEnv("push-home"),
    );
    expect(pushed.code, pushed.stderr).toBe(0);
    expect(pushed.stdout).toContain("2 paths uploaded");
    expect(pushed.stdout).toContain(`the signed manifest for ${commit} (1 hosts) is published`);

    const { token } = await admin(z.object({ token: z.string() }), "/api/hosts", { body: { name, platform: "nixos" } });
    const netrc = path.join(dir, "host.netrc");
    await fs.writeFile(netrc, `machine 127.0.0.1 login ${name} password ${token}\n`, { mode: 0o600 });
    const host = await writeE2eHost({
      dir: path.join(dir, name),
      name,
      token,
      url: cp.url,
      repoUrl: fleet.origin,
      branch: fleet.branch,
      pollTimeoutSeconds: POLL_SECONDS,
      config: { switch: "substitute", substitute: { trustedKeys: [builderPublicKey.trim()] }, desired: { evaluate: "ci" } },
    });
    const recorder = await installNixRecorder(path.join(dir, "nix-recorder"));
    // What the module's cache options give the host's Nix: the fleet cache, the builder's key, the netrc with the host's token.
    const env = {
      ...host.env,
      PATH: `${recorder.binDir}:${host.env.PATH}`,
      NIX_CONFIG: `${TEST_NIX_CONFIG}substituters = ${cp.url}/cache\ntrusted-public-keys = ${builderPublicKey.trim()}\nnetrc-file = ${netrc}\nnarinfo-cache-negative-ttl = 0\n`,
    };
    const substituter = spawn(process.execPath, [...AGENT_NODE_FLAGS, "--no-experimental-strip-types", installed, "run", "--config", host.configFile], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
    substituter.stdout?.on("data", (data: Buffer) => log.push(data.toString()));
    substituter.stderr?.on("data", (data: Buffer) => log.push(data.toString()));
    try {
      const switched = await run("pull-switch", name);
      expect(switched.state, switched.error ?? "").toBe("succeeded");
      expect(switched.result).toMatchObject({ commitAfter: commit, systemAfter: system });
      expect(await host.shim.currentSystem()).toBe(system);
      expect((await fs.readFile(system, "utf8")).trim()).toMatch(/^\/nix\/store\/\w{32}-substituter-dep$/);
      const nixRuns = await recorder.runs();
      // The recorder is on the agent's PATH (its report asks nix for its version), and nothing evaluated or built.
      expect(nixRuns.length).toBeGreaterThan(0);
      expect(nixRuns.filter((args) => /(^| )(eval|build)( |$)/.test(args))).toEqual([]);
    } finally {
      const exited = new Promise((resolve) => substituter.once("exit", resolve));
      substituter.kill("SIGKILL");
      await exited;
    }
  });

  it("the workflow template's publish-cache step, run by bash against the control plane, builds the host's system, pushes it signed with the builder key, publishes the signed manifest naming it and posts it as the desired system", async () => {
    const step = workflowStep(await fs.readFile(TEMPLATE, "utf8"), "Build, sign and push the hosts' systems, then publish them");
    expect(Object.keys(step.env).sort()).toEqual(["NIXFLEET_CACHE_HOSTS", "NIXFLEET_CACHE_SIGNING_KEY", "NIXFLEET_CACHE_TOKEN", "NIXFLEET_CI_TOKEN", "NIXFLEET_URL"]);
    const { token: cacheToken } = await admin(z.object({ token: z.string() }), "/api/cache-token", { body: {} });
    const { token: ciToken } = await admin(z.object({ token: z.string() }), "/api/ci-token", { body: {} });
    // What the step before it does: nixfleet-agent on the PATH, here the bundle as the package runs it.
    const bin = path.join(root, "ci-bin");
    await fs.mkdir(bin);
    const installed = path.join(root, "lib", "nixfleet-agent.mjs");
    await fs.writeFile(path.join(bin, "nixfleet-agent"), `#!/bin/sh\nexec ${[process.execPath, ...AGENT_NODE_FLAGS, "--no-experimental-strip-types", installed].join(" ")} "$@"\n`, { mode: 0o755 });
    const commit = await fleet.head();
    const signingKey = (await fs.readFile(path.join(root, "cache-keys", "builder.secret"), "utf8")).trim();
    const ran = await new Promise<Ran>((resolve) => {
      execFile("bash", ["-c", step.run], {
        cwd: fleet.work,
        env: {
          ...fleet.env,
          PATH: `${bin}:${fleet.env.PATH}`,
          GITHUB_SHA: commit,
          NIXFLEET_URL: cp.url,
          // Unset, as when the variable is not defined: every nixosConfigurations attribute.
          NIXFLEET_CACHE_HOSTS: "",
          NIXFLEET_CACHE_TOKEN: cacheToken,
          NIXFLEET_CACHE_SIGNING_KEY: signingKey,
          NIXFLEET_CI_TOKEN: ciToken,
        },
        maxBuffer: 16 * 1024 * 1024,
      }, (error, stdout, stderr) => resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr }));
    });
    expect(ran.code, ran.stderr).toBe(0);
    const system = await fleet.systemPath(HOST);
    expect(ran.stdout).toContain(`the signed manifest for ${commit} (1 hosts) is published`);
    expect(JSON.parse(ran.stdout.trim().split("\n").at(-1)!)).toEqual({ commit, hosts: 1 });

    // What a host in substitute mode reads: the manifest, which its own rule takes, and the narinfo of the path it names.
    const asHost = { Authorization: `Basic ${Buffer.from(`${HOST}:${hostToken}`).toString("base64")}` };
    const served = await fetch(`${cp.url}/cache/manifests/${commit}`, { headers: asHost });
    expect(served.status).toBe(200);
    const decision = await acceptManifest(await served.json(), { hostName: HOST, trustedKeys: [parseNixPublicKey(builderPublicKey.trim())], running: null });
    expect(decision).toMatchObject({ accepted: true, storePath: system });
    const narinfo = await fetch(`${cp.url}/cache/${path.basename(system).slice(0, 32)}.narinfo`, { headers: asHost });
    expect(narinfo.status).toBe(200);
    expect(await narinfo.text()).toContain(`StorePath: ${system}\n`);
  });

  it("stops cleanly on SIGTERM", async () => {
    const child = agent!;
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(log.join("")).toContain("agent stopped");
  });
});
