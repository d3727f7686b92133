import { Hono } from "hono";
import { SettingsUpdate } from "../../common/protocol.ts";
import { replaceSettings, settingsForDisplay } from "../db/settings.ts";
import { coordinator } from "../coordinator.ts";
import type { AppEnv } from "../env.ts";
import { ApiError, refused } from "../errors.ts";
import { listHosts } from "../db/hosts.ts";
import { buildersRefusal } from "../fleet-build/builders.ts";
import { SettingsChangeError } from "../settings-secrets.ts";
import { SettingsError } from "../settings.ts";
import { jsonBody } from "../validation.ts";

/** The vars' defaults do not parse and nothing is stored over them: say which var. */
const varsRefusal = (error: SettingsError) =>
  new ApiError(409, "settings_invalid", `${error.message} (fix the var in wrangler.toml, or save the settings here to replace the vars)`);

/**
 * The fleet's settings, edited as one object: GET shows them with secrets redacted; PUT replaces them
 * when its `version` is still the stored one (409 `settings_conflict` otherwise), audits the change and
 * tells the coordinator and the open dashboards.
 */
export const settingsRoutes = new Hono<AppEnv>()
  .get("/", async (c) => {
    try {
      return c.json({ settings: await settingsForDisplay(c.env, c.get("db")) });
    } catch (error) {
      if (error instanceof SettingsError) throw varsRefusal(error);
      throw error;
    }
  })
  .put("/", ...jsonBody(SettingsUpdate), async (c) => {
    const submitted = c.req.valid("json");
    const { builders } = submitted.fleetBuild;
    if (builders.length > 0) {
      const refusal = buildersRefusal(builders, (await listHosts(c.get("db"))).map((host) => host.name));
      if (refusal !== null) throw refused(refusal);
    }
    let outcome;
    try {
      outcome = await replaceSettings(c.env, c.get("db"), submitted, c.get("actor"));
    } catch (error) {
      if (error instanceof SettingsChangeError) throw new ApiError(error.status, error.code, error.message, [{ path: error.path, message: error.message }]);
      throw error;
    }
    if (!outcome.ok) {
      throw new ApiError(
        409,
        "settings_conflict",
        `the settings were changed by someone else since you read them (you sent version ${submitted.version}, the current version is ${outcome.currentVersion}): reload them and make your change again`,
      );
    }
    // Awaited, so a rollout step after this answer uses the new settings. The write stands either way:
    // the coordinator also reads D1 again at every plan and start.
    await coordinator(c.env)
      .settingsChanged()
      .catch((error: unknown) => console.error("settings: could not tell the coordinator", error));
    return c.json({ settings: outcome.settings });
  });
