/**
 * `nixfleet-agent cache push`: puts store paths into the fleet's binary cache through the Worker
 * (docs/cache.md). `nix copy` signs them into a local `file://` cache first; then each NAR goes up, in
 * parts when it is larger than one request may be (R2 multipart through the Worker, so no size depends on
 * the Cloudflare plan), and only then the narinfos, references first: a reader never sees a narinfo whose
 * NAR, or whose references, are missing. Paths the cache already has are skipped. With a commit and the
 * hosts' systems, it then signs the manifest of that commit with the same key and publishes it (docs/cache.md
 * "The signed intent"), once every path it names is in the cache.
 *
 * HTTP goes over node:http(s), not fetch, for the reason agent/http.ts gives (the packaged agent has no
 * WebAssembly for undici).
 */
import type * as Http from "node:http";
import * as fs from "node:fs";
import * as fsp from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { signManifest } from "../common/cache-manifest.ts";
import { NarInfoError, parseNarInfo, storePathHash, type NarInfo } from "../common/narinfo.ts";
import { NixKeyError, parseNixSecretKey } from "../common/nix-keys.ts";
import { CacheManifest, CacheManifestPublished, CachePartUploaded, CacheUploadStarted, type CacheUploadCompletion } from "../common/protocol.ts";
import { createNodeRunner, type HostRunner } from "./runner.ts";

const MIB = 1024 * 1024;
/** R2's smallest part (every part but the last). */
export const MIN_PART_SIZE = 5 * MIB;
/** Under the 100 MB a request body may be on Cloudflare's Free and Pro plans. */
export const DEFAULT_PART_SIZE = 64 * MIB;

export const NIX_COMPRESSIONS = ["xz", "zstd", "bzip2", "none"] as const;

export interface CachePushOptions {
  /** The control plane, e.g. https://fleet.example.com (the cache is under /cache). */
  serverUrl: string;
  /** The cache token (POST /api/cache-token). */
  token: string;
  /** A secret key file from `nix-store --generate-binary-cache-key`; its public key must be in CACHE_TRUSTED_KEYS. */
  secretKeyFile: string;
  /** Store paths (or anything `nix copy` takes) to push, with their closures. */
  paths: readonly string[];
  /** The store to copy from (`nix copy --from`); the default store when absent. */
  from?: string;
  partSize?: number;
  compression?: (typeof NIX_COMPRESSIONS)[number];
  runner: Pick<HostRunner, "run">;
  log?: (line: string) => void;
}

export interface CachePushResult {
  /** Store paths uploaded now. */
  uploaded: string[];
  /** Store paths the cache already had. */
  present: string[];
  /** NAR bytes sent. */
  bytes: number;
}

export class CachePushError extends Error {}

interface Answer {
  status: number;
  text: string;
}

/** One request; `body` is a string, or a file range streamed from disk. */
function send(url: URL, method: string, token: string, body?: string | { file: string; start: number; length: number }, contentType?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request: typeof Http.request = url.protocol === "https:" ? process.getBuiltinModule("node:https").request : process.getBuiltinModule("node:http").request;
    const length = body === undefined ? 0 : typeof body === "string" ? Buffer.byteLength(body) : body.length;
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers["content-length"] = String(length);
    if (contentType !== undefined) headers["content-type"] = contentType;
    const req = request(url, { method, headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
      response.on("error", reject);
    });
    req.on("error", reject);
    if (body === undefined) req.end();
    else if (typeof body === "string") req.end(body);
    else if (body.length === 0) req.end();
    else fs.createReadStream(body.file, { start: body.start, end: body.start + body.length - 1 }).on("error", reject).pipe(req);
  });
}

