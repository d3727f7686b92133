# The NixFleet agent on nix-darwin: a launchd daemon running as root, because
# `darwin-rebuild switch` activates as root.
#
# How the agent comes back on its new version after a switch: the plist names
# the agent's store path, so a new agent changes the plist, and nix-darwin's
# activation unloads the old daemon and loads the new one. The switch itself
# survives the unload: it runs in its own session (setsid) and the daemon has
# AbandonProcessGroup. Should launchd keep the old process anyway, the
# dashboard's Restart Agent makes the agent exit (code 75) and KeepAlive starts
# it again from the new plist.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.nixfleet-agent;
  stateDir = "/var/lib/nixfleet-agent";
  logFile = "/var/log/nixfleet-agent.log";
  darwinRebuild = config.system.build.darwin-rebuild;
  # nix.enable = false when another installer (e.g. Determinate) manages Nix;
  # its nix is then found on the PATH below.
  nixPackage = if config.nix.enable or true then config.nix.package else null;
in
{
  imports = [
    ./module-options.nix
    ./darwin-cache.nix
  ];

  config = lib.mkIf cfg.enable {
    services.nixfleet-agent = {
      hostName = lib.mkDefault config.networking.hostName;
      hostIntegration = {
        platform = "darwin";
        inherit stateDir;
        # launchd has no credentials store: the agent reads the file itself,
        # as root.
        tokenFile = cfg.tokenFile;
        currentSystemLink = "/run/current-system";
        tools = {
          git = lib.getExe' pkgs.git "git";
          nix = if nixPackage != null then lib.getExe' nixPackage "nix" else "nix";
          darwinRebuild = lib.getExe' darwinRebuild "darwin-rebuild";
          # A new session, so the switch outlives the daemon being reloaded.
          detach = "setsid";
          # The safety net's watchdog is a launchd job of its own: it outlives
          # the daemon that the activation it watches reloads.
          watchdogDetach = "launchd";
        };
      };
    };

    # Before launchd loads the daemon (extraActivation runs ahead of the
    # launchd step); /var/lib does not exist on a fresh macOS.
    system.activationScripts.extraActivation.text = ''
      mkdir -p ${stateDir}
      chmod 0700 ${stateDir}
    '';

    # The builds of a switch run in the Nix daemon (when nix-darwin manages it).
    nix = lib.mkIf (cfg.resources.lowPriorityBuilds && (config.nix.enable or true)) {
      daemonIOLowPriority = lib.mkDefault true;
    };

    launchd.daemons.nixfleet-agent = {
      # nix-darwin wraps this in `/bin/wait4path /nix/store && exec …`: the
      # store volume may mount after launchd starts daemons at boot.
      command = "${lib.getExe cfg.package} run --config ${cfg.configFile}";
      path = [
        pkgs.git
        darwinRebuild
      ]
      ++ lib.optional (nixPackage != null) nixPackage
      ++ [
        "/nix/var/nix/profiles/default/bin"
        "/usr/bin"
        "/bin"
        "/usr/sbin"
        "/sbin"
      ];
      environment = {
        # Daemons get no login environment; git and nix find CAs through this.
        NIX_SSL_CERT_FILE = "/etc/ssl/certs/ca-certificates.crt";
      };
      serviceConfig = {
        KeepAlive = true;
        RunAtLoad = true;
        # Standard, not Background: builds started by a switch should not be
        # throttled like idle housekeeping.
        ProcessType = "Standard";
        # A switch started by the agent must survive the agent's exit: launchd
        # would otherwise kill the job's whole process group.
        AbandonProcessGroup = true;
        # What the agent starts inherits both: git, the tests, and the
        # switch's evaluation and activation yield to the host's own work
        # without being throttled like Background jobs.
        Nice = cfg.resources.nice;
        LowPriorityIO = true;
        StandardOutPath = logFile;
        StandardErrorPath = logFile;
      };
    };
  };
}
