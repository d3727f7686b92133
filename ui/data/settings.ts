/**
 * The settings API as the settings page calls it. Apart from api.ts so that the settings' schemas
 * load with the page, not with the dashboard's first paint.
 */
import { SettingsResponse, type Settings, type SettingsUpdate } from "../../common/protocol.ts";
import type { DashboardApi } from "./api.ts";

/** The fleet's settings, secrets redacted. */
export async function loadSettings(api: DashboardApi): Promise<Settings> {
  return (await api.request(SettingsResponse, "GET", "/api/settings")).settings;
}

/** Replaces the settings; refused with `settings_conflict` when `version` is no longer the stored one. */
export async function saveSettings(api: DashboardApi, settings: SettingsUpdate): Promise<Settings> {
  return (await api.request(SettingsResponse, "PUT", "/api/settings", settings)).settings;
}
