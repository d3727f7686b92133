/**
 * nix/agent-config.nix — the renderer the NixOS, nix-darwin and Home Manager
 * modules share — evaluated with real Nix (no nixpkgs), its output parsed with
 * the agent's own `AgentConfig` schema: what the modules write, the agent reads.
 */
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { expect, it } from "vitest";
import { z } from "zod";
import { AgentConfig } from "../../common/agent-config.ts";
import { FlakeAttr, HostName, PLATFORMS } from "../../common/protocol.ts";
import { agentSnippet } from "../../ui/common/nix-snippet.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { evalNix, evalNixWith, NIX_DIR, nixString } from "./nix-eval.ts";

const RENDERER = nixString(path.join(NIX_DIR, "agent-config.nix"));
const STORE = "/nix/store";
const NO_BUILDER = { secretKeyFile: null, cacheTokenFile: null };
const agentPackage = `${STORE}/4f3kqv0m1x8h9s2d7c5b6n1p0r9w8y7z-nixfleet-agent-0.1.0`;

/** Option values as the module system hands them to the renderer: every option at its default. */
function optionValues(overrides: Record<string, unknown> = {}) {
  return {
    package: agentPackage,
    url: "https://fleet.example.com",
    tokenFile: "/run/secrets/nixfleet-agent-token",
    hostName: "web-1",
    repoUrl: "git@github.com:example/nixcfg.git",
    branch: "main",
    flakeAttr: null,
    pollTimeout: 90,
    tests: { commands: {}, directory: null },
    autoTestAfterSwitch: false,
    activation: "switch",
    safetyNet: { enable: true, confirmTimeout: 120 },
    spaceCheck: { enable: true, storeMinFree: 2 * 1024 ** 3, bootMargin: 16 * 1024 ** 2 },
    gc: { keepGenerations: null, keepDays: null },
    flakeUpdates: { autoUpdate: true, priority: 100, canary: false },
    evaluate: "local",
    desiredEvaluation: { memoryMax: "2G", maxDelay: 300, timeout: 1800 },
    switch: "build",
    buildWithoutManifest: false,
    cache: { enable: false, url: "https://fleet.example.com/cache", publicKeys: [], netrcFile: "/var/lib/nixfleet-cache/netrc", builder: NO_BUILDER },
    extraPath: [],
    logLevel: "info",
    settings: {},
    ...overrides,
  };
}

/** What each platform module puts into `hostIntegration`. */
const hosts = {
  nixos: {
    platform: "nixos",
    stateDir: "/var/lib/nixfleet-agent",
    tokenFile: "/run/credentials/nixfleet-agent.service/token",
    currentSystemLink: "/run/current-system",
    tools: {
      git: `${STORE}/aaaa-git-2.51.0/bin/git`,
      nix: `${STORE}/bbbb-nix-2.31.2/bin/nix`,
      nixosRebuild: `${STORE}/cccc-nixos-rebuild/bin/nixos-rebuild`,
      detach: "systemd-run",
    },
  },
  darwin: {
    platform: "darwin",
    stateDir: "/var/lib/nixfleet-agent",
    tokenFile: "/var/lib/secrets/nixfleet-agent-token",
    currentSystemLink: "/run/current-system",
    tools: {
      git: `${STORE}/aaaa-git-2.51.0/bin/git`,
      nix: `${STORE}/bbbb-nix-2.31.2/bin/nix`,
      darwinRebuild: `${STORE}/dddd-darwin-rebuild/bin/darwin-rebuild`,
      detach: "setsid",
    },
  },
  "home-manager": {
    platform: "home-manager",
    stateDir: "/home/alice/.local/state/nixfleet-agent",
    tokenFile: "/home/alice/.config/nixfleet/token",
    currentSystemLink: "/home/alice/.local/state/home-manager/gcroots/current-home",
    tools: { git: `${STORE}/aaaa-git-2.51.0/bin/git`, homeManager: "home-manager", detach: "setsid" },
  },
} as const;
type HostPlatform = keyof typeof hosts;

