/**
 * The rollback strategy's default changed to spec 002's `revert-commit`: a new installation (a fresh D1,
 * the wrangler.toml vars) gets it, while settings someone saved with `revert-pr` keep it — read by the
 * API and by the coordinator, whose copy the rollouts use.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { SettingsResponse, type Settings } from "../../common/protocol.ts";
import { openDatabase } from "../../worker/db/client.ts";
import { currentSettings } from "../../worker/db/settings.ts";
import { api } from "./helpers.ts";

async function read(): Promise<Settings> {
  const res = await api("/api/settings");
  expect(res.status).toBe(200);
  return SettingsResponse.parse(await res.json()).settings;
}

// Storage is per test file: the first test sees a fresh D1, the second stores a row.
describe("the rollback strategy of a new installation and of saved settings", () => {
  it("a fresh D1 (nothing saved) reverts the commit after a failed rollout", async () => {
    const { count } = (await env.DB.prepare("SELECT count(*) AS count FROM settings").first<{ count: number }>())!;
    expect(count).toBe(0);
    expect((await read()).rollback.strategy).toBe("revert-commit");
    expect((await currentSettings(env, openDatabase(env.DB))).rollback.strategy).toBe("revert-commit");
  });

  it("a stored settings row with revert-pr keeps revert-pr", async () => {
    // The row as an installation that saved its settings under the old default wrote it.
    const saved = { ...(await read()), notifications: [], rollback: { strategy: "revert-pr", rollbackHosts: false } };
    await env.DB.prepare("INSERT INTO settings (id, version, settings, write_id, updated_at, updated_by) VALUES (1, 3, ?, ?, ?, ?)")
      .bind(JSON.stringify({ ...saved, version: undefined }), "write-before-the-new-default", new Date().toISOString(), "alice@example.com")
      .run();
    expect(await read()).toMatchObject({ version: 3, rollback: { strategy: "revert-pr" } });
    expect((await currentSettings(env, openDatabase(env.DB))).rollback.strategy).toBe("revert-pr");
  });
});
