/**
 * Who may put a path or a manifest into the binary cache: a narinfo signed (Ed25519, over Nix's
 * fingerprint), or a signed intent manifest, by one of the keys in CACHE_TRUSTED_KEYS. The Worker holds
 * no signing key; it only checks, with the same reading of Nix's keys as hosts and builders
 * (common/nix-keys.ts, common/cache-manifest.ts; docs/cache.md).
 */
import { verifyManifest } from "../../common/cache-manifest.ts";
import { narInfoFingerprint, type NarInfo } from "../../common/narinfo.ts";
import { checkDetached, NixKeyError, parseNixPublicKey, parseNixSignature, type NixPublicKey, type NixSignature } from "../../common/nix-keys.ts";
import type { SignedCacheManifest } from "../../common/protocol.ts";
import { refuse, type Refusal } from "../outcome.ts";

/** `name:base64key …` (Nix's trusted-public-keys format) → the keys, or the refusal that names a malformed entry or an empty list. */
export function trustedKeys(text: string | undefined): { keys: NixPublicKey[] } | Refusal {
  const keys: NixPublicKey[] = [];
  for (const entry of (text ?? "").split(/\s+/).filter((item) => item !== "")) {
    try {
      keys.push(parseNixPublicKey(entry));
    } catch (error) {
      if (!(error instanceof NixKeyError)) throw error;
      return refuse(503, "cache_keys_invalid", `CACHE_TRUSTED_KEYS: "${entry}" is not name:base64 of a 32-byte Ed25519 public key (${error.message})`);
    }
  }
  if (keys.length === 0) return refuse(503, "cache_keys_missing", "CACHE_TRUSTED_KEYS names no key, so no upload can be trusted: set it to the builders' public keys (docs/cache.md)");
  return { keys };
}

const readSignature = (text: string): NixSignature | null => {
  try {
    return parseNixSignature(text);
  } catch {
    return null;
  }
};

/**
 * Null when a signature on `info` by a trusted key verifies; else why not. Nix itself accepts a path when
 * any one of its signatures is by a key it trusts, and so does this.
 */
export async function checkNarInfoSignature(info: NarInfo, trustedKeysText: string | undefined): Promise<Refusal | null> {
  const trusted = trustedKeys(trustedKeysText);
  if (!("keys" in trusted)) return trusted;
  if (info.sigs.length === 0) return refuse(403, "narinfo_unsigned", `${info.storePath} carries no signature: upload with nix copy --to '…?secret-key=<file>' (docs/cache.md)`);
  const fingerprint = narInfoFingerprint(info);
  const names = new Set(trusted.keys.map((key) => key.name));
  const byTrustedKeys = info.sigs.filter((sig) => names.has(sig.slice(0, sig.indexOf(":"))));
  if (byTrustedKeys.length === 0) {
    const signers = [...new Set(info.sigs.map((sig) => sig.slice(0, sig.indexOf(":"))))].join(", ");
    return refuse(403, "narinfo_key_untrusted", `${info.storePath} is signed by ${signers}, none of them in CACHE_TRUSTED_KEYS`);
  }
  for (const text of byTrustedKeys) {
    const signature = readSignature(text);
    if (signature !== null && (await checkDetached(trusted.keys, fingerprint, signature)).outcome === "valid") return null;
  }
  const signers = byTrustedKeys.map((sig) => sig.slice(0, sig.indexOf(":"))).join(", ");
  return refuse(403, "narinfo_signature_invalid", `the signature of ${info.storePath} by ${signers} does not verify: the narinfo was changed after signing, or signed with another key of that name`);
}

/** Null when a signature on the manifest by a key in CACHE_TRUSTED_KEYS verifies; else why not. */
export async function checkManifestSignature(signed: SignedCacheManifest, trustedKeysText: string | undefined): Promise<Refusal | null> {
  const trusted = trustedKeys(trustedKeysText);
  if (!("keys" in trusted)) return trusted;
  const signers = signed.signatures.map((sig) => sig.slice(0, sig.indexOf(":"))).join(", ");
  switch (await verifyManifest(signed, trusted.keys)) {
    case "valid":
      return null;
    case "unsigned":
      return refuse(403, "manifest_unsigned", `the manifest for ${signed.manifest.commit} carries no signature: sign it with the builder's key (nixfleet-agent cache push --manifest, docs/cache.md)`);
    case "unknown-key":
      return refuse(403, "manifest_key_untrusted", `the manifest for ${signed.manifest.commit} is signed by ${signers}, none of them in CACHE_TRUSTED_KEYS`);
    case "invalid":
      return refuse(403, "manifest_signature_invalid", `the signature of the manifest for ${signed.manifest.commit} by ${signers} does not verify: it was changed after signing, or signed with another key of that name`);
  }
}
