/**
 * flake.lock, read and compared: which inputs a lock pins, what changed between
 * two locks (the lock diff an update PR carries), and the one hash of the file
 * that the agent and the worker both report.
 *
 * Pure on purpose: zod, standard JS and WebCrypto only, so the same code runs
 * in the Worker, in the agent on Node and in the dashboard.
 */
import * as z from "zod";
import { LockChange } from "./protocol.ts";
import type { LockedRef } from "./protocol.ts";
import { plural } from "./text.ts";

// Every runtime this module targets has these; the ES lib typings alone do not
// declare them, and pulling in DOM or Node typings would make the module less pure.
declare const crypto: {
  readonly subtle: { digest(algorithm: "SHA-256", data: Uint8Array): Promise<ArrayBuffer> };
};
declare const TextEncoder: new () => { encode(input: string): Uint8Array };

// ---------------------------------------------------------------------------
// Parsing

/** Raised for a flake.lock that cannot be read; the message says what is wrong. */
export class LockFileError extends Error {
  override name = "LockFileError";
}

/** An input is either a node key or, when it `follows` another input, that input's path from the root. */
const InputRef = z.union([z.string(), z.array(z.string())]);

const LockNode = z.looseObject({
  inputs: z.record(z.string(), InputRef).optional(),
  // Kept opaque here: an unfamiliar locked shape is reported, never rejected.
  locked: z.unknown().optional(),
  original: z.unknown().optional(),
  flake: z.boolean().optional(),
  parent: z.array(z.string()).optional(),
});

const SUPPORTED_VERSIONS = [5, 6, 7] as const;

/** A flake.lock of version 5, 6 or 7 (the node graph format Nix has written since 2.4). */
export const FlakeLock = z.looseObject({
  version: z.literal(SUPPORTED_VERSIONS),
  root: z.string(),
  nodes: z.record(z.string(), LockNode),
});
export type FlakeLock = z.infer<typeof FlakeLock>;
type LockNode = z.infer<typeof LockNode>;

/**
 * Parses and checks a flake.lock's text.
 * @throws LockFileError when the text is not JSON, not a supported version, or its node graph is broken.
 */
export function parseFlakeLock(text: string): FlakeLock {
  let json: unknown;
  try {
    // Nix never writes a byte order mark, but an editor might; JSON.parse rejects it.
    json = JSON.parse(text.startsWith("\uFEFF") ? text.slice(1) : text);
  } catch (error) {
    throw new LockFileError(`flake.lock is not valid JSON: ${errorMessage(error)}`);
  }
  if (!isRecord(json)) throw new LockFileError("flake.lock is not a JSON object");
  const version = json["version"];
  if (!SUPPORTED_VERSIONS.some((v) => v === version)) {
    throw new LockFileError(
      `flake.lock version ${JSON.stringify(version) ?? "(missing)"} is not supported (expected 5, 6 or 7)`,
    );
  }
  if (typeof json["root"] !== "string") {
    throw new LockFileError('flake.lock has no root node (the "root" field is missing)');
  }
  const parsed = FlakeLock.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .slice(0, 3)
      .map((issue) => `${issue.path.map(String).join(".") || "(top level)"}: ${issue.message}`)
      .join("; ");
    throw new LockFileError(`flake.lock is malformed: ${problems}`);
  }
  const lock = parsed.data;
  if (nodeAt(lock, lock.root) === undefined) {
    throw new LockFileError(`flake.lock has no root node ("${lock.root}" is not among its nodes)`);
  }
  for (const [key, node] of Object.entries(lock.nodes)) {
    for (const [name, ref] of Object.entries(node.inputs ?? {})) {
      if (typeof ref === "string" && nodeAt(lock, ref) === undefined) {
        throw new LockFileError(`flake.lock node "${key}" has input "${name}" pointing to a missing node "${ref}"`);
      }
    }
  }
  return lock;
}

// ---------------------------------------------------------------------------
// Inputs

/** Where a forge-hosted input lives, for compare links. */
type ForgeRepo = { forge: "github" | "gitlab" | "sourcehut"; host: string; owner: string; repo: string };

type LockEntry = { ref: LockedRef; repo: ForgeRepo | null; lastModified: number | null };

/**
 * Every input reachable from the root, keyed by its input path as
 * `nix flake update` prints it (`nixpkgs`, `home-manager/nixpkgs`).
 *
 * An input that `follows` another is not an entry of its own: it is the
 * followed node, listed at that node's path. A node reachable along several
 * paths is listed once, at the first path a breadth-first walk from the root
 * finds (input names in sorted order, as Nix writes them).
 */
