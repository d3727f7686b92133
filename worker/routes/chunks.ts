import { Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { errorBody } from "../errors.ts";

/** A chunk's name carries its content's hash (scripts/build-ui.mjs): a changed chunk has a new URL, so browsers may keep one for good. */
export const CHUNK_CACHE_CONTROL = "public, max-age=31536000, immutable";

const CHUNK_FILE = /^[\w-]+\.js(\.map|\.LEGAL\.txt)?$/;

/**
 * The dashboard's lazily loaded chunks, from the static assets. Here rather
 * than served by the assets alone for the one case they get wrong: a name the
 * assets do not have (a page opened before a deploy asks for its chunks of
 * the time) would be answered by the single-page fallback, the dashboard's
 * page with 200, and kept by the browser under the chunk's caching; after a
 * rollback to that build the page would stay broken for that browser. So a
 * missing chunk is a 404 nobody keeps, and only a real one is immutable.
 */
export const chunks = new Hono<AppEnv>().get("/:file", async (c) => {
  const file = c.req.param("file");
  const missing = () => c.json(errorBody("not_found", `no chunk named ${file}`), 404, { "cache-control": "no-store" });
  if (!CHUNK_FILE.test(file)) return missing();
  const asset = await c.env.ASSETS.fetch(c.req.raw);
  // The fallback page is the one HTML the assets answer with; no chunk is HTML.
  const found = asset.status === 304 || (asset.ok && !asset.headers.get("content-type")?.startsWith("text/html"));
  if (!found) {
    await asset.body?.cancel();
    return missing();
  }
  const response = new Response(asset.body, asset);
  response.headers.set("cache-control", CHUNK_CACHE_CONTROL);
  return response;
});
