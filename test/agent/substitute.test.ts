/**
 * Substitute mode (agent/commands/substitute.ts, docs/cache.md "Substitute mode") against the fake control
 * plane with real git and real Nix: a switch takes the store path a builder's signed manifest names for the
 * host at the clone's commit, fetches it with `nix-store --realise` and activates it, and never evaluates or
 * builds the configuration; every manifest the host must not take fails the command and changes nothing.
 */
import { execFile } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, expect, it } from "vitest";
import { z } from "zod";
import { signManifest } from "../../common/cache-manifest.ts";
import { nixPublicKeyText, parseNixSecretKey, type NixSecretKey } from "../../common/nix-keys.ts";
import type { CacheManifest, SignedCacheManifest } from "../../common/protocol.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { createHarness, recordingRuns, type Harness } from "./harness.ts";

const run = promisify(execFile);
/** What Nix 2.8's `nix build --json` prints (it has no --print-out-paths). */
const BuildOutput = z.array(z.object({ outputs: z.object({ out: z.string() }) })).length(1);

/** A builder's key pair in Nix's format, made with Node's own Ed25519. */
function builderKey(name: string): NixSecretKey {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const seed = privateKey.export({ format: "der", type: "pkcs8" }).subarray(-32);
  const pub = publicKey.export({ format: "der", type: "spki" }).subarray(-32);
  return parseNixSecretKey(`${name}:${Buffer.concat([seed, pub]).toString("base64")}`);
}

const builder = builderKey("fleet-builder-1");
const stranger = builderKey("stranger-1");

let h: Harness;
/** Every command the agent ran on the host. */
let ran: string[][];

/** The nix commands that evaluate or build (the agent's own `nix eval`, `nix build`, a rebuild). */
const evaluationsAndBuilds = () => ran.filter((argv) => /(^|\/)(nix|nixos-rebuild)$/.test(argv[0] ?? "") && argv.some((arg) => ["eval", "build", "switch", "boot"].includes(arg)));

/** Builds a host's system at the working clone's HEAD, as a builder does (outside the agent). */
async function buildSystem(host: string): Promise<string> {
  const attr = `${h.fleet.work}#nixosConfigurations.${host}.config.system.build.toplevel`;
  const { stdout } = await run("nix", ["build", "--no-link", "--json", attr], { cwd: h.fleet.work, env: h.fleet.env });
  return BuildOutput.parse(JSON.parse(stdout))[0]!.outputs.out;
}

async function manifestAtHead(overrides: Partial<Omit<CacheManifest, "hosts">> = {}): Promise<CacheManifest & { hosts: { web1: string; db1: string } }> {
  return { ...(await manifestNaming({ web1: await buildSystem("web1"), db1: await buildSystem("db1") })), ...overrides };
}

/** A manifest of the HEAD commit naming `hosts`' paths as they are (built by the caller, or not at all). */
async function manifestNaming<Hosts extends Record<string, string>>(hosts: Hosts, created = "2026-12-07T03:00:00.000Z"): Promise<CacheManifest & { hosts: Hosts }> {
  const commit = await h.fleet.head();
  const { stdout: tree } = await run("git", ["-C", h.fleet.origin, "rev-parse", `${commit}^{tree}`]);
  return { commit, tree: tree.trim(), created, hosts };
}

