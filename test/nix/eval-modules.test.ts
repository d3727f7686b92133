/**
 * The three modules evaluated by nixpkgs' real module system (test/nix/eval-modules.nix):
 * options, defaults, mkDefault hardening, assertions and the service each
 * platform gets; and the flake's outputs (test/nix/eval-flake.nix). Needs a
 * nixpkgs `lib` on disk: NIXPKGS_LIB=/path/to/nixpkgs/lib, by default the copy
 * at ../shared/nixpkgs-lib/lib beside the repository.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { promisify } from "node:util";
import { z } from "zod";
import { AgentConfig } from "../../common/agent-config.ts";
import { PLATFORMS } from "../../common/protocol.ts";
import { agentSnippet } from "../../ui/common/nix-snippet.ts";
import { describeWithNix } from "../fixtures/nix/require-nix.ts";
import { evalNix, evalNixWith, nixString, REPO_ROOT } from "./nix-eval.ts";

const SHARED_NIXPKGS_LIB = path.resolve(REPO_ROOT, "..", "shared", "nixpkgs-lib", "lib");
const nixpkgsLib = process.env.NIXPKGS_LIB || (existsSync(path.join(SHARED_NIXPKGS_LIB, "default.nix")) ? SHARED_NIXPKGS_LIB : "");
/** Set in CI: a missing nixpkgs lib is a failure, not a skip. */
const nixpkgsLibRequired = process.env.NIXFLEET_REQUIRE_NIXPKGS_LIB === "1";

const Report = z.object({
  failedAssertions: z.array(z.string()),
  warnings: z.array(z.string()),
  agentConfig: z.unknown(),
});
const Unit = z.record(z.string(), z.unknown());
const Results = z.object({
  nixos: Report.extend({ service: Unit, nixDaemon: Unit }),
  nixosPackageFromOverlay: Report.extend({ service: Unit }),
  nixosOverrides: Report.extend({ service: Unit, nixDaemon: Unit }),
  nixosProblems: Report,
  darwin: Report.extend({ daemon: Unit, extraActivation: z.string(), nixDaemon: Unit }),
  darwinWithoutHostName: Report,
  homeManagerLinux: Report.extend({ userServices: z.record(z.string(), Unit), launchdAgents: z.record(z.string(), Unit) }),
  homeManagerDarwin: Report.extend({ userServices: z.record(z.string(), Unit), launchdAgents: z.record(z.string(), Unit) }),
  homeManagerWithoutHostName: Report,
  summary: z.object({ cleanButRefused: z.array(z.string()), refusedButClean: z.array(z.string()) }),
  "snippet-nixos": Report,
  "snippet-darwin": Report,
  "snippet-home-manager": Report,
});
type Results = z.infer<typeof Results>;

const SYSTEMS = ["aarch64-darwin", "aarch64-linux", "x86_64-darwin", "x86_64-linux"];
const FlakeShape = z.object({
  outputs: z.array(z.string()),
  systems: z.record(z.string(), z.array(z.string())),
  packages: z.record(z.string(), z.record(z.string(), z.string())),
  checks: z.record(z.string(), z.array(z.string())),
  modules: z.record(z.string(), z.array(z.string())),
  moduleEvaluationCheck: z.string(),
  overlayPackage: z.string(),
  packageThroughModule: z.record(z.string(), z.string()),
});

const PackageArgs = z.object({
  pname: z.string(),
  version: z.string(),
  src: z.string(),
  postPatch: z.string(),
  buildPhase: z.string(),
  installPhase: z.string(),
  installCheckPhase: z.string(),
  doInstallCheck: z.boolean(),
  npmConfigHook: z.string(),
  nodejs: z.string(),
  importedManifest: z.looseObject({
    version: z.string(),
    bin: z.record(z.string(), z.string()),
    devDependencies: z.record(z.string(), z.string()),
  }),
  importedPackages: z.array(z.string()),
  fetchedPackages: z.array(z.string()),
  meta: z.object({ mainProgram: z.string(), license: z.looseObject({ spdxId: z.string() }), platforms: z.number() }),
});

const ServiceConfig = z.record(z.string(), z.unknown());
const serviceConfigOf = (service: Record<string, unknown>) => ServiceConfig.parse(service.serviceConfig);