/** The refusal's message when the Worker sent one, else the status and body. */
function failure(what: string, answer: Answer): CachePushError {
  let message = answer.text.slice(0, 500);
  try {
    const parsed: unknown = JSON.parse(answer.text);
    if (typeof parsed === "object" && parsed !== null && "error" in parsed) {
      const error = (parsed as { error: { code?: unknown; message?: unknown } }).error;
      message = `${String(error.code)}: ${String(error.message)}`;
    }
  } catch {
    // not JSON: the raw text says it
  }
  return new CachePushError(`${what}: HTTP ${answer.status} ${message}`);
}

/** Narinfos with every reference inside the set before the path that refers to it. */
export function referencesFirst(infos: readonly NarInfo[]): NarInfo[] {
  const byName = new Map(infos.map((info) => [info.storePath.slice("/nix/store/".length), info]));
  const ordered: NarInfo[] = [];
  const placed = new Set<string>();
  const visit = (name: string) => {
    if (placed.has(name)) return;
    placed.add(name);
    const info = byName.get(name);
    if (info === undefined) return;
    for (const reference of info.references) if (reference !== name) visit(reference);
    ordered.push(info);
  };
  for (const name of [...byName.keys()].sort()) visit(name);
  return ordered;
}

export async function pushToCache(options: CachePushOptions): Promise<CachePushResult> {
  const partSize = options.partSize ?? DEFAULT_PART_SIZE;
  if (!Number.isSafeInteger(partSize) || partSize < MIN_PART_SIZE) throw new CachePushError(`the part size must be at least ${MIN_PART_SIZE} bytes (R2's smallest part)`);
  const log = options.log ?? (() => {});
  const cache = new URL("cache/", options.serverUrl.endsWith("/") ? options.serverUrl : `${options.serverUrl}/`);
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "nixfleet-cache-push-"));
  try {
    const target = `file://${dir}?secret-key=${encodeURIComponent(options.secretKeyFile)}&compression=${options.compression ?? "xz"}`;
    const argv = ["nix", "--extra-experimental-features", "nix-command", "copy", "--to", target, ...(options.from === undefined ? [] : ["--from", options.from]), ...options.paths];
    const copied = await options.runner.run(argv, { maxCapture: 20_000 });
    if (copied.exitCode !== 0) throw new CachePushError(`nix copy failed (${copied.spawnError ?? `exit ${copied.exitCode}`}): ${copied.stderr.trim().slice(-2000)}`);

    const infos: NarInfo[] = [];
    for (const name of (await fsp.readdir(dir)).filter((file) => file.endsWith(".narinfo")).sort()) {
      const text = await fsp.readFile(path.join(dir, name), "utf8");
      try {
        infos.push(parseNarInfo(text));
      } catch (error) {
        if (error instanceof NarInfoError) throw new CachePushError(`nix copy wrote ${name}, which this cache cannot take: ${error.message}`);
        throw error;
      }
    }
    const result: CachePushResult = { uploaded: [], present: [], bytes: 0 };
    const missing: NarInfo[] = [];
    for (const info of infos) {
      const head = await send(new URL(`${storePathHash(info.storePath)}.narinfo`, cache), "HEAD", options.token);
      if (head.status === 200) result.present.push(info.storePath);
      else if (head.status === 404) missing.push(info);
      else throw failure(`asking the cache for ${info.storePath}`, head);
    }
    for (const info of missing) {
      const file = path.join(dir, info.url);
      const size = (await fsp.stat(file)).size;
      const parts = Math.max(1, Math.ceil(size / partSize));
      log(`uploading ${info.url} (${size} bytes${parts > 1 ? `, in ${parts} parts` : ""}) for ${info.storePath}`);
      await uploadNar(cache, options.token, info.url, file, size, partSize);
      result.bytes += size;
    }
    for (const info of referencesFirst(missing)) {
      const text = await fsp.readFile(path.join(dir, `${storePathHash(info.storePath)}.narinfo`), "utf8");
      const answer = await send(new URL(`${storePathHash(info.storePath)}.narinfo`, cache), "PUT", options.token, text, "text/x-nix-narinfo");
      if (answer.status !== 201) throw failure(`uploading the narinfo of ${info.storePath}`, answer);
      result.uploaded.push(info.storePath);
    }
    return result;
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

/**
 * Signs the manifest `{ commit, tree, created: now, hosts }` with the builder's secret key and publishes it
 * (`PUT /cache/manifests/<commit>`, the cache token). The Worker stores it only if its key is trusted.
 */
export async function publishManifest(options: Pick<CachePushOptions, "serverUrl" | "token" | "secretKeyFile"> & { manifest: Omit<CacheManifest, "created">; now?: Date }): Promise<CacheManifestPublished> {
  let secretKey;
  try {
    secretKey = parseNixSecretKey(await fsp.readFile(options.secretKeyFile, "utf8"));
  } catch (error) {
    if (error instanceof NixKeyError) throw new CachePushError(`${options.secretKeyFile}: ${error.message}`);
    throw error;
  }
  const manifest = CacheManifest.safeParse({ ...options.manifest, created: (options.now ?? new Date()).toISOString() });
  if (!manifest.success) throw new CachePushError(`the manifest is not valid: ${manifest.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ")}`);
  const signed = await signManifest(manifest.data, secretKey);
  const url = new URL(`cache/manifests/${manifest.data.commit}`, options.serverUrl.endsWith("/") ? options.serverUrl : `${options.serverUrl}/`);
  const answer = await send(url, "PUT", options.token, JSON.stringify(signed), "application/json");
  if (answer.status !== 201) throw failure(`publishing the manifest for ${manifest.data.commit}`, answer);
  return CacheManifestPublished.parse(JSON.parse(answer.text));
}

/** One PUT when it fits in a part; else an R2 multipart upload, aborted if a step fails. */
async function uploadNar(cache: URL, token: string, url: string, file: string, size: number, partSize: number): Promise<void> {
  if (size <= partSize) {
    const answer = await send(new URL(url, cache), "PUT", token, { file, start: 0, length: size }, "application/x-nix-nar");
    if (answer.status !== 201) throw failure(`uploading ${url}`, answer);
    return;
  }
  const started = await send(new URL(`${url}/uploads`, cache), "POST", token);
  if (started.status !== 201) throw failure(`starting the upload of ${url}`, started);
  const uploadId = CacheUploadStarted.parse(JSON.parse(started.text)).uploadId;
  const base = new URL(`${url}/uploads/${encodeURIComponent(uploadId)}/`, cache);
  try {
    const parts: CacheUploadCompletion["parts"] = [];
    for (let start = 0, partNumber = 1; start < size; start += partSize, partNumber += 1) {
      const length = Math.min(partSize, size - start);
      const answer = await send(new URL(`parts/${partNumber}`, base), "PUT", token, { file, start, length }, "application/octet-stream");
      if (answer.status !== 200) throw failure(`uploading part ${partNumber} of ${url}`, answer);
      parts.push(CachePartUploaded.parse(JSON.parse(answer.text)));
    }
    const completed = await send(new URL("complete", base), "POST", token, JSON.stringify({ parts } satisfies CacheUploadCompletion), "application/json");
    if (completed.status !== 200) throw failure(`completing the upload of ${url}`, completed);
  } catch (error) {
    await send(new URL(base.href.replace(/\/$/, "")), "DELETE", token).catch(() => undefined);
    throw error;
  }
}

export const CACHE_PUSH_USAGE = `Usage:
  nixfleet-agent cache push --url URL --token-file FILE --secret-key-file FILE [--from STORE]
                            [--part-size BYTES] [--compression xz|zstd|bzip2|none]
                            [--commit SHA --tree SHA --host NAME=PATH...] [PATH...]
      sign PATH... and their closures with the secret key and upload what the fleet's cache lacks
      (the token file holds the cache token; the URL may also come from NIXFLEET_URL); with --commit,
      also push each --host's PATH, then sign and publish the manifest naming them for that commit`;

/** `nixfleet-agent cache push …` (argv after `cache`): resolves with the exit code (0, 1 failed, 64 usage). */
export async function cacheCommand(argv: string[], env: NodeJS.ProcessEnv, io: { stdout(text: string): void; stderr(text: string): void }): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        url: { type: "string" },
        "token-file": { type: "string" },
        "secret-key-file": { type: "string" },
        from: { type: "string" },
        "part-size": { type: "string" },
        compression: { type: "string" },
        commit: { type: "string" },
        tree: { type: "string" },
        host: { type: "string", multiple: true },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (error) {
    io.stderr(`${(error as Error).message}\n\n${CACHE_PUSH_USAGE}\n`);
    return 64;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout(`${CACHE_PUSH_USAGE}\n`);
    return 0;
  }
  const [sub, ...positionalPaths] = positionals;
  const hostEntries = (values.host ?? []).map((entry) => {
    const at = entry.indexOf("=");
    return at <= 0 ? (["", ""] as const) : ([entry.slice(0, at), entry.slice(at + 1)] as const);
  });
  const paths = [...positionalPaths, ...hostEntries.map(([, storePath]) => storePath)];
  const manifestAsked = values.commit !== undefined || values.tree !== undefined || hostEntries.length > 0;
  const url = values.url ?? env.NIXFLEET_URL;
  const compression = NIX_COMPRESSIONS.find((name) => name === (values.compression ?? "xz"));
  const partSize = values["part-size"] === undefined ? DEFAULT_PART_SIZE : Number(values["part-size"]);
  const problem =
    sub !== "push" ? `unknown cache command ${sub ?? "(none)"}`
    : url === undefined ? "no --url (or NIXFLEET_URL)"
    : values["token-file"] === undefined ? "no --token-file"
    : values["secret-key-file"] === undefined ? "no --secret-key-file"
    : compression === undefined ? `--compression must be one of ${NIX_COMPRESSIONS.join(", ")}`
    : !Number.isSafeInteger(partSize) || partSize < MIN_PART_SIZE ? `--part-size must be a whole number of bytes, at least ${MIN_PART_SIZE}`
    : paths.length === 0 ? "name at least one store path"
    : manifestAsked && (values.commit === undefined || values.tree === undefined || hostEntries.length === 0) ? "a manifest needs --commit, --tree and at least one --host NAME=PATH"
    : hostEntries.some(([name, storePath]) => name === "" || storePath === "") ? "--host takes NAME=PATH"
    : null;
  if (problem !== null) {
    io.stderr(`nixfleet-agent: ${problem}\n\n${CACHE_PUSH_USAGE}\n`);
    return 64;
  }
  try {
    const token = (await fsp.readFile(values["token-file"]!, "utf8")).trim();
    const result = await pushToCache({
      serverUrl: url!,
      token,
      secretKeyFile: path.resolve(values["secret-key-file"]!),
      paths,
      ...(values.from === undefined ? {} : { from: values.from }),
      partSize,
      compression: compression!,
      runner: createNodeRunner(),
      log: (line) => io.stderr(`${line}\n`),
    });
    io.stdout(`${result.uploaded.length} paths uploaded (${result.bytes} bytes of NARs), ${result.present.length} already in the cache\n`);
    if (manifestAsked) {
      const published = await publishManifest({
        serverUrl: url!,
        token,
        secretKeyFile: path.resolve(values["secret-key-file"]!),
        manifest: { commit: values.commit!, tree: values.tree!, hosts: Object.fromEntries(hostEntries) },
      });
      io.stdout(`the signed manifest for ${published.commit} (${published.hosts} hosts) is published\n`);
    }
    return 0;
  } catch (error) {
    if (error instanceof CachePushError || (error as NodeJS.ErrnoException).code !== undefined) {
      io.stderr(`nixfleet-agent: cache push: ${(error as Error).message}\n`);
      return 1;
    }
    throw error;
  }
}
