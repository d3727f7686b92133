/**
 * The notifications the control plane publishes itself: which channels get them, their ids (the
 * idempotency keys), texts and links — rollouts, reverts, hosts offline once per spell, agents
 * outdated once per release.
 */
import { describe, expect, it } from "vitest";
import { NotificationEvent, type NotificationChannel } from "../../common/protocol.ts";
import { NIXFLEET_VERSION } from "../../common/version.ts";
import { channelsFor, wantsEvent } from "../../worker/notifications/channels.ts";
import {
  agentOutdatedEvents,
  dashboardLink,
  hostOfflineEvents,
  hostOfflineMinutes,
  revertEvent,
  rolloutEvent,
  testEvent,
  type HostFacts,
} from "../../worker/notifications/events.ts";
import { createRollout, type Rollout } from "../../worker/rollouts/engine.ts";
import { planRollout } from "../../worker/rollouts/plan.ts";
import { COMMIT, planHost, settings, T0 } from "../rollouts/world.ts";

const DASHBOARD = "https://fleet.example.com";

function rollout(pr: number | null = 12): Rollout {
  const plan = planRollout({ hosts: [planHost("hsb0"), planHost("csb1")], settings: settings(), automatic: false, now: T0 });
  return createRollout({ id: "ro_abcdefghijkl", commit: COMMIT, pr, startedBy: "alice@example.com", automatic: false, ignoreWindows: false, plan, now: T0 });
}

describe("which channels get an event", () => {
  const all: NotificationChannel = { kind: "webhook", id: "ch_all1", url: "https://a.example/x" };
  const failures: NotificationChannel = { kind: "ntfy", id: "ch_fail", url: "https://ntfy.sh/t", events: ["rollout-failed", "ci-failed"] };
  const slack: NotificationChannel = { kind: "slack", id: "ch_slak", url: "https://hooks.slack.com/x", events: ["rollout-succeeded"] };

  it.each([
    ["rollout-failed", ["ch_all1", "ch_fail"]],
    ["rollout-succeeded", ["ch_all1", "ch_slak"]],
    ["host-offline", ["ch_all1"]],
    ["ci-failed", ["ch_all1", "ch_fail"]],
  ] as const)("%s goes to %j", (event, ids) => {
    expect(channelsFor([all, failures, slack], event).map((c) => c.id)).toEqual(ids);
  });

  it("a channel without a filter gets every event", () => {
    expect(wantsEvent(all, "agent-outdated")).toBe(true);
    expect(wantsEvent(slack, "agent-outdated")).toBe(false);
    expect(channelsFor([], "merged")).toEqual([]);
  });
});

describe("rollout notifications", () => {
  it("a start and a success link to the rollouts page, with the PR and commit, ids per rollout and event", () => {
    const r = rollout();
    const started = rolloutEvent(r, "rollout-started", "rollout started by alice", DASHBOARD, T0);
    expect(NotificationEvent.parse(started)).toEqual(started);
    expect(started).toMatchObject({
      id: "rollout-started:ro_abcdefghijkl",
      event: "rollout-started",
      title: "Rollout of update PR #12 (c0ffee0) started",
      text: "rollout started by alice",
      url: "https://fleet.example.com/rollouts",
      pr: 12,
      rolloutId: "ro_abcdefghijkl",
      commit: COMMIT,
    });
    expect(started.host).toBeUndefined();
    const succeeded = rolloutEvent(r, "rollout-succeeded", "ok", DASHBOARD, T0);
    expect(succeeded.id).toBe("rollout-succeeded:ro_abcdefghijkl");
    expect(succeeded.title).toBe("Rollout of update PR #12 (c0ffee0) succeeded");
  });

  it("a failure names the failing host and links to its command log", () => {
    const r: Rollout = { ...rollout(null), state: "failed", failure: { host: "csb1", reason: "switch failed (exit 1)", commandId: "cmd_0123456789abcdef" } };
    const failed = rolloutEvent(r, "rollout-failed", "rollout failed: csb1 — switch failed", `${DASHBOARD}/`, T0);
    expect(failed).toMatchObject({
      id: "rollout-failed:ro_abcdefghijkl",
      title: "Rollout of c0ffee0 failed on csb1",
      host: "csb1",
      url: "https://fleet.example.com/hosts/csb1?command=cmd_0123456789abcdef",
      details: { failure: { host: "csb1", reason: "switch failed (exit 1)", commandId: "cmd_0123456789abcdef", log: "https://fleet.example.com/hosts/csb1?command=cmd_0123456789abcdef" } },
    });
    expect(failed.pr).toBeUndefined();
  });

  it("a revert links to the revert PR", () => {
    const opened = revertEvent(rollout(), { kind: "revert-pr", url: "https://github.com/example/fleet/pull/13" }, T0);
    expect(NotificationEvent.parse(opened)).toEqual(opened);
    expect(opened).toMatchObject({ id: "revert-opened:ro_abcdefghijkl", event: "revert-opened", title: "Revert PR opened for #12", url: "https://github.com/example/fleet/pull/13" });
  });
});

