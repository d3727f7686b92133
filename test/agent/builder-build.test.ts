/**
 * A builder host's `build` (agent/commands/builder-build.ts, docs/fleet-build.md "Builder hosts") with real
 * git and real Nix against the fake control plane, which keeps what the builder uploads with the cache token:
 * each named host's system built from one checkout, the built ones uploaded and named in a manifest signed
 * with the builder's key, each host's outcome in `hostBuilds`; a builder without its keys builds nothing.
 */
import { execFile } from "node:child_process";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, expect, it } from "vitest";
import { acceptManifest } from "../../common/cache-manifest.ts";
import { storePathHash } from "../../common/narinfo.ts";
import { parseNixPublicKey } from "../../common/nix-keys.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { createHarness, recordingRuns, type Harness } from "./harness.ts";

const run = promisify(execFile);

let h: Harness;
let keys: string;
/** Every command the agent ran on the host. */
let ran: string[][];

describeWithNix("a builder host's build for the fleet", () => {
  beforeEach(async () => {
    ran = [];
    keys = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-builder-keys-"));
    h = await createHarness({ wrapRunner: recordingRuns(ran) });
  });

  afterEach(async () => {
    await h.cleanup();
    await fs.rm(keys, { recursive: true, force: true });
    expect(h.plane.protocolErrors).toEqual([]);
  });

  const targets = [
    { host: "web1", platform: "nixos" as const, flakeAttr: "web1" },
    { host: "db1", platform: "nixos" as const, flakeAttr: "db1" },
  ];

  it("builds each host's system, uploads and signs the built ones with its key, and reports the host that failed with nix's error", async () => {
    const secretKeyFile = path.join(keys, "builder.secret");
    const publicKeyFile = path.join(keys, "builder.public");
    await run("nix-store", ["--generate-binary-cache-key", "test-builder-1", secretKeyFile, publicKeyFile]);
    const cacheTokenFile = path.join(keys, "cache-token");
    await fs.writeFile(cacheTokenFile, h.plane.cacheToken, { mode: 0o600 });
    const web1 = await h.fleet.systemPath("web1");
    const commit = await h.fleet.setHost("db1", "fail: db1 cannot build this");
    const { stdout: tree } = await run("git", ["-C", h.fleet.origin, "rev-parse", `${commit}^{tree}`]);

    await h.startAgent({ builder: { secretKeyFile, cacheTokenFile } });
    const { id, finished } = await h.run("build", { commit, builds: targets });
    expect(finished).toMatchObject({ outcome: "failed", error: expect.stringMatching(/^1 host of 2 not built: db1; the build of db1 failed \(nix build exited with code 1\)/) });
    expect(finished.result.build).toMatchObject({ commit, tree: tree.trim(), storePath: null });
    expect(finished.result.hostBuilds?.web1).toMatchObject({ storePath: web1 });
    expect(finished.result.hostBuilds?.db1).toMatchObject({ storePath: null, errorTail: expect.stringContaining("db1 cannot build this") });

    // web1's system went up with its narinfo, and the manifest names it alone, signed with the builder's key.
    expect([...h.plane.uploadedNarinfos.keys()]).toContain(`${storePathHash(web1)}.narinfo`);
    expect(h.plane.uploadedNarinfos.get(`${storePathHash(web1)}.narinfo`)).toMatch(/^Sig: test-builder-1:/m);
    const decision = await acceptManifest(h.plane.publishedManifests.get(commit), {
      hostName: "web1",
      trustedKeys: [parseNixPublicKey(await fs.readFile(publicKeyFile, "utf8"))],
      running: null,
    });
    expect(decision).toMatchObject({ accepted: true, storePath: web1, manifest: { commit, tree: tree.trim(), hosts: { web1 } } });
    expect(h.plane.output(id)).toContain("the signed manifest for");
    // Nothing of the builder's own running system changed.
    expect(ran.some((argv) => argv.includes("switch"))).toBe(false);
  });

  it("fails naming the module options when the host has no builder keys, building nothing", async () => {
    await h.startAgent();
    const { finished } = await h.run("build", { commit: await h.fleet.head(), builds: targets });
    expect(finished).toMatchObject({ outcome: "failed", error: expect.stringContaining("services.nixfleet-agent.cache.builder.secretKeyFile and cacheTokenFile") });
    expect(ran.filter((argv) => argv.includes("build") || argv.includes("copy"))).toEqual([]);
    expect(h.plane.uploadedNarinfos.size).toBe(0);
  });
});
