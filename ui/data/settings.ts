/**
 * The settings API as the settings page calls it. Apart from api.ts so that the settings' schemas
 * load with the page, not with the dashboard's first paint.
 */
import { CacheTokenCreated, CacheTokenStatus, CacheUsageResponse, CiTokenCreated, CiTokenStatus, SettingsResponse, type Settings, type SettingsUpdate } from "../../common/protocol.ts";
import type { DashboardApi } from "./api.ts";

/** The fleet's settings, secrets redacted. */
export async function loadSettings(api: DashboardApi): Promise<Settings> {
  return (await api.request(SettingsResponse, "GET", "/api/settings")).settings;
}

/** Replaces the settings; refused with `settings_conflict` when `version` is no longer the stored one. */
export async function saveSettings(api: DashboardApi, settings: SettingsUpdate): Promise<Settings> {
  return (await api.request(SettingsResponse, "PUT", "/api/settings", settings)).settings;
}

/** When the CI token for `POST /api/desired` was created, if there is one. */
export async function loadCiToken(api: DashboardApi): Promise<CiTokenStatus["ciToken"]> {
  return (await api.request(CiTokenStatus, "GET", "/api/ci-token")).ciToken;
}

/** A new CI token, shown once; the old one is refused from then on. */
export async function rotateCiToken(api: DashboardApi): Promise<CiTokenCreated> {
  return api.request(CiTokenCreated, "POST", "/api/ci-token");
}

/** When the binary cache's upload token was created, if there is one. */
export async function loadCacheToken(api: DashboardApi): Promise<CacheTokenStatus["cacheToken"]> {
  return (await api.request(CacheTokenStatus, "GET", "/api/cache-token")).cacheToken;
}

/** A new cache token, shown once; the old one is refused from then on. */
export async function rotateCacheToken(api: DashboardApi): Promise<{ token: string; status: CacheTokenCreated["cacheToken"] }> {
  const created = await api.request(CacheTokenCreated, "POST", "/api/cache-token");
  return { token: created.token, status: created.cacheToken };
}

/** The binary cache's size as its last clean-up counted it; null before the first. */
export async function loadCacheUsage(api: DashboardApi): Promise<CacheUsageResponse["usage"]> {
  return (await api.request(CacheUsageResponse, "GET", "/api/cache-usage")).usage;
}
