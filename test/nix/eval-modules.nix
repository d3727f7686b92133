# Evaluates the NixOS, nix-darwin and Home Manager modules with nixpkgs' real
# module system (lib.evalModules), against small stand-ins for the options of
# NixOS, nix-darwin and Home Manager that the modules set or read, and with
# fake packages (no nixpkgs package set, nothing is built).
#
#   NIXPKGS_LIB=/path/to/nixpkgs/lib nix-instantiate --eval --strict --json \
#     --expr 'import ./test/nix/eval-modules.nix { }'
#
# test/nix/eval-modules.test.ts runs it and checks the result; the flake's
# `module-evaluation` check evaluates it with the flake's nixpkgs.
#
# `snippets`: files holding what the dashboard tells a user to paste for a new
# host (`services.nixfleet-agent = { … };`), per platform; each is evaluated
# as that host's configuration (cases snippet-nixos, snippet-darwin,
# snippet-home-manager).
#
# `cacheScratch`: a directory for the cases with the fleet cache, where the
# test puts a token file and runs the netrc script the modules generate.
{
  lib ? import (builtins.getEnv "NIXPKGS_LIB"),
  snippets ? { },
  cacheScratch ? "/var/empty/nixfleet-cache-scratch",
}:
let
  inherit (lib) mkOption types;

  nixDir = ../../nix;

  fakeHash = name: builtins.substring 0 32 (builtins.hashString "sha256" name);
  fakePackage = name: mainProgram: {
    type = "derivation";
    inherit name;
    outPath = "${builtins.storeDir}/${
      builtins.substring 0 32 (builtins.hashString "sha256" name)
    }-${name}";
    meta.mainProgram = mainProgram;
  };

  agent = fakePackage "nixfleet-agent-0.1.0" "nixfleet-agent";

  # The same value type as nixpkgs' `pkgs.formats.json { }`.
  jsonValue =
    types.nullOr (
      types.oneOf [
        types.bool
        types.int
        types.float
        types.str
        types.path
        (types.attrsOf jsonValue)
        (types.listOf jsonValue)
      ]
    )
    // {
      description = "JSON value";
    };

  fakePkgs =
    {
      isDarwin ? false,
      withAgent ? false,
    }:
    {
      git = fakePackage "git-2.51.0" "git";
      jq = fakePackage "jq-1.8.1" "jq";
      stdenv.hostPlatform.isDarwin = isDarwin;
      formats.json = { }: {
        type = jsonValue;
        generate = name: _value: "${builtins.storeDir}/00000000000000000000000000000000-${name}";
      };
    }
    // lib.optionalAttrs withAgent { nixfleet-agent = agent; };

  # A freeform attribute set whose values merge like NixOS options do
  # (mkDefault, mkForce, mkIf …), for unit definitions.
  freeform = types.submodule { freeformType = types.attrsOf types.anything; };

  # nix.settings as NixOS and nix-darwin declare it: list settings merge,
  # and cache.nixos.org comes last (mkAfter).
  nixSettings = {
    options.nix.settings = mkOption {
      type = types.submodule {
        freeformType = types.attrsOf types.anything;
        options.substituters = mkOption {
          type = types.listOf types.str;
          default = [ ];
        };
        options.trusted-public-keys = mkOption {
          type = types.listOf types.str;
          default = [ ];
        };
      };
      default = { };
    };
    config.nix.settings = {
      substituters = lib.mkAfter [ "https://cache.nixos.org/" ];
      trusted-public-keys = [ "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=" ];
    };
  };

  commonStubs = {
    options = {
      assertions = mkOption {
        type = types.listOf types.unspecified;
        default = [ ];
      };
      warnings = mkOption {
        type = types.listOf types.str;
        default = [ ];
      };
    };
  };

  nixosStubs = {
    imports = [ nixSettings ];
    options = {
      networking.hostName = mkOption {
        type = types.str;
        default = "nixos";
      };
      nix.package = mkOption {
        type = types.package;
        default = fakePackage "nix-2.31.2" "nix";
      };
      nix.daemonCPUSchedPolicy = mkOption {
        type = types.enum [
          "other"
          "batch"
          "idle"
        ];
        default = "other";
      };
      nix.daemonIOSchedPriority = mkOption {
        type = types.ints.between 0 7;
        default = 4;
      };
      programs.ssh.package = mkOption {
        type = types.package;
        default = fakePackage "openssh-10.2p1" "ssh";
      };
      system.build = mkOption {
        type = types.lazyAttrsOf types.unspecified;
        default = { };
      };
      systemd.services = mkOption {
        type = types.attrsOf freeform;
        default = { };
      };
      systemd.paths = mkOption {
        type = types.attrsOf freeform;
        default = { };
      };
    };
    config.system.build.nixos-rebuild = fakePackage "nixos-rebuild" "nixos-rebuild";
  };

  darwinStubs = {
    imports = [ nixSettings ];
    options = {
      networking.hostName = mkOption {
        type = types.nullOr types.str;
        default = null;
      };
      nix.enable = mkOption {
        type = types.bool;
        default = true;
      };
      nix.package = mkOption {
        type = types.package;
        default = fakePackage "nix-2.31.2" "nix";
      };
      nix.daemonIOLowPriority = mkOption {
        type = types.bool;
        default = false;
      };
      system.build = mkOption {
        type = types.lazyAttrsOf types.unspecified;
        default = { };
      };
      system.activationScripts = mkOption {
        type = types.attrsOf (
          types.submodule {
            options.text = mkOption {
              type = types.lines;
              default = "";
            };
          }
        );
        default = { };
      };
      launchd.daemons = mkOption {
        type = types.attrsOf freeform;
        default = { };
      };
    };
    config.system.build.darwin-rebuild = fakePackage "darwin-rebuild" "darwin-rebuild";
  };

  homeManagerStubs = {
    options = {
      home.username = mkOption {
        type = types.str;
        default = "alice";
      };
      home.homeDirectory = mkOption {
        type = types.str;
        default = "/home/alice";
      };
      home.profileDirectory = mkOption {
        type = types.str;
        default = "/home/alice/.nix-profile";
      };
      xdg.stateHome = mkOption {
        type = types.str;
        default = "/home/alice/.local/state";
      };
      programs.home-manager.enable = mkOption {
        type = types.bool;
        default = false;
      };
      nix.package = mkOption {
        type = types.nullOr types.package;
        default = null;
      };
      # Home Manager's own type: freeform, a list setting merges by concatenation.
      nix.settings = mkOption {
        type = types.attrsOf (types.either types.str (types.listOf types.str));
        default = { };
      };
      home.activation = mkOption {
        type = types.attrsOf freeform;
        default = { };
      };
      launchd.agents = mkOption {
        type = types.attrsOf freeform;
        default = { };
      };
      systemd.user.services = mkOption {
        type = types.attrsOf freeform;
        default = { };
      };
    };
  };

  # A public key as `nix-store --generate-binary-cache-key` writes it.
  cacheKey = "builder-1:sNhYDcLoNqQlpvKaS0G/9p5krkUYBsinY57CW5NeUxE=";

  # The options every host sets.
  required = {
    services.nixfleet-agent = {
      enable = true;
      url = "https://fleet.example.com";
      tokenFile = "/run/secrets/nixfleet-agent-token";
      repoUrl = "https://github.com/example/nixcfg.git";
    };
  };

  evaluate =
    {
      module,
      stubs,
      pkgs,
      host,
      base ? required,
    }:
    let
      inherit
        (lib.evalModules {
          modules = [
            commonStubs
            stubs
            module
            base
            host
            { _module.args.pkgs = pkgs; }
          ];
        })
        config
        ;
      failed = builtins.filter (a: !a.assertion) config.assertions;
      ok = failed == [ ];
    in
    {
      inherit config ok;
      report = {
        failedAssertions = map (a: a.message) failed;
        inherit (config) warnings;
        # Rendered only when nothing failed: a failed assertion is what the
        # host's owner sees instead of a config.
        agentConfig = if ok then config.services.nixfleet-agent.agentConfig else null;
      };
    };

  nixos =
    {
      pkgs ? fakePkgs { },
    }:
    host:
    let
      evaluated = evaluate {
        module = nixDir + "/nixos-module.nix";
        stubs = nixosStubs;
        inherit pkgs host;
      };
    in
    evaluated.report
    // lib.optionalAttrs evaluated.ok {
      service = evaluated.config.systemd.services.nixfleet-agent;
      nixDaemon = {
        inherit (evaluated.config.nix) daemonCPUSchedPolicy daemonIOSchedPriority;
      };
      nixSettings = evaluated.config.nix.settings;
      cacheUnits = {
        services = lib.filterAttrs (
          name: _: lib.hasPrefix "nixfleet-agent-cache" name
        ) evaluated.config.systemd.services;
        inherit (evaluated.config.systemd) paths;
      };
    };

  darwin =
    host:
    let
      evaluated = evaluate {
        module = nixDir + "/darwin-module.nix";
        stubs = darwinStubs;
        pkgs = fakePkgs { isDarwin = true; };
        inherit host;
      };
    in
    evaluated.report
    // lib.optionalAttrs evaluated.ok {
      daemon = evaluated.config.launchd.daemons.nixfleet-agent;
      nixDaemon = {
        inherit (evaluated.config.nix) daemonIOLowPriority;
      };
      extraActivation = evaluated.config.system.activationScripts.extraActivation.text;
      nixSettings = evaluated.config.nix.settings;
    };

  homeManager =
    isDarwin: host:
    let
      evaluated = evaluate {
        module = nixDir + "/home-manager-module.nix";
        stubs = homeManagerStubs;
        pkgs = fakePkgs { inherit isDarwin; };
        inherit host;
      };
    in
    evaluated.report
    // lib.optionalAttrs evaluated.ok {
      launchdAgents = evaluated.config.launchd.agents;
      userServices = evaluated.config.systemd.user.services;
      nixSettings = evaluated.config.nix.settings;
      activation = evaluated.config.home.activation;
    };

  cases = {
    nixos = nixos { } {
      networking.hostName = "web-1";
      services.nixfleet-agent = {
        package = agent;
        tests.commands = {
          nginx = "systemctl is-active nginx";
          no-failed-units = "test -z \"$(systemctl --failed --no-legend)\"";
        };
        autoTestAfterSwitch = true;
        flakeUpdates = {
          priority = 1;
          canary = true;
        };
        extraPath = [ (fakePackage "curl-8.16.0" "curl") ];
        settings.pollTimeoutSeconds = 30;
      };
    };

    # The package comes from pkgs (the flake's overlay) when not set.
    nixosPackageFromOverlay = nixos { pkgs = fakePkgs { withAgent = true; }; } { };

    # A host's own settings win over the module's defaults.
    nixosOverrides = nixos { } {
      services.nixfleet-agent.package = agent;
      services.nixfleet-agent.evaluate = "ci";
      services.nixfleet-agent.desiredEvaluation.memoryMax = "1G";
      services.nixfleet-agent.spaceCheck = {
        storeMinFree = 5 * 1024 * 1024 * 1024;
        bootMargin = 64 * 1024 * 1024;
      };
      services.nixfleet-agent.resources = {
        memoryHigh = null;
        nice = 5;
        lowPriorityBuilds = false;
      };
      systemd.services.nixfleet-agent = {
        restartIfChanged = false;
        serviceConfig.ProtectSystem = "full";
        serviceConfig.ProtectHome = lib.mkForce true;
      };
    };

    nixosProblems = nixos { } {
      networking.hostName = "Web_1";
      services.nixfleet-agent = {
        tokenFile = lib.mkForce "${builtins.storeDir}/5m2yxj7hpw1x3bkvlyb0xcfvl7v2gdbm-nixfleet-token";
        url = lib.mkForce "fleet.example.com";
        tests.commands.smoke = "";
        settings = {
          tools.detach = "setsid";
          pollIntervalSeconds = 5;
        };
      };
    };

    darwin = darwin {
      networking.hostName = "mac-mini";
      services.nixfleet-agent.package = agent;
    };

    darwinWithoutHostName = darwin { services.nixfleet-agent.package = agent; };

    homeManagerLinux = homeManager false {
      services.nixfleet-agent = {
        package = agent;
        tokenFile = lib.mkForce "~/.config/nixfleet/token";
        hostName = "alice-laptop";
        flakeAttr = "alice";
      };
    };

    homeManagerDarwin = homeManager true {
      programs.home-manager.enable = true;
      services.nixfleet-agent = {
        package = agent;
        hostName = "alice-mbp";
      };
    };

    homeManagerWithoutHostName = homeManager false { services.nixfleet-agent.package = agent; };

    # The fleet cache: defaults, and hosts whose token file and netrc are in
    # the test's scratch directory, so it can run the script they generate.
    nixosCacheDefaults = nixos { } {
      services.nixfleet-agent = {
        package = agent;
        url = lib.mkForce "https://fleet.example.com/";
        cache = {
          enable = true;
          publicKeys = [ cacheKey ];
        };
      };
    };

    nixosCache = nixos { } {
      services.nixfleet-agent = {
        package = agent;
        tokenFile = lib.mkForce "${cacheScratch}/nixos/token file";
        cache = {
          enable = true;
          url = "http://127.0.0.1:8787/cache";
          publicKeys = [
            cacheKey
            "builder-2:klhXVgT5U5vmdeOmVIIj371i9DQRnnNvqAIt5r98R0w="
          ];
          netrcFile = "${cacheScratch}/nixos/etc/netrc";
        };
      };
    };

    nixosCacheProblems = nixos { } {
      services.nixfleet-agent = {
        package = agent;
        cache = {
          enable = true;
          url = "fleet.example.com/cache";
          netrcFile = "${builtins.storeDir}/5m2yxj7hpw1x3bkvlyb0xcfvl7v2gdbm-netrc";
        };
      };
    };

    nixosCacheBadKey = nixos { } {
      services.nixfleet-agent = {
        package = agent;
        cache = {
          enable = true;
          publicKeys = [ "sNhYDcLoNqQlpvKaS0G/9p5krkUYBsinY57CW5NeUxE=" ];
        };
      };
    };

    darwinCache = darwin {
      networking.hostName = "mac-mini";
      services.nixfleet-agent = {
        package = agent;
        cache = {
          enable = true;
          publicKeys = [ cacheKey ];
        };
      };
    };

    # Nix installed and configured by another installer (e.g. Determinate).
    darwinCacheUnmanagedNix = darwin {
      networking.hostName = "mac-mini";
      nix.enable = false;
      services.nixfleet-agent = {
        package = agent;
        cache = {
          enable = true;
          publicKeys = [ cacheKey ];
        };
      };
    };

    homeManagerCache = homeManager false {
      home.homeDirectory = "${cacheScratch}/home";
      xdg.stateHome = "${cacheScratch}/home/.local/state";
      services.nixfleet-agent = {
        package = agent;
        hostName = "alice-laptop";
        tokenFile = lib.mkForce "~/.config/nixfleet/token";
        cache = {
          enable = true;
          publicKeys = [ cacheKey ];
        };
      };
    };
  };

  # A pasted snippet is the host's whole NixFleet configuration; the package
  # comes from pkgs, as the flake's module provides it on a real host.
  snippetCases = lib.mapAttrs' (
    platform: file:
    lib.nameValuePair "snippet-${platform}"
      (evaluate {
        module = nixDir + "/${platform}-module.nix";
        stubs =
          {
            nixos = nixosStubs;
            darwin = darwinStubs;
            home-manager = homeManagerStubs;
          }
          .${platform};
        pkgs = fakePkgs {
          isDarwin = platform == "darwin";
          withAgent = true;
        };
        base = { };
        host = import file;
      }).report
  ) snippets;

  # For the flake check: cases that must evaluate cleanly, and cases that must
  # be refused.
  clean = [
    "nixos"
    "nixosPackageFromOverlay"
    "nixosOverrides"
    "darwin"
    "homeManagerLinux"
    "homeManagerDarwin"
    "nixosCacheDefaults"
    "nixosCache"
    "darwinCache"
    "darwinCacheUnmanagedNix"
    "homeManagerCache"
  ];
  refused = [
    "nixosProblems"
    "darwinWithoutHostName"
    "homeManagerWithoutHostName"
    "nixosCacheProblems"
    "nixosCacheBadKey"
  ];
in
cases
// snippetCases
// {
  summary = {
    cleanButRefused = builtins.filter (name: cases.${name}.failedAssertions != [ ]) clean;
    refusedButClean = builtins.filter (name: cases.${name}.failedAssertions == [ ]) refused;
  };
}
