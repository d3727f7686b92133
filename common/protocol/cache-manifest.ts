import * as z from "zod";
import { HostName, Sha1 } from "./hosts.ts";
import { StorePath } from "./reports.ts";

// ---------------------------------------------------------------------------
// Builder → host: the signed statement of which system each host should run

/** A detached Ed25519 signature in Nix's format, `KEYNAME:BASE64` of 64 bytes (as on a narinfo's `Sig:` line). */
export const NixSignatureText = z
  .string()
  .max(300)
  .regex(/^[^:\s]+:[A-Za-z0-9+/]{86}==$/, "not a Nix signature (KEYNAME:BASE64 of 64 bytes)");

/**
 * What a builder (a builder host or CI) states after building a commit of
 * main: every host's system, by store path. Signed by the builder's own key;
 * the control plane only passes it on.
 */
export const CacheManifest = z
  .object({
    commit: Sha1,
    /** The commit's git tree: two commits with one tree build the same systems. */
    tree: Sha1,
    /** When the builder made the manifest, UTC; a host never takes one older than the one it runs. */
    created: z.iso.datetime(),
    hosts: z.record(HostName, StorePath).refine((hosts) => Object.keys(hosts).length > 0, "name at least one host"),
  })
  .strict();
export type CacheManifest = z.infer<typeof CacheManifest>;

/** A manifest with the signatures over its canonical bytes (common/cache-manifest.ts). */
export const SignedCacheManifest = z
  .object({
    manifest: CacheManifest,
    signatures: z.array(NixSignatureText).max(16),
  })
  .strict();
export type SignedCacheManifest = z.infer<typeof SignedCacheManifest>;

/** The Worker's answer to a manifest it stored (`PUT /cache/manifests/<commit>`). */
export const CacheManifestPublished = z.object({ commit: Sha1, hosts: z.number().int().positive() });
export type CacheManifestPublished = z.infer<typeof CacheManifestPublished>;
