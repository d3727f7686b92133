import * as z from "zod";

// ---------------------------------------------------------------------------
// The binary cache (docs/cache.md): its upload token and the multipart upload of a NAR

/** `GET /api/cache-token`: when the cache token in force was created and by whom (never the token); null when there is none. */
export const CacheTokenStatus = z.object({
  cacheToken: z.object({ createdAt: z.string(), createdBy: z.string() }).nullable(),
});
export type CacheTokenStatus = z.infer<typeof CacheTokenStatus>;

/** `POST /api/cache-token`: the new token, shown once (the old one is refused from then on). */
export const CacheTokenCreated = z.object({
  token: z.string(),
  cacheToken: z.object({ createdAt: z.string(), createdBy: z.string() }),
});
export type CacheTokenCreated = z.infer<typeof CacheTokenCreated>;

/** R2 numbers a multipart upload's parts from 1 to 10000. */
export const CachePartNumber = z.coerce.number().int().min(1).max(10_000);

/** `POST /cache/nar/<file>/uploads`: the upload started; its parts go to `…/uploads/<uploadId>/parts/<n>`. */
export const CacheUploadStarted = z.object({ uploadId: z.string().min(1) });
export type CacheUploadStarted = z.infer<typeof CacheUploadStarted>;

/** `PUT /cache/nar/<file>/uploads/<uploadId>/parts/<n>`: what `complete` must name for this part. */
export const CachePartUploaded = z.object({ partNumber: CachePartNumber, etag: z.string().min(1) });
export type CachePartUploaded = z.infer<typeof CachePartUploaded>;

/** `POST /cache/nar/<file>/uploads/<uploadId>/complete`: every part, as each `PUT` answered. */
export const CacheUploadCompletion = z.strictObject({ parts: z.array(CachePartUploaded).min(1).max(10_000) });
export type CacheUploadCompletion = z.infer<typeof CacheUploadCompletion>;

/** The NAR is in the cache: its size in bytes. */
export const CacheUploadCompleted = z.object({ size: z.number().int().nonnegative() });
export type CacheUploadCompleted = z.infer<typeof CacheUploadCompleted>;

/**
 * The cache's size as its last clean-up counted it, after its deletions (docs/cache.md "Keeping it small"):
 * uploads since then are not in it.
 */
export const CacheUsage = z.object({
  objects: z.number().int().nonnegative(),
  bytes: z.number().nonnegative(),
  countedAt: z.string(),
  deletedObjects: z.number().int().nonnegative(),
  deletedBytes: z.number().nonnegative(),
});
export type CacheUsage = z.infer<typeof CacheUsage>;

/** `GET /api/cache-usage`: null before the first clean-up finished. */
export const CacheUsageResponse = z.object({ usage: CacheUsage.nullable() });
export type CacheUsageResponse = z.infer<typeof CacheUsageResponse>;
