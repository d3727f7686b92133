/**
 * Host incidents' hysteresis, the pure rules (worker/notifications/incidents.ts): one alert per
 * incident and one recovery, a flapping host kept in one incident, a new incident after a quiet period,
 * the alert hold-down, what the compartments count as red, the events' ids, and which rollout an
 * incident is linked to in the Update history.
 */
import { describe, expect, it } from "vitest";
import { diskLowWarning } from "../../common/disk-space.ts";
import { AlertSettings, NotificationEvent, type Compartment, type Compartments } from "../../common/protocol.ts";
import {
  alertEvent,
  due,
  dueAt,
  observations,
  observe,
  recoveryEvent,
  rolloutToLink,
  type Incident,
  type Observation,
} from "../../worker/notifications/incidents.ts";

const T0 = Date.parse("2026-12-06T10:00:00.000Z");
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const RED: Observation = { state: "red", reason: "tests failed: smoke" };
const CLEAR: Observation = { state: "clear" };
const UNKNOWN: Observation = { state: "unknown" };

/**
 * Feeds observations at their times, with the alarm firing at each hold-down's end as the coordinator's
 * would, then lets the clock run to `until`. Returns what was sent, in order, with its time.
 */
function simulate(seen: [number, Observation][], settings: AlertSettings, until: number) {
  let incident: Incident | null = null;
  const sent: { send: "alert" | "recovery"; at: number }[] = [];
  const alarmUpTo = (now: number) => {
    for (let at = dueAt(incident, settings); at !== null && at <= now; at = dueAt(incident, settings)) {
      const decision = due(incident, at, settings);
      incident = decision.incident;
      if (decision.send) sent.push({ send: decision.send, at });
    }
  };
  for (const [at, observation] of seen) {
    alarmUpTo(at);
    const decision = observe(incident, observation, at, settings);
    incident = decision.incident;
    if (decision.send) sent.push({ send: decision.send, at });
  }
  alarmUpTo(until);
  return { sent, incident };
}

const defaults = AlertSettings.parse({});

describe("an incident's alert and recovery", () => {
  it("sends one alert at the first red, none for more reds, and one recovery after the quiet period", () => {
    const { sent, incident } = simulate(
      [
        [T0, RED],
        [T0 + MINUTE, RED],
        [T0 + 2 * MINUTE, RED],
        [T0 + 3 * MINUTE, CLEAR],
        [T0 + 4 * MINUTE, CLEAR],
      ],
      defaults,
      T0 + 60 * MINUTE,
    );
    expect(sent).toEqual([
      { send: "alert", at: T0 },
      { send: "recovery", at: T0 + 3 * MINUTE + defaults.recoverAfterSeconds * SECOND },
    ]);
    expect(incident).toBeNull();
  });

  it("a host flapping red/green ten times in a minute sends one alert and one recovery", () => {
    const flaps: [number, Observation][] = [];
    for (let i = 0; i < 10; i++) flaps.push([T0 + i * 6 * SECOND, RED], [T0 + i * 6 * SECOND + 3 * SECOND, CLEAR]);
    const { sent } = simulate(flaps, defaults, T0 + 60 * MINUTE);
    expect(sent.map((s) => s.send)).toEqual(["alert", "recovery"]);
    // The quiet period counts from the last flap's green.
    expect(sent[1]!.at).toBe(T0 + 57 * SECOND + defaults.recoverAfterSeconds * SECOND);
  });

  it("a red after the recovery is a second incident and alerts again", () => {
    const { sent } = simulate(
      [
        [T0, RED],
        [T0 + SECOND, CLEAR],
        [T0 + 30 * MINUTE, RED],
        [T0 + 31 * MINUTE, CLEAR],
      ],
      defaults,
      T0 + 60 * MINUTE,
    );
    expect(sent.map((s) => s.send)).toEqual(["alert", "recovery", "alert", "recovery"]);
    expect(sent[2]!.at).toBe(T0 + 30 * MINUTE);
  });

  it("a red inside the quiet period keeps the incident open and starts the quiet period over", () => {
    const settings = AlertSettings.parse({ recoverAfterSeconds: 120 });
    const { sent } = simulate(
      [
        [T0, RED],
        [T0 + 60 * SECOND, CLEAR],
        [T0 + 170 * SECOND, RED],
        [T0 + 200 * SECOND, CLEAR],
      ],
      settings,
      T0 + 60 * MINUTE,
    );
    expect(sent).toEqual([
      { send: "alert", at: T0 },
      { send: "recovery", at: T0 + 320 * SECOND },
    ]);
  });

  it("nothing to tell (a command under way) neither opens, keeps red nor clears", () => {
    expect(observe(null, UNKNOWN, T0, defaults)).toEqual({ incident: null, send: null });
    const open: Incident = { phase: "open", openedAt: T0, reason: "x", clearSince: null };
    expect(observe(open, UNKNOWN, T0 + MINUTE, defaults)).toEqual({ incident: open, send: null });
    // A quiet period already started runs on through it.
    const quiet: Incident = { ...open, clearSince: T0 + MINUTE };
    expect(observe(quiet, UNKNOWN, T0 + 7 * MINUTE, defaults)).toEqual({ incident: null, send: "recovery" });
  });

  it("with recoverAfterSeconds 0 the first green recovers at once", () => {
    const settings = AlertSettings.parse({ recoverAfterSeconds: 0 });
    const { sent } = simulate([[T0, RED], [T0 + SECOND, CLEAR]], settings, T0 + SECOND);
    expect(sent).toEqual([
      { send: "alert", at: T0 },
      { send: "recovery", at: T0 + SECOND },
    ]);
  });
});

