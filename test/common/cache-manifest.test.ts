/**
 * The signed intent manifest (common/cache-manifest.ts) and Nix's key format
 * (common/nix-keys.ts): signatures round-trip and break on any change, a
 * host's acceptance rule refuses what it must, and keys made by real Nix, and
 * a narinfo signed by real `nix copy`, read and verify with the same code.
 */
import { execFile } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { acceptManifest, manifestSigningBytes, signManifest, verifyManifest } from "../../common/cache-manifest.ts";
import {
  checkDetached,
  NixKeyError,
  nixPublicKeyText,
  parseNixPublicKey,
  parseNixSecretKey,
  parseNixSignature,
  signDetached,
} from "../../common/nix-keys.ts";
import type { NixPublicKey, NixSecretKey } from "../../common/nix-keys.ts";
import { narInfoFingerprint } from "../../common/narinfo.ts";
import type { CacheManifest } from "../../common/protocol.ts";
import { TEST_NIX_CONFIG } from "../../tools/fleet-kit/host-env.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";

const RUNS = Number(process.env.NIXFLEET_PROPERTY_RUNS) || 100;

/** A key pair in Nix's text format, made with Node's own Ed25519 (no Nix needed). */
function nixKeyPair(name: string): { secret: NixSecretKey; public: NixPublicKey } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const seed = privateKey.export({ format: "der", type: "pkcs8" }).subarray(-32);
  const pub = publicKey.export({ format: "der", type: "spki" }).subarray(-32);
  const secret = parseNixSecretKey(`${name}:${Buffer.concat([seed, pub]).toString("base64")}`);
  return { secret, public: parseNixPublicKey(nixPublicKeyText(secret)) };
}

const builder = nixKeyPair("builder-1");
const stranger = nixKeyPair("stranger-1");
const impostor = nixKeyPair("builder-1");

const COMMIT_A = "a".repeat(40);
const COMMIT_B = "b".repeat(40);
const path1 = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-web-1-25.05";
const path2 = "/nix/store/zyxwvsrqpnmlkjihgfdcba9876543210-nixos-system-db-1-25.05";
const manifest: CacheManifest = {
  commit: COMMIT_A,
  tree: "c".repeat(40),
  created: "2026-12-07T03:00:00.000Z",
  hosts: { "web-1": path1, "db-1": path2 },
};
const host = (running: { commit: string; created: string } | null = null) => ({ hostName: "web-1", trustedKeys: [builder.public], running });

const nixChars = "0123456789abcdfghijklmnpqrsvwxyz";
const arbitraryManifest: fc.Arbitrary<CacheManifest> = fc.record({
  commit: fc.stringMatching(/^[0-9a-f]{40}$/),
  tree: fc.stringMatching(/^[0-9a-f]{40}$/),
  created: fc.date({ min: new Date("2020-01-01T00:00:00Z"), max: new Date("2100-01-01T00:00:00Z"), noInvalidDate: true }).map((date) => date.toISOString()),
  hosts: fc.dictionary(
    fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?$/),
    fc
      .tuple(fc.string({ unit: fc.constantFrom(...nixChars), minLength: 32, maxLength: 32 }), fc.stringMatching(/^[A-Za-z0-9+._?=-]{1,40}$/))
      .map(([hash, name]) => `/nix/store/${hash}-${name}`),
    { minKeys: 1, maxKeys: 6 },
  ),
});

