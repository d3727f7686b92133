/**
 * The binary cache's R2 bucket (binding CACHE): the one module that touches it. Keys are the cache's own
 * paths: `<hash>.narinfo` and `nar/<file>`, the builders' signed manifests, `manifests/<commit>.json`, and for
 * each manifest's git tree the commit of the latest manifest of that tree, `manifest-trees/<tree>`. Bodies are streamed through, never held whole.
 * The clean-up keeps its progress beside them in `nixfleet/clean-up.json`, a key no cache route serves.
 */
import type { CachePartUploaded } from "../../common/protocol.ts";
import { ApiError } from "../errors.ts";

export const NARINFO_TYPE = "text/x-nix-narinfo";
export const NAR_TYPE = "application/x-nix-nar";

export const narinfoKey = (hash: string): string => `${hash}.narinfo`;
export const narKey = (file: string): string => `nar/${file}`;
export const manifestKey = (commit: string): string => `manifests/${commit}.json`;
export const CLEAN_UP_STATE_KEY = "nixfleet/clean-up.json";

/** The most keys R2 lists in one page and deletes in one call. */
export const R2_BATCH = 1000;
/** A merge commit usually has its PR head's tree: a host finds the head's manifest through it (docs/cache.md "The signed intent"). */
export const manifestTreeKey = (tree: string): string => `manifest-trees/${tree}`;

/** R2's refusals of a multipart step, as our error: its code (in parentheses at the end of the message) says which. */
function multipartError(error: unknown, uploadId: string): ApiError {
  const message = error instanceof Error ? error.message : String(error);
  if (/\(10024\)/.test(message)) return new ApiError(404, "upload_not_found", `no multipart upload ${uploadId} in progress for this NAR (completed, aborted or never started)`);
  if (/\((10011|10025|10048)\)/.test(message)) {
    return new ApiError(400, "upload_parts_invalid", `R2 refused the parts: ${message.replace(/^\w+: /, "")} (every part but the last must be the same size, at least 5 MiB, and the last no larger)`);
  }
  throw error;
}

export class CacheBucket {
  readonly #r2: R2Bucket;
  constructor(r2: R2Bucket) {
    this.#r2 = r2;
  }

  get(key: string): Promise<R2ObjectBody | null> {
    return this.#r2.get(key);
  }

  head(key: string): Promise<R2Object | null> {
    return this.#r2.head(key);
  }

  /** `body` must have a known length (a request's body with Content-Length, or a string). */
  async put(key: string, body: ReadableStream | string, contentType: string): Promise<R2Object> {
    return this.#r2.put(key, body, { httpMetadata: { contentType } });
  }

  /** One page of the listing, from `cursor` (null: the first page). */
  async list(cursor: string | null): Promise<{ objects: { key: string; size: number; uploaded: number }[]; cursor: string | null }> {
    const page = await this.#r2.list({ limit: R2_BATCH, ...(cursor === null ? {} : { cursor }) });
    return {
      objects: page.objects.map((object) => ({ key: object.key, size: object.size, uploaded: object.uploaded.getTime() })),
      cursor: page.truncated ? page.cursor : null,
    };
  }

  /** At most R2_BATCH keys. */
  async delete(keys: readonly string[]): Promise<void> {
    if (keys.length > 0) await this.#r2.delete([...keys]);
  }

  async startUpload(key: string, contentType: string): Promise<string> {
    return (await this.#r2.createMultipartUpload(key, { httpMetadata: { contentType } })).uploadId;
  }

  async uploadPart(key: string, uploadId: string, partNumber: number, body: ReadableStream): Promise<CachePartUploaded> {
    try {
      const part = await this.#r2.resumeMultipartUpload(key, uploadId).uploadPart(partNumber, body);
      return { partNumber: part.partNumber, etag: part.etag };
    } catch (error) {
      throw multipartError(error, uploadId);
    }
  }

  async completeUpload(key: string, uploadId: string, parts: readonly CachePartUploaded[]): Promise<R2Object> {
    try {
      return await this.#r2.resumeMultipartUpload(key, uploadId).complete([...parts]);
    } catch (error) {
      throw multipartError(error, uploadId);
    }
  }

  async abortUpload(key: string, uploadId: string): Promise<void> {
    try {
      await this.#r2.resumeMultipartUpload(key, uploadId).abort();
    } catch (error) {
      throw multipartError(error, uploadId);
    }
  }
}
