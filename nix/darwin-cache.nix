# The fleet cache on nix-darwin (services.nixfleet-agent.cache): a
# substituter of the Nix daemon nix-darwin manages, and the netrc with the
# agent token that the daemon reads for it, written at every activation.
{
  config,
  lib,
  ...
}:
let
  cfg = config.services.nixfleet-agent;
  cache = import ./cache.nix;
  managesNix = config.nix.enable or true;
  writeNetrc = cache.netrcScript {
    inherit (cfg) tokenFile;
    inherit (cfg.cache) netrcFile;
    machine = toString (cache.hostOf cfg.cache.url);
  };
  settings = {
    substituters = [ cfg.cache.url ];
    trusted-public-keys = cfg.cache.publicKeys;
    netrc-file = cfg.cache.netrcFile;
  };
in
{
  config = lib.mkIf (cfg.enable && cfg.cache.enable) {
    services.nixfleet-agent.cache.netrcFile = lib.mkDefault "/var/lib/nixfleet-cache/netrc";

    nix.settings = lib.mkIf managesNix settings;

    # In a subshell: a missing token file is reported without failing the
    # whole activation (Nix then builds what it cannot fetch).
    system.activationScripts.extraActivation.text = ''
      ( ${writeNetrc} ) || echo "nixfleet cache: the netrc was not written; Nix fetches nothing from the fleet cache" >&2
    '';

    warnings = lib.optional (!managesNix) ''
      services.nixfleet-agent.cache: nix.enable = false, so nix-darwin does not write nix.conf and
      the Nix daemon does not know the fleet cache. Add these lines to the configuration of the Nix
      you installed (e.g. /etc/nix/nix.custom.conf), then restart its daemon:
        extra-substituters = ${cfg.cache.url}
        extra-trusted-public-keys = ${toString settings.trusted-public-keys}
        netrc-file = ${settings.netrc-file}'';
  };
}