export function lockInputs(lock: FlakeLock): Map<string, LockedRef> {
  return new Map([...lockEntries(lock)].map(([path, entry]) => [path, entry.ref]));
}

/** Input path → lastModified (unix seconds), for the inputs whose lock records it. */
export function lockLastModified(lock: FlakeLock): Record<string, number> {
  const ages: Record<string, number> = {};
  for (const [path, entry] of lockEntries(lock)) {
    if (entry.lastModified !== null) ages[path] = entry.lastModified;
  }
  return ages;
}

function lockEntries(lock: FlakeLock): Map<string, LockEntry> {
  const entries = new Map<string, LockEntry>();
  const seen = new Set<string>([lock.root]);
  const queue: Array<{ key: string; path: string }> = [{ key: lock.root, path: "" }];
  // Walking only direct node references is enough: a follows path is resolved
  // from the root and always ends at a node some direct reference reaches.
  for (let i = 0; i < queue.length; i++) {
    const { key, path } = queue[i]!;
    const inputs = nodeAt(lock, key)?.inputs ?? {};
    for (const name of Object.keys(inputs).sort(byCodeUnit)) {
      const ref = inputs[name];
      if (typeof ref !== "string" || seen.has(ref)) continue;
      const node = nodeAt(lock, ref);
      if (node === undefined) continue;
      seen.add(ref);
      const inputPath = path === "" ? name : `${path}/${name}`;
      entries.set(inputPath, describeLocked(node.locked));
      queue.push({ key: ref, path: inputPath });
    }
  }
  return entries;
}

const DEFAULT_FORGE_HOST = { github: "github.com", gitlab: "gitlab.com", sourcehut: "git.sr.ht" } as const;
const HOST = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?$/;
const REPO_SEGMENT = /^[~A-Za-z0-9_.+-][~A-Za-z0-9_.+/-]*$/;

function describeLocked(locked: unknown): LockEntry {
  const attrs = isRecord(locked) ? locked : {};
  const rev = stringAttr(attrs, "rev");
  const narHash = stringAttr(attrs, "narHash");
  const seconds = attrs["lastModified"];
  const lastModified = typeof seconds === "number" && Number.isSafeInteger(seconds) && seconds >= 0 ? seconds : null;
  const known = (type: string, url: string, repo: ForgeRepo | null = null): LockEntry => ({
    ref: { type, rev, narHash, lastModified: isoDate(lastModified), url },
    repo,
    lastModified,
  });

  const type = attrs["type"];
  switch (type) {
    case "github":
    case "gitlab":
    case "sourcehut": {
      const host = stringAttr(attrs, "host") ?? DEFAULT_FORGE_HOST[type];
      let owner = stringAttr(attrs, "owner");
      const repo = stringAttr(attrs, "repo");
      // Nix writes a GitLab subgroup's slashes as %2F in the owner.
      if (type === "gitlab" && owner !== null) owner = owner.replace(/%2F/gi, "/");
      if (type === "sourcehut" && owner !== null && !owner.startsWith("~")) owner = `~${owner}`;
      if (owner === null || repo === null || !HOST.test(host)) break;
      if (!REPO_SEGMENT.test(owner) || !REPO_SEGMENT.test(repo) || repo.includes("/")) break;
      if (type !== "gitlab" && owner.includes("/")) break;
      const base = `https://${host}/${owner}/${repo}`;
      const tree = rev === null ? "" : `${type === "gitlab" ? "/-" : ""}/tree/${encodeURIComponent(rev)}`;
      return known(type, base + tree, { forge: type, host, owner, repo });
    }
    case "git":
    case "tarball":
    case "file":
    case "hg": {
      const url = stringAttr(attrs, "url");
      if (url === null) break;
      // Nix calls its Mercurial fetcher `hg`; people reading the dashboard know it as mercurial.
      return known(type === "hg" ? "mercurial" : type, url);
    }
    case "path": {
      const path = stringAttr(attrs, "path");
      if (path === null) break;
      return known("path", `path:${path}`);
    }
    case "indirect": {
      const id = stringAttr(attrs, "id");
      if (id === null) break;
      const ref = stringAttr(attrs, "ref");
      return known("indirect", ["flake:" + id, ref, rev].filter((part) => part !== null).join("/"));
    }
  }
  return {
    ref: { type: "unrecognised", rev, narHash, lastModified: isoDate(lastModified), url: null, raw: locked ?? null },
    repo: null,
    lastModified,
  };
}

// ---------------------------------------------------------------------------
// Diff

