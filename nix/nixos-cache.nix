# The fleet cache on NixOS (services.nixfleet-agent.cache): a substituter of
# the system's Nix daemon, which fetches for every user, and the netrc with
# the agent token that the daemon reads for it.
{
  config,
  lib,
  ...
}:
let
  cfg = config.services.nixfleet-agent;
  cache = import ./cache.nix;
  writeNetrc = cache.netrcScript {
    # The user's file: the credential systemd copies for the agent exists
    # only inside the agent's own unit.
    inherit (cfg) tokenFile;
    inherit (cfg.cache) netrcFile;
    machine = toString (cache.hostOf cfg.cache.url);
  };
in
{
  config = lib.mkIf (cfg.enable && cfg.cache.enable) {
    services.nixfleet-agent.cache.netrcFile = lib.mkDefault "/var/lib/nixfleet-cache/netrc";

    nix.settings = {
      # The daemon's own list, used for every user's builds; no
      # trusted-substituters entry is needed for that.
      substituters = [ cfg.cache.url ];
      trusted-public-keys = cfg.cache.publicKeys;
      netrc-file = cfg.cache.netrcFile;
    };

    # Written before the daemon starts (curl reads the netrc on every
    # download, so a rewrite needs no daemon restart), again when a switch
    # changes the script, and when the token file changes.
    systemd.services.nixfleet-agent-cache-netrc = {
      description = "NixFleet: the netrc with the agent token for the fleet cache";
      wantedBy = [
        "multi-user.target"
        "nix-daemon.service"
      ];
      before = [ "nix-daemon.service" ];
      script = writeNetrc;
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        UMask = "0077";
        PrivateNetwork = lib.mkDefault true;
        NoNewPrivileges = lib.mkDefault true;
      };
    };
    systemd.services.nixfleet-agent-cache-netrc-refresh = {
      description = "NixFleet: rewrite the fleet cache's netrc after the agent token changed";
      script = "systemctl restart nixfleet-agent-cache-netrc.service";
      serviceConfig.Type = "oneshot";
    };
    systemd.paths.nixfleet-agent-cache-netrc = {
      wantedBy = [ "multi-user.target" ];
      pathConfig = {
        PathChanged = cfg.tokenFile;
        Unit = "nixfleet-agent-cache-netrc-refresh.service";
      };
    };
  };
}
