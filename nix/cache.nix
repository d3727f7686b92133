# The fleet cache's part of the modules that needs no nixpkgs: where the
# cache is, the script that writes the netrc giving Nix this host's agent
# token for it, and what is wrong with the `cache` options.
#
# Builtins only, like agent-config.nix: test/nix/eval-modules.test.ts runs
# the script each platform module generates.
let
  inherit (builtins)
    elemAt
    filter
    head
    isString
    map
    match
    replaceStrings
    stringLength
    substring
    toJSON
    ;

  hasPrefix = prefix: string: substring 0 (stringLength prefix) string == prefix;

  # The host part of an http(s) URL: what curl, which fetches for Nix, looks
  # up as `machine` in the netrc (an IPv6 address without its brackets).
  hostOf =
    url:
    let
      parts =
        if isString url then
          match "https?://([^/?#@]*@)?(\\[([^]/]*)]|([^]/?#:[]+)).*" url
        else
          null;
    in
    if parts == null then
      null
    else if elemAt parts 2 != null then
      elemAt parts 2
    else
      elemAt parts 3;

  # What `nix-store --generate-binary-cache-key` writes to the public key
  # file: a name, a colon and 32 bytes of Ed25519 key in base64.
  isPublicKey = key: match "[^:[:space:]]+:[A-Za-z0-9+/]{43}=" key != null;

  shellQuote = value: "'${replaceStrings [ "'" ] [ "'\\''" ] value}'";

  # Run as the owner the netrc should have (root for the Nix daemon, the
  # user under Home Manager); needs only a POSIX shell, mkdir, chmod and mv.
  # The token is read at run time and never enters the Nix store; umask 077
  # keeps it from being readable by anyone else even for a moment.
  netrcScript =
    {
      tokenFile,
      netrcFile,
      machine,
    }:
    ''
      set -eu
      umask 077
      token_file=${shellQuote tokenFile}
      netrc=${shellQuote netrcFile}
      if [ ! -r "$token_file" ]; then
        echo "nixfleet cache: cannot read the agent token file $token_file; Nix cannot read the fleet cache without it" >&2
        exit 1
      fi
      token=
      while [ -z "$token" ] && read -r token; do :; done < "$token_file"
      case "$token" in
        "" | *[[:space:]]*)
          echo "nixfleet cache: the agent token file $token_file must hold the token alone (from the dashboard)" >&2
          exit 1
          ;;
      esac
      # Chained, not left to set -e: callers run this in a subshell under ||,
      # where the shell ignores set -e.
      mkdir -p "''${netrc%/*}" &&
        printf 'machine %s password %s\n' ${shellQuote machine} "$token" > "$netrc.new" &&
        chmod 0600 "$netrc.new" &&
        mv -f "$netrc.new" "$netrc"
    '';

  problems =
    {
      cache,
      storeDir ? builtins.storeDir,
    }:
    let
      opt = name: "services.nixfleet-agent.cache.${name}";
      badKeys = filter (key: !isPublicKey key) cache.publicKeys;
      checks = [
        {
          ok = hostOf cache.url != null;
          message = ''
            ${opt "url"} must be the http:// or https:// address of the fleet cache, by default the
            control plane's URL followed by /cache (got ${toJSON cache.url}).'';
        }
        {
          ok = cache.publicKeys != [ ];
          message = ''
            ${opt "publicKeys"} is empty: Nix substitutes only paths signed by a key it trusts. Give
            the public key of every builder that signs for the fleet (the file
            `nix-store --generate-binary-cache-key NAME SECRET PUBLIC` writes), e.g.
              ${opt "publicKeys"} = [ "builder-1:…=" ];'';
        }
        {
          ok = badKeys == [ ];
          message = ''
            ${opt "publicKeys"} has ${toJSON (if badKeys == [ ] then "" else head badKeys)}, which is not a
            Nix public key: it must read NAME:KEY, the key 44 characters of base64 ending in "=".'';
        }
        {
          ok = hasPrefix "/" cache.netrcFile && !hasPrefix "${storeDir}/" cache.netrcFile;
          message = ''
            ${opt "netrcFile"} must be an absolute path outside the Nix store (got
            ${toJSON cache.netrcFile}): it holds the host's agent token.'';
        }
      ];
    in
    map (check: check.message) (filter (check: !check.ok) checks);
in
{
  inherit
    hostOf
    isPublicKey
    netrcScript
    problems
    ;
}
