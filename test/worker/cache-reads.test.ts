/**
 * The binary cache's reads (docs/cache.md), inside workerd against local R2: a host's own agent token as the
 * Basic password (what Nix sends from a netrc entry), the cache token too, nobody else unless the cache is
 * public; a revoked token reads nothing.
 */
import { describe, expect, it } from "vitest";
import { ErrorBody, SettingsResponse } from "../../common/protocol.ts";
import { cacheFetch, newCacheToken, narinfoPath, narInfoText, sampleNarInfo, signed, upload } from "./cache-helpers.ts";
import { api, createHost } from "./helpers.ts";

const errorCode = async (res: Response) => ErrorBody.parse(await res.json()).error.code;

/** A signed path with its NAR in the cache; returns the narinfo and the NAR's bytes. */
async function storedPath(nar = new TextEncoder().encode("nar bytes of a stored path")) {
  const info = await signed(sampleNarInfo({ fileSize: nar.length }));
  const res = await upload(await newCacheToken(), info, nar);
  expect(res.status).toBe(201);
  return { info, nar };
}

async function setPublic(value: boolean) {
  const current = SettingsResponse.parse(await (await api("/api/settings")).json()).settings;
  const res = await api("/api/settings", { method: "PUT", json: { ...current, cache: { public: value } } });
  expect(res.status).toBe(200);
}

describe("binary cache reads", () => {
  it("answers nix-cache-info with /nix/store, mass queries and its priority to a host's token given as the Basic password", async () => {
    const { token } = await createHost("cache-reader-info");
    const res = await cacheFetch("/nix-cache-info", { token });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/x-nix-cache-info");
    expect(await res.text()).toBe("StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n");
  });

  it("serves a narinfo and its NAR byte for byte to a host's token, whatever the Basic user name; HEAD gives the size and no body", async () => {
    const { info, nar } = await storedPath();
    const { token } = await createHost("cache-reader-paths");

    const narinfo = await cacheFetch(narinfoPath(info), { authorization: `Basic ${btoa(`any-name:${token}`)}` });
    expect(narinfo.status).toBe(200);
    expect(narinfo.headers.get("content-type")).toBe("text/x-nix-narinfo");
    expect(await narinfo.text()).toBe(narInfoText(info));

    const narGet = await cacheFetch(`/${info.url}`, { token });
    expect(narGet.status).toBe(200);
    expect(narGet.headers.get("content-type")).toBe("application/x-nix-nar");
    expect(new Uint8Array(await narGet.arrayBuffer())).toEqual(nar);

    const head = await cacheFetch(narinfoPath(info), { method: "HEAD", token });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get("content-length"))).toBe(narInfoText(info).length);
    expect(await head.text()).toBe("");
  });

  it("answers a path it does not hold with 404, as Nix expects of a cache that lacks it", async () => {
    const { token } = await createHost("cache-reader-missing");
    const missing = sampleNarInfo();
    for (const [method, path] of [["GET", narinfoPath(missing)], ["HEAD", narinfoPath(missing)], ["GET", `/${missing.url}`], ["GET", "/not-a-cache-file"]] as const) {
      const res = await cacheFetch(path, { method, token });
      expect(res.status, `${method} ${path}`).toBe(404);
    }
  });

  it("lets the cache token read (nix copy asks which paths the cache already has) but no CI token or made-up token", async () => {
    const { info } = await storedPath();
    const cacheToken = await newCacheToken();
    expect((await cacheFetch(narinfoPath(info), { token: cacheToken })).status).toBe(200);

    const ci = await api("/api/ci-token", { method: "POST" });
    const ciToken = ((await ci.json()) as { token: string }).token;
    for (const token of [ciToken, "nfa_made-up-token-of-no-host-at-all"]) {
      const res = await cacheFetch(narinfoPath(info), { token });
      expect(res.status).toBe(401);
      expect(await errorCode(res)).toBe("unauthorized");
    }
  });

  it("reads nothing with a revoked host token: rotated, the old one gets 401 and the new one reads", async () => {
    const { info } = await storedPath();
    const { token: old } = await createHost("cache-reader-rotated");
    expect((await cacheFetch(narinfoPath(info), { token: old })).status).toBe(200);
    const rotated = await api("/api/hosts/cache-reader-rotated/token", { method: "POST" });
    expect(rotated.status).toBe(200);
    const fresh = ((await rotated.json()) as { token: string }).token;

    for (const path of ["/nix-cache-info", narinfoPath(info), `/${info.url}`]) {
      const res = await cacheFetch(path, { token: old });
      expect(res.status, path).toBe(401);
      expect(await errorCode(res)).toBe("unauthorized");
    }
    expect((await cacheFetch(narinfoPath(info), { token: fresh })).status).toBe(200);
  });

  it("refuses a read without a token with 401 and a Basic challenge, until the cache is made public; a bad token stays refused", async () => {
    const { info, nar } = await storedPath();
    const anonymous = await cacheFetch(narinfoPath(info));
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("www-authenticate")).toBe('Basic realm="nixfleet cache"');
    expect(await errorCode(anonymous)).toBe("unauthorized");

    await setPublic(true);
    try {
      expect((await cacheFetch("/nix-cache-info")).status).toBe(200);
      expect(await (await cacheFetch(narinfoPath(info))).text()).toBe(narInfoText(info));
      expect(new Uint8Array(await (await cacheFetch(`/${info.url}`)).arrayBuffer())).toEqual(nar);
      expect((await cacheFetch(narinfoPath(info), { token: "nfa_revoked-or-never-issued-token" })).status).toBe(401);
      // Public reads only: uploading still needs the cache token.
      expect((await cacheFetch(narinfoPath(info), { method: "PUT", body: narInfoText(info) })).status).toBe(401);
    } finally {
      await setPublic(false);
    }
    expect((await cacheFetch(narinfoPath(info))).status).toBe(401);
  });
});