/**
 * What changed from one lock to the next, one change per input path, sorted by
 * path. An input counts as updated when its rev changed, or its narHash when
 * it has no rev, or its type or URL. `commits` is left null for a GitHub
 * client to fill in.
 */
export function diffFlakeLocks(oldLock: FlakeLock, newLock: FlakeLock): LockChange[] {
  const before = lockEntries(oldLock);
  const after = lockEntries(newLock);
  const paths = [...new Set([...before.keys(), ...after.keys()])].sort(byCodeUnit);
  const changes: LockChange[] = [];
  for (const input of paths) {
    const old = before.get(input);
    const next = after.get(input);
    if (old !== undefined && next === undefined) {
      changes.push({ input, kind: "removed", old: old.ref, new: null, compareUrl: null, commits: null });
    } else if (old === undefined && next !== undefined) {
      changes.push({ input, kind: "added", old: null, new: next.ref, compareUrl: null, commits: null });
    } else if (old !== undefined && next !== undefined && refChanged(old.ref, next.ref)) {
      changes.push({ input, kind: "updated", old: old.ref, new: next.ref, compareUrl: compareUrl(old, next), commits: null });
    }
  }
  return changes;
}

function refChanged(old: LockedRef, next: LockedRef): boolean {
  if (old.type !== next.type || old.url !== next.url || old.rev !== next.rev) return true;
  if (old.rev === null && old.narHash !== next.narHash) return true;
  return old.type === "unrecognised" && canonicalJson(old.raw) !== canonicalJson(next.raw);
}

function compareUrl(old: LockEntry, next: LockEntry): string | null {
  const a = old.repo;
  const b = next.repo;
  const from = old.ref.rev;
  const to = next.ref.rev;
  if (a === null || b === null || from === null || to === null || from === to) return null;
  if (a.forge !== b.forge || (a.forge !== "github" && a.forge !== "gitlab")) return null;
  // Forge hosts and GitHub owners/repos are case-insensitive; lock files mix cases freely.
  const same = (x: string, y: string) => x.toLowerCase() === y.toLowerCase();
  if (!same(a.host, b.host) || !same(a.owner, b.owner) || !same(a.repo, b.repo)) return null;
  const range = `${encodeURIComponent(from)}...${encodeURIComponent(to)}`;
  return `https://${b.host}/${b.owner}/${b.repo}${b.forge === "gitlab" ? "/-" : ""}/compare/${range}`;
}

// ---------------------------------------------------------------------------
// Hash

/**
 * The flake.lock hash: lowercase hex SHA-256 of the file's raw bytes, exactly as
 * stored in git (no JSON re-serialisation, no newline or BOM normalisation).
 * A string is hashed as its UTF-8 encoding. The agent reports it for the
 * clone's HEAD and the worker computes it for the repository's branch; equal
 * hashes mean the host pins exactly what the branch pins.
 */
