# The NixFleet agent on NixOS: a hardened systemd service running as root.
#
# Why root: the agent runs `nixos-rebuild switch`, and activation needs root.
# A dedicated user would need sudo rules for nixos-rebuild, which amount to
# root anyway (whoever may switch the system may put anything into it). What
# the agent does itself (git, nix eval, the control-plane connection) runs
# sandboxed below; the switch runs outside that sandbox, in a transient unit
# started with systemd-run (see docs/hosts.md).
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.nixfleet-agent;
  stateDir = "/var/lib/nixfleet-agent";
  # systemd copies the token here at start (LoadCredential); the path is fixed
  # for a service named nixfleet-agent.
  credentialPath = "/run/credentials/nixfleet-agent.service/token";
  nixosRebuild = config.system.build.nixos-rebuild;
in
{
  imports = [
    ./module-options.nix
    ./nixos-cache.nix
  ];

  config = lib.mkIf cfg.enable {
    services.nixfleet-agent = {
      hostName = lib.mkDefault config.networking.hostName;
      # The switch has a unit of its own (below), so this covers only the
      # agent, git and the tests.
      resources.memoryHigh = lib.mkDefault "256M";
      hostIntegration = {
        platform = "nixos";
        inherit stateDir;
        tokenFile = credentialPath;
        tokenSource = cfg.tokenFile;
        currentSystemLink = "/run/current-system";
        tools = {
          git = lib.getExe' pkgs.git "git";
          nix = lib.getExe' config.nix.package "nix";
          nixosRebuild = lib.getExe' nixosRebuild "nixos-rebuild";
          # The switch gets its own transient unit: it survives the agent's
          # restart and is not confined by the agent's sandbox.
          detach = "systemd-run";
        };
      };
    };

    # A switch spends its time in the daemon's builds (NIX_REMOTE=daemon):
    # this is where it could starve the host's own services.
    nix = lib.mkIf cfg.resources.lowPriorityBuilds {
      daemonCPUSchedPolicy = lib.mkDefault "batch";
      daemonIOSchedPriority = lib.mkDefault 7;
    };

    systemd.services.nixfleet-agent = {
      description = "NixFleet agent";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];

      # A switch restarts the agent onto its new version (that is how
      # Pull + Switch updates it). Safe because the switch itself runs in its
      # own systemd-run unit and the new agent process picks the job up again
      # from its state directory. stopIfChanged = false: restart after
      # activation instead of stopping before it, so the agent is down only
      # for the restart.
      restartIfChanged = lib.mkDefault true;
      stopIfChanged = false;

      # Tools for the agent and, through the PATH it passes on, for the
      # switch it starts. NixOS adds coreutils, findutils, grep, sed and
      # systemd (systemctl, systemd-run) to every service's path.
      path = [
        pkgs.git
        config.nix.package
        nixosRebuild
        config.programs.ssh.package
      ];

      environment = {
        # The agent's nix talks to the daemon: it may not write /nix itself
        # (ProtectSystem below), and builds belong in the daemon's sandbox.
        NIX_REMOTE = "daemon";
        # A writable home for git's and nix's caches; root's own home is
        # read-only here (ProtectHome).
        HOME = stateDir;
        SSL_CERT_FILE = "/etc/ssl/certs/ca-certificates.crt";
        NIX_SSL_CERT_FILE = "/etc/ssl/certs/ca-certificates.crt";
      };

      # Never give up: a host whose agent stopped can no longer be reached
      # from the dashboard.
      startLimitIntervalSec = 0;

      serviceConfig = {
        ExecStart = "${lib.getExe cfg.package} run --config ${cfg.configFile}";
        Restart = "always";
        RestartSec = 10;
        # 78: bad config or token; restarting cannot fix that, and a stopped
        # unit shows the reason in `systemctl status nixfleet-agent`.
        RestartPreventExitStatus = 78;

        # Resources: the agent is background work on the host it manages.
        # What it runs (git, the tests) inherits the nice value; under
        # contention the host's services (weight 100) get five times the
        # agent's share of CPU and IO, and an idle host still gives it all.
        Nice = cfg.resources.nice;
        MemoryHigh = lib.mkIf (cfg.resources.memoryHigh != null) cfg.resources.memoryHigh;
        CPUWeight = lib.mkDefault 20;
        IOWeight = lib.mkDefault 20;
        IOSchedulingClass = lib.mkDefault "best-effort";
        IOSchedulingPriority = lib.mkDefault 7;

        StateDirectory = "nixfleet-agent";
        StateDirectoryMode = "0700";
        LoadCredential = [ "token:${cfg.tokenFile}" ];

        # Hardening. Every flag is a default: override one with
        # systemd.services.nixfleet-agent.serviceConfig.<Flag>.
        # The switch does not run under these: systemd-run starts it in a
        # fresh unit of its own.
        NoNewPrivileges = lib.mkDefault true;
        ProtectSystem = lib.mkDefault "strict";
        # Relaxed from `true`: git over SSH reads root's keys and known_hosts
        # in /root/.ssh.
        ProtectHome = lib.mkDefault "read-only";
        PrivateTmp = lib.mkDefault true;
        PrivateDevices = lib.mkDefault true;
        ProtectKernelTunables = lib.mkDefault true;
        ProtectKernelModules = lib.mkDefault true;
        ProtectKernelLogs = lib.mkDefault true;
        ProtectControlGroups = lib.mkDefault true;
        ProtectClock = lib.mkDefault true;
        ProtectHostname = lib.mkDefault true;
        RestrictRealtime = lib.mkDefault true;
        RestrictSUIDSGID = lib.mkDefault true;
        RestrictNamespaces = lib.mkDefault true;
        LockPersonality = lib.mkDefault true;
        SystemCallArchitectures = lib.mkDefault "native";
        SystemCallFilter = lib.mkDefault [ "@system-service" ];
        SystemCallErrorNumber = lib.mkDefault "EPERM";
        # AF_NETLINK: glibc's getaddrinfo (AI_ADDRCONFIG, used by Node's DNS
        # lookups) asks the kernel over netlink which address families are up.
        RestrictAddressFamilies = lib.mkDefault [
          "AF_UNIX"
          "AF_INET"
          "AF_INET6"
          "AF_NETLINK"
        ];
        # Relaxed: V8's JIT compiler needs memory that is writable and
        # executable.
        MemoryDenyWriteExecute = lib.mkDefault false;
        # Relaxed: the agent must be real root, because systemd-run asks PID 1
        # for a unit as root and the nix daemon trusts root.
        PrivateUsers = lib.mkDefault false;
        # Relaxed: no ProtectProc/ProcSubset, and the capability bounding set
        # is left whole, because test commands inspect other services (their
        # processes, sockets and root-owned state).
        UMask = lib.mkDefault "0077";
      };
    };
  };
}