if (nixpkgsLib === "" && nixpkgsLibRequired) {
  describe("the NixOS, nix-darwin and Home Manager modules, the package and the flake", () => {
    it("has a nixpkgs lib on disk (NIXFLEET_REQUIRE_NIXPKGS_LIB=1)", () => {
      expect.fail(`no nixpkgs lib: NIXPKGS_LIB is not set and ${SHARED_NIXPKGS_LIB} does not exist`);
    });
  });
} else if (nixpkgsLib === "") {
  // nixpkgs cannot be fetched on the machines this suite runs on; CI has the copy
  // in ../shared and sets NIXFLEET_REQUIRE_NIXPKGS_LIB=1, which fails instead.
  console.warn(
    `SKIPPED: module evaluation needs a nixpkgs lib on disk — set NIXPKGS_LIB=/path/to/nixpkgs/lib or put one at ${SHARED_NIXPKGS_LIB} ` +
      "(`nix flake check` runs the same evaluation as its module-evaluation check)",
  );
  describe.skip("the NixOS, nix-darwin and Home Manager modules, the package and the flake (NIXPKGS_LIB not set)", () => { // reason: no nixpkgs lib on this machine (warned above); NIXFLEET_REQUIRE_NIXPKGS_LIB=1 fails instead
    it("evaluates the modules, the package expression and the flake's outputs", () => {});
  });
} else {
  describeWithNix("the agent package's expression (nix/package.nix)", () => {
    let pkg: z.infer<typeof PackageArgs>;

    beforeAll(async () => {
      const file = nixString(path.join(REPO_ROOT, "test", "nix", "eval-package.nix"));
      pkg = PackageArgs.parse(await evalNix(`import ${file} { }`, { NIXPKGS_LIB: nixpkgsLib }, { copySources: true }));
    });

    it("bundles the agent at build time on Node 24, with esbuild for the build machine from the agent's own lockfile", async () => {
      const repo = z.looseObject({ version: z.string() }).parse(JSON.parse(await fs.readFile(path.join(REPO_ROOT, "package.json"), "utf8")));
      expect(pkg).toMatchObject({
        pname: "nixfleet-agent",
        version: repo.version,
        npmConfigHook: "importNpmLock.npmConfigHook",
        nodejs: "nodejs-24.11.0",
        doInstallCheck: true,
        meta: { mainProgram: "nixfleet-agent", license: { spdxId: "MIT" } },
      });
      expect(pkg.buildPhase).toContain('node scripts/build-agent.mjs "$PWD/dist/agent"');
      expect(pkg.fetchedPackages).toContain("node_modules/zod");
      expect(pkg.fetchedPackages).toContain("node_modules/esbuild");
      // The evaluation stands in an x86_64-linux build machine: only its esbuild binary is fetched.
      expect(pkg.fetchedPackages.filter((name) => name.startsWith("node_modules/@esbuild/"))).toEqual(["node_modules/@esbuild/linux-x64"]);
      expect(pkg.importedPackages).toContain("node_modules/@esbuild/darwin-arm64");
      expect(pkg.importedPackages).not.toContain("node_modules/vitest");
      expect(pkg.importedManifest.devDependencies).toEqual({ esbuild: expect.any(String) });
      // The source gets the agent's own manifest and lockfile, the ones the dependencies were imported with.
      expect(pkg.postPatch).toMatch(/^cp \/nix\/store\/\S+-package\.json package\.json$/m);
      expect(pkg.postPatch).toMatch(/^cp \/nix\/store\/\S+-package-lock\.json package-lock\.json$/m);
    });

    it("installs only the two bundles, wraps both commands around the pinned Node, and starts them in its install check", () => {
      // The watchdog's bundle beside the agent's: the agent starts it with its own node and flags.
      expect(pkg.installPhase).toContain("cp dist/agent/nixfleet-agent.mjs dist/agent/nixfleet-watchdog.mjs dist/agent/nixfleet.mjs $out/lib/nixfleet-agent/");
      expect(pkg.installPhase).not.toContain("node_modules");
      expect(pkg.installPhase).toMatch(
        /makeWrapper \S+-nodejs-24\.11\.0\/bin\/node \$out\/bin\/nixfleet-agent \\\n\s+--add-flags "\$\(cat dist\/agent\/node-flags\)" \\\n\s+--add-flags \$out\/lib\/nixfleet-agent\/nixfleet-agent\.mjs/,
      );
      expect(pkg.installPhase).toMatch(/makeWrapper \S+-nodejs-24\.11\.0\/bin\/node \$out\/bin\/nixfleet \\\n\s+--add-flags \$out\/lib\/nixfleet-agent\/nixfleet\.mjs/);
      expect(pkg.installCheckPhase).toContain("$out/bin/nixfleet-agent --version");
      expect(pkg.installCheckPhase).toContain(`!= ${pkg.version}`);
      expect(pkg.installCheckPhase).toContain("$out/bin/nixfleet --help");
    });

    it("takes only what the bundles are built from into the package's source", async () => {
      expect((await fs.readdir(pkg.src)).sort()).toEqual(["agent", "cli", "common", "scripts", "tsconfig.base.json"]);
      expect((await fs.readdir(path.join(pkg.src, "scripts"))).sort()).toEqual(["build-agent.mjs", "zod-without-json-schema.mjs"]);
    });
  });

  describeWithNix("the flake's outputs", () => {
    let flake: z.infer<typeof FlakeShape>;

    beforeAll(async () => {
      const file = nixString(path.join(REPO_ROOT, "test", "nix", "eval-flake.nix"));
      flake = FlakeShape.parse(await evalNix(`import ${file} { }`, { NIXPKGS_LIB: nixpkgsLib }));
    });

    it("exposes the package, overlay, three modules, dev shell, formatter and checks", () => {
      expect(flake.outputs).toEqual([
        "checks",
        "darwinModules",
        "devShells",
        "formatter",
        "homeManagerModules",
        "nixosModules",
        "overlays",
        "packages",
      ]);
      expect(flake.modules).toEqual({
        nixos: ["default", "nixfleet-agent"],
        darwin: ["default", "nixfleet-agent"],
        homeManager: ["default", "nixfleet-agent"],
      });
    });

    it("builds for x86_64 and aarch64, Linux and macOS, with the package built from nix/package.nix as the default", () => {
      for (const output of ["packages", "devShells", "formatter", "checks"]) expect(flake.systems[output], output).toEqual(SYSTEMS);
      for (const system of SYSTEMS) {
        expect(flake.packages[system]).toEqual({ default: `package.nix-${system}`, "nixfleet-agent": `package.nix-${system}` });
      }
      expect(flake.overlayPackage).toBe("package.nix-x86_64-linux");
    });

    it("checks the package, the module evaluation and the formatting everywhere, and a real NixOS system on Linux", () => {
      expect(flake.checks["x86_64-linux"]).toEqual(["formatting", "module-evaluation", "nixos-module", "package"]);
      expect(flake.checks["aarch64-darwin"]).toEqual(["formatting", "module-evaluation", "package"]);
      expect(flake.moduleEvaluationCheck).toBe("nixfleet-module-evaluation.json");
    });

    it("gives a host that imports the flake's module the flake's agent package for its platform", () => {
      expect(flake.packageThroughModule).toEqual({
        "x86_64-linux": "package.nix-x86_64-linux",
        "aarch64-darwin": "package.nix-aarch64-darwin",
      });
    });
  });

  describeWithNix("the NixOS, nix-darwin and Home Manager modules under lib.evalModules", () => {
    let results: Results;
    let snippetDir: string;

    beforeAll(async () => {
      // What the dashboard shows when a host is added, pasted as that host's configuration.
      snippetDir = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-snippets-"));
      const snippets: string[] = [];
      for (const platform of PLATFORMS) {
        const snippet = agentSnippet({
          origin: "https://fleet.example.com",
          platform,
          hostName: "new-host",
          flakeAttr: platform === "home-manager" ? "alice" : null,
          repository: "example/nixcfg",
        });
        const file = path.join(snippetDir, `${platform}.nix`);
        await fs.writeFile(file, `{\n${snippet}}\n`);
        snippets.push(`${platform} = ${nixString(file)};`);
      }
      const harness = nixString(path.join(REPO_ROOT, "test", "nix", "eval-modules.nix"));
      results = Results.parse(
        await evalNix(`import ${harness} { snippets = { ${snippets.join(" ")} }; }`, { NIXPKGS_LIB: nixpkgsLib }),
      );
    });

    afterAll(async () => {
      await fs.rm(snippetDir, { recursive: true, force: true });
    });

    it("turns the snippet the dashboard prints for a new host into a working agent config on every platform", () => {
      for (const platform of PLATFORMS) {
        const report = results[`snippet-${platform}`];
        expect(report.failedAssertions, platform).toEqual([]);
        expect(AgentConfig.parse(report.agentConfig), platform).toMatchObject({
          url: "https://fleet.example.com",
          hostName: "new-host",
          platform,
          repoUrl: "https://github.com/example/nixcfg.git",
        });
      }
      expect(AgentConfig.parse(results["snippet-home-manager"].agentConfig).tokenFile).toBe("/home/alice/.config/nixfleet/token");
    });

    it("evaluates every well-formed host without a failed assertion, and refuses every malformed one", () => {
      expect(results.summary).toEqual({ cleanButRefused: [], refusedButClean: [] });
    });

    it("renders a NixOS host's config that the agent accepts", () => {
      const config = AgentConfig.parse(results.nixos.agentConfig);
      expect(config).toMatchObject({
        hostName: "web-1",
        platform: "nixos",
        tokenFile: "/run/credentials/nixfleet-agent.service/token",
        stateDir: "/var/lib/nixfleet-agent",
        currentSystemLink: "/run/current-system",
        pollTimeoutSeconds: 30,
        autoTestAfterSwitch: true,
        rollout: { autoUpdate: true, priority: 1, canary: true },
        tools: { detach: "systemd-run" },
        desired: { evaluate: "local", memoryMax: "2G", maxDelaySeconds: 300, timeoutSeconds: 1800 },
      });
      expect(AgentConfig.parse(results.nixosOverrides.agentConfig).desired).toMatchObject({ evaluate: "ci", memoryMax: "1G" });
      // The space checks are on by default: 2 GiB free on the store, 16 MiB beyond kernel and initrd on /boot.
      expect(config.spaceCheck).toMatchObject({ enable: true, storeMinFree: 2 * 1024 ** 3, bootMargin: 16 * 1024 ** 2 });
      expect(AgentConfig.parse(results.nixosOverrides.agentConfig).spaceCheck).toMatchObject({ enable: true, storeMinFree: 5 * 1024 ** 3, bootMargin: 64 * 1024 ** 2 });
      expect(config.tools.nixosRebuild).toMatch(/-nixos-rebuild\/bin\/nixos-rebuild$/);
      expect(config.tests.commands.map((test) => test.name)).toEqual(["nginx", "no-failed-units"]);
      expect(config.extraPath).toEqual([expect.stringMatching(/-curl-8\.16\.0\/bin$/)]);
    });

    it("runs the NixOS agent as a restarting service that a switch restarts onto its new version without being stopped first", () => {
      const { service } = results.nixos;
      expect(service).toMatchObject({ restartIfChanged: true, stopIfChanged: false, wantedBy: ["multi-user.target"], startLimitIntervalSec: 0 });
      const serviceConfig = serviceConfigOf(service);
      expect(serviceConfig).toMatchObject({
        Restart: "always",
        RestartPreventExitStatus: 78,
        StateDirectory: "nixfleet-agent",
        LoadCredential: ["token:/run/secrets/nixfleet-agent-token"],
      });
      expect(serviceConfig.ExecStart).toMatch(/-nixfleet-agent-0\.1\.0\/bin\/nixfleet-agent run --config \/nix\/store\/\S+-nixfleet-agent\.json$/);
      expect(JSON.stringify(service.path)).toContain("-nixos-rebuild");
    });

    it("hardens the NixOS service, with the relaxations the agent needs", () => {
      expect(serviceConfigOf(results.nixos.service)).toMatchObject({
        NoNewPrivileges: true,
        ProtectSystem: "strict",
        ProtectHome: "read-only",
        PrivateTmp: true,
        PrivateDevices: true,
        ProtectKernelTunables: true,
        ProtectKernelModules: true,
        ProtectControlGroups: true,
        RestrictSUIDSGID: true,
        LockPersonality: true,
        SystemCallArchitectures: "native",
        MemoryDenyWriteExecute: false,
        UMask: "0077",
      });
    });

    it("runs the NixOS agent as background work: niced, low CPU and IO weight, a memory ceiling, and the daemon's builds yielding", () => {
      expect(serviceConfigOf(results.nixos.service)).toMatchObject({
        Nice: 10,
        CPUWeight: 20,
        IOWeight: 20,
        IOSchedulingClass: "best-effort",
        IOSchedulingPriority: 7,
        MemoryHigh: "256M",
      });
      expect(results.nixos.nixDaemon).toEqual({ daemonCPUSchedPolicy: "batch", daemonIOSchedPriority: 7 });
    });

    it("lets a host lift the memory ceiling, pick its own nice value and leave the Nix daemon alone", () => {
      const serviceConfig = serviceConfigOf(results.nixosOverrides.service);
      expect(serviceConfig).not.toHaveProperty("MemoryHigh");
      expect(serviceConfig.Nice).toBe(5);
      expect(results.nixosOverrides.nixDaemon).toEqual({ daemonCPUSchedPolicy: "other", daemonIOSchedPriority: 4 });
    });

    it("lets a host override every hardening flag and the restart-on-switch with plain definitions", () => {
      const { service } = results.nixosOverrides;
      expect(service.restartIfChanged).toBe(false);
      expect(serviceConfigOf(service)).toMatchObject({ ProtectSystem: "full", ProtectHome: true, NoNewPrivileges: true });
    });

    it("takes the agent package from pkgs when the flake's overlay provides it", () => {
      expect(results.nixosPackageFromOverlay.failedAssertions).toEqual([]);
      expect(serviceConfigOf(results.nixosPackageFromOverlay.service).ExecStart).toMatch(/-nixfleet-agent-0\.1\.0\/bin\/nixfleet-agent run/);
    });

    it("reports every problem of a malformed NixOS host as an assertion that says what to fix", () => {
      const messages = results.nixosProblems.failedAssertions;
      expect(results.nixosProblems.agentConfig).toBeNull();
      for (const expected of [
        "services.nixfleet-agent.package is not set",
        "services.nixfleet-agent.url must be the http:// or https:// address",
        "services.nixfleet-agent.tokenFile is in the Nix store",
        'services.nixfleet-agent.hostName = "Web_1" is not a NixFleet host name',
        'tests.commands."smoke" is empty',
        "settings has keys the agent does not know: pollIntervalSeconds",
        'tools.detach must stay "systemd-run" on NixOS',
      ]) {
        expect(messages.some((message) => message.includes(expected)), expected).toBe(true);
      }
    });

    it("runs the nix-darwin agent as a launchd daemon whose switch survives the daemon being reloaded", () => {
      const config = AgentConfig.parse(results.darwin.agentConfig);
      expect(config).toMatchObject({
        hostName: "mac-mini",
        platform: "darwin",
        tokenFile: "/run/secrets/nixfleet-agent-token",
        stateDir: "/var/lib/nixfleet-agent",
        currentSystemLink: "/run/current-system",
        // The watchdog a launchd job of its own, so the daemon's reload by the activation leaves it running.
        tools: { detach: "setsid", watchdogDetach: "launchd" },
      });
      expect(config.tools.darwinRebuild).toMatch(/-darwin-rebuild\/bin\/darwin-rebuild$/);
      const { daemon } = results.darwin;
      expect(daemon.serviceConfig).toMatchObject({
        KeepAlive: true,
        RunAtLoad: true,
        AbandonProcessGroup: true,
        ProcessType: "Standard",
        StandardOutPath: "/var/log/nixfleet-agent.log",
        StandardErrorPath: "/var/log/nixfleet-agent.log",
      });
      // Background work that the switch it starts inherits, and the daemon's builds at low IO priority.
      expect(daemon.serviceConfig).toMatchObject({ Nice: 10, LowPriorityIO: true });
      expect(results.darwin.nixDaemon).toEqual({ daemonIOLowPriority: true });
      expect(daemon.command).toMatch(/bin\/nixfleet-agent run --config \S+-nixfleet-agent\.json$/);
      expect(results.darwin.extraActivation).toContain("mkdir -p /var/lib/nixfleet-agent");
    });

    it("asks a nix-darwin host without networking.hostName for a host name", () => {
      expect(results.darwinWithoutHostName.failedAssertions).toEqual([
        expect.stringContaining("services.nixfleet-agent.hostName is not set"),
      ]);
    });

    it("runs the Home Manager agent on Linux as a user service whose restart leaves the running switch alone", () => {
      const config = AgentConfig.parse(results.homeManagerLinux.agentConfig);
      expect(config).toMatchObject({
        hostName: "alice-laptop",
        tokenFile: "/home/alice/.config/nixfleet/token",
        flakeAttr: "alice",
        platform: "home-manager",
        stateDir: "/home/alice/.local/state/nixfleet-agent",
        currentSystemLink: "/home/alice/.local/state/home-manager/gcroots/current-home",
        tools: { homeManager: "home-manager", detach: "setsid", watchdogDetach: "systemd-run-user" },
      });
      expect(AgentConfig.parse(results.homeManagerDarwin.agentConfig).tools.watchdogDetach).toBe("launchd");
      expect(results.homeManagerLinux.launchdAgents).toEqual({});
      const unit = z
        .object({ Service: z.record(z.string(), z.unknown()), Install: z.unknown() })
        .parse(results.homeManagerLinux.userServices["nixfleet-agent"]);
      expect(unit.Service).toMatchObject({ Restart: "always", KillMode: "process", Nice: 10, IOSchedulingPriority: 7 });
      // The switch shares this unit: no memory ceiling unless the host sets one.
      expect(unit.Service).not.toHaveProperty("MemoryHigh");
      expect(unit.Service.ExecStart).toMatch(/bin\/nixfleet-agent run --config \S+-nixfleet-agent\.json$/);
      expect(unit.Install).toEqual({ WantedBy: ["default.target"] });
    });

    it("warns a Home Manager host that does not say where the home-manager command is", () => {
      expect(results.homeManagerLinux.warnings).toEqual([expect.stringContaining("programs.home-manager.enable = true")]);
      expect(results.homeManagerDarwin.warnings).toEqual([]);
    });

    it("runs the Home Manager agent on macOS as a launchd agent that logs to ~/Library/Logs", () => {
      AgentConfig.parse(results.homeManagerDarwin.agentConfig);
      expect(results.homeManagerDarwin.userServices).toEqual({});
      const agent = z.object({ enable: z.boolean(), config: z.record(z.string(), z.unknown()) }).parse(results.homeManagerDarwin.launchdAgents["nixfleet-agent"]);
      expect(agent.enable).toBe(true);
      expect(agent.config).toMatchObject({
        KeepAlive: true,
        RunAtLoad: true,
        AbandonProcessGroup: true,
        Nice: 10,
        LowPriorityIO: true,
        StandardOutPath: "/home/alice/Library/Logs/nixfleet-agent.log",
      });
      expect(agent.config.ProgramArguments).toEqual([
        expect.stringMatching(/bin\/nixfleet-agent$/),
        "run",
        "--config",
        expect.stringMatching(/-nixfleet-agent\.json$/),
      ]);
    });

    it("asks a Home Manager host for a host name", () => {
      expect(results.homeManagerWithoutHostName.failedAssertions).toEqual([
        expect.stringContaining("services.nixfleet-agent.hostName is not set"),
      ]);
    });
  });

  describeWithNix("the fleet cache in the NixOS, nix-darwin and Home Manager modules", () => {
    const TOKEN = "nfa_cache-test-token-3f9c";
    const Settings = z.record(z.string(), z.unknown());
    const CacheResults = z.object({
      nixosCacheDefaults: Report.extend({
        nixSettings: Settings,
        cacheUnits: z.object({ services: z.record(z.string(), Unit), paths: z.record(z.string(), Unit) }),
      }),
      nixosCache: Report.extend({ nixSettings: Settings, cacheUnits: z.object({ services: z.record(z.string(), Unit) }) }),
      nixosCacheProblems: Report,
      nixosCacheBadKey: Report,
      darwinCache: Report.extend({ nixSettings: Settings, extraActivation: z.string() }),
      darwinCacheUnmanagedNix: Report.extend({ nixSettings: Settings }),
      homeManagerCache: Report.extend({
        nixSettings: Settings,
        activation: z.record(z.string(), z.object({ after: z.array(z.string()), before: z.array(z.string()), data: z.string() })),
      }),
    });
    const run = promisify(execFile);
    let scratch: string;
    let raw: string;
    let cache: z.infer<typeof CacheResults>;

    beforeAll(async () => {
      scratch = await fs.mkdtemp(path.join(os.tmpdir(), "nixfleet-cache-modules-"));
      // Written before the evaluation: nothing the modules produce may hold the token itself.
      await fs.mkdir(path.join(scratch, "nixos"));
      await fs.writeFile(path.join(scratch, "nixos", "token file"), `  ${TOKEN}\n`, { mode: 0o600 });
      await fs.mkdir(path.join(scratch, "home", ".config", "nixfleet"), { recursive: true });
      await fs.writeFile(path.join(scratch, "home", ".config", "nixfleet", "token"), TOKEN, { mode: 0o600 });
      const harness = nixString(path.join(REPO_ROOT, "test", "nix", "eval-modules.nix"));
      const cases = Object.keys(CacheResults.shape).join(" ");
      const evaluated = await evalNix(`let r = import ${harness} { cacheScratch = ${nixString(scratch)}; }; in { inherit (r) ${cases}; }`, {
        NIXPKGS_LIB: nixpkgsLib,
      });
      raw = JSON.stringify(evaluated);
      cache = CacheResults.parse(evaluated);
    });

    afterAll(async () => {
      await fs.rm(scratch, { recursive: true, force: true });
    });

    const nixosScript = () => {
      const service = cache.nixosCache.cacheUnits.services["nixfleet-agent-cache-netrc"];
      return z.string().parse(service?.script);
    };

    it("adds the cache to the NixOS daemon's substituters ahead of cache.nixos.org, its keys to the trusted ones, and a netrc outside the store", () => {
      expect(cache.nixosCacheDefaults.failedAssertions).toEqual([]);
      expect(cache.nixosCacheDefaults.nixSettings).toEqual({
        // The control plane's URL, its trailing slash dropped, + /cache.
        substituters: ["https://fleet.example.com/cache", "https://cache.nixos.org/"],
        "trusted-public-keys": [
          "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=",
          "builder-1:sNhYDcLoNqQlpvKaS0G/9p5krkUYBsinY57CW5NeUxE=",
        ],
        "netrc-file": "/var/lib/nixfleet-cache/netrc",
      });
    });

    it("writes the NixOS netrc in a oneshot ordered before the Nix daemon, and again whenever the token file changes", () => {
      const { services, paths } = cache.nixosCacheDefaults.cacheUnits;
      expect(services["nixfleet-agent-cache-netrc"]).toMatchObject({
        wantedBy: ["multi-user.target", "nix-daemon.service"],
        before: ["nix-daemon.service"],
        serviceConfig: { Type: "oneshot", RemainAfterExit: true, UMask: "0077" },
      });
      // The user's token file, not the agent's systemd credential (which exists only inside the agent's unit).
      expect(services["nixfleet-agent-cache-netrc"]?.script).toContain("token_file='/run/secrets/nixfleet-agent-token'");
      expect(paths["nixfleet-agent-cache-netrc"]).toEqual({
        wantedBy: ["multi-user.target"],
        pathConfig: { PathChanged: "/run/secrets/nixfleet-agent-token", Unit: "nixfleet-agent-cache-netrc-refresh.service" },
      });
      expect(services["nixfleet-agent-cache-netrc-refresh"]?.script).toBe("systemctl restart nixfleet-agent-cache-netrc.service");
    });

    it("never puts the token into anything the modules generate, and keeps the netrc out of the store", () => {
      expect(raw).toContain(path.join(scratch, "nixos", "token file"));
      expect(raw).not.toContain(TOKEN);
      for (const report of [cache.nixosCacheDefaults, cache.nixosCache, cache.darwinCache, cache.homeManagerCache]) {
        expect(String(report.nixSettings["netrc-file"])).toMatch(/^\/(?!nix\/store\/)/);
      }
    });

    it("runs the NixOS script: a 0600 netrc naming the cache's host with the token as its password, replaced whole when the token changes", async () => {
      const netrc = path.join(scratch, "nixos", "etc", "netrc");
      await run("sh", ["-c", nixosScript()]);
      expect(await fs.readFile(netrc, "utf8")).toBe(`machine 127.0.0.1 password ${TOKEN}\n`);
      expect((await fs.stat(netrc)).mode & 0o777).toBe(0o600);
      expect((await fs.stat(path.dirname(netrc))).mode & 0o077).toBe(0);

      await fs.writeFile(path.join(scratch, "nixos", "token file"), "nfa_rotated\n");
      await run("sh", ["-c", nixosScript()]);
      expect(await fs.readFile(netrc, "utf8")).toBe("machine 127.0.0.1 password nfa_rotated\n");
      expect((await fs.readdir(path.dirname(netrc))).sort()).toEqual(["netrc"]);
    });

    it("makes the NixOS script fail with the reason, writing nothing, when the token file is missing or holds more than the token", async () => {
      const tokenFile = path.join(scratch, "nixos", "token file");
      const netrc = path.join(scratch, "nixos", "etc", "netrc");
      await fs.rm(path.dirname(netrc), { recursive: true, force: true });
      await fs.rm(tokenFile);
      await expect(run("sh", ["-c", nixosScript()])).rejects.toMatchObject({
        code: 1,
        stderr: expect.stringContaining(`cannot read the agent token file ${tokenFile}`),
      });
      await fs.writeFile(tokenFile, "two words\n");
      await expect(run("sh", ["-c", nixosScript()])).rejects.toMatchObject({
        code: 1,
        stderr: expect.stringContaining("must hold the token alone"),
      });
      expect(existsSync(netrc)).toBe(false);
    });

    it("names the cache URL's host as curl looks it up in the netrc: without port, user or IPv6 brackets; none for a URL that is not http(s)", async () => {
      const urls = ["https://fleet.example.com/cache", "http://127.0.0.1:8787/cache", "https://ci@fleet.example.com:8443/cache", "http://[::1]:8787/cache", "fleet.example.com/cache", "ftp://fleet.example.com/cache"];
      const hosts = await evalNixWith(`urls: map (import ${nixString(path.join(REPO_ROOT, "nix", "cache.nix"))}).hostOf urls`, urls);
      expect(hosts).toEqual(["fleet.example.com", "127.0.0.1", "fleet.example.com", "::1", null, null]);
    });

    it("refuses a cache without keys, with a key that is not a Nix public key, a URL that is not http(s) or a netrc in the store", () => {
      expect(cache.nixosCacheProblems.agentConfig).toBeNull();
      const messages = cache.nixosCacheProblems.failedAssertions;
      for (const expected of [
        "services.nixfleet-agent.cache.url must be the http:// or https:// address",
        "services.nixfleet-agent.cache.publicKeys is empty",
        "services.nixfleet-agent.cache.netrcFile must be an absolute path outside the Nix store",
      ]) {
        expect(messages.some((message) => message.includes(expected)), expected).toBe(true);
      }
      expect(messages).toHaveLength(3);
      expect(cache.nixosCacheBadKey.failedAssertions).toEqual([
        expect.stringMatching(/^services\.nixfleet-agent\.cache\.publicKeys has "sNhYDcLo[^"]*", which is not a\nNix public key/),
      ]);
    });

    it("gives nix-darwin's daemon the cache and writes the netrc at activation, without failing the activation when it cannot", async () => {
      expect(cache.darwinCache.failedAssertions).toEqual([]);
      expect(cache.darwinCache.nixSettings).toMatchObject({
        substituters: ["https://fleet.example.com/cache", "https://cache.nixos.org/"],
        "trusted-public-keys": expect.arrayContaining(["builder-1:sNhYDcLoNqQlpvKaS0G/9p5krkUYBsinY57CW5NeUxE="]),
        "netrc-file": "/var/lib/nixfleet-cache/netrc",
      });
      expect(cache.darwinCache.extraActivation).toContain("netrc='/var/lib/nixfleet-cache/netrc'");
      expect(cache.darwinCache.extraActivation).toContain("'fleet.example.com'");
    });

    it("tells a nix-darwin host whose Nix another installer manages which lines to add, and leaves nix.settings alone", () => {
      expect(cache.darwinCacheUnmanagedNix.failedAssertions).toEqual([]);
      expect(cache.darwinCacheUnmanagedNix.nixSettings).toEqual({
        substituters: ["https://cache.nixos.org/"],
        "trusted-public-keys": ["cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY="],
      });
      expect(cache.darwinCacheUnmanagedNix.warnings).toEqual([
        expect.stringContaining(
          "extra-substituters = https://fleet.example.com/cache\n  extra-trusted-public-keys = builder-1:sNhYDcLoNqQlpvKaS0G/9p5krkUYBsinY57CW5NeUxE=\n  netrc-file = /var/lib/nixfleet-cache/netrc",
        ),
      ]);
    });

    it("adds the cache to a Home Manager user's nix.conf with extra- settings and writes a 0600 netrc in the user's state directory at activation", async () => {
      const { nixSettings, activation, failedAssertions } = cache.homeManagerCache;
      const netrc = path.join(scratch, "home", ".local", "state", "nixfleet-cache", "netrc");
      expect(failedAssertions).toEqual([]);
      expect(nixSettings).toEqual({
        "extra-substituters": ["https://fleet.example.com/cache"],
        "extra-trusted-public-keys": ["builder-1:sNhYDcLoNqQlpvKaS0G/9p5krkUYBsinY57CW5NeUxE="],
        "netrc-file": netrc,
      });
      const entry = activation.nixfleetCacheNetrc;
      expect(entry?.after).toEqual(["writeBoundary"]);
      const script = z.string().parse(entry?.data);

      // A dry run (home-manager switch -n) writes nothing.
      await run("bash", ["-c", script], { env: { ...process.env, DRY_RUN: "1" } });
      expect(existsSync(netrc)).toBe(false);

      await run("bash", ["-c", script]);
      expect(await fs.readFile(netrc, "utf8")).toBe(`machine fleet.example.com password ${TOKEN}\n`);
      expect((await fs.stat(netrc)).mode & 0o777).toBe(0o600);

      // Home Manager activates under set -e: a missing token is reported, the activation goes on.
      await fs.rm(path.join(scratch, "home", ".config", "nixfleet", "token"));
      const missing = await run("bash", ["-ec", `${script}\necho activation-continued`]);
      expect(missing.stdout).toBe("activation-continued\n");
      expect(missing.stderr).toContain("the netrc was not written");
    });
  });
}
