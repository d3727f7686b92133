/**
 * A NAR larger than a request may be (the plan caps a body at 100 MB) goes to the binary cache in parts,
 * through the Worker into an R2 multipart upload, with the cache token only. Local R2 holds parts to R2's
 * own rule: all but the last the same size, at least 5 MiB.
 */
import { describe, expect, it } from "vitest";
import { CachePartUploaded, CacheUploadStarted, ErrorBody } from "../../common/protocol.ts";
import { cacheFetch, newCacheToken, randomBase32 } from "./cache-helpers.ts";
import { createHost } from "./helpers.ts";

const MIB = 1024 * 1024;
const refusal = async (res: Response) => ErrorBody.parse(await res.json()).error;

function randomBytes(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  // getRandomValues fills at most 64 KiB at a time.
  for (let at = 0; at < size; at += 65_536) crypto.getRandomValues(bytes.subarray(at, Math.min(size, at + 65_536)));
  return bytes;
}

const sha256 = async (bytes: BufferSource) => btoa(String.fromCharCode(...new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))));

async function start(token: string, file: string): Promise<string> {
  const res = await cacheFetch(`/nar/${file}/uploads`, { method: "POST", token });
  expect(res.status).toBe(201);
  return CacheUploadStarted.parse(await res.json()).uploadId;
}

async function part(token: string, file: string, uploadId: string, partNumber: number, body: Uint8Array): Promise<CachePartUploaded> {
  const res = await cacheFetch(`/nar/${file}/uploads/${encodeURIComponent(uploadId)}/parts/${partNumber}`, { method: "PUT", token, body });
  expect(res.status).toBe(200);
  return CachePartUploaded.parse(await res.json());
}

const complete = (token: string, file: string, uploadId: string, parts: CachePartUploaded[]) =>
  cacheFetch(`/nar/${file}/uploads/${encodeURIComponent(uploadId)}/complete`, { method: "POST", token, body: JSON.stringify({ parts }), headers: { "content-type": "application/json" } });

describe("binary cache multipart uploads", () => {
  it("assembles a NAR sent in two parts (5 MiB and the rest) and serves it whole to a host", async () => {
    const token = await newCacheToken();
    const file = `${randomBase32(52)}.nar.xz`;
    const size = 5 * MIB + 300_000;
    const nar = randomBytes(size);
    const uploadId = await start(token, file);
    const parts = [await part(token, file, uploadId, 1, nar.subarray(0, 5 * MIB)), await part(token, file, uploadId, 2, nar.subarray(5 * MIB))];
    const res = await complete(token, file, uploadId, parts);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ size });

    const { token: hostToken } = await createHost("cache-multipart-reader");
    const served = await cacheFetch(`/nar/${file}`, { token: hostToken });
    expect(served.status).toBe(200);
    expect(Number(served.headers.get("content-length"))).toBe(size);
    // Compared by digest: a deep equality over millions of bytes takes seconds.
    expect(await sha256(await served.arrayBuffer())).toBe(await sha256(nar));
  });

  it("refuses to complete parts smaller than R2 allows with 400 upload_parts_invalid, leaving no NAR", async () => {
    const token = await newCacheToken();
    const file = `${randomBase32(52)}.nar`;
    const uploadId = await start(token, file);
    const parts = [await part(token, file, uploadId, 1, randomBytes(1024)), await part(token, file, uploadId, 2, randomBytes(1024))];
    const res = await complete(token, file, uploadId, parts);
    expect(res.status).toBe(400);
    expect((await refusal(res)).code).toBe("upload_parts_invalid");
    const { token: hostToken } = await createHost("cache-multipart-small");
    expect((await cacheFetch(`/nar/${file}`, { method: "HEAD", token: hostToken })).status).toBe(404);
  });

  it("aborts an upload: its parts are dropped and a later part or completion is 404 upload_not_found", async () => {
    const token = await newCacheToken();
    const file = `${randomBase32(52)}.nar.zst`;
    const uploadId = await start(token, file);
    const first = await part(token, file, uploadId, 1, randomBytes(1024));
    const aborted = await cacheFetch(`/nar/${file}/uploads/${encodeURIComponent(uploadId)}`, { method: "DELETE", token });
    expect(aborted.status).toBe(204);
    const late = await complete(token, file, uploadId, [first]);
    expect(late.status).toBe(404);
    expect((await refusal(late)).code).toBe("upload_not_found");
  });

  it("lets only the cache token start, send, complete or abort, and refuses a part number outside 1–10000 or a body without a length", async () => {
    const token = await newCacheToken();
    const { token: hostToken } = await createHost("cache-multipart-host");
    const file = `${randomBase32(52)}.nar`;
    const host = await cacheFetch(`/nar/${file}/uploads`, { method: "POST", token: hostToken });
    expect(host.status).toBe(403);
    expect((await refusal(host)).code).toBe("cache_token_required");

    const uploadId = await start(token, file);
    const base = `/nar/${file}/uploads/${encodeURIComponent(uploadId)}`;
    for (const [method, path] of [["PUT", `${base}/parts/1`], ["POST", `${base}/complete`], ["DELETE", base]] as const) {
      expect((await cacheFetch(path, { method, token: hostToken, body: method === "DELETE" ? undefined : "{}" })).status, `${method} ${path}`).toBe(403);
      expect((await cacheFetch(path, { method, body: method === "DELETE" ? undefined : "{}" })).status, `${method} ${path}`).toBe(401);
    }
    const outOfRange = await cacheFetch(`${base}/parts/10001`, { method: "PUT", token, body: "x" });
    expect(outOfRange.status).toBe(400);
    expect((await refusal(outOfRange)).code).toBe("invalid_part_number");
    const streamed = new ReadableStream({ start: (controller) => (controller.enqueue(new Uint8Array(8)), controller.close()) });
    const unsized = await cacheFetch(`${base}/parts/1`, { method: "PUT", token, body: streamed });
    expect(unsized.status).toBe(411);
    expect((await refusal(unsized)).code).toBe("length_required");
  });
});
