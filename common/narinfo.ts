/**
 * Nix's `.narinfo` files, as the fleet's binary cache stores them (docs/cache.md): parsed with zod, and
 * the fingerprint Nix signs (`ValidPathInfo::fingerprint`): `1;<store path>;<NarHash>;<NarSize>;<references
 * as full store paths, sorted, comma-separated>`.
 */
import * as z from "zod";

export const STORE_DIR = "/nix/store";

/** Nix's own base-32 alphabet: the digits and the letters without e, o, u and t. */
const NIX_BASE32 = "[0-9a-df-np-sv-z]";

/** `<hash>-<name>`: a store path without its directory, as a narinfo's References list them. */
export const StorePathName = z.string().max(250).regex(new RegExp(`^${NIX_BASE32}{32}-[A-Za-z0-9+\\-._?=]+$`), "not a store path name (<hash>-<name>)");

/** The 32-character hash part of a store path, which names its narinfo. */
export const StorePathHash = z.string().regex(new RegExp(`^${NIX_BASE32}{32}$`), "not a store path hash");

/** The file name of a NAR under `nar/`: its FileHash and the extension of its compression, as Nix names it. */
export const NarFileName = z.string().regex(new RegExp(`^${NIX_BASE32}{52}\\.nar(\\.(xz|bz2|zst|lzip|lz4|br))?$`), "not a NAR file name (<base-32 sha256>.nar[.xz|.bz2|.zst|.lzip|.lz4|.br])");

/** `name:base64`: a signature or a public key as Nix writes them. */
const NamedBase64 = z.string().regex(/^[^:\s]+:[A-Za-z0-9+/]+={0,2}$/, "not name:base64");

export const NarInfo = z.object({
  storePath: z.string().regex(new RegExp(`^${STORE_DIR}/${NIX_BASE32}{32}-[A-Za-z0-9+\\-._?=]+$`), `not a store path under ${STORE_DIR}`),
  /** Where the NAR is, relative to the cache: always `nar/<file>` in this one. */
  url: z.string().refine((url) => url.startsWith("nar/") && NarFileName.safeParse(url.slice(4)).success, "must be nar/<file>, the file named as Nix names it"),
  compression: z.string().optional(),
  fileHash: z.string().optional(),
  fileSize: z.coerce.number().int().nonnegative().optional(),
  /** Nix writes (and signs) the base-32 form; another form would make another fingerprint. */
  narHash: z.string().regex(new RegExp(`^sha256:${NIX_BASE32}{52}$`), "NarHash must be sha256:<base-32>, as Nix writes it"),
  narSize: z.coerce.number().int().positive(),
  references: z.array(StorePathName),
  deriver: z.string().optional(),
  sigs: z.array(NamedBase64),
  ca: z.string().optional(),
});
export type NarInfo = z.infer<typeof NarInfo>;

/** Nix's key → the field; References and Sig are lists, read apart. */
const FIELDS: Record<string, keyof NarInfo> = {
  StorePath: "storePath",
  URL: "url",
  Compression: "compression",
  FileHash: "fileHash",
  FileSize: "fileSize",
  NarHash: "narHash",
  NarSize: "narSize",
  Deriver: "deriver",
  CA: "ca",
};

export class NarInfoError extends Error {}

/** Parses a narinfo's text; throws a `NarInfoError` that says what is wrong. Unknown keys are ignored, as Nix does. */
export function parseNarInfo(text: string): NarInfo {
  const fields: Record<string, unknown> = { references: [], sigs: [] };
  for (const [index, line] of text.split("\n").entries()) {
    if (line.trim() === "") continue;
    const colon = line.indexOf(": ");
    if (colon <= 0) throw new NarInfoError(`line ${index + 1} is not "Key: value"`);
    const key = line.slice(0, colon);
    const value = line.slice(colon + 2);
    if (key === "References") fields.references = value.trim() === "" ? [] : value.trim().split(/ +/);
    else if (key === "Sig") (fields.sigs as string[]).push(value);
    else if (key in FIELDS) {
      const field = FIELDS[key]!;
      if (field in fields) throw new NarInfoError(`${key} is given twice`);
      fields[field] = value;
    }
  }
  const parsed = NarInfo.safeParse(fields);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path[0];
    const key = field === "references" ? "References" : field === "sigs" ? "Sig" : (Object.entries(FIELDS).find(([, name]) => name === field)?.[0] ?? String(field));
    throw new NarInfoError(`${key}: ${issue.code === "invalid_type" ? "missing" : issue.message}`);
  }
  return parsed.data;
}

/** The hash part of a store path: what names its narinfo. */
export const storePathHash = (storePath: string): string => storePath.slice(STORE_DIR.length + 1, STORE_DIR.length + 33);

/** The text Nix signs and checks for a path (ValidPathInfo::fingerprint). */
export function narInfoFingerprint(info: Pick<NarInfo, "storePath" | "narHash" | "narSize" | "references">): string {
  const references = info.references.map((name) => `${STORE_DIR}/${name}`).sort();
  return `1;${info.storePath};${info.narHash};${info.narSize};${references.join(",")}`;
}

/** Splits `name:base64` at its first colon. */
export function splitNamed(text: string): { name: string; base64: string } {
  const colon = text.indexOf(":");
  return { name: text.slice(0, colon), base64: text.slice(colon + 1) };
}
