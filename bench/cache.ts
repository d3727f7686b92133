/**
 * `npm run bench:cache [-- ROUNDS]`: the fleet's binary cache (docs/cache.md) with real Nix, against
 * the control plane on workerd (bench/workerd.ts, its local R2 bucket) and, in the same run, a plain
 * static file server (bench/static-file-server.ts: node:http straight onto files; no tokens, no signature checks, no R2). Each round:
 *  - throughput of a 50 MiB closure (a store path of incompressible bytes, new every round, built into a
 *    builder's own store): up with `nixfleet-agent cache push` (the cache token; NARs
 *    uncompressed: random bytes do not compress) to each server, then down with `nix-store --realise`
 *    into an empty store substituting from each (the Worker through a netrc with a host's token). Both
 *    servers see the same client; only the server differs. The push includes its local `nix copy` into
 *    a `file://` cache, timed alone as `local_copy_seconds` (what both pushes share);
 *  - a host's switch by substitution against building the same configuration on the host: two real
 *    agents (bin/nixfleet-agent.js) on the fleet kit's flake (tools/fleet-kit) with the nixos-rebuild
 *    stand-in, each switching to a system whose 50 MiB package is new to the machine's store (a fresh
 *    version per switch): one in substitute mode, from a builder's push and signed manifest, the other
 *    building it. Timed from the command's delivery to its end (the control plane's stamps).
 * Writes bench/results/cache.json.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { CommandView } from "../common/protocol.ts";
import { adminApi } from "../test/support/admin-api.ts";
import { writeE2eHost, type E2eHost } from "../test/support/e2e-agent.ts";
import { eventuallyWith } from "../test/support/wait.ts";
import { createFleetRepo } from "../tools/fleet-kit/fleet-repo.ts";
import { isolatedHostEnv, TEST_NIX_CONFIG } from "../tools/fleet-kit/host-env.ts";
import { runInfo } from "./run-info.ts";
import { startWorkerd } from "./workerd.ts";

const roundsArg = Number(process.argv[2]);
const ROUNDS = Number.isSafeInteger(roundsArg) && roundsArg > 0 ? roundsArg : 3;
const MIB = 1024 * 1024;
const CLOSURE_MIB = 50;
const POLL_SECONDS = 5;
const AGENT_BIN = fileURLToPath(new URL("../bin/nixfleet-agent.js", import.meta.url));

const round2 = (n: number) => Math.round(n * 100) / 100;
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Runs a program to its end, without a shell, and times it. */
const runTimed = (argv: readonly string[], env: NodeJS.ProcessEnv): Promise<Ran> =>
  new Promise((resolve) => {
    const started = performance.now();
    execFile(argv[0]!, argv.slice(1), { env, maxBuffer: 16 * MIB }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, stdout, stderr, seconds: (performance.now() - started) / 1000 });
    });
  });

async function mustRun(what: string, argv: readonly string[], env: NodeJS.ProcessEnv): Promise<Ran> {
  const ran = await runTimed(argv, env);
  if (ran.code !== 0) throw new Error(`${what} failed (exit ${ran.code}):\n${ran.stderr.slice(-3000)}`);
  return ran;
}

/** The baseline (bench/static-file-server.ts), in a process of its own; resolves with its URL once it listens. */
async function startStaticServer(dir: string): Promise<{ url: string; process: ChildProcess }> {
  const child = spawn(process.execPath, [fileURLToPath(new URL("./static-file-server.ts", import.meta.url)), dir], { stdio: ["ignore", "pipe", "inherit"] });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.once("data", (data: Buffer) => resolve(data.toString().trim()));
    child.once("exit", (code) => reject(new Error(`the static file server exited (${code}) before it listened`)));
  });
  return { url, process: child };
}

/** Where the Worker's R2 bucket lives (bench/workerd.ts puts workerd's state on /dev/shm when it is a tmpfs): the static server's files go on the same kind of disk. */
async function sameDiskAs(workerdStateDir: string): Promise<string> {
  return fs.mkdtemp(path.join(path.dirname(workerdStateDir), "nixfleet-bench-static-"));
}