export async function flakeLockHash(bytes: string | Uint8Array): Promise<string> {
  const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

// ---------------------------------------------------------------------------
// Renderers

/** The Lock compartment's tooltip for a pending update PR (see docs/compartments.md "Lock", row 5): one input, then a count. */
export function renderLockTooltip(changes: readonly LockChange[]): string {
  const first = changes.find((change) => change.input === "nixpkgs") ?? changes[0];
  if (first === undefined) return "Update PR pending: no input changes";
  const more = changes.length - 1;
  const rest = more === 0 ? "" : ` (+${plural(more, "more input")})`;
  return `Update PR pending: ${summarise(first)}${rest}`;
}

function summarise(change: LockChange): string {
  switch (change.kind) {
    case "updated":
      return `${change.input} ${shortRef(change.old)} → ${shortRef(change.new)}`;
    case "added":
      return `${change.input} added (${shortRef(change.new)})`;
    case "removed":
      return `${change.input} removed`;
  }
}

/**
 * One line per change, for a terminal:
 * `nixpkgs: abc1234 → def5678 (2025-12-10 → 2025-12-17) <compare URL>`.
 */
export function renderLockText(changes: readonly LockChange[]): string {
  if (changes.length === 0) return "No input changes.\n";
  const lines = changes.map((change) => {
    const dates = dateRange(change);
    const suffix = [dates === null ? null : `(${dates})`, commitCount(change.commits), change.compareUrl ?? null]
      .filter((part) => part !== null)
      .join(" ");
    const what =
      change.kind === "updated"
        ? `${shortRef(change.old)} → ${shortRef(change.new)}`
        : `${change.kind} ${shortRef(change.kind === "added" ? change.new : change.old)}`;
    return `${change.input}: ${what}${suffix === "" ? "" : ` ${suffix}`}`;
  });
  return lines.join("\n") + "\n";
}

/**
 * The "Updated inputs" section of an update PR comment or of the commit
 * message that deploys it (see docs/automation.md "Step by step"). A commit message should pass a
 * heading without `#`, which git may treat as a comment line.
 */
export function renderLockMarkdown(
  changes: readonly LockChange[],
  options: { heading?: string } = {},
): string {
  const heading = options.heading ?? "### Updated inputs";
  if (changes.length === 0) return `${heading}\n\nNo input changes.\n`;
  const bullets = changes.map((change) => {
    const input = escapeMarkdown(change.input);
    const details = [
      dateRange(change),
      commitCount(change.commits),
      change.compareUrl ? `[compare](${escapeUrl(change.compareUrl)})` : null,
    ].filter((part) => part !== null);
    const tail = details.length === 0 ? "" : ` (${details.join(", ")})`;
    switch (change.kind) {
      case "updated":
        return `- ${input}: ${refLink(change.old)} → ${refLink(change.new)}${tail}`;
      case "added":
        return `- ${input}: added ${refLink(change.new)}${tail}`;
      case "removed":
        return `- ${input}: removed, was ${refLink(change.old)}${tail}`;
    }
  });
  return `${heading}\n\n${bullets.join("\n")}\n`;
}

/** The shape `nixfleet lock-diff --json` prints. */
export const LockDiffJson = z.object({ changes: z.array(LockChange) });
export type LockDiffJson = z.infer<typeof LockDiffJson>;

/** The changes as a JSON-ready object, every field present (null when unknown). */
export function renderLockJson(changes: readonly LockChange[]): LockDiffJson {
  const ref = (r: LockedRef | null): LockedRef | null =>
    r === null
      ? null
      : {
          type: r.type,
          rev: r.rev,
          narHash: r.narHash,
          lastModified: r.lastModified,
          url: r.url,
          ...(r.raw === undefined ? {} : { raw: r.raw }),
        };
  return {
    changes: changes.map((c) => ({
      input: c.input,
      kind: c.kind,
      old: ref(c.old),
      new: ref(c.new),
      compareUrl: c.compareUrl ?? null,
      commits: c.commits ?? null,
    })),
  };
}

/** 7 characters of the rev, as git abbreviates; without a rev, the start of the narHash. */
function shortRef(ref: LockedRef | null): string {
  if (ref === null) return "(none)";
  if (ref.rev !== null) return ref.rev.slice(0, 7);
  if (ref.narHash !== null) {
    const dash = ref.narHash.indexOf("-");
    return dash === -1 ? ref.narHash.slice(0, 7) : ref.narHash.slice(0, dash + 8);
  }
  return "(unknown)";
}

function refLink(ref: LockedRef | null): string {
  const text = shortRef(ref);
  // Only web links: a lock may carry any URL scheme, and a PR comment is no place to click `file:` or worse.
  if (ref?.url && /^https?:\/\//i.test(ref.url)) return `[${escapeMarkdown(text)}](${escapeUrl(ref.url)})`;
  return `\`${text}\``;
}

function dateRange(change: LockChange): string | null {
  const day = (ref: LockedRef | null) => ref?.lastModified?.slice(0, 10) ?? null;
  const from = day(change.old);
  const to = day(change.new);
  if (change.kind === "added") return to;
  if (change.kind === "removed") return from;
  if (from === null && to === null) return null;
  return `${from ?? "?"} → ${to ?? "?"}`;
}

function commitCount(commits: number | null | undefined): string | null {
  if (commits === null || commits === undefined) return null;
  return plural(commits, "commit");
}

// Input names are nearly always plain words; escape only what would change the
// rendering, so a commit message stays readable (`x86_64-linux`, not `x86\_64`).
function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*[\]<>]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])/g, "\\$&");
}

function escapeUrl(url: string): string {
  return url.replace(/[()<> ]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`);
}

// ---------------------------------------------------------------------------
// Helpers

// Own properties only: node keys come from the file and may be "constructor" or "__proto__".
function nodeAt(lock: FlakeLock, key: string): LockNode | undefined {
  return Object.hasOwn(lock.nodes, key) ? lock.nodes[key] : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stringAttr(attrs: Record<string, unknown>, key: string): string | null {
  const value = Object.hasOwn(attrs, key) ? attrs[key] : undefined;
  return typeof value === "string" && value !== "" ? value : null;
}

function isoDate(seconds: number | null): string | null {
  if (seconds === null) return null;
  const date = new Date(seconds * 1000);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (isRecord(value)) {
    const keys = Object.keys(value).sort(byCodeUnit);
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
