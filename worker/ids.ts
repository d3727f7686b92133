const base64url = (bytes: Uint8Array): string =>
  btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");

const randomBytes = (n: number): Uint8Array => crypto.getRandomValues(new Uint8Array(n));

/** `cmd_3kq…`: prefixed so a stray id in a log says what it is. */
export const newId = (prefix: "host" | "cmd" | "tok" | "ro" | "set" | "nd" | "fb" | "ch" | "ci" | "ct"): string => `${prefix}_${base64url(randomBytes(16))}`;

/** 256 random bits; shown once, only its hash is stored. */
export const newAgentToken = (): string => `nfa_${base64url(randomBytes(32))}`;

/** CI's token for `POST /api/desired` (and nothing else): 256 random bits, shown once, only its hash stored. */
export const newCiToken = (): string => `nfci_${base64url(randomBytes(32))}`;

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The binary cache's upload token (it reads the cache too, and does nothing else): 256 random bits, shown once, only its hash stored. */
export const newCacheToken = (): string => `nfc_${base64url(randomBytes(32))}`;
