/**
 * Rollouts use the stored settings: a canary count and wave size saved with PUT /api/settings change the
 * plan the real coordinator makes, and the coordinator's copy for rollout steps follows each save.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { RolloutPlanView, SettingsResponse, type Settings } from "../../common/protocol.ts";
import { SettingsCopy } from "../../worker/coordinator/settings-copy.ts";
import { openDatabase } from "../../worker/db/client.ts";
import { settingsFromVars } from "../../worker/settings.ts";
import { agentFetch, api, createHost, pollBody, sampleReport } from "./helpers.ts";

const COMMIT = "c".repeat(40);
const HOSTS = ["sr-0", "sr-1", "sr-2", "sr-3", "sr-4", "sr-5"];

async function plan() {
  const res = await api("/api/rollouts/plan", { method: "POST", json: { commit: COMMIT, hosts: HOSTS } });
  expect(res.status).toBe(200);
  const { plan } = (await res.json()) as { plan: unknown };
  return RolloutPlanView.parse(plan).waves.map((w) => ({ canary: w.canary, size: w.hosts.length }));
}

async function save(change: (s: Settings) => Settings): Promise<Settings> {
  const current = SettingsResponse.parse(await (await api("/api/settings")).json()).settings;
  const res = await api("/api/settings", { method: "PUT", json: change(current) });
  expect(res.status).toBe(200);
  return SettingsResponse.parse(await res.json()).settings;
}

describe("rollouts and the stored settings", () => {
  it("with no copy saved yet, a step's settings are the vars', derived once for the object's life rather than on every call", async () => {
    await runInDurableObject(env.COORDINATOR.getByName("fleet"), async (_instance, state) => {
      const copy = new SettingsCopy(state.storage, env, openDatabase(env.DB));
      const first = copy.current();
      expect(first).toEqual(settingsFromVars(env));
      expect(copy.current()).toBe(first);
    });
  });

  it("a stored canary count and wave size change the rollout plan", async () => {
    for (const [i, name] of HOSTS.entries()) {
      const { token } = await createHost(name);
      const report = sampleReport({ hostname: name, rollout: { autoUpdate: true, priority: i, canary: false } });
      const res = await agentFetch(token, "/poll?wait=0", pollBody({ agentSession: `session-${name}`, report }));
      expect(res.status, await res.text()).toBe(200);
    }
    // The vars: one canary, then waves of a quarter of the hosts (6 → 1 each after rounding down, at least 1).
    const before = await plan();
    expect(before[0]).toEqual({ canary: true, size: 1 });
    expect(before.slice(1).every((w) => !w.canary)).toBe(true);
    expect(before.length).toBeGreaterThan(3);

    const saved = await save((s) => ({ ...s, rollout: { ...s.rollout, canary: 2, waveSize: 4 } }));
    expect(await plan()).toEqual([
      { canary: true, size: 2 },
      { canary: false, size: 4 },
    ]);
    const copy = await runInDurableObject(env.COORDINATOR.getByName("fleet"), async (_instance, state) => state.storage.get<Settings>("settings-copy"));
    expect(copy).toMatchObject({ version: saved.version, rollout: { canary: 2, waveSize: 4 }, notifications: [] });

    await save((s) => ({ ...s, rollout: { ...s.rollout, canary: 0, waveSize: 3 } }));
    expect(await plan()).toEqual([
      { canary: false, size: 3 },
      { canary: false, size: 3 },
    ]);
  });
});
