import { Hono, type Context, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { NarFileName, NarInfoError, parseNarInfo, STORE_DIR, StorePathHash, storePathHash } from "../../common/narinfo.ts";
import { CachePartNumber, CacheUploadCompletion, type CacheUploadCompleted, type CacheUploadStarted } from "../../common/protocol.ts";
import { CacheBucket, narinfoKey, NARINFO_TYPE, narKey, NAR_TYPE } from "../cache/bucket.ts";
import { checkNarInfoSignature } from "../cache/signatures.ts";
import { isServiceToken } from "../db/service-tokens.ts";
import { findHostByTokenHash } from "../db/hosts.ts";
import { settingsForDisplay } from "../db/settings.ts";
import type { AppEnv } from "../env.ts";
import { ApiError, errorBody, refused } from "../errors.ts";
import { sha256Hex } from "../ids.ts";
import { SettingsError } from "../settings.ts";
import { jsonBody } from "../validation.ts";

/** Far above any narinfo (one with a thousand references is about 70 KB). */
const MAX_NARINFO_BYTES = 1024 * 1024;

/**
 * Where the cache stands first among a host's substituters: cache.nixos.org says 40, and the fleet's own
 * systems are found only here.
 */
const CACHE_PRIORITY = 30;

/** Who is asking: the uploader (the cache token), a host (its agent token), or nobody known. */
type Client = "uploader" | "host" | null;

/**
 * The token a request presents: the password of HTTP Basic auth (what Nix sends from a netrc entry; the
 * user name is not read) or a Bearer token. Null when it presents none or one that is not a token.
 */
function presentedToken(header: string | undefined): string | null {
  const match = /^(Basic|Bearer) +(\S+)$/i.exec(header?.trim() ?? "");
  if (!match) return null;
  let token = match[2]!;
  if (match[1]!.toLowerCase() === "basic") {
    let decoded: string;
    try {
      decoded = atob(token);
    } catch {
      return null;
    }
    const colon = decoded.indexOf(":");
    if (colon < 0) return null;
    token = decoded.slice(colon + 1);
  }
  return /^[A-Za-z0-9_-]{16,200}$/.test(token) ? token : null;
}

/** A host's token is the usual reader and the cache token the only writer: each is looked up first where it is expected. */
export async function identify(c: Context<AppEnv>, expected: "host" | "uploader"): Promise<Client> {
  const token = presentedToken(c.req.header("authorization"));
  if (token === null) return null;
  const hash = await sha256Hex(token);
  const db = c.get("db");
  const isHost = async () => (await findHostByTokenHash(db, hash)) !== null;
  if (expected === "host") return (await isHost()) ? "host" : (await isServiceToken(db, "cache", hash)) ? "uploader" : null;
  return (await isServiceToken(db, "cache", hash)) ? "uploader" : (await isHost()) ? "host" : null;
}

/** The `cache.public` setting; vars that do not parse (and nothing stored over them) leave the cache private. */
async function isPublic(c: Context<AppEnv>): Promise<boolean> {
  try {
    return (await settingsForDisplay(c.env, c.get("db"))).cache.public;
  } catch (error) {
    if (error instanceof SettingsError) return false;
    throw error;
  }
}

export const unauthorized = (c: Context<AppEnv>, message: string) =>
  c.json(errorBody("unauthorized", message), 401, { "www-authenticate": 'Basic realm="nixfleet cache"' });

/**
 * Reads: a host's own token or the cache token, as the password of a netrc entry. Without one, only a
 * public cache (the `cache.public` setting) answers; a token presented that is unknown or revoked reads
 * nothing, public or not.
 */
const reader: MiddlewareHandler<AppEnv> = async (c, next) => {
  const client = await identify(c, "host");
  if (client !== null) return next();
  if (c.req.header("authorization") === undefined && (await isPublic(c))) return next();
  return unauthorized(c, "the cache needs a host's agent token (or the cache token) as the password of HTTP Basic auth, e.g. a netrc entry; that token is unknown, revoked or missing");
};

/** Uploads: the cache token only (an admin creates it; docs/cache.md). */
export const uploader: MiddlewareHandler<AppEnv> = async (c, next) => {
  const client = await identify(c, "uploader");
  if (client === "uploader") return next();
  if (client === "host") throw new ApiError(403, "cache_token_required", "a host's token reads the cache and never writes it: uploads need the cache token");
  return unauthorized(c, "uploads need the cache token (an admin creates it: POST /api/cache-token) as the password of HTTP Basic auth or a Bearer token");
};

const bucket = (c: Context<AppEnv>) => new CacheBucket(c.env.CACHE);

/** A narinfo's name, or a 404 for a read (not in the cache) / a 400 for a write (not a cache path). */
function narinfoName(c: Context<AppEnv>): string | null {
  const name = c.req.param("name") ?? "";
  const hash = name.endsWith(".narinfo") ? name.slice(0, -".narinfo".length) : null;
  return hash !== null && StorePathHash.safeParse(hash).success ? hash : null;
}

function narFile(c: Context<AppEnv>): string {
  const file = c.req.param("file") ?? "";
  if (!NarFileName.safeParse(file).success) {
    throw new ApiError(c.req.method === "GET" || c.req.method === "HEAD" ? 404 : 400, c.req.method === "GET" || c.req.method === "HEAD" ? "not_found" : "invalid_cache_path", `${file} is not a NAR file name (<base-32 sha256>.nar[.xz|.bz2|.zst|.lzip|.lz4|.br])`);
  }
  return file;
}

/** The object as the answer, its body streamed from R2; a HEAD gets the headers only. */
async function serve(c: Context<AppEnv>, key: string, contentType: string): Promise<Response> {
  const headers = (object: R2Object) => ({ "content-type": contentType, "content-length": String(object.size), etag: object.httpEtag });
  if (c.req.method === "HEAD") {
    const object = await bucket(c).head(key);
    if (object === null) throw new ApiError(404, "not_found", `${key} is not in the cache`);
    return new Response(null, { headers: headers(object) });
  }
  const object = await bucket(c).get(key);
  if (object === null) throw new ApiError(404, "not_found", `${key} is not in the cache`);
  return new Response(object.body, { headers: headers(object) });
}

/** A request body of known length, as R2 needs to store a stream (Nix and the push command send Content-Length). */
function sizedBody(c: Context<AppEnv>): ReadableStream {
  const length = c.req.header("content-length");
  if (length === undefined || !/^\d+$/.test(length)) throw new ApiError(411, "length_required", "send the body with a Content-Length");
  if (Number(length) === 0 || c.req.raw.body === null) throw new ApiError(400, "empty_body", "the body is empty");
  return c.req.raw.body;
}

const narinfoLimit = bodyLimit({
  maxSize: MAX_NARINFO_BYTES,
  onError: () => {
    throw new ApiError(413, "payload_too_large", `a narinfo is at most ${MAX_NARINFO_BYTES} bytes`);
  },
});

/**
 * The fleet's binary cache, an HTTP binary cache as Nix reads and writes it, stored in R2 (docs/cache.md):
 * `nix-cache-info`, `<hash>.narinfo` and `nar/<file>`, and a multipart upload for NARs larger than a
 * request may be.
 */
export const cacheRoutes = new Hono<AppEnv>()
  .get("/nix-cache-info", reader, (c) => c.text(`StoreDir: ${STORE_DIR}\nWantMassQuery: 1\nPriority: ${CACHE_PRIORITY}\n`, 200, { "content-type": "text/x-nix-cache-info" }))
  .get("/nar/:file", reader, (c) => serve(c, narKey(narFile(c)), NAR_TYPE))
  .put("/nar/:file", uploader, async (c) => {
    const object = await bucket(c).put(narKey(narFile(c)), sizedBody(c), NAR_TYPE);
    return c.json({ size: object.size } satisfies CacheUploadCompleted, 201);
  })
  .post("/nar/:file/uploads", uploader, async (c) => c.json({ uploadId: await bucket(c).startUpload(narKey(narFile(c)), NAR_TYPE) } satisfies CacheUploadStarted, 201))
  .put("/nar/:file/uploads/:uploadId/parts/:part", uploader, async (c) => {
    const part = CachePartNumber.safeParse(c.req.param("part"));
    if (!part.success) throw new ApiError(400, "invalid_part_number", "a part number is a whole number from 1 to 10000");
    return c.json(await bucket(c).uploadPart(narKey(narFile(c)), c.req.param("uploadId"), part.data, sizedBody(c)));
  })
  .post("/nar/:file/uploads/:uploadId/complete", uploader, ...jsonBody(CacheUploadCompletion), async (c) => {
    const object = await bucket(c).completeUpload(narKey(narFile(c)), c.req.param("uploadId"), c.req.valid("json").parts);
    return c.json({ size: object.size } satisfies CacheUploadCompleted);
  })
  .delete("/nar/:file/uploads/:uploadId", uploader, async (c) => {
    await bucket(c).abortUpload(narKey(narFile(c)), c.req.param("uploadId"));
    return c.body(null, 204);
  })
  .get("/:name", reader, (c) => {
    const hash = narinfoName(c);
    if (hash === null) throw new ApiError(404, "not_found", `${c.req.param("name")} is not in the cache`);
    return serve(c, narinfoKey(hash), NARINFO_TYPE);
  })
  .put("/:name", uploader, narinfoLimit, async (c) => {
    const hash = narinfoName(c);
    if (hash === null) throw new ApiError(400, "invalid_cache_path", `${c.req.param("name")}: uploads are <hash>.narinfo and nar/<file> (and their multipart routes)`);
    const text = await c.req.text();
    let info;
    try {
      info = parseNarInfo(text);
    } catch (error) {
      if (error instanceof NarInfoError) throw new ApiError(400, "narinfo_invalid", `not a narinfo: ${error.message}`);
      throw error;
    }
    if (storePathHash(info.storePath) !== hash) throw new ApiError(400, "narinfo_path_mismatch", `${hash}.narinfo describes ${info.storePath}, another path`);
    const refusal = await checkNarInfoSignature(info, c.env.CACHE_TRUSTED_KEYS);
    if (refusal !== null) throw refused(refusal);
    // Nix uploads the NAR first; a narinfo whose NAR is missing would send every reader to a 404.
    const nar = await bucket(c).head(info.url);
    if (nar === null) throw new ApiError(409, "nar_missing", `${info.url} is not in the cache: upload the NAR before its narinfo`);
    if (info.fileSize !== undefined && nar.size !== info.fileSize) throw new ApiError(409, "nar_size_mismatch", `${info.url} holds ${nar.size} bytes, the narinfo says FileSize ${info.fileSize}`);
    await bucket(c).put(narinfoKey(hash), text, NARINFO_TYPE);
    return c.json({ storePath: info.storePath }, 201);
  });
