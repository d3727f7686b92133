# The options of `services.nixfleet-agent`, shared by the NixOS, nix-darwin and
# Home Manager modules, and the part they have in common: rendering the one
# JSON config file the agent reads, and the assertions on it.
#
# A platform module imports this file and fills the internal option
# `hostIntegration` with what differs per platform (where state lives, which
# tools switch the system, where the agent finds its token).
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types literalExpression;
  cfg = config.services.nixfleet-agent;
  json = pkgs.formats.json { };
  agentConfig = import ./agent-config.nix;
  cache = import ./cache.nix;
  problems = agentConfig.problems {
    options = cfg;
    host = cfg.hostIntegration;
  };
in
{
  options.services.nixfleet-agent = {
    enable = lib.mkEnableOption "the NixFleet agent, which reports this host to a NixFleet control plane and runs the pull, switch, test and rollback commands sent from its dashboard";

    package = mkOption {
      type = types.nullOr types.package;
      default = pkgs.nixfleet-agent or null;
      defaultText = literalExpression "pkgs.nixfleet-agent or null (the flake's modules set it to the flake's package)";
      description = ''
        The agent package. The modules exported by the NixFleet flake set it;
        when this file is imported by path, add the flake's overlay or set it to
        `pkgs.callPackage "''${nixfleet}/nix/package.nix" { }`.
      '';
    };

    url = mkOption {
      type = types.str;
      example = "https://fleet.example.com";
      description = "Base URL of the NixFleet control plane.";
    };

    tokenFile = mkOption {
      # A string, not a path: a path literal would be copied into the
      # world-readable Nix store.
      type = types.str;
      example = "/run/secrets/nixfleet-agent-token";
      description = ''
        Absolute path to a file holding this host's agent token (the dashboard
        shows it once, when the host is added). The token never enters the Nix
        store: keep the file readable only by the agent's user, e.g. an agenix
        or sops-nix secret, or a file created with `install -m 600`. Home
        Manager also accepts a path starting with `~/`.
      '';
    };

    hostName = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "hsb0";
      description = ''
        The host's name in NixFleet: lowercase letters, digits and inner
        hyphens. On NixOS and nix-darwin it defaults to `networking.hostName`;
        Home Manager has no host name, so set it there.
      '';
    };

    repoUrl = mkOption {
      type = types.str;
      example = "git@github.com:example/nixcfg.git";
      description = ''
        The configuration repository. The agent keeps its own clone of it in
        its state directory and switches to what that clone builds.
      '';
    };

    branch = mkOption {
      type = types.str;
      default = "main";
      description = "The branch hosts deploy from.";
    };

    flakeAttr = mkOption {
      type = types.nullOr types.str;
      default = null;
      defaultText = literalExpression "config.services.nixfleet-agent.hostName";
      example = "hsb0";
      description = ''
        The attribute under `nixosConfigurations`, `darwinConfigurations` or
        `homeConfigurations` that is this host. Defaults to the host name.
      '';
    };

    pollTimeout = mkOption {
      type = types.ints.between 5 600;
      default = 90;
      description = ''
        Seconds one long poll for commands may stay open. Lower it when a proxy
        between the host and the control plane cuts idle requests sooner.
      '';
    };

    tests = {
      commands = mkOption {
        type = types.attrsOf types.str;
        default = { };
        example = {
          nginx = "systemctl is-active nginx";
          no-failed-units = "test -z \"$(systemctl --failed --no-legend)\"";
        };
        description = ''
          The host's tests (the Tests compartment): name → shell command, run
          with `sh -c`; exit status 0 passes.
        '';
      };

      directory = mkOption {
        type = types.nullOr types.path;
        default = null;
        example = literalExpression "./tests/hsb0";
        description = "A directory whose executable files are run as tests, in addition to `commands`.";
      };
    };

    safetyNet = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Before a switch, record the running system and start a watchdog that
          activates it again unless the new agent confirms within
          `confirmTimeout` of the activation (healthy, and the control plane
          reached on a new connection). See docs/hosts.md "When a switch goes
          wrong on the host".
        '';
      };

      confirmTimeout = mkOption {
        type = types.ints.between 1 3600;
        default = 120;
        description = "Seconds after the activation within which the host must confirm a switch, or go back to the previous system.";
      };
    };

    spaceCheck = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Check free space before a switch: the Nix store's filesystem before
          anything is built, and /boot (when it is its own filesystem) after the
          build, for the new kernel and initrd plus `bootMargin`. A switch that
          lacks either is refused and changes nothing. See docs/hosts.md
          "Space checks".
        '';
      };

      storeMinFree = mkOption {
        type = types.ints.unsigned;
        default = 2 * 1024 * 1024 * 1024;
        defaultText = literalExpression "2 * 1024 * 1024 * 1024";
        example = literalExpression "5 * 1024 * 1024 * 1024";
        description = "Bytes that must be free on the Nix store's filesystem before a switch.";
      };

      bootMargin = mkOption {
        type = types.ints.unsigned;
        default = 16 * 1024 * 1024;
        defaultText = literalExpression "16 * 1024 * 1024";
        description = "Bytes that must be free on /boot beyond the new generation's kernel and initrd.";
      };
    };

    activation = mkOption {
      type = types.enum [
        "switch"
        "boot"
        "boot-then-reboot-if-needed"
      ];
      default = "switch";
      description = ''
        How a switch sent to this host activates the new system (a rollout or
        a command may override it): `switch` activates it now; `boot` makes it
        the boot default only, active after the next reboot;
        `boot-then-reboot-if-needed` makes it the boot default and reboots
        when its kernel, initrd or kernel modules differ from the booted ones
        (the control plane sends such a switch only inside the host's
        maintenance window), else switches. NixOS only: nix-darwin and Home
        Manager activate without a reboot and support only `switch`.
        See docs/hosts.md "Activation modes and reboots".
      '';
    };

    switch = mkOption {
      type = types.enum [
        "build"
        "substitute"
      ];
      default = "build";
      description = ''
        How a switch gets the new system. `build`: the host evaluates and
        builds its configuration from the agent's clone. `substitute`: the
        host evaluates nothing; it takes the store path that a builder's
        signed manifest names for it at the clone's commit (signed by a key in
        `cache.publicKeys`, never older than the manifest it runs), fetches
        it from the fleet cache and activates it. Needs `cache.enable`. See
        docs/cache.md "Substitute mode".
      '';
    };

    buildWithoutManifest = mkOption {
      type = types.bool;
      default = false;
      description = ''
        With `switch = "substitute"`: when no signed manifest names the
        clone's commit yet, switch by building instead of failing. A manifest
        that is refused (unsigned, by an unknown key, not for this host,
        older) fails the switch either way.
      '';
    };

    gc = {
      keepGenerations = mkOption {
        type = types.nullOr (types.ints.between 1 200);
        default = null;
        example = 10;
        description = ''
          A `gc` command keeps this many of the newest system generations (besides
          those younger than `keepDays`, the booted, the current and any the safety
          net may go back to). null: the fleet's setting, 5 unless changed.
        '';
      };

      keepDays = mkOption {
        type = types.nullOr (types.ints.between 0 3650);
        default = null;
        example = 30;
        description = "A `gc` command keeps every generation younger than this many days. null: the fleet's setting, 14 unless changed.";
      };
    };

    autoTestAfterSwitch = mkOption {
      type = types.bool;
      default = false;
      description = "Run the tests after every successful switch.";
    };

    flakeUpdates = {
      autoUpdate = mkOption {
        type = types.bool;
        default = true;
        description = "Include this host when a flake.lock update is deployed automatically (Merge & Deploy).";
      };

      priority = mkOption {
        type = types.int;
        default = 100;
        example = 1;
        description = "Deploy order during a rollout: lower deploys first.";
      };

      canary = mkOption {
        type = types.bool;
        default = false;
        description = "Deploy to this host first, wait, and deploy to the rest only if it stays healthy.";
      };
    };

    evaluate = mkOption {
      type = types.enum [
        "local"
        "ci"
      ];
      default = "local";
      description = ''
        Who works out this host's desired system (its configuration evaluated
        at main's head, what the System compartment compares the running
        system with). `local`: the agent evaluates each new head of main once,
        in the background (see `desiredEvaluation`). `ci`: the agent evaluates
        nothing, and the control plane uses the store paths CI publishes for
        the commit (`POST /api/desired`). An evaluation of a real NixOS
        configuration takes 1–2 GiB of memory: use `ci` on hosts with less
        than 2 GiB.
      '';
    };

    desiredEvaluation = {
      memoryMax = mkOption {
        type = types.nullOr (types.strMatching "[0-9]+[KMGT]?");
        default = "2G";
        example = "1G";
        description = ''
          NixOS: systemd's `MemoryMax` for the evaluation's own transient
          unit (it runs outside the agent's unit, whose `resources.memoryHigh`
          does not cover it). An evaluation that needs more is killed and
          reported as failed. null for no cap. nix-darwin and Home Manager run
          the evaluation as a child of the agent, without a cap.
        '';
      };
      maxDelay = mkOption {
        type = types.ints.between 0 3600;
        default = 300;
        description = ''
          Seconds: an evaluation starts after a random delay up to this, so
          the hosts of a fleet do not all evaluate in the same second after a
          push.
        '';
      };
      timeout = mkOption {
        type = types.ints.between 1 86400;
        default = 1800;
        description = "Seconds an evaluation may run before it is killed and reported as failed.";
      };
    };

    extraPath = mkOption {
      type = types.listOf types.package;
      default = [ ];
      example = literalExpression "[ pkgs.curl pkgs.jq ]";
      description = "Packages whose `bin` directories come first on the PATH of every command the agent runs (tests included).";
    };

    resources = {
      memoryHigh = mkOption {
        type = types.nullOr types.str;
        default = null;
        defaultText = literalExpression ''"256M" on NixOS, null elsewhere'';
        example = "512M";
        description = ''
          systemd's `MemoryHigh` for the agent's unit: above it the kernel
          reclaims the unit's memory and slows it down, rather than letting it
          crowd out the host's services; nothing is killed (that would be
          `MemoryMax`). It covers the agent (about 60 MB idle; docs/hosts.md)
          and what it runs in its unit: git and the host's test commands. Raise
          it for heavy tests; null for no limit. On NixOS the switch runs in a
          unit of its own and is not covered. On Home Manager (Linux) the
          switch shares the agent's unit, so there is no default: evaluating a
          configuration can take far more than the agent itself. launchd has no
          such limit.
        '';
      };
      nice = mkOption {
        type = types.ints.between (-20) 19;
        default = 10;
        description = ''
          The agent's scheduling priority (`Nice`): what it runs inherits it —
          git, the tests, and the switch's evaluation and activation (on
          NixOS the agent passes it to the switch's systemd-run unit) — so
          that work yields the CPU to the host's own services. On NixOS the
          agent's unit also gets a low CPU and IO weight.
        '';
      };
      lowPriorityBuilds = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Make the Nix daemon's builds, which is where a switch spends its
          time, yield the CPU and the disk to the host's own services: on
          NixOS `nix.daemonCPUSchedPolicy = "batch"` and
          `nix.daemonIOSchedPriority = 7`, on nix-darwin
          `nix.daemonIOLowPriority = true` (each a `mkDefault`). This affects
          every build on the host, not only the agent's; false leaves the
          daemon's settings alone. Home Manager does not manage the daemon.
        '';
      };
    };

    cache = {
      enable = lib.mkEnableOption ''
        the fleet's binary cache as a substituter: Nix fetches what the
        fleet's builders pushed, signed by a key in `publicKeys`, from the
        control plane, authenticated with this host's agent token (a netrc the
        module writes from `tokenFile`, readable by its owner only)'';

      url = mkOption {
        type = types.str;
        default = "${lib.removeSuffix "/" cfg.url}/cache";
        defaultText = literalExpression ''"''${config.services.nixfleet-agent.url}/cache"'';
        description = "The fleet cache's address, added to the substituters.";
      };

      publicKeys = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "builder-1:sNhYDcLoNqQlpvKaS0G/9p5krkUYBsinY57CW5NeUxE=" ];
        description = ''
          The public keys of the builders that sign what the fleet cache holds
          (what `nix-store --generate-binary-cache-key` writes to its public
          key file), added to Nix's trusted public keys. Required when the
          cache is enabled: Nix takes nothing from the cache that none of them
          signed.
        '';
      };

      builder = {
        secretKeyFile = mkOption {
          type = types.nullOr types.str;
          default = null;
          example = "/run/secrets/nixfleet-builder-key";
          description = ''
            Makes this host a builder (the fleet's setting `fleetBuild.builders`
            names it for a system type): the secret key file, from
            `nix-store --generate-binary-cache-key`, that signs the closures it
            uploads and the manifest it publishes. Its public key belongs in
            the Worker's `CACHE_TRUSTED_KEYS` and in the hosts'
            `cache.publicKeys`. A path outside the store, readable by the agent
            only.
          '';
        };
        cacheTokenFile = mkOption {
          type = types.nullOr types.str;
          default = null;
          example = "/run/secrets/nixfleet-cache-token";
          description = ''
            With `secretKeyFile`: a file holding the cache token (created on
            the Settings page), the one token the fleet cache takes uploads
            from. A path outside the store, readable by the agent only.
          '';
        };
      };

      netrcFile = mkOption {
        type = types.str;
        defaultText = literalExpression ''"/var/lib/nixfleet-cache/netrc" on NixOS and nix-darwin, "''${config.xdg.stateHome}/nixfleet-cache/netrc" on Home Manager'';
        description = ''
          Where the module writes the netrc (mode 0600) that gives Nix the
          agent token for the cache's host, and what `netrc-file` in
          nix.conf names. The module owns this file and rewrites it whole;
          Nix reads one netrc file only, so a host that sets
          `nix.settings.netrc-file` itself gets a conflict naming both
          definitions.
        '';
      };
    };

    logLevel = mkOption {
      type = types.enum [
        "debug"
        "info"
        "warn"
        "error"
      ];
      default = "info";
      description = "How much the agent logs.";
    };

    settings = mkOption {
      inherit (json) type;
      default = { };
      example = {
        tools.git = "/run/current-system/sw/bin/git";
      };
      description = ''
        Merged last (`lib.recursiveUpdate`) into the agent's JSON config, for
        fields no option covers. Keys must be fields of the agent's config
        (`AgentConfig` in common/agent-config.ts): the agent rejects unknown ones.
      '';
    };

    agentConfig = mkOption {
      type = json.type;
      readOnly = true;
      description = ''
        The agent's configuration as rendered from the options above (read
        only). Inspect it with e.g.
        `nix eval .#nixosConfigurations.HOST.config.services.nixfleet-agent.agentConfig --json`.
      '';
    };

    configFile = mkOption {
      type = types.path;
      readOnly = true;
      description = "The generated JSON file the agent runs with (`nixfleet-agent run --config FILE`).";
    };

    hostIntegration = mkOption {
      type = types.attrs;
      internal = true;
      description = ''
        Set by the platform module: `platform`, `stateDir`, `tokenFile` (the
        path the agent reads), `tokenSource` (the user's token file, when
        systemd copies it for the agent), `tools`, `currentSystemLink`.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    services.nixfleet-agent = {
      agentConfig = agentConfig.render {
        options = cfg;
        host = cfg.hostIntegration;
      };
      configFile = json.generate "nixfleet-agent.json" cfg.agentConfig;
    };

    assertions = map (message: {
      assertion = false;
      inherit message;
    }) (problems ++ lib.optionals cfg.cache.enable (cache.problems { inherit (cfg) cache; }));
  };
}
