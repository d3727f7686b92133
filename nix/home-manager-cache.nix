# The fleet cache under Home Manager (services.nixfleet-agent.cache): the
# user's nix.conf (Home Manager's nix.settings, which needs nix.package set)
# gains the cache, and the netrc with the agent token lives in the user's
# state directory, written at every activation.
#
# Who fetches decides whether this is enough: a single-user Nix, or a
# multi-user one whose daemon trusts this user, uses these settings as they
# are. For any other user the daemon fetches with its own nix.conf and netrc,
# and ignores a user's substituter unless it is in its trusted-substituters.
{
  config,
  lib,
  ...
}:
let
  cfg = config.services.nixfleet-agent;
  cache = import ./cache.nix;
  writeNetrc = cache.netrcScript {
    # The path the agent reads, ~/ expanded.
    inherit (cfg.hostIntegration) tokenFile;
    inherit (cfg.cache) netrcFile;
    machine = toString (cache.hostOf cfg.cache.url);
  };
in
{
  config = lib.mkIf (cfg.enable && cfg.cache.enable) {
    services.nixfleet-agent.cache.netrcFile =
      lib.mkDefault "${config.xdg.stateHome}/nixfleet-cache/netrc";

    # extra-: added to what the system's nix.conf lists, not in its place.
    nix.settings = {
      extra-substituters = [ cfg.cache.url ];
      extra-trusted-public-keys = cfg.cache.publicKeys;
      netrc-file = cfg.cache.netrcFile;
    };

    # The same shape lib.hm.dag.entryAfter makes; spelled out so the module
    # needs nothing from Home Manager's lib. In a subshell: a missing token
    # file is reported without failing the whole activation.
    home.activation.nixfleetCacheNetrc = {
      after = [ "writeBoundary" ];
      before = [ ];
      data = ''
        if [ -z "''${DRY_RUN+x}" ]; then
          ( ${writeNetrc} ) || echo "nixfleet cache: the netrc was not written; Nix fetches nothing from the fleet cache" >&2
        fi
      '';
    };
  };
}