const root = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-bench-cache-"));
const keys = path.join(root, "keys");
await fs.mkdir(keys);
// Stores of their own (chroot stores under root): builds there run in Nix's sandbox, which needs /bin/sh and head.
const nixEnv = (home: string) => ({ ...isolatedHostEnv(path.join(root, "homes", home)), NIX_CONFIG: `${TEST_NIX_CONFIG}extra-sandbox-paths = /bin /usr /lib /lib64\nnarinfo-cache-negative-ttl = 0\n` });
await mustRun("generating the builder's key", ["nix-store", "--generate-binary-cache-key", "bench-builder-1", path.join(keys, "secret"), path.join(keys, "public")], nixEnv("keys"));
const secretKey = path.join(keys, "secret");
const publicKey = (await fs.readFile(path.join(keys, "public"), "utf8")).trim();

const cp = await startWorkerd({ vars: { CACHE_TRUSTED_KEYS: publicKey, POLL_TIMEOUT_SECONDS: String(POLL_SECONDS) } });
const staticDir = await sameDiskAs(cp.stateDir);
const plain = await startStaticServer(staticDir);
const agents: ChildProcess[] = [];
try {
  const admin = adminApi(cp.url);
  const Token = z.object({ token: z.string() });
  const { token: cacheToken } = await admin(Token, "/api/cache-token", { body: {} });
  const cacheTokenFile = path.join(keys, "cache-token");
  await fs.writeFile(cacheTokenFile, cacheToken, { mode: 0o600 });

  // ---- Throughput: a 50 MiB closure up and down, through the Worker and through the static server.
  const { token: readerToken } = await admin(Token, "/api/hosts", { body: { name: "reader", platform: "nixos" } });
  const netrc = path.join(keys, "reader.netrc");
  await fs.writeFile(netrc, `machine 127.0.0.1 login reader password ${readerToken}\n`, { mode: 0o600 });
  const servers = { worker: cp.url, static: plain.url } as const;
  type ServerName = keyof typeof servers;
  const throughput: Array<Record<string, unknown>> = [];

  for (let round = 0; round < ROUNDS; round++) {
    const dir = path.join(root, `round-${round}`);
    await fs.mkdir(dir);
    const builder = path.join(dir, "builder-store");
    const nonce = randomUUID().slice(0, 8);
    await fs.writeFile(
      path.join(dir, "closure.nix"),
      `let
        mk = name: script: builtins.derivation { inherit name; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" script ]; };
        payload = mk "bench-cache-payload-${nonce}" "/usr/bin/head -c ${CLOSURE_MIB * MIB} /dev/urandom > $out";
      in mk "bench-cache-top-${nonce}" "echo \${payload} > $out"`,
    );
    const built = await mustRun("building the closure", ["nix-build", "--store", builder, path.join(dir, "closure.nix"), "--no-out-link"], nixEnv("build"));
    const top = built.stdout.trim();

    const localCopy = await mustRun(
      "nix copy into a file:// cache",
      ["nix", "copy", "--from", builder, "--to", `file://${path.join(dir, "local-cache")}?compression=none&secret-key=${secretKey}`, top],
      nixEnv("copy"),
    );
    const result: Record<string, unknown> = { round, local_copy_seconds: round2(localCopy.seconds) };
    // The order alternates, so neither server always goes first on a machine whose load moves.
    const order: ServerName[] = round % 2 === 0 ? ["worker", "static"] : ["static", "worker"];
    for (const server of order) {
      const pushed = await mustRun(
        `cache push to the ${server} server`,
        [process.execPath, AGENT_BIN, "cache", "push", "--url", servers[server], "--token-file", cacheTokenFile, "--secret-key-file", secretKey, "--from", builder, "--compression", "none", top],
        nixEnv(`push-${server}`),
      );
      const summary = /^2 paths uploaded \((\d+) bytes of NARs\)/m.exec(pushed.stdout);
      if (!summary) throw new Error(`cache push to the ${server} server uploaded something else: ${pushed.stdout}`);
      const bytes = Number(summary[1]);
      const store = path.join(dir, `host-store-${server}`);
      const fetched = await mustRun(
        `substituting from the ${server} server`,
        ["nix-store", "--store", store, "--realise", top, "--option", "substituters", `${servers[server]}/cache`, "--option", "trusted-public-keys", publicKey, "--option", "netrc-file", netrc],
        nixEnv(`fetch-${server}`),
      );
      const payload = (await fs.readFile(path.join(store, top), "utf8")).trim();
      if ((await fs.stat(path.join(store, payload))).size !== CLOSURE_MIB * MIB) throw new Error(`the ${server} server's substitution did not bring the whole payload`);
      result[server] = {
        nar_bytes: bytes,
        upload_seconds: round2(pushed.seconds),
        upload_mib_per_s: round2(bytes / MIB / pushed.seconds),
        download_seconds: round2(fetched.seconds),
        download_mib_per_s: round2(bytes / MIB / fetched.seconds),
      };
    }
    const worker = z.object({ upload_mib_per_s: z.number(), download_mib_per_s: z.number() });
    const [w, s] = [worker.parse(result.worker), worker.parse(result.static)];
    result.upload_ratio = round2(w.upload_mib_per_s / s.upload_mib_per_s);
    // Computed, not run: each push's time past a local copy as its own `nix copy` makes, i.e. the HTTP transfer and the server's work.
    const pastCopy = (server: ServerName) => z.object({ upload_seconds: z.number() }).parse(result[server]).upload_seconds - localCopy.seconds;
    result.upload_ratio_past_local_copy_computed = round2(pastCopy("static") / pastCopy("worker"));
    result.download_ratio = round2(w.download_mib_per_s / s.download_mib_per_s);
    result.load_average_1_5_15 = os.loadavg().map(round2);
    console.error(JSON.stringify(result));
    throughput.push(result);
    await fs.rm(dir, { recursive: true, force: true });
  }

  // ---- A host's switch: substituted from the cache against built on the host.
  const fleetRoot = path.join(root, "fleet");
  const hostsRoot = path.join(root, "hosts");
  const PAYLOAD_KIB = CLOSURE_MIB * 1024;
  const fleet = await createFleetRepo({ root: fleetRoot, hosts: ["builds", "substitutes"], env: isolatedHostEnv(path.join(root, "homes", "fleet")), packages: { payload: `0-${randomUUID().slice(0, 8)} ${PAYLOAD_KIB}` } });
  const until = eventuallyWith({ timeoutMs: 600_000, intervalMs: 200 });
  const startAgent = async (name: string, config: Parameters<typeof writeE2eHost>[0]["config"], nixConfig = ""): Promise<E2eHost> => {
    const { token } = await admin(Token, "/api/hosts", { body: { name, platform: "nixos" } });
    const host = await writeE2eHost({ dir: path.join(hostsRoot, name), name, token, url: cp.url, repoUrl: fleet.origin, branch: fleet.branch, pollTimeoutSeconds: POLL_SECONDS, config });
    const env = nixConfig === "" ? host.env : { ...host.env, NIX_CONFIG: `${TEST_NIX_CONFIG}${nixConfig.replaceAll("TOKEN", token)}` };
    if (nixConfig !== "") await fs.writeFile(path.join(host.dir, "netrc"), `machine 127.0.0.1 login ${name} password ${token}\n`, { mode: 0o600 });
    const child = spawn(process.execPath, [AGENT_BIN, "run", "--config", host.configFile], { env, stdio: "ignore" });
    agents.push(child);
    return host;
  };
  // Neither evaluates main in the background (evaluate "ci"): the switch is all each one does.
  const building = await startAgent("builds", { desired: { evaluate: "ci" } });
  const substituting = await startAgent(
    "substitutes",
    { switch: "substitute", substitute: { trustedKeys: [publicKey] }, desired: { evaluate: "ci" } },
    `substituters = ${cp.url}/cache\ntrusted-public-keys = ${publicKey}\nnetrc-file = ${path.join(hostsRoot, "substitutes", "netrc")}\nnarinfo-cache-negative-ttl = 0\n`,
  );
  await until("both hosts to report", async () => {
    const { hosts } = await admin(z.object({ hosts: z.array(z.object({ name: z.string(), online: z.boolean(), report: z.unknown() })) }), "/api/hosts");
    return [building, substituting].every((host) => hosts.some((h) => h.name === host.name && h.online && Boolean(h.report)));
  });
  const switchOf = async (host: E2eHost) => {
    const { command } = await admin(z.object({ command: CommandView }), `/api/hosts/${host.name}/commands`, { body: { kind: "pull-switch" } });
    const ended = await until(`${host.name}'s pull-switch`, async () => {
      const view = (await admin(z.object({ command: CommandView }), `/api/commands/${command.id}`)).command;
      return ["succeeded", "failed", "cancelled", "timed-out", "lost"].includes(view.state) ? view : null;
    });
    if (ended.state !== "succeeded") throw new Error(`${host.name}'s pull-switch ${ended.state}: ${ended.error ?? ""}`);
    return (Date.parse(ended.finishedAt!) - Date.parse(ended.deliveredAt!)) / 1000;
  };
  const switches: Array<Record<string, unknown>> = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Substituted: a builder (its own store) builds the host's system at a new commit, pushes it with the default compression and publishes the signed manifest.
    const substituteCommit = await fleet.setPackage("payload", `${round + 1}s-${randomUUID().slice(0, 8)} ${PAYLOAD_KIB}`);
    const builder = path.join(root, `switch-builder-${round}`);
    const attr = `${fleet.work}#nixosConfigurations.substitutes.config.system.build.toplevel`;
    const built = await mustRun("the builder's build", ["nix", "build", "--store", builder, "--no-link", "--json", attr], nixEnv("switch-builder"));
    const system = z.array(z.object({ outputs: z.object({ out: z.string() }) })).length(1).parse(JSON.parse(built.stdout))[0]!.outputs.out;
    const tree = (await mustRun("git rev-parse", ["git", "-C", fleet.origin, "rev-parse", `${substituteCommit}^{tree}`], fleet.env)).stdout.trim();
    await mustRun(
      "the builder's cache push",
      [process.execPath, AGENT_BIN, "cache", "push", "--url", cp.url, "--token-file", cacheTokenFile, "--secret-key-file", secretKey, "--from", builder, "--commit", substituteCommit, "--tree", tree, "--host", `substitutes=${system}`],
      nixEnv("switch-push"),
    );
    const substituteSeconds = await switchOf(substituting);
    if ((await substituting.shim.currentSystem()) !== system) throw new Error("the substituting host does not run the builder's system");
    await fs.rm(builder, { recursive: true, force: true });

    // Built on the host: the same configuration at a version no store has yet.
    await fleet.setPackage("payload", `${round + 1}b-${randomUUID().slice(0, 8)} ${PAYLOAD_KIB}`);
    const buildSeconds = await switchOf(building);
    const result = { round, substitute_seconds: round2(substituteSeconds), build_seconds: round2(buildSeconds), substitute_over_build: round2(substituteSeconds / buildSeconds), load_average_1_5_15: os.loadavg().map(round2) };
    console.error(JSON.stringify(result));
    switches.push(result);
  }

  const pick = (server: ServerName, key: "upload_mib_per_s" | "download_mib_per_s") => throughput.map((r) => z.record(z.string(), z.number()).parse(r[server])[key]!);
  const ratios = (key: "upload_ratio" | "download_ratio") => throughput.map((r) => z.number().parse(r[key]));
  const output = {
    ...(await runInfo()),
    rounds: ROUNDS,
    closure_mib: CLOSURE_MIB,
    /** Medians over the rounds; each round's figures below. MiB of NAR per second of the whole command. */
    upload: { worker_mib_per_s: round2(median(pick("worker", "upload_mib_per_s"))), static_mib_per_s: round2(median(pick("static", "upload_mib_per_s"))), ratio: round2(median(ratios("upload_ratio"))) },
    download: { worker_mib_per_s: round2(median(pick("worker", "download_mib_per_s"))), static_mib_per_s: round2(median(pick("static", "download_mib_per_s"))), ratio: round2(median(ratios("download_ratio"))) },
    throughput_rounds: throughput,
    switch: {
      payload_mib: CLOSURE_MIB,
      substitute_seconds: round2(median(switches.map((s) => z.number().parse(s.substitute_seconds)))),
      build_seconds: round2(median(switches.map((s) => z.number().parse(s.build_seconds)))),
      substitute_over_build: round2(median(switches.map((s) => z.number().parse(s.substitute_over_build)))),
    },
    switch_rounds: switches,
    /** The Worker's throughput over the static server's in the same run (issue 25). */
    targets: { upload_ratio: 0.5, download_ratio: 0.5 },
  };
  await fs.mkdir(new URL("./results/", import.meta.url), { recursive: true });
  await fs.writeFile(new URL("./results/cache.json", import.meta.url), `${JSON.stringify(output, null, 2)}\n`);
  console.log(JSON.stringify(output, null, 2));
} finally {
  for (const child of agents) child.kill("SIGKILL");
  plain.process.kill();
  await cp.stop();
  await fs.rm(staticDir, { recursive: true, force: true });
  await fs.rm(root, { recursive: true, force: true });
}
process.exit(0);
