/**
 * Uploads to the binary cache (docs/cache.md), inside workerd against local R2: only the cache token writes,
 * a narinfo only with a valid Ed25519 signature by a key in CACHE_TRUSTED_KEYS and only after its NAR, and
 * a refused upload stores nothing. The cache token does nothing else.
 */
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ErrorBody } from "../../common/protocol.ts";
import { checkNarInfoSignature } from "../../worker/cache/signatures.ts";
import { TEST_CACHE_KEYS } from "../fixtures/cache-keys.ts";
import { cacheFetch, newCacheToken, narinfoPath, narInfoText, randomBase32, sampleNarInfo, signed, upload } from "./cache-helpers.ts";
import { api, createHost, pollBody } from "./helpers.ts";

const refusal = async (res: Response) => ErrorBody.parse(await res.json()).error;

/** Whether the cache holds `path`, asked with a host's token. */
async function holds(path: string): Promise<boolean> {
  const { token } = await createHost(`cache-check-${randomBase32(6)}`);
  const res = await cacheFetch(path, { method: "HEAD", token });
  expect([200, 404]).toContain(res.status);
  return res.status === 200;
}

describe("binary cache uploads", () => {
  it("stores a narinfo signed by a trusted key once its NAR is there, and serves both", async () => {
    const token = await newCacheToken();
    const nar = new TextEncoder().encode("the NAR, compressed");
    const info = await signed(sampleNarInfo({ fileSize: nar.length }));
    const res = await upload(token, info, nar);
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ storePath: info.storePath });
    expect(await holds(narinfoPath(info))).toBe(true);
    expect(await (await cacheFetch(narinfoPath(info), { token })).text()).toBe(narInfoText(info));
  });

  it("accepts the narinfo when any one of its signatures is by a trusted key, as Nix does", async () => {
    const info = await signed(await signed(sampleNarInfo(), TEST_CACHE_KEYS.untrusted.secret));
    expect(info.sigs).toHaveLength(2);
    expect((await upload(await newCacheToken(), info)).status).toBe(201);
  });

  it("refuses an unsigned narinfo with 403 narinfo_unsigned and stores nothing", async () => {
    const info = sampleNarInfo();
    const res = await upload(await newCacheToken(), info);
    expect(res.status).toBe(403);
    expect((await refusal(res)).code).toBe("narinfo_unsigned");
    expect(await holds(narinfoPath(info))).toBe(false);
  });

  it("refuses a narinfo changed after signing (another NarHash) with 403 narinfo_signature_invalid and stores nothing", async () => {
    const genuine = await signed(sampleNarInfo());
    const tampered = { ...genuine, narHash: `sha256:${randomBase32(52)}` };
    const res = await upload(await newCacheToken(), tampered);
    expect(res.status).toBe(403);
    expect(await refusal(res)).toMatchObject({ code: "narinfo_signature_invalid", message: expect.stringContaining("nixfleet-test-cache-1") });
    expect(await holds(narinfoPath(tampered))).toBe(false);
  });

  it("refuses a narinfo signed with another secret key under the trusted key's name", async () => {
    const impostor = TEST_CACHE_KEYS.untrusted.secret.replace("nixfleet-test-untrusted-1", "nixfleet-test-cache-1");
    const info = await signed(sampleNarInfo(), impostor);
    const res = await upload(await newCacheToken(), info);
    expect(res.status).toBe(403);
    expect((await refusal(res)).code).toBe("narinfo_signature_invalid");
    expect(await holds(narinfoPath(info))).toBe(false);
  });

  it("refuses a narinfo signed only by a key outside CACHE_TRUSTED_KEYS with 403 narinfo_key_untrusted, naming the key", async () => {
    const info = await signed(sampleNarInfo(), TEST_CACHE_KEYS.untrusted.secret);
    const res = await upload(await newCacheToken(), info);
    expect(res.status).toBe(403);
    expect(await refusal(res)).toMatchObject({ code: "narinfo_key_untrusted", message: expect.stringContaining("nixfleet-test-untrusted-1") });
    expect(await holds(narinfoPath(info))).toBe(false);
  });

  it("refuses a narinfo before its NAR (409 nar_missing), one whose FileSize is not the NAR's, and one under another path's hash", async () => {
    const token = await newCacheToken();
    const early = await signed(sampleNarInfo());
    const res = await cacheFetch(narinfoPath(early), { method: "PUT", token, body: narInfoText(early) });
    expect(res.status).toBe(409);
    expect((await refusal(res)).code).toBe("nar_missing");
    expect(await holds(narinfoPath(early))).toBe(false);

    const wrongSize = await signed(sampleNarInfo({ fileSize: 999 }));
    const sized = await upload(token, wrongSize, new TextEncoder().encode("five!"));
    expect(sized.status).toBe(409);
    expect((await refusal(sized)).code).toBe("nar_size_mismatch");

    const other = await signed(sampleNarInfo());
    const elsewhere = `/${randomBase32(32)}.narinfo`;
    const moved = await cacheFetch(elsewhere, { method: "PUT", token, body: narInfoText(other) });
    expect(moved.status).toBe(400);
    expect((await refusal(moved)).code).toBe("narinfo_path_mismatch");
    expect(await holds(elsewhere)).toBe(false);
  });

  it("refuses what is not a narinfo with 400 narinfo_invalid, naming the field", async () => {
    const token = await newCacheToken();
    const info = await signed(sampleNarInfo());
    const cases: Array<[string, string]> = [
      [narInfoText(info).replace(/^NarHash: .*$/m, "NarHash: sha256-notbase32="), "NarHash"],
      [narInfoText(info).replace(/^URL: .*$/m, "URL: ../../etc/passwd"), "URL"],
      [narInfoText(info).replace(/^NarSize: .*\n/m, ""), "NarSize"],
      ["just some text", "line 1"],
    ];
    for (const [body, field] of cases) {
      const res = await cacheFetch(narinfoPath(info), { method: "PUT", token, body });
      expect(res.status, field).toBe(400);
      expect(await refusal(res)).toMatchObject({ code: "narinfo_invalid", message: expect.stringContaining(field) });
    }
    const badName = await cacheFetch("/nar/not-a-nar-name", { method: "PUT", token, body: "x" });
    expect(badName.status).toBe(400);
    expect((await refusal(badName)).code).toBe("invalid_cache_path");
  });

  it("has an admin create the cache token: shown once, its creation in force and audited, the old one revoked", async () => {
    const rotations = async () => (await (await api("/api/audit?limit=200")).json<{ entries: { action: string }[] }>()).entries.filter((entry) => entry.action === "cache-token.rotate").length;
    const before = await rotations();
    const first = await newCacheToken();
    const second = await newCacheToken();
    expect(second).not.toBe(first);
    expect(second).toMatch(/^nfc_/);
    const status = await (await api("/api/cache-token")).json<{ cacheToken: { createdBy: string } | null }>();
    expect(status.cacheToken?.createdBy).toBe("developer@localhost");
    expect(await rotations()).toBe(before + 2);
    const info = await signed(sampleNarInfo());
    expect((await cacheFetch(`/${info.url}`, { method: "PUT", token: first, body: "x" })).status).toBe(401);
    expect((await cacheFetch(`/${info.url}`, { method: "PUT", token: second, body: "x" })).status).toBe(201);
  });

  it("lets no agent token, CI token, revoked cache token or anonymous request upload", async () => {
    const info = await signed(sampleNarInfo());
    const { token: agentToken } = await createHost("cache-upload-agent");
    const ci = await api("/api/ci-token", { method: "POST" });
    const ciToken = ((await ci.json()) as { token: string }).token;
    const revoked = await newCacheToken();
    await newCacheToken();

    const host = await cacheFetch(`/${info.url}`, { method: "PUT", token: agentToken, body: "x" });
    expect(host.status).toBe(403);
    expect((await refusal(host)).code).toBe("cache_token_required");
    for (const token of [ciToken, revoked, null]) {
      for (const [path, body] of [[`/${info.url}`, "x"], [narinfoPath(info), narInfoText(info)]] as const) {
        const res = await cacheFetch(path, { method: "PUT", token, body });
        expect(res.status, `${path} with ${token ?? "no token"}`).toBe(401);
      }
      const start = await cacheFetch(`/${info.url}/uploads`, { method: "POST", token });
      expect(start.status).toBe(401);
    }
    expect(await holds(`/${info.url}`)).toBe(false);
  });

  it("refuses the cache token everywhere but the cache: the agent API, CI's publication, /metrics and the dashboard API", async () => {
    const token = await newCacheToken();
    const bearer = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    const send = (url: string, method = "POST", body = "{}") => exports.default.fetch(new Request(url, { method, headers: bearer, body: method === "GET" ? undefined : body }));

    expect((await send("http://localhost/api/agent/poll?wait=0", "POST", JSON.stringify(pollBody()))).status).toBe(401);
    expect((await send("http://localhost/api/desired", "POST", JSON.stringify({ commit: "a".repeat(40), hosts: { x: "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-x" } }))).status).toBe(401);
    expect((await send("http://localhost/metrics", "GET")).status).toBe(401);
    // Outside localhost the dashboard API needs Cloudflare Access; a cache token is no Access identity.
    const dashboard = await send("https://fleet.example.com/api/hosts", "GET");
    expect(dashboard.status).toBe(403);
    expect((await refusal(dashboard)).code).toBe("access_not_configured");
  });

  it("trusts nothing when CACHE_TRUSTED_KEYS is empty or malformed (503, naming the var), whatever the signature", async () => {
    const info = await signed(sampleNarInfo());
    expect(await checkNarInfoSignature(info, "")).toMatchObject({ status: 503, code: "cache_keys_missing" });
    expect(await checkNarInfoSignature(info, "no-colon-here")).toMatchObject({ status: 503, code: "cache_keys_invalid", message: expect.stringContaining("CACHE_TRUSTED_KEYS") });
    expect(await checkNarInfoSignature(info, `${TEST_CACHE_KEYS.untrusted.public} ${TEST_CACHE_KEYS.trusted.public}`)).toBeNull();
  });
});
