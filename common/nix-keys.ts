/**
 * Nix's Ed25519 signing keys and detached signatures, in Nix's own text
 * format: `NAME:BASE64` for a public key (32 bytes), a secret key (64 bytes:
 * the seed, then the public key, as libsodium keeps them; what
 * `nix-store --generate-binary-cache-key` writes) and a signature (64 bytes,
 * as on a narinfo's `Sig:` line).
 *
 * Pure on purpose: standard JS and WebCrypto only, so the Worker (checking a
 * narinfo's signature), the agent and builders share one reading of a key.
 */

// Every runtime this module targets has these; the ES lib typings alone do not
// declare them, and pulling in DOM or Node typings would make the module less pure.
type WebCryptoKey = { readonly type: string };
type Ed25519 = { readonly name: "Ed25519" };
declare const crypto: {
  readonly subtle: {
    importKey(format: "raw" | "pkcs8", keyData: Uint8Array, algorithm: Ed25519, extractable: false, usages: readonly ("sign" | "verify")[]): Promise<WebCryptoKey>;
    sign(algorithm: Ed25519, key: WebCryptoKey, data: Uint8Array): Promise<ArrayBuffer>;
    verify(algorithm: Ed25519, key: WebCryptoKey, signature: Uint8Array, data: Uint8Array): Promise<boolean>;
  };
};
declare const TextEncoder: new () => { encode(input: string): Uint8Array };
declare function atob(data: string): string;
declare function btoa(data: string): string;

const ED25519: Ed25519 = { name: "Ed25519" };
// The DER of a PKCS #8 Ed25519 private key up to its 32-byte seed (RFC 8410):
// WebCrypto imports a private key as PKCS #8 or JWK, not as a bare seed.
const PKCS8_ED25519_PREFIX = Uint8Array.of(0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20);

/** A key or signature that is not in Nix's `NAME:BASE64` format; the message says which part is wrong. */
export class NixKeyError extends Error {
  override name = "NixKeyError";
}

/** A Nix public key, read: its name and its 32 bytes. */
export interface NixPublicKey {
  readonly name: string;
  readonly key: Uint8Array;
}

/** A Nix secret key, read: its name, the 32-byte seed and the public key it carries. */
export interface NixSecretKey {
  readonly name: string;
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** A detached signature, read: the name of the key that made it and its 64 bytes. */
export interface NixSignature {
  readonly keyName: string;
  readonly signature: Uint8Array;
}

function splitNamed(text: string, what: string, bytes: number): { name: string; data: Uint8Array } {
  const colon = text.indexOf(":");
  if (colon <= 0) throw new NixKeyError(`a Nix ${what} reads NAME:BASE64; this one has no name before a colon`);
  const name = text.slice(0, colon);
  const encoded = text.slice(colon + 1);
  if (/\s/.test(name)) throw new NixKeyError(`the name of a Nix ${what} has no spaces (got ${JSON.stringify(name)})`);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(encoded) || encoded.length % 4 !== 0) {
    throw new NixKeyError(`the ${what} ${JSON.stringify(name)} is not base64 after its colon`);
  }
  const data = fromBase64(encoded);
  if (data.length !== bytes) throw new NixKeyError(`the ${what} ${JSON.stringify(name)} holds ${data.length} bytes, not ${bytes}`);
  return { name, data };
}

/** Reads a public key as Nix writes it (`trusted-public-keys`, the public key file). */
export function parseNixPublicKey(text: string): NixPublicKey {
  const { name, data } = splitNamed(text.trim(), "public key", 32);
  return { name, key: data };
}

/** Reads a secret key as `nix-store --generate-binary-cache-key` writes it. */
export function parseNixSecretKey(text: string): NixSecretKey {
  const { name, data } = splitNamed(text.trim(), "secret key", 64);
  return { name, seed: data.slice(0, 32), publicKey: data.slice(32) };
}

/** Reads a detached signature as a narinfo's `Sig:` line carries it. */
export function parseNixSignature(text: string): NixSignature {
  const { name, data } = splitNamed(text.trim(), "signature", 64);
  return { keyName: name, signature: data };
}

/** The public key of a secret key, in Nix's text format. */
export function nixPublicKeyText(secretKey: NixSecretKey): string {
  return `${secretKey.name}:${toBase64(secretKey.publicKey)}`;
}

const encode = (message: string | Uint8Array): Uint8Array => (typeof message === "string" ? new TextEncoder().encode(message) : message);

/** Signs `message` as Nix does (Ed25519 over the bytes): the result is `NAME:BASE64`. */
export async function signDetached(secretKey: NixSecretKey, message: string | Uint8Array): Promise<string> {
  const pkcs8 = new Uint8Array(PKCS8_ED25519_PREFIX.length + 32);
  pkcs8.set(PKCS8_ED25519_PREFIX);
  pkcs8.set(secretKey.seed, PKCS8_ED25519_PREFIX.length);
  const key = await crypto.subtle.importKey("pkcs8", pkcs8, ED25519, false, ["sign"]);
  const signature = new Uint8Array(await crypto.subtle.sign(ED25519, key, encode(message)));
  return `${secretKey.name}:${toBase64(signature)}`;
}

/**
 * How a detached signature fares against a list of trusted keys:
 * `valid` (a key of its name verifies it), `unknown-key` (no trusted key has
 * its name) or `invalid` (a trusted key has its name, and none verifies it).
 */
export interface SignatureCheck {
  readonly outcome: "valid" | "unknown-key" | "invalid";
  readonly keyName: string;
}

/** Checks one signature over `message` against the trusted keys, matching by name as Nix does. */
export async function checkDetached(trustedKeys: readonly NixPublicKey[], message: string | Uint8Array, signature: NixSignature): Promise<SignatureCheck> {
  const candidates = trustedKeys.filter((key) => key.name === signature.keyName);
  if (candidates.length === 0) return { outcome: "unknown-key", keyName: signature.keyName };
  const data = encode(message);
  for (const candidate of candidates) {
    const key = await crypto.subtle.importKey("raw", candidate.key, ED25519, false, ["verify"]);
    if (await crypto.subtle.verify(ED25519, key, signature.signature, data)) return { outcome: "valid", keyName: signature.keyName };
  }
  return { outcome: "invalid", keyName: signature.keyName };
}

function fromBase64(encoded: string): Uint8Array {
  const binary = atob(encoded);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}
