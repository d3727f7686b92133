import * as z from "zod";

// ---------------------------------------------------------------------------
// Hosts

export const PLATFORMS = ["nixos", "darwin", "home-manager"] as const;
export const Platform = z.enum(PLATFORMS);
export type Platform = z.infer<typeof Platform>;

/** DNS-label-like, because host names end up in URLs, unit names and flake attributes. */
export const HostName = z
  .string()
  .min(1, "host name is empty")
  .max(63, "host name is longer than 63 characters")
  .regex(
    /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/,
    "host name may contain only lowercase letters, digits and inner hyphens (like a DNS label)",
  );

/** A flake output attribute such as `hsb0`, `"my.host"` or Home Manager's `alice@laptop`; no spaces, no `#`. */
export const FlakeAttr = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9_.'"@-]+$/, "flake attribute may not contain spaces, '#' or shell characters");

export const CreateHostRequest = z.strictObject({
  name: HostName,
  platform: Platform,
  flakeAttr: FlakeAttr.optional(),
});
export type CreateHostRequest = z.infer<typeof CreateHostRequest>;

/** A Nix system type, as `builtins.currentSystem` says it: `x86_64-linux`, `aarch64-darwin`. */
export const NixSystem = z.string().regex(/^[a-z0-9_]+-(linux|darwin)$/, "not a Nix system type such as x86_64-linux or aarch64-darwin");

/** Defined before the commands, whose deliveries name commits. */
export const Sha1 = z.string().regex(/^[0-9a-f]{40}$/, "not a full git sha");
