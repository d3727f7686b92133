/**
 * Builder hosts (settings `fleetBuild.builders`, worker/fleet-build/builders.ts and the fleet build's rules),
 * without workerd: the setting's refusals, which builder builds which host, one command per builder, each
 * host's state from its own entry in the builder's result, and stopping a build a builder runs.
 */
import { describe, expect, it } from "vitest";
import { Settings, type CommandResult, type CommandState } from "../../common/protocol.ts";
import { assignBuilder, buildersRefusal } from "../../worker/fleet-build/builders.ts";
import {
  createFleetBuild,
  hostCommandChanged,
  hostQueued,
  hostsToQueue,
  runnerOf,
  stopBuild,
  summarize,
  toFleetBuildView,
  type FleetBuildRecord,
  type FleetBuildScopeHost,
} from "../../worker/fleet-build/rules.ts";
import { T0, planHost } from "../rollouts/world.ts";

const HEAD = "abcdef1234567890abcdef1234567890abcdef12";
const TREE = "1234567890abcdef1234567890abcdef12345678";
const X86 = "x86_64-linux";
const ARM = "aarch64-linux";
const host = (name: string, nixSystem: string | null, over: Partial<FleetBuildScopeHost> = {}): FleetBuildScopeHost => ({
  ...planHost(name),
  id: `host_${name}`,
  nixSystem,
  platform: "nixos",
  flakeAttr: name,
  ...over,
});
const BUILDER_CMD = "cmd_builder-000000001";
const OWN_CMD = "cmd_own-00000000001";

function start(hosts: FleetBuildScopeHost[], builders: { system: string; host: string }[]): FleetBuildRecord {
  const settings = Settings.parse({ fleetBuild: { builders } });
  let build = createFleetBuild({ id: "fb_1", pr: 7, headSha: HEAD, actor: "update PR #7", hosts, settings, now: T0 });
  // What the runner does: one command for every host a runner builds.
  for (const h of build.hosts) if (h.state === "queued") build = hostQueued(build, h.name, h.builder === undefined ? OWN_CMD : BUILDER_CMD, T0);
  return build;
}

const change = (id: string, state: CommandState, result: CommandResult | null = null, error: string | null = null) => ({
  id,
  state,
  startedAt: "2026-06-05T10:00:01Z",
  finishedAt: ["running", "delivered"].includes(state) ? null : "2026-06-05T10:03:00Z",
  error,
  result,
});

const builderResult = (hostBuilds: NonNullable<CommandResult["hostBuilds"]>): CommandResult => ({
  build: { commit: HEAD, tree: TREE, storePath: null, durationMs: 180_000, comparedWith: null, closureDiff: null },
  hostBuilds,
});

describe("the fleetBuild.builders setting", () => {
  it("is empty by default: each host builds its own configuration", () => {
    expect(Settings.parse({}).fleetBuild.builders).toEqual([]);
  });

  it("refuses two builders for one system type, naming both, and a malformed system type", () => {
    const two = Settings.safeParse({ fleetBuild: { builders: [{ system: X86, host: "hsb0" }, { system: X86, host: "hsb1" }] } });
    expect(two.success).toBe(false);
    expect(two.error?.issues).toEqual([expect.objectContaining({ path: ["fleetBuild", "builders", 1, "system"], message: `two builders for ${X86}: hsb0 and hsb1; name one per system type` })]);
    const malformed = Settings.safeParse({ fleetBuild: { builders: [{ system: "x86_64", host: "hsb0" }] } });
    expect(malformed.error?.issues[0]?.message).toBe("not a Nix system type such as x86_64-linux or aarch64-darwin");
  });

  it("refuses a builder that is not a host of the fleet, naming it and its system type", () => {
    expect(buildersRefusal([{ system: X86, host: "hsb0" }], ["hsb0", "web1"])).toBeNull();
    expect(buildersRefusal([{ system: X86, host: "hsb0" }, { system: ARM, host: "pi9" }], ["hsb0"])).toEqual({
      ok: false,
      status: 400,
      code: "builder_not_a_host",
      message: "fleetBuild.builders names pi9 (aarch64-linux), which is not a host of the fleet: add the host first, or pick one of its hosts",
    });
  });
});

describe("which builder builds which host", () => {
  const fleet = [host("hsb0", X86), host("web1", X86, { platform: "darwin", flakeAttr: "web1.mac" }), host("pi1", ARM), host("new", null)];
  const builders = [{ system: X86, host: "hsb0" }];

  it.each([
    { name: "hsb0", expected: { by: "builder", builder: { name: "hsb0", hostId: "host_hsb0", target: { host: "hsb0", platform: "nixos", flakeAttr: "hsb0" } } } },
    { name: "web1", expected: { by: "builder", builder: { name: "hsb0", hostId: "host_hsb0", target: { host: "web1", platform: "darwin", flakeAttr: "web1.mac" } } } },
    // No builder for its system type, or no system type said yet: the host builds its own.
    { name: "pi1", expected: { by: "itself" } },
    { name: "new", expected: { by: "itself" } },
  ])("$name → $expected.by", ({ name, expected }) => {
    expect(assignBuilder(fleet.find((h) => h.name === name)!, builders, fleet)).toEqual(expected);
  });

  it("a builder the fleet no longer has is named, not replaced by the host itself", () => {
    expect(assignBuilder(host("web1", X86), [{ system: X86, host: "gone" }], [host("web1", X86)])).toEqual({ by: "missing", builder: "gone", system: X86 });
    const build = start([host("web1", X86)], [{ system: X86, host: "gone" }]);
    expect(toFleetBuildView(build).hosts[0]).toMatchObject({ state: "cancelled", reason: "its builder gone (x86_64-linux) is not a host of the fleet: fix fleetBuild.builders" });
  });
});