describe("links", () => {
  it("are null without DASHBOARD_URL and keep a path prefix with it", () => {
    expect(dashboardLink("", "rollouts")).toBeNull();
    expect(dashboardLink(undefined, "rollouts")).toBeNull();
    expect(dashboardLink("not a url", "rollouts")).toBeNull();
    expect(dashboardLink("ftp://x.example", "rollouts")).toBeNull();
    expect(dashboardLink("https://x.example/fleet", "rollouts")).toBe("https://x.example/fleet/rollouts");
    expect(dashboardLink("https://x.example/fleet/", "hosts/a%20b")).toBe("https://x.example/fleet/hosts/a%20b");
    expect(rolloutEvent(rollout(), "rollout-started", "m", "", T0).url).toBeNull();
  });
});

describe("hosts offline", () => {
  const now = new Date("2026-12-01T12:00:00Z");
  const host = (name: string, over: Partial<HostFacts>): HostFacts => ({ name, online: false, lastSeenAt: null, agentVersion: NIXFLEET_VERSION, ...over });

  it("only hosts offline for longer than the threshold, with the last-seen time in the id", () => {
    const events = hostOfflineEvents(
      [
        host("gone", { lastSeenAt: "2026-12-01T11:29:00.000Z" }),
        host("brief", { lastSeenAt: "2026-12-01T11:45:00.000Z" }),
        host("edge", { lastSeenAt: "2026-12-01T11:30:00.000Z" }),
        host("online", { online: true, lastSeenAt: "2026-12-01T08:00:00.000Z" }),
        host("never", { lastSeenAt: null }),
      ],
      30,
      DASHBOARD,
      now,
    );
    expect(events.map((e) => e.id)).toEqual(["host-offline:gone:2026-12-01T11:29:00.000Z"]);
    expect(events[0]).toMatchObject({ event: "host-offline", host: "gone", title: "gone is offline", url: "https://fleet.example.com/hosts/gone" });
    expect(events[0]!.text).toContain("31 minutes");
  });

  it("the same spell gives the same id on every run; a new spell a new one", () => {
    const spell = [host("gone", { lastSeenAt: "2026-12-01T10:00:00.000Z" })];
    const first = hostOfflineEvents(spell, 30, "", now);
    const later = hostOfflineEvents(spell, 30, "", new Date("2026-12-01T14:00:00Z"));
    expect(later[0]!.id).toBe(first[0]!.id);
    expect(later[0]!.text).toContain("4 hours");
    const next = hostOfflineEvents([host("gone", { lastSeenAt: "2026-12-01T11:00:00.000Z" })], 30, "", now);
    expect(next[0]!.id).not.toBe(first[0]!.id);
  });

  it("reads HOST_OFFLINE_NOTIFY_MINUTES with a default of 30", () => {
    expect(hostOfflineMinutes(undefined)).toBe(30);
    expect(hostOfflineMinutes("45")).toBe(45);
    expect(hostOfflineMinutes("0")).toBe(30);
    expect(hostOfflineMinutes("soon")).toBe(30);
  });
});

describe("agents outdated", () => {
  const host = (name: string, agentVersion: string | null): HostFacts => ({ name, online: true, lastSeenAt: null, agentVersion });

  it("hosts whose agent is older than the release, once per host and release", () => {
    const events = agentOutdatedEvents([host("old", "1.2.0"), host("same", "1.3.0"), host("newer", "1.4.0"), host("none", null), host("junk", "dev")], "1.3.0", DASHBOARD, new Date());
    expect(events.map((e) => e.id)).toEqual(["agent-outdated:old:1.3.0"]);
    expect(events[0]).toMatchObject({ event: "agent-outdated", host: "old", url: "https://fleet.example.com/hosts/old", details: { agentVersion: "1.2.0", expectedVersion: "1.3.0" } });
    expect(agentOutdatedEvents([host("old", "1.2.0")], "1.4.0", "", new Date())[0]!.id).toBe("agent-outdated:old:1.4.0");
  });

  it("nothing when the control plane's own version is not semver", () => {
    expect(agentOutdatedEvents([host("old", "1.2.0")], "main", "", new Date())).toEqual([]);
  });
});

describe("Send test", () => {
  it("is the channel's first event, marked as a test, with an id of its own", () => {
    const event = testEvent(["ci-failed", "merged"], "nd_x", "admin@example.com", DASHBOARD, T0);
    expect(NotificationEvent.parse(event)).toEqual(event);
    expect(event).toMatchObject({ id: "test:nd_x", event: "ci-failed", title: "NixFleet test notification", url: "https://fleet.example.com/", details: { test: true } });
    expect(event.text).toContain("admin@example.com");
    expect(testEvent(undefined, "nd_y", "a", "", T0).event).toBe("rollout-succeeded");
  });
});
