/**
 * The signed intent manifest: a builder's signed statement of which store
 * path each host should run for a commit of main, and the rule by which a
 * host takes one.
 *
 * Why a host needs it besides the cache's own signatures: a narinfo's
 * signature proves who built a path, not which path a host should run. A
 * control plane that could only relay signed paths could still point a host
 * at another host's system or at an old, vulnerable generation; a manifest
 * signed by the builder, naming the host and never older than the one it
 * runs, leaves it no such choice.
 *
 * Pure: zod and WebCrypto (common/nix-keys.ts), for builders, hosts and tests alike.
 */
import { CacheManifest, SignedCacheManifest } from "./protocol.ts";
import { checkDetached, parseNixSignature, signDetached } from "./nix-keys.ts";
import type { NixPublicKey, NixSecretKey, SignatureCheck } from "./nix-keys.ts";

// A builder's key also signs narinfos; the context keeps a signature over one
// from ever reading as a signature over the other (a narinfo's fingerprint
// starts with "1;/nix/store/").
const SIGNING_CONTEXT = "nixfleet-cache-manifest-1\n";

declare const TextEncoder: new () => { encode(input: string): Uint8Array };

/**
 * The bytes a signature covers: a fixed context line, then the manifest as
 * JSON with its keys in one order and its hosts sorted by name, so any
 * builder and any host compute the same bytes for the same manifest.
 */
export function manifestSigningBytes(manifest: CacheManifest): Uint8Array {
  const hosts = Object.keys(manifest.hosts)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((name) => [name, manifest.hosts[name]]);
  const canonical = JSON.stringify({ commit: manifest.commit, tree: manifest.tree, created: manifest.created, hosts: Object.fromEntries(hosts) });
  return new TextEncoder().encode(SIGNING_CONTEXT + canonical);
}

/** Signs a manifest with a builder's secret key (what a builder host or CI does after its build). */
export async function signManifest(manifest: CacheManifest, secretKey: NixSecretKey): Promise<SignedCacheManifest> {
  const parsed = CacheManifest.parse(manifest);
  return { manifest: parsed, signatures: [await signDetached(secretKey, manifestSigningBytes(parsed))] };
}

/**
 * Whether a signed manifest carries a valid signature by one of the trusted
 * keys: `valid` as soon as one does; else `invalid` when a trusted key's name
 * signed but the signature does not verify, `unknown-key` when no trusted key
 * signed, `unsigned` without signatures.
 */
export async function verifyManifest(signed: SignedCacheManifest, trustedKeys: readonly NixPublicKey[]): Promise<SignatureCheck["outcome"] | "unsigned"> {
  if (signed.signatures.length === 0) return "unsigned";
  const bytes = manifestSigningBytes(signed.manifest);
  let outcome: SignatureCheck["outcome"] = "unknown-key";
  for (const signature of signed.signatures) {
    const check = await checkDetached(trustedKeys, bytes, parseNixSignature(signature));
    if (check.outcome === "valid") return "valid";
    if (check.outcome === "invalid") outcome = "invalid";
  }
  return outcome;
}

/** Why a host refuses a manifest. */
export type ManifestRefusal = "malformed" | "unsigned" | "unknown-key" | "bad-signature" | "not-for-host" | "older";

/** The manifest the host runs now (null before its first one). */
export interface RunningManifest {
  readonly commit: string;
  readonly created: string;
}

export type ManifestDecision =
  | { readonly accepted: true; readonly storePath: string; readonly manifest: CacheManifest }
  | { readonly accepted: false; readonly reason: ManifestRefusal; readonly message: string };

/**
 * A host's rule for a manifest it is handed: it takes the store path the
 * manifest names for it only when the manifest is well-formed (every path a
 * store path), signed by a key the host trusts, names this host, and is not
 * older than the manifest the host runs, unless it is for the same commit.
 */
export async function acceptManifest(
  input: unknown,
  host: { readonly hostName: string; readonly trustedKeys: readonly NixPublicKey[]; readonly running: RunningManifest | null },
): Promise<ManifestDecision> {
  const parsed = SignedCacheManifest.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue ? issue.path.join(".") : "";
    return refuse("malformed", `the manifest is malformed: ${where ? `${where}: ` : ""}${issue?.message ?? "unreadable"}`);
  }
  const signed = parsed.data;
  const signers = signed.signatures.map((signature) => signature.slice(0, signature.indexOf(":"))).join(", ");
  switch (await verifyManifest(signed, host.trustedKeys)) {
    case "unsigned":
      return refuse("unsigned", "the manifest is not signed");
    case "unknown-key":
      return refuse("unknown-key", `the manifest is signed only by keys this host does not trust (${signers}); trusted: ${host.trustedKeys.map((key) => key.name).join(", ") || "none"}`);
    case "invalid":
      return refuse("bad-signature", `the manifest's signature by ${signers} does not verify: it was changed after signing, or signed by another key of that name`);
    case "valid":
      break;
  }
  const { manifest } = signed;
  const storePath = manifest.hosts[host.hostName];
  if (storePath === undefined) {
    return refuse("not-for-host", `the manifest for ${manifest.commit} names no system for ${host.hostName} (it names ${Object.keys(manifest.hosts).join(", ")})`);
  }
  const running = host.running;
  if (running !== null && running.commit !== manifest.commit && Date.parse(manifest.created) < Date.parse(running.created)) {
    return refuse(
      "older",
      `the manifest for ${manifest.commit} was made ${manifest.created}, before the one this host runs (${running.commit}, ${running.created}); going back takes an explicit rollback`,
    );
  }
  return { accepted: true, storePath, manifest };
}

function refuse(reason: ManifestRefusal, message: string): ManifestDecision {
  return { accepted: false, reason, message };
}
