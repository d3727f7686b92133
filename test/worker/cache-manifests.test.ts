/**
 * The builders' signed intent in the binary cache (docs/cache.md "The signed intent"), inside workerd against
 * local R2: the cache token publishes a manifest signed by a key in CACHE_TRUSTED_KEYS, the Worker refuses
 * every other one with a JSON error and stores nothing, and a host reads it with its own agent token only.
 */
import { describe, expect, it } from "vitest";
import { signManifest } from "../../common/cache-manifest.ts";
import { parseNixSecretKey } from "../../common/nix-keys.ts";
import { CacheManifestPublished, ErrorBody, SettingsResponse, SignedCacheManifest, type CacheManifest } from "../../common/protocol.ts";
import { TEST_CACHE_KEYS } from "../fixtures/cache-keys.ts";
import { cacheFetch, newCacheToken, randomBase32 } from "./cache-helpers.ts";
import { api, createHost } from "./helpers.ts";

const trusted = parseNixSecretKey(TEST_CACHE_KEYS.trusted.secret);
const untrusted = parseNixSecretKey(TEST_CACHE_KEYS.untrusted.secret);
const refusal = async (res: Response) => ErrorBody.parse(await res.json()).error;
const randomCommit = () => Array.from(crypto.getRandomValues(new Uint8Array(20)), (byte) => byte.toString(16).padStart(2, "0")).join("");

function sampleManifest(overrides: Partial<CacheManifest> = {}): CacheManifest {
  return {
    commit: randomCommit(),
    tree: randomCommit(),
    created: "2026-12-07T03:00:00.000Z",
    hosts: { "web-1": `/nix/store/${randomBase32(32)}-nixos-system-web-1-25.05`, "db-1": `/nix/store/${randomBase32(32)}-nixos-system-db-1-25.05` },
    ...overrides,
  };
}

const publish = (token: string, commit: string, body: unknown) =>
  cacheFetch(`/manifests/${commit}`, { method: "PUT", token, body: JSON.stringify(body), headers: { "content-type": "application/json" } });

/** What a host gets for the commit: the status, and the manifest when there is one. */
async function read(commit: string): Promise<{ status: number; body: unknown }> {
  const { token } = await createHost(`manifest-reader-${randomBase32(6)}`);
  const res = await cacheFetch(`/manifests/${commit}`, { token });
  return { status: res.status, body: await res.json() };
}

async function setPublic(value: boolean) {
  const current = SettingsResponse.parse(await (await api("/api/settings")).json()).settings;
  const res = await api("/api/settings", { method: "PUT", json: { ...current, cache: { public: value } } });
  expect(res.status).toBe(200);
}