describeWithNix("substitute mode: switching to a builder's signed manifest", () => {
  beforeEach(async () => {
    ran = [];
    h = await createHarness({
      config: { switch: "substitute", substitute: { trustedKeys: [nixPublicKeyText(builder)] } },
      wrapRunner: recordingRuns(ran),
    });
  });

  afterEach(async () => {
    await h.cleanup();
    expect(h.plane.protocolErrors).toEqual([]);
  });

  it("pull-switches to the path its manifest names, fetched with nix-store --realise, verifies it, and evaluates and builds nothing", async () => {
    const manifest = await manifestAtHead();
    h.plane.manifests.set(manifest.commit, await signManifest(manifest, builder));
    await h.startAgent();
    const { id, finished } = await h.run("pull-switch");
    expect(finished).toMatchObject({ outcome: "succeeded", exitCode: 0, error: null });
    expect(finished.result).toMatchObject({ commitAfter: manifest.commit, systemBefore: null, systemAfter: manifest.hosts.web1 });
    expect(await h.shim.currentSystem()).toBe(manifest.hosts.web1);
    expect(h.plane.manifestRequests).toEqual([manifest.commit]);
    expect(ran).toContainEqual(["nix-store", "--realise", manifest.hosts.web1]);
    // Activated as a detached job, outside the runner: its command line is in the output.
    expect(h.plane.output(id)).toContain(`$ ${h.shim.activateSystem} ${manifest.hosts.web1}`);
    expect(evaluationsAndBuilds()).toEqual([]);
    expect(h.plane.output(id)).toContain(`names ${manifest.hosts.web1} for web1`);
  });

  it("refuses an unsigned manifest, one signed by an unknown key, one changed after signing, one naming other hosts only and one for another commit of another tree, switching nothing", async () => {
    const manifest = await manifestAtHead();
    const signed = await signManifest(manifest, builder);
    // Another commit with another tree: a manifest of another commit names this one's systems only for the same tree.
    const other = await signManifest({ ...manifest, commit: "f".repeat(40), tree: "e".repeat(40) }, builder);
    const cases: Array<{ served: SignedCacheManifest; error: string }> = [
      { served: { ...signed, signatures: [] }, error: "the manifest is not signed" },
      { served: await signManifest(manifest, stranger), error: "signed only by keys this host does not trust (stranger-1)" },
      { served: { ...signed, manifest: { ...manifest, hosts: { web1: manifest.hosts.db1 } } }, error: "does not verify" },
      { served: await signManifest({ ...manifest, hosts: { db1: manifest.hosts.db1 } }, builder), error: "names no system for web1" },
      { served: other, error: `the control plane sent the one for ${"f".repeat(40)}` },
    ];
    await h.startAgent();
    expect((await h.run("pull")).finished.outcome).toBe("succeeded");
    for (const { served, error } of cases) {
      h.plane.manifests.set(manifest.commit, served);
      const { finished } = await h.run("switch");
      expect(finished, error).toMatchObject({ outcome: "failed", error: expect.stringContaining(`refused the signed manifest for ${manifest.commit}: `) });
      expect(finished.error, error).toContain(error);
    }
    expect(await h.shim.currentSystem()).toBeNull();
    expect(ran.filter((argv) => argv[0] === "nix-store")).toEqual([]);
    expect(evaluationsAndBuilds()).toEqual([]);
  });

  it("switches a merge commit that has no manifest of its own to the manifest of its PR head, found and checked by the tree they share", async () => {
    const head = await manifestAtHead();
    h.plane.manifestsByTree.set(head.tree, await signManifest(head, builder));
    // The merge: another commit with the head's tree, as GitHub's merge of an up-to-date update PR makes.
    const git = (...args: string[]) => run("git", ["-C", h.fleet.work, ...args], { env: h.fleet.env });
    await git("commit", "--quiet", "--allow-empty", "-m", "Merge pull request #7 from update-flake-lock");
    await git("push", "--quiet", "origin", `HEAD:refs/heads/${h.fleet.branch}`);
    const merge = await h.fleet.head();
    expect(merge).not.toBe(head.commit);
    await h.startAgent();
    const { id, finished } = await h.run("pull-switch");
    expect(finished).toMatchObject({ outcome: "succeeded", result: { commitAfter: merge, systemAfter: head.hosts.web1 } });
    expect(h.plane.output(id)).toContain(`the signed manifest for ${head.commit}, the same tree as ${merge}`);
    expect(h.plane.manifestRequests).toEqual([merge]);
    expect(evaluationsAndBuilds()).toEqual([]);
  });

  it("refuses a manifest made before the one it runs, for a newer commit, and takes a later one", async () => {
    const first = await manifestNaming({ web1: await buildSystem("web1") }, "2026-12-07T03:00:00.000Z");
    h.plane.manifests.set(first.commit, await signManifest(first, builder));
    await h.startAgent();
    expect((await h.run("pull-switch")).finished.outcome).toBe("succeeded");

    await h.fleet.setHost("web1", "web1 generation 2");
    const replayed = await manifestAtHead({ created: "2026-12-07T02:00:00.000Z" });
    h.plane.manifests.set(replayed.commit, await signManifest(replayed, builder));
    const { finished } = await h.run("pull-switch");
    expect(finished).toMatchObject({ outcome: "failed", error: expect.stringContaining("before the one this host runs") });
    expect(await h.shim.currentSystem()).toBe(first.hosts.web1);

    h.plane.manifests.set(replayed.commit, await signManifest({ ...replayed, created: "2026-12-07T04:00:00.000Z" }, builder));
    expect((await h.run("switch")).finished).toMatchObject({ outcome: "succeeded", result: { systemAfter: replayed.hosts.web1 } });
    expect(replayed.hosts.web1).not.toBe(first.hosts.web1);
    expect(evaluationsAndBuilds()).toEqual([]);
  });

  it("a rollback that names a generation takes the host back past the newest manifest: that generation's manifest is the host's again, so a manifest newer than it is taken and one older still refused", async () => {
    await h.startAgent({ systemProfileLink: h.shim.systemProfileLink });
    const first = await manifestNaming({ web1: await buildSystem("web1") }, "2026-12-07T03:00:00.000Z");
    h.plane.manifests.set(first.commit, await signManifest(first, builder));
    expect((await h.run("pull-switch")).finished.outcome).toBe("succeeded");
    await h.fleet.setHost("web1", "web1 generation 2");
    const second = await manifestNaming({ web1: await buildSystem("web1") }, "2026-12-07T05:00:00.000Z");
    h.plane.manifests.set(second.commit, await signManifest(second, builder));
    expect((await h.run("pull-switch")).finished.outcome).toBe("succeeded");
    expect(await h.shim.generations()).toEqual([1, 2]);

    // Made between the two: refused while the host runs the second, taken once it is back on the first.
    await h.fleet.setHost("web1", "web1 generation 3");
    const between = await manifestNaming({ web1: await buildSystem("web1") }, "2026-12-07T04:00:00.000Z");
    h.plane.manifests.set(between.commit, await signManifest(between, builder));
    expect((await h.run("pull-switch")).finished).toMatchObject({ outcome: "failed", error: expect.stringContaining("before the one this host runs") });

    const back = await h.run("rollback", { generation: 1 });
    expect(back.finished).toMatchObject({ outcome: "succeeded", error: null, result: { systemBefore: second.hosts.web1, systemAfter: first.hosts.web1 } });
    expect(h.plane.output(back.id)).toContain(`generation 1 came from the signed manifest for ${first.commit} (made ${first.created}): once it runs, that manifest is this host's again instead of ${second.commit}'s`);

    h.plane.manifests.set(between.commit, await signManifest({ ...between, created: "2026-12-07T02:00:00.000Z" }, builder));
    expect((await h.run("switch")).finished).toMatchObject({ outcome: "failed", error: expect.stringContaining(`before the one this host runs (${first.commit}, ${first.created})`) });
    expect(await h.shim.currentSystem()).toBe(first.hosts.web1);

    h.plane.manifests.set(between.commit, await signManifest(between, builder));
    expect((await h.run("switch")).finished).toMatchObject({ outcome: "succeeded", result: { systemAfter: between.hosts.web1 } });
    expect(evaluationsAndBuilds()).toEqual([]);
  });

  it("activates in the build path's modes: boot sets the profile and the boot menu to the manifest's path and activates nothing (the host reports a reboot needed), boot-then-reboot-if-needed switches when the kernel is the booted one and reboots into it when not", async () => {
    const bootable = () => ({
      systemProfileLink: h.shim.systemProfileLink,
      bootIdFile: h.shim.bootIdFile,
      tools: { ...h.config.tools, reboot: h.shim.reboot, installBootMenu: h.shim.installBootMenu },
    });
    const publish = async (content: string, created: string) => {
      await h.fleet.setHost("web1", content);
      const manifest = await manifestNaming({ web1: await buildSystem("web1") }, created);
      h.plane.manifests.set(manifest.commit, await signManifest(manifest, builder));
      return manifest;
    };
    await h.startAgent(bootable());
    const first = await publish("web1 generation 1\nkernel 6.6.1", "2026-12-07T03:00:00.000Z");
    expect((await h.run("pull-switch")).finished.outcome).toBe("succeeded");
    await h.shim.markBooted();

    const second = await publish("web1 generation 2\nkernel 6.6.2", "2026-12-07T04:00:00.000Z");
    const booted = await h.run("pull-switch", { activation: "boot" });
    expect(booted.finished).toMatchObject({ outcome: "succeeded", error: null, result: { systemBefore: first.hosts.web1, systemAfter: first.hosts.web1, bootDefault: second.hosts.web1 } });
    expect(await h.shim.profileSystem()).toBe(second.hosts.web1);
    expect(await h.shim.currentSystem()).toBe(first.hosts.web1);
    expect(await h.shim.bootMenu()).toEqual(await h.shim.generations());
    expect(h.plane.output(booted.id)).toContain(`${second.hosts.web1} is the boot default; it runs after the next reboot (the running system stays ${first.hosts.web1})`);
    const needed = await h.plane.waitFor(() => {
      const report = h.plane.lastReport();
      return report?.system.reboot?.value?.needed === true ? report.system.reboot.value : undefined;
    }, "a report saying a reboot is needed");
    expect(needed).toEqual({ needed: true, changed: ["kernel"], kernel: { booted: "6.6.1", next: "6.6.2" } });
    // The boot default's manifest is the host's: one made before it is refused, as after a switch.
    await h.fleet.setHost("web1", "web1 generation 2b\nkernel 6.6.2");
    const older = await manifestNaming({ web1: first.hosts.web1 }, "2026-12-07T03:30:00.000Z");
    h.plane.manifests.set(older.commit, await signManifest(older, builder));
    expect((await h.run("pull-switch", { activation: "boot" })).finished).toMatchObject({ outcome: "failed", error: expect.stringContaining("before the one this host runs") });
    expect(await h.shim.profileSystem()).toBe(second.hosts.web1);

    const sameKernel = await publish("web1 generation 3\nkernel 6.6.1", "2026-12-07T05:00:00.000Z");
    const switched = await h.run("pull-switch", { activation: "boot-then-reboot-if-needed" });
    expect(switched.finished).toMatchObject({ outcome: "succeeded", error: null, result: { systemAfter: sameKernel.hosts.web1 } });
    expect(h.plane.output(switched.id)).toContain("its kernel, initrd and kernel modules are the booted ones: switching to it without a reboot");
    expect(await h.shim.currentSystem()).toBe(sameKernel.hosts.web1);

    const newKernel = await publish("web1 generation 4\nkernel 6.6.3", "2026-12-07T06:00:00.000Z");
    const rebooting = h.plane.queue("pull-switch", { activation: "boot-then-reboot-if-needed" });
    await h.shim.rebooted();
    await h.stopAgent();
    await h.startAgent(bootable());
    expect(await h.plane.waitForFinished(rebooting)).toMatchObject({ outcome: "succeeded", error: null, result: { systemAfter: newKernel.hosts.web1 } });
    expect(h.plane.output(rebooting)).toContain("its kernel differ from the booted system's: rebooting into it");
    expect(await h.shim.bootedSystem()).toBe(newKernel.hosts.web1);
    expect(evaluationsAndBuilds()).toEqual([]);
  });

  it("refuses boot on nix-darwin before it asks for a manifest or fetches anything: a nix-darwin system is activated by switching to it", async () => {
    await h.startAgent({ platform: "darwin" });
    expect((await h.run("pull")).finished.outcome).toBe("succeeded");
    const { finished } = await h.run("switch", { activation: "boot" });
    expect(finished).toMatchObject({ outcome: "failed", error: "activation mode boot is for NixOS only: darwin activates a new system by switching to it" });
    expect(h.plane.manifestRequests).toEqual([]);
    expect(ran.filter((argv) => argv[0] === "nix-store")).toEqual([]);
  });

  it("fails with 'no signed manifest for <commit> yet' when there is none, and builds instead only with buildWithoutManifest", async () => {
    await h.startAgent();
    const { finished } = await h.run("pull-switch");
    const head = await h.fleet.head();
    expect(finished).toMatchObject({ outcome: "failed", error: `no signed manifest for ${head} yet` });
    expect(await h.shim.currentSystem()).toBeNull();
    expect(evaluationsAndBuilds()).toEqual([]);

    await h.stopAgent();
    await h.startAgent({ substitute: { trustedKeys: [nixPublicKeyText(builder)], buildWithoutManifest: true } });
    const built = await h.run("switch");
    expect(built.finished).toMatchObject({ outcome: "succeeded", result: { systemAfter: await h.fleet.systemPath("web1") } });
    expect(evaluationsAndBuilds().length).toBeGreaterThan(0);
    expect(path.basename(h.plane.manifestRequests.at(-1) ?? "")).toBe(head);
  });
});
