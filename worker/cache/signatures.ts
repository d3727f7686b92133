/**
 * Who may put a path into the binary cache: a narinfo signed (Ed25519, over Nix's fingerprint) by one of
 * the keys in CACHE_TRUSTED_KEYS. The Worker holds no signing key; it only checks (docs/cache.md).
 */
import { narInfoFingerprint, splitNamed, type NarInfo } from "../../common/narinfo.ts";
import { refuse, type Refusal } from "../outcome.ts";

const base64Bytes = (text: string): Uint8Array | null => {
  try {
    return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
  } catch {
    return null;
  }
};

/** `name:base64key …` (Nix's trusted-public-keys format) → name → the 32-byte public key. A malformed entry is named. */
export function parseTrustedKeys(text: string | undefined): { keys: Map<string, Uint8Array> } | { error: string } {
  const keys = new Map<string, Uint8Array>();
  for (const entry of (text ?? "").split(/\s+/).filter((item) => item !== "")) {
    const { name, base64 } = splitNamed(entry);
    const key = name === "" || base64 === "" ? null : base64Bytes(base64);
    if (key === null || key.length !== 32) return { error: `CACHE_TRUSTED_KEYS: "${entry}" is not name:base64 of a 32-byte Ed25519 public key` };
    keys.set(name, key);
  }
  return { keys };
}

/**
 * Null when a signature on `info` by a trusted key verifies; else why not. Nix itself accepts a path when
 * any one of its signatures is by a key it trusts, and so does this.
 */
export async function checkNarInfoSignature(info: NarInfo, trustedKeysText: string | undefined): Promise<Refusal | null> {
  const trusted = parseTrustedKeys(trustedKeysText);
  if ("error" in trusted) return refuse(503, "cache_keys_invalid", trusted.error);
  if (trusted.keys.size === 0) return refuse(503, "cache_keys_missing", "CACHE_TRUSTED_KEYS names no key, so no upload can be trusted: set it to the builders' public keys (docs/cache.md)");
  if (info.sigs.length === 0) return refuse(403, "narinfo_unsigned", `${info.storePath} carries no signature: upload with nix copy --to '…?secret-key=<file>' (docs/cache.md)`);
  const fingerprint = new TextEncoder().encode(narInfoFingerprint(info));
  const byTrustedKeys = info.sigs.map(splitNamed).filter((sig) => trusted.keys.has(sig.name));
  if (byTrustedKeys.length === 0) {
    const names = [...new Set(info.sigs.map((sig) => splitNamed(sig).name))].join(", ");
    return refuse(403, "narinfo_key_untrusted", `${info.storePath} is signed by ${names}, none of them in CACHE_TRUSTED_KEYS`);
  }
  for (const sig of byTrustedKeys) {
    const signature = base64Bytes(sig.base64);
    if (signature === null || signature.length !== 64) continue;
    const key = await crypto.subtle.importKey("raw", trusted.keys.get(sig.name)!, { name: "Ed25519" }, false, ["verify"]);
    if (await crypto.subtle.verify({ name: "Ed25519" }, key, signature, fingerprint)) return null;
  }
  return refuse(403, "narinfo_signature_invalid", `the signature of ${info.storePath} by ${byTrustedKeys.map((sig) => sig.name).join(", ")} does not verify: the narinfo was changed after signing, or signed with another key of that name`);
}