describe("signed manifests in the binary cache", () => {
  it("stores a manifest signed by a trusted key under its commit and hands it to a host whole, signatures included", async () => {
    const signed = await signManifest(sampleManifest(), trusted);
    const res = await publish(await newCacheToken(), signed.manifest.commit, signed);
    expect(res.status).toBe(201);
    expect(CacheManifestPublished.parse(await res.json())).toEqual({ commit: signed.manifest.commit, hosts: 2 });
    const { status, body } = await read(signed.manifest.commit);
    expect(status).toBe(200);
    expect(SignedCacheManifest.parse(body)).toEqual(signed);
  });

  it("answers a host asking for a commit without a manifest with 404 manifest_not_found, naming the commit", async () => {
    const commit = randomCommit();
    const { status, body } = await read(commit);
    expect(status).toBe(404);
    expect(ErrorBody.parse(body).error).toEqual({ code: "manifest_not_found", message: `no signed manifest for ${commit} yet` });
  });

  it("hands a host asking for a merge commit without a manifest the latest manifest of the tree it names, and 404 for a tree nobody built or a malformed one 400", async () => {
    const token = await newCacheToken();
    const tree = randomCommit();
    const older = await signManifest(sampleManifest({ tree, created: "2026-12-07T03:00:00.000Z" }), trusted);
    const newer = await signManifest(sampleManifest({ tree, created: "2026-12-07T04:00:00.000Z" }), trusted);
    for (const signed of [older, newer]) expect((await publish(token, signed.manifest.commit, signed)).status).toBe(201);
    const { token: hostToken } = await createHost(`manifest-tree-${randomBase32(6)}`);
    const merge = randomCommit();
    const byTree = await cacheFetch(`/manifests/${merge}?tree=${tree}`, { token: hostToken });
    expect(byTree.status).toBe(200);
    expect(SignedCacheManifest.parse(await byTree.json())).toEqual(newer);
    // The commit's own manifest comes first, whatever tree is asked for.
    const own = await cacheFetch(`/manifests/${older.manifest.commit}?tree=${tree}`, { token: hostToken });
    expect(SignedCacheManifest.parse(await own.json())).toEqual(older);
    const unknownTree = randomCommit();
    const missing = await cacheFetch(`/manifests/${merge}?tree=${unknownTree}`, { token: hostToken });
    expect(missing.status).toBe(404);
    expect(await refusal(missing)).toEqual({ code: "manifest_not_found", message: `no signed manifest for ${merge} or its tree ${unknownTree} yet` });
    const malformed = await cacheFetch(`/manifests/${merge}?tree=main`, { token: hostToken });
    expect(malformed.status).toBe(400);
    expect((await refusal(malformed)).code).toBe("invalid_tree");
  });

  it("refuses unsigned, untrusted-key and tampered manifests with 403 and stores none of them", async () => {
    const token = await newCacheToken();
    const genuine = await signManifest(sampleManifest(), trusted);
    const unsigned = { ...genuine, signatures: [] };
    const byStranger = await signManifest(sampleManifest(), untrusted);
    // The Worker relayed a builder's manifest with another host's path put in: the signature no longer covers it.
    const tampered = { ...genuine, manifest: { ...genuine.manifest, hosts: { ...genuine.manifest.hosts, "web-1": genuine.manifest.hosts["db-1"] } } };
    const impostorKey = parseNixSecretKey(TEST_CACHE_KEYS.untrusted.secret.replace("nixfleet-test-untrusted-1", "nixfleet-test-cache-1"));
    const impostor = await signManifest(sampleManifest(), impostorKey);
    const cases = [
      { signed: unsigned, code: "manifest_unsigned" },
      { signed: byStranger, code: "manifest_key_untrusted" },
      { signed: tampered, code: "manifest_signature_invalid" },
      { signed: impostor, code: "manifest_signature_invalid" },
    ];
    for (const { signed, code } of cases) {
      const res = await publish(token, signed.manifest.commit, signed);
      expect(res.status, code).toBe(403);
      expect((await refusal(res)).code).toBe(code);
      expect((await read(signed.manifest.commit)).status, code).toBe(404);
    }
  });

  it("refuses a malformed manifest, one under another commit's address and a bad commit with 400", async () => {
    const token = await newCacheToken();
    const signed = await signManifest(sampleManifest(), trusted);
    const notAPath = { ...signed, manifest: { ...signed.manifest, hosts: { "web-1": "/etc/passwd" } } };
    const other = randomCommit();
    const cases: Array<{ commit: string; body: unknown; code: string }> = [
      { commit: signed.manifest.commit, body: notAPath, code: "invalid_request" },
      { commit: signed.manifest.commit, body: { ...signed, note: "extra" }, code: "invalid_request" },
      { commit: other, body: signed, code: "manifest_commit_mismatch" },
      { commit: "main", body: signed, code: "invalid_commit" },
    ];
    for (const { commit, body, code } of cases) {
      const res = await publish(token, commit, body);
      expect(res.status, code).toBe(400);
      expect((await refusal(res)).code).toBe(code);
    }
    expect((await read(signed.manifest.commit)).status).toBe(404);
    expect((await read(other)).status).toBe(404);
  });

  it("replaces a commit's manifest with a newer one signed again, and refuses an older one with 409 manifest_older", async () => {
    const token = await newCacheToken();
    const first = await signManifest(sampleManifest(), trusted);
    const commit = first.manifest.commit;
    const newer = await signManifest({ ...first.manifest, created: "2026-12-07T04:00:00.000Z" }, trusted);
    const older = await signManifest({ ...first.manifest, created: "2026-12-07T02:00:00.000Z" }, trusted);
    expect((await publish(token, commit, first)).status).toBe(201);
    expect((await publish(token, commit, newer)).status).toBe(201);
    const res = await publish(token, commit, older);
    expect(res.status).toBe(409);
    expect((await refusal(res)).code).toBe("manifest_older");
    expect(SignedCacheManifest.parse((await read(commit)).body)).toEqual(newer);
  });

  it("publishes with the cache token only and reads with a host's or the cache token only, even when the cache is public", async () => {
    const cacheToken = await newCacheToken();
    const { token: hostToken } = await createHost(`manifest-writer-${randomBase32(6)}`);
    const signed = await signManifest(sampleManifest(), trusted);
    const commit = signed.manifest.commit;
    const asHost = await publish(hostToken, commit, signed);
    expect(asHost.status).toBe(403);
    expect((await refusal(asHost)).code).toBe("cache_token_required");
    expect((await publish("nfc_revoked-or-never-issued-token", commit, signed)).status).toBe(401);
    expect((await read(commit)).status).toBe(404);

    expect((await publish(cacheToken, commit, signed)).status).toBe(201);
    expect((await cacheFetch(`/manifests/${commit}`, { token: cacheToken })).status).toBe(200);
    expect((await cacheFetch(`/manifests/${commit}`, { token: hostToken })).status).toBe(200);
    await setPublic(true);
    try {
      const anonymous = await cacheFetch(`/manifests/${commit}`);
      expect(anonymous.status).toBe(401);
      expect((await refusal(anonymous)).code).toBe("unauthorized");
      expect((await cacheFetch("/nix-cache-info")).status).toBe(200);
    } finally {
      await setPublic(false);
    }
  });
});
