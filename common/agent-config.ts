/**
 * The agent's config file. The Nix modules write it (pkgs.formats.json) and the
 * agent reads it; a test renders the modules' output and parses it with this
 * same schema, so the two cannot drift.
 */
import * as z from "zod";
import { ActivationMode, HostName, FlakeAttr, Platform } from "./protocol.ts";

export const TestCommand = z.strictObject({
  name: z.string().min(1).max(200),
  /** Run with `sh -c`; exit 0 passes. */
  command: z.string().min(1),
});

export const AgentConfig = z.strictObject({
  /** Base URL of the control plane, e.g. https://fleet.example.com */
  url: z.url({ protocol: /^https?$/ }),
  /** Path to a file holding the host's agent token. Never the token itself. */
  tokenFile: z.string().min(1),
  hostName: HostName,
  platform: Platform,
  /** Where the agent keeps its own clone of the configuration repository. */
  repoUrl: z.string().min(1),
  branch: z.string().min(1).default("main"),
  /** Attribute under nixosConfigurations / darwinConfigurations / homeConfigurations. */
  flakeAttr: FlakeAttr.optional(),
  /** The agent's state: its clone, detached command records. */
  stateDir: z.string().min(1),
  pollTimeoutSeconds: z.number().int().min(5).max(600).default(90),
  tests: z
    .strictObject({
      /** A directory whose executable files are the tests. */
      directory: z.string().min(1).optional(),
      commands: z.array(TestCommand).default([]),
    })
    .default({ commands: [] }),
  autoTestAfterSwitch: z.boolean().default(false),
  /** How a switch activates when the command names no mode (docs/hosts.md "Activation modes and reboots"); NixOS only for all but `switch`. */
  activation: ActivationMode.default("switch"),
  rollout: z
    .strictObject({
      autoUpdate: z.boolean().default(true),
      priority: z.number().int().default(100),
      canary: z.boolean().default(false),
    })
    .default({ autoUpdate: true, priority: 100, canary: false }),
  /** The desired system: the host's configuration evaluated at main's head (docs/hosts.md "The desired system"). */
  desired: z
    .strictObject({
      /** `local`: the agent evaluates; `ci`: it evaluates nothing and the control plane uses what CI publishes. */
      evaluate: z.enum(["local", "ci"]).default("local"),
      /** systemd's `MemoryMax` for the evaluation's own unit (where it runs in one); null for no cap. */
      memoryMax: z.string().regex(/^\d+[KMGT]?$/, "a size such as 2G or 512M").nullable().default("2G"),
      /** The evaluation starts after a random delay up to this, so a fleet does not evaluate in the same second. */
      maxDelaySeconds: z.number().int().min(0).max(3600).default(300),
      /** Killed after this long. */
      timeoutSeconds: z.number().int().min(1).max(86_400).default(1800),
      /** Killed once it printed more than this (nix's traces can run to megabytes). */
      outputLimitBytes: z.number().int().min(1024).default(4 * 1024 * 1024),
    })
    .default({ evaluate: "local", memoryMax: "2G", maxDelaySeconds: 300, timeoutSeconds: 1800, outputLimitBytes: 4 * 1024 * 1024 }),
  /**
   * How a switch gets the new system (docs/cache.md "Substitute mode"): `build` evaluates and builds the
   * clone's configuration here; `substitute` takes the store path that a builder's signed manifest names
   * for this host at the clone's commit, fetches it from the caches and activates it, evaluating nothing.
   */
  switch: z.enum(["build", "substitute"]).default("build"),
  substitute: z
    .strictObject({
      /** The builders' public keys, as Nix writes them (NAME:BASE64): a manifest none of them signed is refused. */
      trustedKeys: z.array(z.string().min(1).max(300)).default([]),
      /** With no manifest for the commit yet, switch by building instead of failing. */
      buildWithoutManifest: z.boolean().default(false),
    })
    .default({ trustedKeys: [], buildWithoutManifest: false }),
  /**
   * A builder host (settings `fleetBuild.builders`, docs/fleet-build.md "Builder hosts"): what it signs
   * and uploads the hosts' systems with. Null: this host builds for no other host.
   */
  builder: z
    .strictObject({
      /** `nix-store --generate-binary-cache-key`'s secret key: signs the closures and the manifest; its public key is in CACHE_TRUSTED_KEYS. */
      secretKeyFile: z.string().min(1),
      /** A file holding the cache token (`POST /api/cache-token`): the one token the cache takes uploads from. */
      cacheTokenFile: z.string().min(1),
    })
    .nullable()
    .default(null),
  /** Extra directories prepended to PATH for every command the agent runs. */
  extraPath: z.array(z.string()).default([]),
  /** Paths of the host tools, so tests (and unusual hosts) can swap them. */
  tools: z
    .strictObject({
      git: z.string().default("git"),
      nix: z.string().default("nix"),
      nixosRebuild: z.string().default("nixos-rebuild"),
      darwinRebuild: z.string().default("darwin-rebuild"),
      homeManager: z.string().default("home-manager"),
      systemctl: z.string().default("systemctl"),
      /**
       * Run as `<activateSystem> <store path>` to point the system profile at a store path and activate it
       * (the safety net's rollback). Unset: the platform's own (NixOS: `nix-env --set`, then `switch-to-configuration switch`).
       */
      activateSystem: z.string().optional(),
      /**
       * Run as `<installBootMenu> <store path>` after a `gc` deleted generations, to rewrite the boot menu from
       * the profile's generations. Unset: the platform's own (NixOS: `<system>/bin/switch-to-configuration boot`).
       */
      installBootMenu: z.string().optional(),
      /** Run (no arguments) to reboot the host. Unset: the platform's own (NixOS: `systemctl reboot`, nix-darwin: `shutdown -r now`). */
      reboot: z.string().optional(),
      /** Detaches a switch from the agent's own service: `systemd-run` on NixOS, `setsid` elsewhere. */
      detach: z.enum(["systemd-run", "setsid", "none"]).default("setsid"),
      /**
       * How the safety net's watchdog is started, when not as `detach`: a launchd job of its own on macOS
       * (`launchd`), a unit of the user's systemd for Home Manager on Linux (`systemd-run-user`), so it
       * outlives the agent's service that the activation restarts.
       */
      watchdogDetach: z.enum(["systemd-run", "systemd-run-user", "launchd", "setsid", "none"]).optional(),
    })
    .default({
      git: "git",
      nix: "nix",
      nixosRebuild: "nixos-rebuild",
      darwinRebuild: "darwin-rebuild",
      homeManager: "home-manager",
      systemctl: "systemctl",
      detach: "setsid",
    }),
  /**
   * NixOS: after a switch, any failed systemd unit fails it (what `systemctl --failed` shows a careful
   * admin). Skipped where systemd is not running (`systemdRuntimeDir` missing, as sd_booted() checks).
   */
  checkFailedUnits: z.boolean().default(true),
  systemdRuntimeDir: z.string().default("/run/systemd/system"),
  /** The link whose target is the running system (NixOS: /run/current-system). */
  currentSystemLink: z.string().optional(),
  /** NixOS: the system the host booted, and the profile it boots next; their kernels say whether a reboot is due. */
  bootedSystemLink: z.string().default("/run/booted-system"),
  systemProfileLink: z.string().default("/nix/var/nix/profiles/system"),
  /**
   * The host's own safety net (docs/hosts.md "When a switch goes wrong on the host"): before a switch the
   * agent records the running system and arms a watchdog that goes back to it unless the new agent
   * confirms within `confirmTimeoutSeconds` of the activation.
   */
  safetyNet: z
    .strictObject({
      enable: z.boolean().default(true),
      confirmTimeoutSeconds: z.number().int().min(1).max(3600).default(120),
    })
    .default({ enable: true, confirmTimeoutSeconds: 120 }),
  /**
   * Free space checked before a switch (docs/hosts.md "Space checks"): the store's filesystem before
   * anything is built, `/boot` (when it is its own filesystem) after the build and before the activation.
   */
  spaceCheck: z
    .strictObject({
      enable: z.boolean().default(true),
      /** Bytes that must be free on the store's filesystem. */
      storeMinFree: z.number().int().nonnegative().default(2 * 1024 ** 3),
      /** Bytes that must be free on /boot beyond the new kernel and initrd. */
      bootMargin: z.number().int().nonnegative().default(16 * 1024 ** 2),
      storeDir: z.string().min(1).default("/nix/store"),
      bootDir: z.string().min(1).default("/boot"),
      /** /boot is its own filesystem when its device differs from this directory's. */
      rootDir: z.string().min(1).default("/"),
    })
    .default({ enable: true, storeMinFree: 2 * 1024 ** 3, bootMargin: 16 * 1024 ** 2, storeDir: "/nix/store", bootDir: "/boot", rootDir: "/" }),
  /**
   * What a `gc` command keeps besides the booted, the current and the safety net's generations
   * (docs/hosts.md "Generations and garbage collection"). Null: the fleet's default the command
   * carries (settings `gc`), else 5 generations and 14 days.
   */
  gc: z
    .strictObject({
      keepGenerations: z.number().int().min(1).max(200).nullable().default(null),
      keepDays: z.number().nonnegative().max(3650).nullable().default(null),
    })
    .default({ keepGenerations: null, keepDays: null }),
  /** Changes at every boot (Linux); the safety net tells a reboot by it. */
  bootIdFile: z.string().default("/proc/sys/kernel/random/boot_id"),
  logLevel: z.enum(["debug", "info", "warn", "error"]).default("info"),
});
export type AgentConfig = z.infer<typeof AgentConfig>;
export type AgentConfigInput = z.input<typeof AgentConfig>;
