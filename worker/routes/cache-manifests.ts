import { Hono, type Context, type MiddlewareHandler } from "hono";
import { Sha1, SignedCacheManifest, type CacheManifestPublished } from "../../common/protocol.ts";
import { CacheBucket, manifestKey, manifestTreeKey } from "../cache/bucket.ts";
import { checkManifestSignature } from "../cache/signatures.ts";
import type { AppEnv } from "../env.ts";
import { ApiError, refused } from "../errors.ts";
import { jsonBody } from "../validation.ts";
import { identify, unauthorized, uploader } from "./cache.ts";

const MANIFEST_TYPE = "application/json";
const COMMIT_TYPE = "text/plain";

/**
 * A host's own agent token (or the cache token), always, even when the cache is public: a manifest names
 * every host of the fleet and the system each runs.
 */
const manifestReader: MiddlewareHandler<AppEnv> = async (c, next) => {
  if ((await identify(c, "host")) !== null) return next();
  return unauthorized(c, "a manifest is read with a host's agent token (or the cache token) as the password of HTTP Basic auth or a Bearer token; that token is unknown, revoked or missing");
};

function commitOf(c: Context<AppEnv>): string {
  const commit = c.req.param("commit") ?? "";
  if (!Sha1.safeParse(commit).success) throw new ApiError(400, "invalid_commit", `${commit} is not a full git commit sha (40 hex digits)`);
  return commit;
}

/**
 * The builders' signed intent (docs/cache.md "The signed intent"): `PUT /cache/manifests/<commit>` with the
 * cache token stores a manifest that a key in CACHE_TRUSTED_KEYS signed; `GET` hands it to a host, which
 * checks the signature again with its own keys (common/cache-manifest.ts). The Worker signs nothing.
 *
 * Kept in R2 beside the closures it names, not in D1: it is an opaque signed document read whole by
 * commit, the cache's clean-up keeps or drops it with the closures, and it needs no migration.
 */
export const cacheManifestRoutes = new Hono<AppEnv>()
  .get("/:commit", manifestReader, async (c) => {
    const commit = commitOf(c);
    const tree = c.req.query("tree");
    if (tree !== undefined && !Sha1.safeParse(tree).success) throw new ApiError(400, "invalid_tree", `${tree} is not a full git tree sha (40 hex digits)`);
    const bucket = new CacheBucket(c.env.CACHE);
    let object = await bucket.get(manifestKey(commit));
    // No manifest of the commit itself (a merge of an update PR): the latest one of the same tree, whose
    // commit the host accepts only when its own checkout has that tree.
    if (object === null && tree !== undefined) {
      const pointer = await bucket.get(manifestTreeKey(tree));
      const built = pointer === null ? "" : (await pointer.text()).trim();
      if (Sha1.safeParse(built).success) object = await bucket.get(manifestKey(built));
    }
    if (object === null) throw new ApiError(404, "manifest_not_found", `no signed manifest for ${commit}${tree === undefined ? "" : ` or its tree ${tree}`} yet`);
    return new Response(object.body, { headers: { "content-type": MANIFEST_TYPE, "content-length": String(object.size) } });
  })
  .put("/:commit", uploader, ...jsonBody(SignedCacheManifest), async (c) => {
    const commit = commitOf(c);
    const signed = c.req.valid("json");
    if (signed.manifest.commit !== commit) throw new ApiError(400, "manifest_commit_mismatch", `the manifest is for ${signed.manifest.commit}, not ${commit}`);
    const refusal = await checkManifestSignature(signed, c.env.CACHE_TRUSTED_KEYS);
    if (refusal !== null) throw refused(refusal);
    const bucket = new CacheBucket(c.env.CACHE);
    const stored = await bucket.get(manifestKey(commit));
    if (stored !== null) {
      const previous = SignedCacheManifest.safeParse(await stored.json().catch(() => null));
      // A builder may sign a commit again (a rebuild); an older statement never replaces a newer one.
      if (previous.success && Date.parse(signed.manifest.created) < Date.parse(previous.data.manifest.created)) {
        throw new ApiError(409, "manifest_older", `the stored manifest for ${commit} was made ${previous.data.manifest.created}, after this one (${signed.manifest.created})`);
      }
    }
    await bucket.put(manifestKey(commit), JSON.stringify(signed), MANIFEST_TYPE);
    await bucket.put(manifestTreeKey(signed.manifest.tree), commit, COMMIT_TYPE);
    return c.json({ commit, hosts: Object.keys(signed.manifest.hosts).length } satisfies CacheManifestPublished, 201);
  });
