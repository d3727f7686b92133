// GET /chunks/:file: the dashboard's lazily loaded chunks from the static assets (the ones test/support/build-ui.ts built),
// immutable when they exist, a 404 nobody keeps when they do not (never the single-page fallback).
import { env } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ErrorBody } from "../../common/protocol.ts";
import { CHUNK_CACHE_CONTROL } from "../../worker/routes/chunks.ts";

const get = (path: string, headers: HeadersInit = {}) => exports.default.fetch(new Request(`http://localhost${path}`, { headers }));

/** A chunk the built page imports. */
async function realChunk(): Promise<string> {
  const page = await (await env.ASSETS.fetch("http://localhost/")).text();
  const url = /import\("(\/chunks\/nf-audit-panel-\w+\.js)"\)/.exec(page)?.[1];
  if (!url) throw new Error("the built page imports no audit chunk: was dist/ui built?");
  return url;
}

describe("the dashboard's chunks", () => {
  it("serves one that exists as immutable JavaScript, and 304 on its ETag with the same caching", async () => {
    const url = await realChunk();
    const res = await get(url);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/javascript/);
    expect(res.headers.get("cache-control")).toBe(CHUNK_CACHE_CONTROL);
    expect(await res.text()).toContain("nf-audit-panel");
    const etag = res.headers.get("etag");
    expect(etag).toBeTruthy();
    const again = await get(url, { "if-none-match": etag! });
    expect(again.status).toBe(304);
    expect(again.headers.get("cache-control")).toBe(CHUNK_CACHE_CONTROL);
  });

  it.each(["/chunks/nf-audit-panel-GONE0000.js", "/chunks/nf-audit-panel-GONE0000.js.map", "/chunks/index.html", "/chunks/..%2Findex.html", "/chunks/x"])(
    "answers %s 404 with no-store, never the dashboard's page",
    async (path) => {
      const res = await get(path);
      expect([res.status, res.headers.get("cache-control")]).toEqual([404, "no-store"]);
      expect(ErrorBody.parse(await res.json()).error.code).toBe("not_found");
    },
  );
});
