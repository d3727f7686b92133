/**
 * The fleet build's rules, without workerd: which hosts a build covers and
 * which count, each host's state from its build command, the verdict and the
 * commit status's description, superseding, and what triggers a build.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FleetBuildView, Settings, type CommandResult, type CommandState } from "../../common/protocol.ts";
import {
  createFleetBuild,
  firstNixErrorLine,
  fitDescription,
  fleetBuildTrigger,
  FleetBuildRecord,
  hostCommandChanged,
  hostQueued,
  hostsToQueue,
  hostWaiting,
  isOpen,
  statusToPost,
  STATUS_DESCRIPTION_MAX,
  stopBuild,
  summarize,
  toFleetBuildView,
  type FleetBuildScopeHost,
} from "../../worker/fleet-build/rules.ts";
import { planRollout } from "../../worker/rollouts/plan.ts";
import { settingsFromVars } from "../../worker/settings.ts";
import { COMMIT, T0, hold, planHost } from "../rollouts/world.ts";

const HEAD = "abcdef1234567890abcdef1234567890abcdef12";
const host = (name: string, over: Partial<FleetBuildScopeHost> = {}): FleetBuildScopeHost => ({ ...planHost(name), id: `host_${name}`, ...over });
const fleetSettings = (fleetBuild: Partial<Settings["fleetBuild"]> = {}) => Settings.parse({ fleetBuild });
const cmd = (name: string) => `cmd_${name}-0000000001`;

function start(hosts: FleetBuildScopeHost[], fleetBuild: Partial<Settings["fleetBuild"]> = {}): FleetBuildRecord {
  let build = createFleetBuild({ id: "fb_1", pr: 12, headSha: HEAD, actor: "update PR #12", hosts, settings: fleetSettings(fleetBuild), now: T0 });
  for (const h of build.hosts) if (h.state === "queued") build = hostQueued(build, h.name, cmd(h.name), T0);
  return build;
}

const change = (name: string, state: CommandState, over: { error?: string; result?: CommandResult } = {}) => ({
  id: cmd(name),
  state,
  startedAt: state === "queued" || state === "delivered" ? null : "2026-06-05T10:00:01Z",
  finishedAt: ["queued", "delivered", "running"].includes(state) ? null : "2026-06-05T10:00:42Z",
  error: over.error ?? null,
  result: over.result ?? null,
});

const built = (durationMs = 41_000): CommandResult => ({
  build: {
    commit: HEAD,
    storePath: "/nix/store/aaaa-nixos-system-x",
    durationMs,
    comparedWith: "/nix/store/bbbb-nixos-system-x",
    closureDiff: { entries: [{ name: "hello", old: ["1.0"], new: ["1.1"], sizeDelta: 28672 }], omitted: 0, totalSizeDelta: 28672 },
  },
});

const failed = (tail: string): CommandResult => ({ build: { commit: HEAD, storePath: null, durationMs: 3000, comparedWith: null, closureDiff: null, errorTail: tail } });

const NIX_ERROR = [
  "building '/nix/store/xyz-nixos-system-hsb1.drv'...",
  "\u001b[31;1merror:\u001b[0m builder for '/nix/store/xyz-nixos-system-hsb1.drv' failed with exit code 1",
  "       last 1 log lines:",
].join("\n");

const apply = (build: FleetBuildRecord, ...changes: ReturnType<typeof change>[]) => changes.reduce((b, c) => hostCommandChanged(b, c, T0), build);

describe("which hosts a fleet build covers", () => {
  it("builds every host; held and autoUpdate = false hosts are not counted, with the planner's reason", () => {
    const build = start([host("web1"), host("hsb0", { hold: hold() }), host("gpc0", { autoUpdate: false })]);
    const view = toFleetBuildView(build);
    expect(view.hosts.map((h) => [h.name, h.state, h.counted])).toEqual([
      ["gpc0", "queued", false],
      ["hsb0", "queued", false],
      ["web1", "queued", true],
    ]);
    expect(view.hosts.find((h) => h.name === "gpc0")?.reason).toBe("not counted: autoUpdate = false");
    expect(view.hosts.find((h) => h.name === "hsb0")?.reason).toMatch(/^not counted: held by alice@example.com: kernel bisect/);
    expect(view.counted).toBe(1);
  });

  it("agrees with the rollout planner on scope (an automatic rollout's hosts are the counted ones)", () => {
    const hosts = [host("a", { hold: hold({ until: "2020-01-01T00:00:00Z" }) }), host("b", { hold: hold() }), host("c", { autoUpdate: false }), host("d")];
    const plan = planRollout({ hosts, settings: fleetSettings(), automatic: true, now: T0 });
    const inPlan = plan.waves.flatMap((w) => w.hosts).sort();
    const counted = toFleetBuildView(start(hosts)).hosts.filter((h) => h.counted).map((h) => h.name);
    expect(counted).toEqual(inPlan);
  });

  it("counts excluded hosts with countExcludedHosts", () => {
    const view = toFleetBuildView(start([host("web1"), host("gpc0", { autoUpdate: false })], { countExcludedHosts: true }));
    expect(view.hosts.every((h) => h.counted)).toBe(true);
    expect(view.counted).toBe(2);
  });

  it("lists offline hosts offline, counted only when offlineHostsBlock", () => {
    const hosts = [host("web1"), host("web2", { online: false })];
    const lenient = toFleetBuildView(start(hosts));
    expect(lenient.hosts.find((h) => h.name === "web2")).toMatchObject({ state: "offline", counted: false });
    const strict = toFleetBuildView(start(hosts, { offlineHostsBlock: true }));
    expect(strict.hosts.find((h) => h.name === "web2")).toMatchObject({ state: "offline", counted: true });
  });
});

describe("a host's state follows its build command", () => {
  it.each([
    { state: "delivered" as const, expected: "queued" },
    { state: "running" as const, expected: "building" },
    { state: "succeeded" as const, expected: "built", result: built() },
    { state: "failed" as const, expected: "failed", result: failed(NIX_ERROR), error: "the build of abc failed" },
    { state: "timed-out" as const, expected: "failed", error: "lost contact: no result by the deadline" },
    { state: "lost" as const, expected: "failed", error: "the agent no longer holds this command" },
    { state: "cancelled" as const, expected: "cancelled", error: "cancelled: a pull-switch was queued by alice" },
  ])("$state → $expected", ({ state, expected, result, error }) => {
    const build = apply(start([host("web1")]), change("web1", state, { result, error }));
    expect(build.hosts[0]?.state).toBe(expected);
  });

  it("keeps a built host's duration, store path and closure diff", () => {
    const view = toFleetBuildView(apply(start([host("web1")]), change("web1", "running"), change("web1", "succeeded", { result: built(41_000) })));
    expect(view.hosts[0]).toMatchObject({
      state: "built",
      durationMs: 41_000,
      storePath: "/nix/store/aaaa-nixos-system-x",
      startedAt: "2026-06-05T10:00:01Z",
      finishedAt: "2026-06-05T10:00:42Z",
      closureDiff: { totalSizeDelta: 28672 },
    });
    expect(FleetBuildView.parse(view)).toEqual(view);
  });

  it("gives a failed host nix's first error line as the reason and the tail as errorTail", () => {
    const view = toFleetBuildView(apply(start([host("hsb1")]), change("hsb1", "failed", { result: failed(NIX_ERROR), error: "the build failed" })));
    expect(view.hosts[0]?.reason).toBe("error: builder for '/nix/store/xyz-nixos-system-hsb1.drv' failed with exit code 1");
    expect(view.hosts[0]?.errorTail).toBe(NIX_ERROR);
  });

  it("ignores a command it does not know, and a repeated or late event after the end", () => {
    const build = start([host("web1")]);
    expect(hostCommandChanged(build, { ...change("web1", "running"), id: "cmd_someone-else01" }, T0)).toBe(build);
    const done = apply(build, change("web1", "succeeded", { result: built() }));
    expect(apply(done, change("web1", "failed", { error: "late" }))).toBe(done);
  });
});

describe("the verdict and the status description", () => {
  const nine = ["hsb0", "hsb1", "hsb2", "hsb3", "hsb4", "hsb5", "hsb6", "hsb7", "hsb8"];

  it.each([
    { name: "nothing built yet", outcomes: {}, verdict: "pending", description: "0/9 hosts built, 9 building" },
    {
      name: "every host built",
      outcomes: Object.fromEntries(nine.map((n) => [n, "ok"])),
      verdict: "success",
      description: "9/9 hosts built",
    },
    {
      name: "one failed while the others built",
      outcomes: { ...Object.fromEntries(nine.map((n) => [n, "ok"])), hsb1: "fail" },
      verdict: "failure",
      description: "8/9 hosts built, hsb1 failed: error: builder for '/nix/store/xyz-nixos-system-hsb1.drv' failed with exit code 1",
    },
    {
      name: "a failure is the verdict while others still build",
      outcomes: { hsb0: "ok", hsb3: "fail" },
      verdict: "failure",
      description: "1/9 hosts built, hsb3 failed: error: builder for '/nix/store/xyz-nixos-system-hsb1.drv' failed with exit code 1",
    },
    {
      name: "three failed",
      outcomes: { hsb0: "fail", hsb1: "fail", hsb2: "fail" },
      verdict: "failure",
      description: "0/9 hosts built, hsb0 and 2 more failed: error: builder for '/nix/store/xyz-nixos-system-hsb1.drv' failed with exit code 1",
    },
  ])("$name: $verdict", ({ outcomes, verdict, description }) => {
    let build = start(nine.map((n) => host(n)));
    for (const [name, outcome] of Object.entries(outcomes)) {
      build = apply(build, outcome === "ok" ? change(name, "succeeded", { result: built() }) : change(name, "failed", { result: failed(NIX_ERROR) }));
    }
    const summary = summarize(build);
    expect(summary.verdict).toBe(verdict);
    expect(summary.description).toBe(description);
  });

  it("succeeds without an offline host that does not block, and names it", () => {
    const build = apply(start([host("web1"), host("web2", { online: false })]), change("web1", "succeeded", { result: built() }));
    expect(summarize(build)).toEqual({ verdict: "success", built: 1, counted: 1, description: "1/1 hosts built (not built: web2 offline)" });
  });

  it("stays pending for an offline host that blocks", () => {
    const build = apply(start([host("web1"), host("web2", { online: false })], { offlineHostsBlock: true }), change("web1", "succeeded", { result: built() }));
    expect(summarize(build)).toEqual({ verdict: "pending", built: 1, counted: 2, description: "1/2 hosts built, waiting for web2 offline" });
  });

  it("does not let an uncounted host's failure fail the verdict", () => {
    const build = apply(
      start([host("web1"), host("gpc0", { autoUpdate: false })]),
      change("web1", "succeeded", { result: built() }),
      change("gpc0", "failed", { result: failed(NIX_ERROR) }),
    );
    expect(summarize(build).verdict).toBe("success");
    expect(toFleetBuildView(build).hosts.find((h) => h.name === "gpc0")?.state).toBe("failed");
  });

  it("keeps every description within GitHub's 140 characters", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 400 }), { minLength: 1, maxLength: 5 }), fc.string({ maxLength: 400 }), (names, error) => {
        const hosts = names.map((_, i) => host(`h${i}`));
        let build = start(hosts);
        build = apply(build, change("h0", "failed", { error: `error: ${error}` }));
        const { description } = summarize(build);
        expect([...description].length).toBeLessThanOrEqual(STATUS_DESCRIPTION_MAX);
        expect(description.startsWith("0/")).toBe(true);
      }),
    );
    expect(fitDescription("x".repeat(200))).toBe(`${"x".repeat(139)}…`);
  });

  it("takes nix's first error line, without colours", () => {
    expect(firstNixErrorLine("warning: x\n\u001b[31;1merror:\u001b[0m attribute 'foo' missing\nerror: second")).toBe("error: attribute 'foo' missing");
    expect(firstNixErrorLine("error (ignored): SQLite database '/root/.cache/nix/eval-cache-v2/x.sqlite' is busy\nerror: attribute 'foo' missing")).toBe("error: attribute 'foo' missing");
    expect(firstNixErrorLine("\n  something broke\n")).toBe("something broke");
    expect(firstNixErrorLine(null)).toBe("no error message");
  });
});

describe("hosts that wait, supersede and close", () => {
  it("a busy host waits and is queued when it is free; an offline host when it comes back", () => {
    let build = createFleetBuild({ id: "fb_1", pr: 12, headSha: HEAD, actor: "a", hosts: [host("web1"), host("web2", { online: false })], settings: fleetSettings(), now: T0 });
    build = hostWaiting(build, "web1", "its pull-switch (cmd_x)", T0);
    expect(toFleetBuildView(build).hosts[0]).toMatchObject({ state: "waiting", reason: "waiting for its pull-switch (cmd_x) to end" });
    expect(hostsToQueue(build, "host_web1", "free").map((h) => h.name)).toEqual(["web1"]);
    expect(hostsToQueue(build, "host_web1", "online")).toEqual([]);
    expect(hostsToQueue(build, "host_web2", "online").map((h) => h.name)).toEqual(["web2"]);
    build = hostQueued(build, "web2", cmd("web2"), T0);
    expect(build.hosts[1]).toMatchObject({ state: "queued", commandId: cmd("web2") });
    expect(build.hosts[1]?.reason).toBeUndefined();
  });

  it("a superseded build cancels what waits, returns what is out, and queues nothing more", () => {
    let build = start([host("a"), host("b"), host("c"), host("d", { online: false })]);
    build = apply(build, change("a", "running"), change("b", "succeeded", { result: built() }));
    build = hostWaiting(build, "c", "its test (cmd_t)", T0);
    const { build: stopped, commands } = stopBuild(build, { supersededBy: "fb_2" }, "superseded by 1234567", T0);
    expect(commands).toEqual([{ host: "a", hostId: "host_a", commandId: cmd("a"), builds: ["a"] }]);
    expect(stopped.hosts.map((h) => h.state)).toEqual(["building", "built", "cancelled", "offline"]);
    expect(toFleetBuildView(stopped).superseded).toBe(true);
    expect(hostsToQueue(stopped, "host_d", "online")).toEqual([]);
    expect(statusToPost(stopped)).toBeNull();
    expect(isOpen(stopped)).toBe(true);
    const ended = apply(stopped, change("a", "cancelled", { error: "stopped" }));
    expect(isOpen(ended)).toBe(false);
    expect(ended.finishedAt).not.toBeNull();
  });

  it("an offline host keeps a current build open, and re-opens its verdict when it builds", () => {
    let build = apply(start([host("web1"), host("web2", { online: false })]), change("web1", "succeeded", { result: built() }));
    expect(isOpen(build)).toBe(true);
    expect(build.finishedAt).not.toBeNull();
    build = hostQueued(build, "web2", cmd("web2"), T0);
    expect(build.finishedAt).toBeNull();
    expect(summarize(build).verdict).toBe("pending");
    build = apply(build, change("web2", "failed", { result: failed(NIX_ERROR) }));
    expect(summarize(build).verdict).toBe("failure");
  });

  it("posts a status only when the summary differs from what GitHub took", () => {
    const build = start([host("web1")]);
    const first = statusToPost(build);
    expect(first).toEqual({ state: "pending", description: "0/1 hosts built, 1 building" });
    const posted = { ...build, githubStatus: { ...first!, postedAt: T0.toISOString(), error: null } };
    expect(statusToPost(posted)).toBeNull();
    expect(statusToPost({ ...posted, githubStatus: { ...posted.githubStatus, error: "502" } })).toEqual(first);
    expect(statusToPost(apply(posted, change("web1", "succeeded", { result: built() })))).toEqual({ state: "success", description: "1/1 hosts built" });
  });
});

describe("what starts or stops a build", () => {
  const on = Settings.parse({});
  it.each([
    { pr: { isUpdatePr: true, state: "open" as const }, settings: on, expected: "start" },
    { pr: { isUpdatePr: false, state: "open" as const }, settings: on, expected: null },
    { pr: { isUpdatePr: true, state: "closed" as const }, settings: on, expected: "cancel" },
    { pr: { isUpdatePr: true, state: "merged" as const }, settings: on, expected: null },
    { pr: { isUpdatePr: true, state: "open" as const }, settings: Settings.parse({ fleetBuild: { buildOnUpdatePr: false } }), expected: null },
    { pr: { isUpdatePr: true, state: "open" as const }, settings: Settings.parse({ flakeUpdates: { enabled: false } }), expected: null },
  ])("$pr.state update PR $pr.isUpdatePr → $expected", ({ pr, settings, expected }) => {
    expect(fleetBuildTrigger(pr, settings)).toBe(expected);
  });
});

describe("rollout planning with a fleet build", () => {
  it("leaves out a host whose build of the head failed", () => {
    const plan = planRollout({
      hosts: [planHost("web1"), planHost("hsb1")],
      settings: Settings.parse({}),
      automatic: false,
      failedBuilds: { commit: COMMIT, hosts: ["hsb1"] },
      now: T0,
    });
    expect(plan.leftOut).toEqual([{ name: "hsb1", reason: `its build of ${COMMIT.slice(0, 7)} failed` }]);
    expect(plan.waves.flatMap((w) => w.hosts)).toEqual(["web1"]);
  });
});

describe("the stored record", () => {
  it("survives JSON and the schema at every step", () => {
    let build = start([host("web1"), host("web2", { online: false })]);
    build = apply(build, change("web1", "running"), change("web1", "succeeded", { result: built() }));
    expect(FleetBuildRecord.parse(JSON.parse(JSON.stringify(build)))).toEqual(build);
  });
});

describe("nothing built is no success", () => {
  it("stays pending when every counted host was cancelled or is offline; an empty scope succeeds", () => {
    let build = start([host("web1")]);
    build = apply(build, change("web1", "cancelled", { error: "cancelled: a pull-switch was queued by alice" }));
    expect(summarize(build)).toMatchObject({ verdict: "pending", counted: 0 });
    expect(summarize(start([host("web2", { online: false })])).verdict).toBe("pending");
    expect(summarize(start([])).verdict).toBe("success");
    expect(summarize(start([host("gpc0", { autoUpdate: false })])).verdict).toBe("success");
  });
});

describe("the fleet build settings from wrangler.toml vars", () => {
  it("defaults to building on every update PR, offline hosts not blocking, excluded hosts not counted", () => {
    expect(settingsFromVars({}).fleetBuild).toEqual({ buildOnUpdatePr: true, offlineHostsBlock: false, countExcludedHosts: false, builders: [] });
  });

  it("reads each var, and refuses a bad one by name", () => {
    const vars = { FLEET_BUILD_ON_UPDATE_PR: "false", FLEET_BUILD_OFFLINE_HOSTS_BLOCK: "true", FLEET_BUILD_COUNT_EXCLUDED_HOSTS: "true" };
    expect(settingsFromVars(vars).fleetBuild).toEqual({ buildOnUpdatePr: false, offlineHostsBlock: true, countExcludedHosts: true, builders: [] });
    expect(() => settingsFromVars({ FLEET_BUILD_OFFLINE_HOSTS_BLOCK: "yes" })).toThrow(/FLEET_BUILD_OFFLINE_HOSTS_BLOCK: must be true or false/);
  });
});