describe("the alert hold-down (alertAfterSeconds)", () => {
  const settings = AlertSettings.parse({ alertAfterSeconds: 60 });

  it("a red that clears sooner sends nothing at all", () => {
    const { sent, incident } = simulate([[T0, RED], [T0 + 30 * SECOND, CLEAR]], settings, T0 + 60 * MINUTE);
    expect(sent).toEqual([]);
    expect(incident).toBeNull();
  });

  it("a red that lasts alerts when the hold-down runs out, from the alarm, without another report", () => {
    const { sent, incident } = simulate([[T0, RED]], settings, T0 + 10 * MINUTE);
    expect(sent).toEqual([{ send: "alert", at: T0 + 60 * SECOND }]);
    expect(incident).toEqual({ phase: "open", openedAt: T0 + 60 * SECOND, reason: RED.reason, clearSince: null });
  });

  it("the reason sent is the latest red's", () => {
    const later: Observation = { state: "red", reason: "tests failed: smoke, login" };
    const { incident } = simulate([[T0, RED], [T0 + 10 * SECOND, later]], settings, T0 + MINUTE);
    expect(incident?.phase === "open" && incident.reason).toBe(later.reason);
  });
});

function compartment(state: Compartment["state"], reason = `${state} reason`, commandId: string | null = null): Compartment {
  return { state, reason, action: null, since: null, stale: false, commandId };
}
function compartments(over: Partial<Compartments> = {}): Compartments {
  const green = compartment("green");
  return { agent: green, git: green, lock: green, system: green, tests: green, ...over };
}

describe("what the compartments say", () => {
  it.each([
    ["all green", compartments(), "clear", "clear"],
    ["Tests red: tests-failed only", compartments({ tests: compartment("red", "tests failed: smoke") }), "clear", "red"],
    ["System red: host-red", compartments({ system: compartment("red", "switch failed: exit 1", "cmd_x") }), "red", "clear"],
    ["Git red: host-red", compartments({ git: compartment("red", "pull failed", "cmd_y") }), "red", "clear"],
    ["an outdated agent (red without a command) is agent-outdated's, not host-red", compartments({ agent: compartment("red") }), "clear", "clear"],
    ["a failed agent restart (red with its command) is host-red", compartments({ agent: compartment("red", "restart-agent failed", "cmd_z") }), "red", "clear"],
    ["System blue: nothing to tell", compartments({ system: compartment("blue") }), "unknown", "clear"],
    ["Tests blue: nothing to tell", compartments({ tests: compartment("blue") }), "clear", "unknown"],
    ["yellow and gray are clear", compartments({ git: compartment("yellow"), tests: compartment("gray") }), "clear", "clear"],
  ] as const)("%s", (_name, given, hostRed, testsFailed) => {
    const seen = observations(given, null);
    expect(seen["host-red"].state).toBe(hostRed);
    expect(seen["tests-failed"].state).toBe(testsFailed);
  });

  it("host-red's reason names every red compartment", () => {
    const seen = observations(compartments({ system: compartment("red", "switch failed: exit 1", "c1"), git: compartment("red", "pull failed: no route", "c2") }), null);
    expect(seen["host-red"]).toEqual({ state: "red", reason: "System: switch failed: exit 1; Git: pull failed: no route" });
  });
});

