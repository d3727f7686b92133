import * as z from "zod";
import { HostName, NixSystem } from "./hosts.ts";
import { AlertSettings, NotificationChannel, SubmittedChannel } from "./notifications.ts";
import { DeployStrategy, MaintenanceWindow, MergeMethod, RollbackStrategy } from "./rollouts.ts";

// ---------------------------------------------------------------------------
// Settings (defaults in worker/settings.ts)

/**
 * The fleet's settings. Every field has its default, so `Settings.parse({})` is the default settings.
 * Strict at every level: `PUT /api/settings` refuses a key it does not know instead of dropping it.
 */
export const Settings = z.strictObject({
  /** Revision of the stored settings; 0 for the defaults from the `wrangler.toml` vars. */
  version: z.number().int().nonnegative().default(0),
  /** Spec 002's switch for the whole update-PR feature: off = no fleet builds, no automation, no update-PR notifications. */
  flakeUpdates: z.strictObject({ enabled: z.boolean().default(true) }).prefault({}),
  automation: z
    .strictObject({
      enabled: z.boolean().default(false),
      /** Fractions allowed: tests and impatient people use seconds. */
      mergeDelayMinutes: z.number().nonnegative().max(7 * 24 * 60).default(60),
      mergeMethod: MergeMethod.default("merge"),
      requireCi: z.boolean().default(true),
      /** With `requireCi`: after this long with no check or status on a PR head, the banner says CI may be missing. */
      ciMissingAfterMinutes: z.number().nonnegative().max(7 * 24 * 60).default(30),
      /** On for new installations (fleet builds are on by default); worker/settings.ts follows `FLEET_BUILD_ON_UPDATE_PR`. */
      requireFleetBuild: z.boolean().default(true),
      deployStrategy: DeployStrategy.default("all"),
    })
    .prefault({}),
  rollout: z
    .strictObject({
      /** Canary hosts picked by priority when no host sets `canary = true`; 0 = no canary wave then. */
      canary: z.number().int().nonnegative().default(1),
      /** Hosts per wave after the canary; null = a quarter of the rollout's hosts, at least 1. */
      waveSize: z.number().int().positive().nullable().default(null),
      soakSeconds: z.number().int().nonnegative().default(0),
      canarySoakSeconds: z.number().int().nonnegative().default(300),
    })
    .prefault({}),
  rollback: z
    .strictObject({
      /** Spec 002's default: undo the merge on the branch, so the hosts' next deploy goes back to the old lock. */
      strategy: RollbackStrategy.default("revert-commit"),
      /** Also send `rollback` to every host that already switched to the failed commit. */
      rollbackHosts: z.boolean().default(false),
    })
    .prefault({}),
  /** Build before deploy (docs/fleet-build.md). */
  fleetBuild: z
    .strictObject({
      /** Queue a `build` of an update PR's head on every host in rollout scope when it opens or its head moves. */
      buildOnUpdatePr: z.boolean().default(true),
      /** A host offline when the build starts keeps the verdict pending (true) or is listed as not built (false). */
      offlineHostsBlock: z.boolean().default(false),
      /** Held and `autoUpdate = false` hosts are built either way; true counts them toward the verdict. */
      countExcludedHosts: z.boolean().default(false),
      /**
       * Who builds: empty, each host builds its own configuration; else one builder host per Nix system
       * type, which builds every host of that system, uploads the closures to the fleet cache signed with
       * its own key and publishes the signed manifest (docs/fleet-build.md "Builder hosts").
       */
      builders: z
        .array(z.strictObject({ system: NixSystem, host: HostName }))
        .max(16)
        .default([])
        .superRefine((builders, ctx) => {
          const seen = new Map<string, string>();
          builders.forEach((builder, index) => {
            const other = seen.get(builder.system);
            if (other !== undefined) ctx.addIssue({ code: "custom", path: [index, "system"], message: `two builders for ${builder.system}: ${other} and ${builder.host}; name one per system type` });
            seen.set(builder.system, builder.host);
          });
        }),
    })
    .prefault({}),
  /** A `gc` command's defaults, carried by the command; a host's own module options (`gc.keepGenerations`, `gc.keepDays`) win. */
  gc: z
    .strictObject({
      keepGenerations: z.number().int().min(1).max(200).default(5),
      keepDays: z.number().nonnegative().max(3650).default(14),
    })
    .prefault({}),
  /**
   * The binary cache (docs/cache.md): public = anyone reads it without a token; uploads always need the cache token.
   * Its clean-up keeps the manifests of main's `keepCommits` last commits and deletes nothing younger than `graceHours`.
   */
  cache: z
    .strictObject({
      public: z.boolean().default(false),
      keepCommits: z.number().int().min(1).max(1000).default(10),
      graceHours: z.number().min(1).max(720).default(24),
    })
    .prefault({}),
  windows: z.array(MaintenanceWindow).default([]),
  /** Host incidents' hold-down times and the Update history's link window (host-red, tests-failed, host-recovered). */
  alerts: AlertSettings.prefault({}),
  notifications: z.array(z.lazy(() => NotificationChannel)).max(20).default([]),
});
export type Settings = z.infer<typeof Settings>;

/**
 * `PUT /api/settings`: the whole object, with the `version` the client read (a stale one is refused with
 * 409). A channel sent without an `id` is new: the Worker assigns it one and answers with it.
 */
export const SettingsUpdate = Settings.extend({
  version: z.number().int().nonnegative(),
  notifications: z.array(z.lazy(() => SubmittedChannel)).max(20).default([]),
});
export type SettingsUpdate = z.input<typeof SettingsUpdate>;
/** A `PUT /api/settings` body once parsed. */
export type SubmittedSettings = z.output<typeof SettingsUpdate>;

/** `GET` and `PUT /api/settings` answer: the settings in force, secrets replaced by `SECRET_PLACEHOLDER`. */
export const SettingsResponse = z.object({ settings: Settings });
export type SettingsResponse = z.infer<typeof SettingsResponse>;