const render = async (platform: HostPlatform, overrides: Record<string, unknown> = {}): Promise<unknown> =>
  evalNixWith(`input: (import ${RENDERER}).render input`, { options: optionValues(overrides), host: hosts[platform] });

const Problems = z.array(z.string());
const problems = async (platform: HostPlatform, overrides: Record<string, unknown> = {}): Promise<string[]> =>
  Problems.parse(
    await evalNixWith(`input: (import ${RENDERER}).problems input`, { options: optionValues(overrides), host: hosts[platform] }),
  );

describeWithNix("the agent config rendered by the Nix modules", () => {
  it("the desired-system options render to the agent's desired section: who evaluates, its memory cap, delay and deadline", async () => {
    expect(AgentConfig.parse(await render("nixos")).desired).toEqual({
      evaluate: "local",
      memoryMax: "2G",
      maxDelaySeconds: 300,
      timeoutSeconds: 1800,
      outputLimitBytes: 4 * 1024 * 1024,
    });
    const small = AgentConfig.parse(
      await render("home-manager", { evaluate: "ci", desiredEvaluation: { memoryMax: null, maxDelay: 0, timeout: 60 } }),
    );
    expect(small.desired).toMatchObject({ evaluate: "ci", memoryMax: null, maxDelaySeconds: 0, timeoutSeconds: 60 });
  });

  it("the activation mode renders into the agent's config on NixOS, and on nix-darwin or Home Manager anything but switch is refused naming the option", async () => {
    expect(AgentConfig.parse(await render("nixos")).activation).toBe("switch");
    expect(AgentConfig.parse(await render("nixos", { activation: "boot-then-reboot-if-needed" })).activation).toBe("boot-then-reboot-if-needed");
    expect(await problems("nixos", { activation: "boot" })).toEqual([]);
    for (const platform of ["darwin", "home-manager"] as const) {
      const found = await problems(platform, { activation: "boot" });
      expect(found).toHaveLength(1);
      expect(found[0]).toContain(`services.nixfleet-agent.activation = "boot" is for NixOS only: ${platform}`);
      expect(await problems(platform)).toEqual([]);
    }
  });

  it("substitute mode renders with the cache's public keys as the manifest keys, and is refused without the cache, naming both options", async () => {
    const key = "fleet-builder-1:P53vKGjdMn96XCFWDu5RuGiMYuwzDzPMSdO0BWNfcjs=";
    const cache = { enable: true, url: "https://fleet.example.com/cache", publicKeys: [key], netrcFile: "/var/lib/nixfleet-cache/netrc", builder: NO_BUILDER };
    const config = AgentConfig.parse(await render("nixos", { switch: "substitute", buildWithoutManifest: true, cache }));
    expect(config).toMatchObject({ switch: "substitute", substitute: { trustedKeys: [key], buildWithoutManifest: true } });
    expect(AgentConfig.parse(await render("nixos"))).toMatchObject({ switch: "build", substitute: { trustedKeys: [], buildWithoutManifest: false } });
    expect(await problems("nixos", { switch: "substitute", cache })).toEqual([]);
    const found = await problems("nixos", { switch: "substitute" });
    expect(found).toHaveLength(1);
    expect(found[0]).toContain('services.nixfleet-agent.switch = "substitute" needs the fleet cache: set services.nixfleet-agent.cache.enable = true');
  });

  it("a builder host's key and cache token files render into the agent's builder config; one without the other, or one in the store, is refused naming the option", async () => {
    const cache = (builder: Record<string, string | null>) => ({ enable: true, url: "https://fleet.example.com/cache", publicKeys: [], netrcFile: "/var/lib/nixfleet-cache/netrc", builder: { ...NO_BUILDER, ...builder } });
    const files = { secretKeyFile: "/run/secrets/builder-key", cacheTokenFile: "/run/secrets/cache-token" };
    expect(AgentConfig.parse(await render("nixos", { cache: cache(files) })).builder).toEqual(files);
    expect(AgentConfig.parse(await render("nixos")).builder).toBeNull();
    expect(await problems("nixos", { cache: cache(files) })).toEqual([]);
    const half = await problems("nixos", { cache: cache({ secretKeyFile: files.secretKeyFile }) });
    expect(half).toHaveLength(1);
    expect(half[0]).toContain("services.nixfleet-agent.cache.builder.cacheTokenFile");
    const stored = await problems("nixos", { cache: cache({ ...files, secretKeyFile: `${STORE}/abc-key` }) });
    expect(stored).toHaveLength(1);
    expect(stored[0]).toContain("services.nixfleet-agent.cache.builder.secretKeyFile must be an absolute path outside the Nix store");
  });

  it("a NixOS host's options render to a config the agent accepts, reading its token from the systemd credential", async () => {
    const config = AgentConfig.parse(
      await render("nixos", {
        tests: { commands: { nginx: "systemctl is-active nginx" }, directory: null },
        autoTestAfterSwitch: true,
        safetyNet: { enable: false, confirmTimeout: 30 },
        spaceCheck: { enable: false, storeMinFree: 5 * 1024 ** 3, bootMargin: 0 },
        gc: { keepGenerations: 10, keepDays: null },
        flakeUpdates: { autoUpdate: false, priority: 1, canary: true },
        extraPath: [`${STORE}/eeee-curl-8.16.0`],
        logLevel: "debug",
      }),
    );
    expect(config).toMatchObject({
      url: "https://fleet.example.com",
      tokenFile: "/run/credentials/nixfleet-agent.service/token",
      hostName: "web-1",
      platform: "nixos",
      repoUrl: "git@github.com:example/nixcfg.git",
      branch: "main",
      stateDir: "/var/lib/nixfleet-agent",
      pollTimeoutSeconds: 90,
      tests: { commands: [{ name: "nginx", command: "systemctl is-active nginx" }] },
      autoTestAfterSwitch: true,
      safetyNet: { enable: false, confirmTimeoutSeconds: 30 },
      spaceCheck: { enable: false, storeMinFree: 5 * 1024 ** 3, bootMargin: 0, storeDir: "/nix/store", bootDir: "/boot" },
      gc: { keepGenerations: 10, keepDays: null },
      rollout: { autoUpdate: false, priority: 1, canary: true },
      extraPath: [`${STORE}/eeee-curl-8.16.0/bin`],
      currentSystemLink: "/run/current-system",
      logLevel: "debug",
    });
    expect(config.tools).toEqual({
      git: `${STORE}/aaaa-git-2.51.0/bin/git`,
      nix: `${STORE}/bbbb-nix-2.31.2/bin/nix`,
      nixosRebuild: `${STORE}/cccc-nixos-rebuild/bin/nixos-rebuild`,
      darwinRebuild: "darwin-rebuild",
      homeManager: "home-manager",
      // NixOS puts systemd on every service's path.
      systemctl: "systemctl",
      detach: "systemd-run",
    });
  });

  it("a nix-darwin host's options render to a config the agent accepts, switching with darwin-rebuild in its own session", async () => {
    const config = AgentConfig.parse(await render("darwin", { hostName: "mac-mini" }));
    expect(config).toMatchObject({
      platform: "darwin",
      hostName: "mac-mini",
      tokenFile: "/var/lib/secrets/nixfleet-agent-token",
      stateDir: "/var/lib/nixfleet-agent",
      currentSystemLink: "/run/current-system",
      tools: { darwinRebuild: `${STORE}/dddd-darwin-rebuild/bin/darwin-rebuild`, detach: "setsid" },
    });
  });

  it("a Home Manager host's options render to a config the agent accepts, watching the activated generation", async () => {
    const config = AgentConfig.parse(await render("home-manager", { hostName: "alice-laptop", flakeAttr: "alice" }));
    expect(config).toMatchObject({
      platform: "home-manager",
      hostName: "alice-laptop",
      flakeAttr: "alice",
      stateDir: "/home/alice/.local/state/nixfleet-agent",
      currentSystemLink: "/home/alice/.local/state/home-manager/gcroots/current-home",
      tools: { homeManager: "home-manager", detach: "setsid", nixosRebuild: "nixos-rebuild" },
    });
  });

  it("writes the flake attribute explicitly, defaulting to the host name", async () => {
    expect(AgentConfig.parse(await render("nixos")).flakeAttr).toBe("web-1");
    expect(AgentConfig.parse(await render("nixos", { flakeAttr: "web-1-prod" })).flakeAttr).toBe("web-1-prod");
  });

  it("turns the tests attribute set into a list ordered by test name, with the tests directory when set", async () => {
    const config = AgentConfig.parse(
      await render("nixos", {
        tests: {
          commands: { "z-last": "true", "a-first": "test -e /run/current-system", "m-middle": "exit 0" },
          directory: "/etc/nixfleet/tests",
        },
      }),
    );
    expect(config.tests).toEqual({
      directory: "/etc/nixfleet/tests",
      commands: [
        { name: "a-first", command: "test -e /run/current-system" },
        { name: "m-middle", command: "exit 0" },
        { name: "z-last", command: "true" },
      ],
    });
  });

  it("leaves unset optional fields out of the file instead of writing null, which the agent would reject", async () => {
    const rendered = await render("home-manager", { hostName: "alice-laptop" });
    const withoutLink = await evalNixWith(`input: (import ${RENDERER}).render input`, {
      options: optionValues(),
      host: { ...hosts.nixos, currentSystemLink: null },
    });
    expect(JSON.stringify(rendered)).not.toContain("null");
    expect(z.looseObject({ tests: z.looseObject({}) }).parse(rendered).tests).not.toHaveProperty("directory");
    expect(AgentConfig.parse(withoutLink)).not.toHaveProperty("currentSystemLink");
  });

  it("merges `settings` last and key by key, so one tool can be replaced without restating the others", async () => {
    const config = AgentConfig.parse(
      await render("nixos", { settings: { pollTimeoutSeconds: 25, tools: { git: "/run/current-system/sw/bin/git" } } }),
    );
    expect(config.pollTimeoutSeconds).toBe(25);
    expect(config.tools.git).toBe("/run/current-system/sw/bin/git");
    expect(config.tools.nixosRebuild).toBe(`${STORE}/cccc-nixos-rebuild/bin/nixos-rebuild`);
    expect(config.tools.detach).toBe("systemd-run");
  });

  it("knows exactly the top-level keys of the agent's config schema", async () => {
    const keys = z.array(z.string()).parse(await evalNix(`(import ${RENDERER}).agentConfigKeys`));
    expect([...keys].sort()).toEqual(Object.keys(AgentConfig.shape).sort());
  });

  it("finds nothing wrong with valid options on any platform", async () => {
    expect(await problems("nixos")).toEqual([]);
    expect(await problems("darwin")).toEqual([]);
    expect(await problems("home-manager", { hostName: "alice-laptop" })).toEqual([]);
  });

  it("refuses a token file in the Nix store and says to keep it outside, as a string path", async () => {
    const found = await problems("nixos", { tokenFile: `${STORE}/0c9x8v7b6n5m4l3k2j1h0g9f8d7s6a5p-token` });
    expect(found).toHaveLength(1);
    expect(found[0]).toContain("services.nixfleet-agent.tokenFile is in the Nix store");
    expect(found[0]).toContain('tokenFile = "/run/secrets/nixfleet-agent-token"');
  });

  it("refuses a token path that is not absolute", async () => {
    const found = await problems("darwin", { tokenFile: "secrets/token" });
    expect(found).toEqual([expect.stringContaining("services.nixfleet-agent.tokenFile must be an absolute path")]);
  });

  it("refuses a token file that `settings` points into the store", async () => {
    const found = await problems("home-manager", {
      hostName: "alice-laptop",
      settings: { tokenFile: `${STORE}/0c9x8v7b6n5m4l3k2j1h0g9f8d7s6a5p-token` },
    });
    expect(found).toEqual([expect.stringContaining("services.nixfleet-agent.settings.tokenFile points into the Nix store")]);
  });

  it("judges host names exactly as the control plane does", async () => {
    const names = ["a", "web-1", "hsb0", "x".repeat(63), "x".repeat(64), "-web", "web-", "Web", "web_1", "web.1", ""];
    for (const name of names) {
      const found = await problems("nixos", { hostName: name });
      const accepted = HostName.safeParse(name).success;
      expect(found.some((message) => message.includes("is not a NixFleet host name")), `host name ${JSON.stringify(name)}`).toBe(!accepted);
    }
  });

  it("judges flake attribute names exactly as the control plane does", async () => {
    const attrs = ["hsb0", "my.host", "web_1", "Web-1", "alice@laptop", "a b", "a#b", "a;b", "x".repeat(200), "x".repeat(201)];
    for (const attr of attrs) {
      const found = await problems("nixos", { flakeAttr: attr });
      const accepted = FlakeAttr.safeParse(attr).success;
      expect(found.some((message) => message.includes("is not a flake attribute name")), `flake attribute ${JSON.stringify(attr)}`).toBe(!accepted);
    }
  });

  it("asks for a host name when none is set (Home Manager has no default)", async () => {
    const found = await problems("home-manager", { hostName: null });
    expect(found).toEqual([expect.stringContaining("services.nixfleet-agent.hostName is not set")]);
  });

  it("refuses a control-plane URL without http:// or https://", async () => {
    for (const url of ["fleet.example.com", "ftp://fleet.example.com", "https://", "https://fleet example.com"]) {
      expect(await problems("nixos", { url }), url).toEqual([expect.stringContaining("services.nixfleet-agent.url must be")]);
    }
  });

  it("refuses `settings` keys the agent's strict config would reject at start-up", async () => {
    const found = await problems("nixos", { settings: { pollIntervalSeconds: 5 } });
    expect(found).toEqual([expect.stringContaining("settings has keys the agent does not know: pollIntervalSeconds")]);
  });

  it("on NixOS refuses a switch that would not be detached with systemd-run", async () => {
    const found = await problems("nixos", { settings: { tools: { detach: "setsid" } } });
    expect(found).toEqual([expect.stringContaining('tools.detach must stay "systemd-run" on NixOS')]);
    expect(await problems("darwin", { settings: { tools: { detach: "none" } } })).toEqual([]);
  });

  it("names the three ways to provide the agent package when it is missing", async () => {
    const found = await problems("darwin", { package: null });
    expect(found).toHaveLength(1);
    expect(found[0]).toContain("nixosModules.default, darwinModules.default or homeManagerModules.default");
    expect(found[0]).toContain("overlays.default");
    expect(found[0]).toContain('pkgs.callPackage "${nixfleet}/nix/package.nix" { }');
  });

  it("renders the snippet the dashboard prints for a new host into a config the agent accepts, on every platform", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-snippet-"));
    try {
      for (const platform of PLATFORMS) {
        const file = path.join(dir, `${platform}.nix`);
        const snippet = agentSnippet({ origin: "https://fleet.example.com", platform, hostName: "new-host", repository: "example/nixcfg" });
        await fs.writeFile(file, `{\n${snippet}}\n`);
        const pasted = z
          .record(z.string(), z.unknown())
          .parse(await evalNix(`(import ${nixString(file)}).services.nixfleet-agent`));
        expect(pasted.enable, platform).toBe(true);
        const { enable: _enable, ...options } = pasted;
        // The Home Manager module expands the snippet's `~/` against the home directory.
        const home = "/home/alice";
        const host =
          platform === "home-manager"
            ? { ...hosts[platform], tokenFile: `${home}/.config/nixfleet/token`, tokenSource: `${home}/.config/nixfleet/token` }
            : hosts[platform];
        const input = { options: optionValues(options), host };
        expect(Problems.parse(await evalNixWith(`input: (import ${RENDERER}).problems input`, input)), platform).toEqual([]);
        const config = AgentConfig.parse(await evalNixWith(`input: (import ${RENDERER}).render input`, input));
        expect(config, platform).toMatchObject({ hostName: "new-host", url: "https://fleet.example.com", repoUrl: "https://github.com/example/nixcfg.git" });
      }
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses empty test commands and a relative tests directory", async () => {
    const found = await problems("nixos", { tests: { commands: { smoke: "" }, directory: "tests" } });
    expect(found).toEqual([
      expect.stringContaining("tests.directory must be an absolute path"),
      expect.stringContaining('tests.commands."smoke" is empty'),
    ]);
  });
});
