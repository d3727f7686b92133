/** Requests to the binary cache as Nix and the push command send them, and narinfos signed like Nix signs them. */
import { exports } from "cloudflare:workers";
import { expect } from "vitest";
import { z } from "zod";
import { narInfoFingerprint, splitNamed, type NarInfo } from "../../common/narinfo.ts";
import { TEST_CACHE_KEYS } from "../fixtures/cache-keys.ts";
import { api } from "./helpers.ts";

const base64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const base64url = (bytes: Uint8Array) => base64(bytes).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
const bytesOf = (text: string) => Uint8Array.from(atob(text), (char) => char.charCodeAt(0));

/** HTTP Basic with the token as the password, as Nix sends a netrc entry. */
export const basic = (token: string, user = "hsb0") => `Basic ${btoa(`${user}:${token}`)}`;

export function cacheFetch(path: string, init: { method?: string; token?: string | null; authorization?: string; body?: BodyInit; headers?: Record<string, string> } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.authorization !== undefined) headers.set("authorization", init.authorization);
  else if (init.token) headers.set("authorization", basic(init.token));
  return exports.default.fetch(new Request(`http://localhost/cache${path}`, { method: init.method ?? "GET", headers, body: init.body }));
}

const CacheToken = z.object({ token: z.string() });

/** A new cache token from the admin API (the previous one is revoked). */
export async function newCacheToken(): Promise<string> {
  const res = await api("/api/cache-token", { method: "POST" });
  expect(res.status).toBe(201);
  return CacheToken.parse(await res.json()).token;
}

const NIX_BASE32 = "0123456789abcdfghijklmnpqrsvwxyz";
/** `length` random characters of Nix's base 32. */
export const randomBase32 = (length: number) => Array.from(crypto.getRandomValues(new Uint8Array(length)), (byte) => NIX_BASE32[byte % 32]).join("");

/** A narinfo for a made-up path (its hashes are not of `nar`: the Worker checks signatures and names, Nix checks hashes). */
export function sampleNarInfo(overrides: Partial<NarInfo> = {}): NarInfo {
  const hash = randomBase32(32);
  return {
    storePath: `/nix/store/${hash}-hello-2.12`,
    url: `nar/${randomBase32(52)}.nar.xz`,
    compression: "xz",
    fileHash: `sha256:${randomBase32(52)}`,
    fileSize: 5,
    narHash: `sha256:${randomBase32(52)}`,
    narSize: 1234,
    references: [`${randomBase32(32)}-glibc-2.40`, `${hash}-hello-2.12`],
    sigs: [],
    ...overrides,
  };
}

/** Signs with a Nix secret key (`name:base64(seed ‖ public key)`), as `nix copy --to …?secret-key=` does. */
export async function signed(info: NarInfo, secretKey: string = TEST_CACHE_KEYS.trusted.secret): Promise<NarInfo> {
  const { name, base64: keyText } = splitNamed(secretKey);
  const bytes = bytesOf(keyText);
  const key = await crypto.subtle.importKey("jwk", { kty: "OKP", crv: "Ed25519", d: base64url(bytes.slice(0, 32)), x: base64url(bytes.slice(32)) }, { name: "Ed25519" }, false, ["sign"]);
  const signature = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key, new TextEncoder().encode(narInfoFingerprint(info))));
  return { ...info, sigs: [...info.sigs, `${name}:${base64(signature)}`] };
}

/** The narinfo's text, laid out as Nix writes it. */
export function narInfoText(info: NarInfo): string {
  const lines = [
    `StorePath: ${info.storePath}`,
    `URL: ${info.url}`,
    ...(info.compression === undefined ? [] : [`Compression: ${info.compression}`]),
    ...(info.fileHash === undefined ? [] : [`FileHash: ${info.fileHash}`]),
    ...(info.fileSize === undefined ? [] : [`FileSize: ${info.fileSize}`]),
    `NarHash: ${info.narHash}`,
    `NarSize: ${info.narSize}`,
    `References: ${info.references.join(" ")}`,
    ...info.sigs.map((sig) => `Sig: ${sig}`),
  ];
  return `${lines.join("\n")}\n`;
}

/** `<hash>.narinfo` of the path. */
export const narinfoPath = (info: NarInfo) => `/${info.storePath.slice("/nix/store/".length, "/nix/store/".length + 32)}.narinfo`;

/** Uploads `nar` as the narinfo's NAR, then the narinfo; returns the narinfo PUT's answer. */
export async function upload(token: string, info: NarInfo, nar: Uint8Array = new TextEncoder().encode("a nar")): Promise<Response> {
  const narPut = await cacheFetch(`/${info.url}`, { method: "PUT", token, body: nar });
  expect(narPut.status).toBe(201);
  return cacheFetch(narinfoPath(info), { method: "PUT", token, body: narInfoText(info) });
}