describe("disk-low", () => {
  const GiB = 1024 ** 3;
  const MiB = 1024 ** 2;
  const disk = (storeFree: number, bootFree: number | null) => ({
    store: { path: "/nix/store", freeBytes: storeFree, totalBytes: 100 * GiB },
    boot: bootFree === null ? null : { path: "/boot", freeBytes: bootFree, totalBytes: 512 * MiB },
  });

  it.each([
    ["nothing reported (an older agent)", undefined, null],
    ["both above the threshold", disk(20 * GiB, 300 * MiB), null],
    ["/boot below it", disk(20 * GiB, 38 * MiB), "disk low: /boot 38 MiB free"],
    ["the store below it, /boot on the root filesystem", disk(0.5 * GiB, null), "disk low: /nix/store 512 MiB free"],
    ["both below it", disk(1.2 * MiB, 38 * MiB), "disk low: /nix/store 1.2 MiB free, /boot 38 MiB free"],
  ] as const)("%s", (_name, given, warning) => {
    // 100 MiB here, so /boot's 300 MiB is clear; the fleet's default is 1 GiB (DISK_LOW_BELOW_BYTES).
    const threshold = given !== undefined && given.boot === null ? GiB : 100 * MiB;
    expect(diskLowWarning(given, threshold)).toBe(warning);
    expect(observations(compartments(), diskLowWarning(given, threshold))["disk-low"]).toEqual(warning === null ? { state: "clear" } : { state: "red", reason: warning });
  });

  it("alerts once while the disk stays low and across flaps, recovers once after the quiet period", () => {
    const low = observations(compartments(), "disk low: /boot 38 MiB free")["disk-low"];
    const fine = observations(compartments(), null)["disk-low"];
    const settings = AlertSettings.parse({ recoverAfterSeconds: 300 });
    expect(settings.diskLowBelowBytes).toBe(GiB);
    const { sent } = simulate(
      [
        [T0, low],
        [T0 + MINUTE, low],
        [T0 + 2 * MINUTE, fine],
        [T0 + 3 * MINUTE, low],
        [T0 + 4 * MINUTE, fine],
      ],
      settings,
      T0 + 20 * MINUTE,
    );
    expect(sent).toEqual([
      { send: "alert", at: T0 },
      { send: "recovery", at: T0 + 9 * MINUTE },
    ]);
  });

  it("says what is low in the alert and that there is room again in the recovery", () => {
    const open = { phase: "open" as const, openedAt: T0, reason: "disk low: /boot 38 MiB free", clearSince: null };
    const alert = NotificationEvent.parse(alertEvent("disk-low", "h3", open, ""));
    expect(alert).toMatchObject({ id: "disk-low:h3:2026-12-06T10:00:00.000Z", event: "disk-low", title: "h3 is low on disk space" });
    expect(alert.text).toContain("disk low: /boot 38 MiB free");
    const recovery = NotificationEvent.parse(recoveryEvent("disk-low", "h3", open, T0 + 3_600_000, ""));
    expect(recovery).toMatchObject({ event: "host-recovered", title: "h3 recovered: enough free disk space" });
    expect(recovery.text).toBe("h3 has enough free disk space again after 1 hour (disk-low since 2026-12-06T10:00:00.000Z; last: disk low: /boot 38 MiB free).");
  });
});

describe("the events sent", () => {
  const open = { phase: "open" as const, openedAt: T0, reason: "tests failed: smoke", clearSince: T0 + MINUTE };

  it("the alert's id is the host, kind and opening time: the same incident is delivered once", () => {
    const event = NotificationEvent.parse(alertEvent("tests-failed", "h3", open, "https://fleet.example.com"));
    expect(event).toMatchObject({
      id: "tests-failed:h3:2026-12-06T10:00:00.000Z",
      event: "tests-failed",
      title: "h3's tests failed",
      host: "h3",
      url: "https://fleet.example.com/hosts/h3",
      details: { incident: "tests-failed", openedAt: "2026-12-06T10:00:00.000Z", reason: "tests failed: smoke" },
    });
    expect(event.text).toContain("tests failed: smoke");
  });

  it("the recovery names the incident and how long it lasted", () => {
    const event = NotificationEvent.parse(recoveryEvent("host-red", "db1", open, T0 + 2 * 3_600_000, ""));
    expect(event).toMatchObject({
      id: "host-recovered:host-red:db1:2026-12-06T10:00:00.000Z",
      event: "host-recovered",
      title: "db1 recovered: no compartment is red",
      url: null,
      details: { incident: "host-red" },
    });
    expect(event.text).toContain("after 2 hours");
  });
});

describe("which rollout an incident is linked to", () => {
  const at = (minutes: number) => new Date(T0 + minutes * MINUTE).toISOString();
  const rollouts = [
    { rolloutId: "ro_newest", startedAt: at(-60), hosts: [{ name: "h1", switched: true, finishedAt: at(-50) }, { name: "h3", switched: false }] },
    { rolloutId: "ro_older", startedAt: at(-600), hosts: [{ name: "h3", switched: true, finishedAt: at(-590) }, { name: "h1", switched: true, finishedAt: at(-590) }] },
  ];

  it("the newest rollout that switched the host, within the window", () => {
    expect(rolloutToLink(rollouts, "h1", T0, defaults)).toEqual({ rolloutId: "ro_newest", switchedAt: at(-50) });
    // ro_newest did not switch h3 (it failed before its turn): the one that did is linked.
    expect(rolloutToLink(rollouts, "h3", T0, defaults)).toEqual({ rolloutId: "ro_older", switchedAt: at(-590) });
  });

  it("none when that switch is older than the window, even if an older rollout would fit", () => {
    const narrow = AlertSettings.parse({ rolloutLinkHours: 0.5 });
    expect(rolloutToLink(rollouts, "h1", T0, narrow)).toBeNull();
    expect(rolloutToLink(rollouts, "h1", T0 + 24 * 60 * MINUTE, defaults)).toBeNull();
  });

  it("none for a host no rollout switched, and a switch after the incident does not count", () => {
    expect(rolloutToLink(rollouts, "h9", T0, defaults)).toBeNull();
    expect(rolloutToLink(rollouts, "h1", T0 - 55 * MINUTE, defaults)).toEqual({ rolloutId: "ro_older", switchedAt: at(-590) });
  });
});