describe("the signed intent manifest", () => {
  it("signs any manifest so that the builder's public key verifies it and a host it names accepts its path", async () => {
    await fc.assert(
      fc.asyncProperty(arbitraryManifest, async (generated) => {
        const signed = await signManifest(generated, builder.secret);
        expect(await verifyManifest(signed, [builder.public])).toBe("valid");
        const [name, storePath] = Object.entries(generated.hosts)[0] ?? [];
        expect(name).toBeDefined();
        expect(await acceptManifest(signed, { hostName: name ?? "", trustedKeys: [stranger.public, builder.public], running: null })).toEqual({
          accepted: true,
          storePath,
          manifest: generated,
        });
      }),
      { numRuns: RUNS },
    );
  });

  it("fails verification when any byte of the signed bytes or of the signature is flipped", async () => {
    await fc.assert(
      fc.asyncProperty(arbitraryManifest, fc.nat(), fc.integer({ min: 1, max: 255 }), fc.boolean(), async (generated, at, mask, inSignature) => {
        const bytes = manifestSigningBytes(generated);
        const signature = parseNixSignature(await signDetached(builder.secret, bytes));
        const target = inSignature ? signature.signature.slice() : bytes.slice();
        target[at % target.length] = (target[at % target.length] ?? 0) ^ mask;
        const check = inSignature
          ? await checkDetached([builder.public], bytes, { keyName: signature.keyName, signature: target })
          : await checkDetached([builder.public], target, signature);
        expect(check).toEqual({ outcome: "invalid", keyName: "builder-1" });
      }),
      { numRuns: RUNS },
    );
  });

  it("signs the same bytes whatever order the hosts come in, and never bytes a narinfo fingerprint could have", () => {
    const reordered = { ...manifest, hosts: { "db-1": path2, "web-1": path1 } };
    expect(manifestSigningBytes(reordered)).toEqual(manifestSigningBytes(manifest));
    expect(new TextDecoder().decode(manifestSigningBytes(manifest))).toMatch(/^nixfleet-cache-manifest-1\n\{"commit":/);
  });

  it("refuses an unsigned manifest, one signed by an unknown key, and one changed or signed by another key of a trusted name", async () => {
    const signed = await signManifest(manifest, builder.secret);
    expect(await acceptManifest({ ...signed, signatures: [] }, host())).toMatchObject({ accepted: false, reason: "unsigned" });
    expect(await acceptManifest(await signManifest(manifest, stranger.secret), host())).toEqual({
      accepted: false,
      reason: "unknown-key",
      message: "the manifest is signed only by keys this host does not trust (stranger-1); trusted: builder-1",
    });
    expect(await acceptManifest(signed, { ...host(), trustedKeys: [] })).toMatchObject({ accepted: false, reason: "unknown-key", message: expect.stringContaining("trusted: none") });
    const redirected = { ...signed, manifest: { ...manifest, hosts: { ...manifest.hosts, "web-1": path2 } } };
    expect(await acceptManifest(redirected, host())).toMatchObject({ accepted: false, reason: "bad-signature" });
    expect(await acceptManifest(await signManifest(manifest, impostor.secret), host())).toMatchObject({ accepted: false, reason: "bad-signature" });
    // One valid signature among others is enough.
    const strangers = await signManifest(manifest, stranger.secret);
    expect(await acceptManifest({ ...signed, signatures: [...strangers.signatures, ...signed.signatures] }, host())).toMatchObject({ accepted: true, storePath: path1 });
  });

  it("refuses a manifest that names no system for the host, or a path that is not a store path even when signed", async () => {
    const others = { ...manifest, hosts: { "db-1": path2 } };
    expect(await acceptManifest(await signManifest(others, builder.secret), host())).toEqual({
      accepted: false,
      reason: "not-for-host",
      message: `the manifest for ${COMMIT_A} names no system for web-1 (it names db-1)`,
    });
    const outside = { ...manifest, hosts: { "web-1": "/tmp/evil-system" } };
    const signature = await signDetached(builder.secret, manifestSigningBytes(outside));
    expect(await acceptManifest({ manifest: outside, signatures: [signature] }, host())).toEqual({
      accepted: false,
      reason: "malformed",
      message: "the manifest is malformed: manifest.hosts.web-1: not a Nix store path",
    });
    expect(await acceptManifest({ manifest, signatures: [signature], note: "extra" }, host())).toMatchObject({ accepted: false, reason: "malformed" });
    expect(await acceptManifest({ manifest: { ...manifest, created: "yesterday" }, signatures: [signature] }, host())).toMatchObject({ accepted: false, reason: "malformed" });
  });

  it("refuses a manifest older than the one the host runs, unless it is for the same commit", async () => {
    const older = await signManifest({ ...manifest, commit: COMMIT_B, created: "2026-12-07T02:59:59.999Z" }, builder.secret);
    const running = { commit: COMMIT_A, created: manifest.created };
    expect(await acceptManifest(older, host(running))).toMatchObject({ accepted: false, reason: "older", message: expect.stringContaining("going back takes an explicit rollback") });
    const sameCommitRemade = await signManifest({ ...manifest, created: "2026-12-07T01:00:00.000Z" }, builder.secret);
    expect(await acceptManifest(sameCommitRemade, host(running))).toMatchObject({ accepted: true, storePath: path1 });
    const newer = await signManifest({ ...manifest, commit: COMMIT_B, created: "2026-12-07T03:00:00.001Z" }, builder.secret);
    expect(await acceptManifest(newer, host(running))).toMatchObject({ accepted: true, storePath: path1 });
  });
});

describe("Nix's key format", () => {
  it("fingerprints a narinfo as Nix does, its references as full store paths, sorted, joined by commas", () => {
    expect(narInfoFingerprint({ storePath: path1, narHash: "sha256:18i2751j9665phf092h5jkpj1kdrirnc86yxxsl2r55v20ckrxxv", narSize: 128, references: [path2.slice(11), path1.slice(11)] })).toBe(
      `1;${path1};sha256:18i2751j9665phf092h5jkpj1kdrirnc86yxxsl2r55v20ckrxxv;128;${path1},${path2}`,
    );
  });

  it("says which part of a malformed key or signature is wrong", () => {
    expect(() => parseNixPublicKey("sNhYDcLoNqQlpvKaS0G/9p5krkUYBsinY57CW5NeUxE=")).toThrow(new NixKeyError("a Nix public key reads NAME:BASE64; this one has no name before a colon"));
    expect(() => parseNixPublicKey("builder-1:not base64!")).toThrow('the public key "builder-1" is not base64 after its colon');
    expect(() => parseNixPublicKey(`builder-1:${Buffer.alloc(31).toString("base64")}`)).toThrow('the public key "builder-1" holds 31 bytes, not 32');
    expect(() => parseNixSecretKey(nixPublicKeyText(builder.secret))).toThrow('the secret key "builder-1" holds 32 bytes, not 64');
    expect(() => parseNixSignature("my key:AAAA")).toThrow('the name of a Nix signature has no spaces (got "my key")');
  });
});

describeWithNix("keys and narinfo signatures made by real Nix", () => {
  const run = promisify(execFile);
  const env = { ...process.env, NIX_CONFIG: TEST_NIX_CONFIG };
  let dir: string;
  let secret: NixSecretKey;
  let publicKey: NixPublicKey;
  let publicKeyText: string;

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-nix-keys-"));
    await run("nix-store", ["--generate-binary-cache-key", "fleet-builder-1", path.join(dir, "secret"), path.join(dir, "public")], { env });
    secret = parseNixSecretKey(await fs.readFile(path.join(dir, "secret"), "utf8"));
    publicKeyText = (await fs.readFile(path.join(dir, "public"), "utf8")).trim();
    publicKey = parseNixPublicKey(publicKeyText);
  });

  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it("reads a key pair from nix-store --generate-binary-cache-key, whose secret key signs manifests its public key verifies", async () => {
    expect(secret.name).toBe("fleet-builder-1");
    expect(nixPublicKeyText(secret)).toBe(publicKeyText);
    const signed = await signManifest(manifest, secret);
    expect(await acceptManifest(signed, { hostName: "db-1", trustedKeys: [publicKey], running: null })).toMatchObject({ accepted: true, storePath: path2 });
  });

  it("verifies the signature real `nix copy` puts on a narinfo, and signs that narinfo's fingerprint byte for byte as Nix does", async () => {
    // A path with a reference, so the fingerprint's reference list is not empty.
    const expression =
      'let dep = builtins.toFile "nixfleet-signed-dep" "x"; in derivation { name = "nixfleet-signed"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo ${dep} > $out" ]; }';
    const { stdout } = await run("nix-build", ["--no-out-link", "--expr", expression], { env });
    const storePath = stdout.trim();
    const cache = path.join(dir, "cache");
    await run("nix", ["copy", "--to", `file://${cache}?secret-key=${path.join(dir, "secret")}`, storePath], { env });
    const narinfo = await fs.readFile(path.join(cache, `${path.basename(storePath).slice(0, 32)}.narinfo`), "utf8");
    const field = (name: string) => {
      const line = narinfo.split("\n").find((candidate) => candidate.startsWith(`${name}: `) || candidate === `${name}:`);
      expect(line, `${name} in ${narinfo}`).toBeDefined();
      return (line ?? "").slice(name.length + 1).trim();
    };
    const fingerprint = narInfoFingerprint({
      storePath: field("StorePath"),
      narHash: field("NarHash"),
      narSize: Number(field("NarSize")),
      references: field("References")
        .split(" ")
        .filter((reference) => reference !== ""),
    });
    expect(fingerprint).toMatch(new RegExp(`^1;${storePath};sha256:[0-9a-z]{52};\\d+;/nix/store/[0-9a-z]{32}-nixfleet-signed-dep$`));
    const nixSignature = field("Sig");

    expect(await checkDetached([publicKey], fingerprint, parseNixSignature(nixSignature))).toEqual({ outcome: "valid", keyName: "fleet-builder-1" });
    expect(await signDetached(secret, fingerprint)).toBe(nixSignature);
    const tampered = fingerprint.replace(`;${field("NarSize")};`, `;${Number(field("NarSize")) + 1};`);
    expect(await checkDetached([publicKey], tampered, parseNixSignature(nixSignature))).toEqual({ outcome: "invalid", keyName: "fleet-builder-1" });
    expect(await checkDetached([builder.public], fingerprint, parseNixSignature(nixSignature))).toEqual({ outcome: "unknown-key", keyName: "fleet-builder-1" });
  });
});