describe("a fleet build with a builder", () => {
  const fleet = [host("hsb0", X86), host("web1", X86, { online: false }), host("web2", X86), host("pi1", ARM)];
  const builders = [{ system: X86, host: "hsb0" }];

  it("builds the builder's hosts in its one command, an offline host too, and the others on their own", () => {
    const build = start(fleet, builders);
    const view = toFleetBuildView(build);
    expect(view.hosts.map((h) => [h.name, h.state, h.commandId, h.builtBy])).toEqual([
      ["hsb0", "queued", BUILDER_CMD, "hsb0"],
      ["pi1", "queued", OWN_CMD, undefined],
      ["web1", "queued", BUILDER_CMD, "hsb0"],
      ["web2", "queued", BUILDER_CMD, "hsb0"],
    ]);
    expect(build.hosts.filter((h) => h.builder !== undefined).map((h) => runnerOf(h).name)).toEqual(["hsb0", "hsb0", "hsb0"]);
  });

  it("lists the builder's hosts offline while the builder is, and queues them all when it comes back", () => {
    const settings = Settings.parse({ fleetBuild: { builders } });
    const build = createFleetBuild({ id: "fb_2", pr: 7, headSha: HEAD, actor: "a", hosts: fleet.map((h) => (h.name === "hsb0" ? { ...h, online: false } : h)), settings, now: T0 });
    expect(toFleetBuildView(build).hosts.filter((h) => h.builtBy === "hsb0").map((h) => [h.name, h.state, h.reason])).toEqual([
      ["hsb0", "offline", "its builder hsb0 was offline when the build started: built when it comes back"],
      ["web1", "offline", "its builder hsb0 was offline when the build started: built when it comes back"],
      ["web2", "offline", "its builder hsb0 was offline when the build started: built when it comes back"],
    ]);
    expect(hostsToQueue(build, "host_hsb0", "online").map((h) => h.name)).toEqual(["hsb0", "web1", "web2"]);
    expect(hostsToQueue(build, "host_web1", "online")).toEqual([]);
  });

  it("moves every host of the builder's command with it, and each host's verdict is its own entry in the result", () => {
    let build = start(fleet, builders);
    build = hostCommandChanged(build, change(BUILDER_CMD, "running"), T0);
    expect(toFleetBuildView(build).hosts.filter((h) => h.state === "building").map((h) => h.name)).toEqual(["hsb0", "web1", "web2"]);
    const result = builderResult({
      hsb0: { storePath: "/nix/store/aaaa-nixos-system-hsb0", durationMs: 60_000 },
      web1: { storePath: null, durationMs: 2_000, error: "the build of web1 failed (nix build exited with code 1)", errorTail: "building…\nerror: attribute 'web1' missing" },
      web2: { storePath: "/nix/store/cccc-nixos-system-web2", durationMs: 50_000 },
    });
    build = hostCommandChanged(build, change(BUILDER_CMD, "failed", result, "1 host of 3 not built: web1"), T0);
    const view = toFleetBuildView(build);
    expect(view.hosts.find((h) => h.name === "hsb0")).toMatchObject({ state: "built", storePath: "/nix/store/aaaa-nixos-system-hsb0", durationMs: 60_000, closureDiff: null, builtBy: "hsb0" });
    expect(view.hosts.find((h) => h.name === "web1")).toMatchObject({ state: "failed", reason: "error: attribute 'web1' missing", errorTail: "building…\nerror: attribute 'web1' missing" });
    expect(view.hosts.find((h) => h.name === "web2")).toMatchObject({ state: "built", storePath: "/nix/store/cccc-nixos-system-web2" });
    expect(build.headTree).toBe(TREE);
    // pi1 still builds its own.
    expect(summarize(build)).toMatchObject({ verdict: "failure", built: 2, counted: 4 });
  });

  it("fails a host the builder built but could not publish, and every host with the command's error when it said nothing of them", () => {
    const published = hostCommandChanged(
      start(fleet, builders),
      change(BUILDER_CMD, "failed", builderResult({ hsb0: { storePath: null, durationMs: 1, error: "built, but not published to the fleet cache: HTTP 401" } }), "…"),
      T0,
    );
    const view = toFleetBuildView(published);
    expect(view.hosts.find((h) => h.name === "hsb0")).toMatchObject({ state: "failed", reason: "built, but not published to the fleet cache: HTTP 401" });
    expect(view.hosts.find((h) => h.name === "web2")).toMatchObject({ state: "failed", reason: "…" });

    const fetchFailed = hostCommandChanged(start(fleet, builders), change(BUILDER_CMD, "failed", null, "commit abc is not in the repository"), T0);
    expect(toFleetBuildView(fetchFailed).hosts.filter((h) => h.builtBy === "hsb0").map((h) => [h.state, h.reason])).toEqual([
      ["failed", "commit abc is not in the repository"],
      ["failed", "commit abc is not in the repository"],
      ["failed", "commit abc is not in the repository"],
    ]);
  });

  it("stops the builder's one command once when a newer head supersedes the build, naming the hosts it builds", () => {
    const { commands } = stopBuild(start(fleet, builders), { supersededBy: "fb_9" }, "superseded", T0);
    expect(commands).toEqual([
      { host: "hsb0", hostId: "host_hsb0", commandId: BUILDER_CMD, builds: ["hsb0", "web1", "web2"] },
      { host: "pi1", hostId: "host_pi1", commandId: OWN_CMD, builds: ["pi1"] },
    ]);
  });
});
