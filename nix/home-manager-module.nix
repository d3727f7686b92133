# The NixFleet agent for a machine managed by `home-manager switch`: a user
# service, a launchd agent on macOS and a systemd user service on Linux. It
# runs as the user, switches the user's Home Manager configuration and never
# needs root.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.nixfleet-agent;
  isDarwin = pkgs.stdenv.hostPlatform.isDarwin;
  stateDir = "${config.xdg.stateHome}/nixfleet-agent";

  # The dashboard's snippet writes the token path as ~/…; the agent reads
  # paths as they are, so expand it here.
  tokenFile =
    if lib.hasPrefix "~/" cfg.tokenFile then
      "${config.home.homeDirectory}/${lib.removePrefix "~/" cfg.tokenFile}"
    else
      cfg.tokenFile;

  # Newer Home Manager exposes its command as a package; older versions only
  # put it on the PATH when programs.home-manager.enable is set.
  homeManagerPackage = config.programs.home-manager.package or null;
  homeManagerCommand =
    if homeManagerPackage != null then
      lib.getExe' homeManagerPackage "home-manager"
    else
      "home-manager";
  nixPackage = config.nix.package or null;

  # Services start without the login shell's PATH: name every place the
  # user's nix and tools may live.
  searchPath = lib.concatStringsSep ":" (
    [ (lib.makeBinPath ([ pkgs.git ] ++ lib.optional (nixPackage != null) nixPackage)) ]
    ++ [
      "${config.home.profileDirectory}/bin"
      "/etc/profiles/per-user/${config.home.username}/bin"
      "/nix/var/nix/profiles/default/bin"
      "/run/current-system/sw/bin"
      "/usr/bin"
      "/bin"
      "/usr/sbin"
      "/sbin"
    ]
  );

  command = [
    (lib.getExe cfg.package)
    "run"
    "--config"
    "${cfg.configFile}"
  ];
in
{
  imports = [
    ./module-options.nix
    ./home-manager-cache.nix
  ];

  config = lib.mkIf cfg.enable (
    lib.mkMerge [
      {
        services.nixfleet-agent.hostIntegration = {
          platform = "home-manager";
          inherit stateDir tokenFile;
          tokenSource = tokenFile;
          # Home Manager points this link at the generation it activated, on
          # every switch and wherever the profile itself lives (the per-user
          # profile directory under /nix/var or ~/.local/state/nix/profiles).
          currentSystemLink = "${config.xdg.stateHome}/home-manager/gcroots/current-home";
          tools = {
            git = lib.getExe' pkgs.git "git";
            homeManager = homeManagerCommand;
            # A new session and process group: the switch outlives the agent
            # being restarted by that very switch.
            detach = "setsid";
            # The safety net's watchdog runs under the service manager itself:
            # a launchd job on macOS, a unit of the user's systemd on Linux.
            watchdogDetach = if isDarwin then "launchd" else "systemd-run-user";
          };
        };

        warnings =
          lib.optional
            (
              homeManagerPackage == null
              && !(config.programs.home-manager.enable or false)
              && (cfg.agentConfig.tools.homeManager or null) == "home-manager"
            )
            ''
              services.nixfleet-agent: the agent runs `home-manager switch`, but this Home Manager
              does not say where that command is. Set programs.home-manager.enable = true (it then
              is in ${config.home.profileDirectory}/bin), or set
              services.nixfleet-agent.settings.tools.homeManager to its path.'';
      }

      (lib.mkIf isDarwin {
        launchd.agents.nixfleet-agent = {
          enable = true;
          config = {
            ProgramArguments = command;
            KeepAlive = true;
            RunAtLoad = true;
            ProcessType = "Standard";
            # A switch started by the agent must survive the agent's exit.
            AbandonProcessGroup = true;
            # Inherited by what the agent starts, the switch included.
            Nice = cfg.resources.nice;
            LowPriorityIO = true;
            StandardOutPath = "${config.home.homeDirectory}/Library/Logs/nixfleet-agent.log";
            StandardErrorPath = "${config.home.homeDirectory}/Library/Logs/nixfleet-agent.log";
            EnvironmentVariables = {
              PATH = searchPath;
            };
          };
        };
      })

      (lib.mkIf (!isDarwin) {
        systemd.user.services.nixfleet-agent = {
          Unit = {
            Description = "NixFleet agent";
            # Home Manager restarts the agent when a switch changes it; that
            # is how Pull + Switch moves it to a new version.
            X-RestartIfChanged = true;
          };
          Service = {
            ExecStart = lib.escapeShellArgs command;
            Restart = "always";
            RestartSec = 10;
            # 78: bad config or token; restarting cannot fix that.
            RestartPreventExitStatus = 78;
            # Only the agent's own process is stopped on restart: the switch
            # it started (setsid) shares its cgroup and must finish the very
            # activation that restarts the agent.
            KillMode = "process";
            Environment = [ "PATH=${searchPath}" ];
            # Inherited by what the agent starts, the switch included.
            Nice = cfg.resources.nice;
            IOSchedulingClass = "best-effort";
            IOSchedulingPriority = 7;
          }
          // lib.optionalAttrs (cfg.resources.memoryHigh != null) {
            MemoryHigh = cfg.resources.memoryHigh;
          };
          Install.WantedBy = [ "default.target" ];
        };
      })
    ]
  );
}
