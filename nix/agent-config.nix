# Turns the values of the `services.nixfleet-agent` options into the agent's
# JSON config (the zod schema `AgentConfig` in common/agent-config.ts), and
# lists what is wrong with them in words a user can act on.
#
# Builtins only, no nixpkgs: test/nix/module-config.test.ts evaluates this file
# with plain `nix-instantiate` and parses the result with `AgentConfig`, so the
# modules and the agent cannot drift apart.
#
#   options  the option values, shaped like `config.services.nixfleet-agent`
#   host     what the platform module decides: platform, stateDir, the token
#            path the agent reads (tokenFile) and where that token comes
#            from (tokenSource, when it differs), tools, currentSystemLink
let
  inherit (builtins)
    attrNames
    concatMap
    filter
    isAttrs
    isString
    map
    mapAttrs
    match
    stringLength
    substring
    toJSON
    ;

  # The top-level keys `AgentConfig` accepts; it is a strict object, so any
  # other key in `settings` would stop the agent at start-up.
  agentConfigKeys = [
    "url"
    "tokenFile"
    "hostName"
    "platform"
    "repoUrl"
    "branch"
    "flakeAttr"
    "stateDir"
    "pollTimeoutSeconds"
    "tests"
    "autoTestAfterSwitch"
    "activation"
    "safetyNet"
    "spaceCheck"
    "gc"
    "bootIdFile"
    "rollout"
    "desired"
    "switch"
    "substitute"
    "builder"
    "extraPath"
    "tools"
    "currentSystemLink"
    "checkFailedUnits"
    "systemdRuntimeDir"
    "bootedSystemLink"
    "systemProfileLink"
    "logLevel"
  ];

  defaultTools = {
    git = "git";
    nix = "nix";
    nixosRebuild = "nixos-rebuild";
    darwinRebuild = "darwin-rebuild";
    homeManager = "home-manager";
    systemctl = "systemctl";
    detach = "setsid";
  };

  # Like lib.recursiveUpdate: attribute sets merge key by key, anything else
  # on the right wins.
  recursiveUpdate =
    left: right:
    left
    // mapAttrs (
      name: value:
      if isAttrs value && isAttrs (left.${name} or null) then
        recursiveUpdate left.${name} value
      else
        value
    ) right;

  withoutNulls = attrs: removeAttrsBy (name: attrs.${name} == null) attrs;
  removeAttrsBy = drop: attrs: builtins.removeAttrs attrs (filter drop (attrNames attrs));

  # A path literal (a tests directory in the flake) is copied to the store by
  # interpolation; a string stays as written.
  pathString = value: if value == null then null else "${value}";

  hasPrefix = prefix: string: substring 0 (stringLength prefix) string == prefix;

  # Same rules as HostName and FlakeAttr in common/protocol.ts.
  isHostName =
    name:
    isString name && stringLength name <= 63 && match "[a-z0-9]([a-z0-9-]*[a-z0-9])?" name != null;
  isFlakeAttr = attr: stringLength attr <= 200 && match "[A-Za-z0-9_.'\"@-]+" attr != null;
  isHttpUrl = url: match "https?://[^[:space:]/?#]+([/?#][^[:space:]]*)?" url != null;

  render =
    { options, host }:
    let
      base = {
        inherit (options) url repoUrl branch;
        tokenFile = host.tokenFile;
        hostName = options.hostName;
        platform = host.platform;
        flakeAttr = if options.flakeAttr != null then options.flakeAttr else options.hostName;
        stateDir = host.stateDir;
        pollTimeoutSeconds = options.pollTimeout;
        tests = withoutNulls {
          directory = pathString options.tests.directory;
          # The option is an attribute set (name → command); attrNames is
          # sorted, so the order in the file is stable.
          commands = map (name: {
            inherit name;
            command = options.tests.commands.${name};
          }) (attrNames options.tests.commands);
        };
        inherit (options) autoTestAfterSwitch logLevel activation;
        safetyNet = {
          inherit (options.safetyNet) enable;
          confirmTimeoutSeconds = options.safetyNet.confirmTimeout;
        };
        spaceCheck = {
          inherit (options.spaceCheck) enable storeMinFree bootMargin;
        };
        # null: the fleet's default the gc command carries (docs/hosts.md "Generations and garbage collection").
        gc = withoutNulls {
          inherit (options.gc) keepGenerations keepDays;
        };
        rollout = {
          inherit (options.flakeUpdates) autoUpdate priority canary;
        };
        desired = {
          inherit (options) evaluate;
          inherit (options.desiredEvaluation) memoryMax;
          maxDelaySeconds = options.desiredEvaluation.maxDelay;
          timeoutSeconds = options.desiredEvaluation.timeout;
        };
        inherit (options) switch;
        # The keys that sign the fleet cache's paths sign its manifests too (docs/cache.md).
        substitute = {
          trustedKeys = options.cache.publicKeys;
          inherit (options) buildWithoutManifest;
        };
        # A builder host signs and uploads what it builds for the fleet (docs/fleet-build.md "Builder hosts").
        builder =
          let
            files = options.cache.builder;
          in
          if files.secretKeyFile != null && files.cacheTokenFile != null then
            { inherit (files) secretKeyFile cacheTokenFile; }
          else
            null;
        extraPath = map (package: "${package}/bin") options.extraPath;
        tools = defaultTools // (host.tools or { });
        currentSystemLink = host.currentSystemLink or null;
      };
    in
    withoutNulls (recursiveUpdate base options.settings);

  # Every problem as a message naming the option to change and how.
  problems =
    {
      options,
      host,
      storeDir ? builtins.storeDir,
    }:
    let
      rendered = render { inherit options host; };
      # The user's file: what the agent reads, or what systemd copies for it.
      tokenSource = host.tokenSource or options.tokenFile;
      opt = name: "services.nixfleet-agent.${name}";
      quote = value: toJSON value;
      inStore = path: hasPrefix "${storeDir}/" path;
      unknownSettings = filter (key: !(builtins.elem key agentConfigKeys)) (attrNames options.settings);
      testProblem =
        name:
        if stringLength name > 200 then
          [ "${opt "tests.commands"}: the test name ${quote name} is longer than 200 characters." ]
        else if options.tests.commands.${name} == "" then
          [ "${opt "tests.commands"}.${quote name} is empty: give the command the test runs." ]
        else
          [ ];
      testProblems = concatMap testProblem (attrNames options.tests.commands);
      detach = rendered.tools.detach or null;
      checks = [
        {
          ok = options.package != null;
          message = ''
            ${opt "package"} is not set. Import the module through the NixFleet flake
            (nixosModules.default, darwinModules.default or homeManagerModules.default), apply
            its overlays.default, or set
              ${opt "package"} = pkgs.callPackage "''${nixfleet}/nix/package.nix" { };'';
        }
        {
          ok = isString options.url && isHttpUrl options.url;
          message = ''
            ${opt "url"} must be the http:// or https:// address of the NixFleet control plane,
            e.g. "https://fleet.example.com" (got ${quote options.url}).'';
        }
        {
          ok = hasPrefix "/" tokenSource;
          message = ''
            ${opt "tokenFile"} must be an absolute path to a file holding the host's agent token,
            e.g. "/run/secrets/nixfleet-agent-token" (got ${quote options.tokenFile}).'';
        }
        {
          ok = !inStore tokenSource;
          message = ''
            ${opt "tokenFile"} is in the Nix store (${tokenSource}), where every user can read it.
            Keep the token outside the store in a file only the agent's user can read, and give its
            path as a string: ${opt "tokenFile"} = "/run/secrets/nixfleet-agent-token";'';
        }
        {
          ok = options.hostName != null;
          message = ''
            ${opt "hostName"} is not set: set it to the name this host has in the NixFleet dashboard,
            e.g. ${opt "hostName"} = "laptop";'';
        }
        {
          ok = options.hostName == null || isHostName options.hostName;
          message = ''
            ${opt "hostName"} = ${quote options.hostName} is not a NixFleet host name: use lowercase
            letters, digits and inner hyphens, at most 63 characters (like a DNS label). Set
            ${opt "hostName"} explicitly if the machine's own host name does not fit, and
            ${opt "flakeAttr"} if its flake output has another name.'';
        }
        {
          ok = isString (rendered.flakeAttr or null) -> isFlakeAttr rendered.flakeAttr;
          message = ''
            ${opt "flakeAttr"} = ${quote rendered.flakeAttr} is not a flake attribute name the agent
            accepts: no spaces, '#' or shell characters.'';
        }
        {
          ok = options.repoUrl != "";
          message = ''
            ${opt "repoUrl"} is empty: give the URL the agent clones the configuration repository from,
            e.g. "https://github.com/example/nixcfg.git" or "git@github.com:example/nixcfg.git".'';
        }
        {
          ok = options.branch != "";
          message = ''${opt "branch"} is empty: give the branch hosts deploy from, e.g. "main".'';
        }
        {
          ok = options.tests.directory == null || hasPrefix "/" (pathString options.tests.directory);
          message = ''
            ${opt "tests.directory"} must be an absolute path or a path literal
            (got ${quote options.tests.directory}).'';
        }
        {
          ok = unknownSettings == [ ];
          message = ''
            ${opt "settings"} has keys the agent does not know: ${toString unknownSettings}.
            The agent rejects its config file when it has unknown keys; it knows ${toString agentConfigKeys}.'';
        }
        {
          ok = isString (rendered.tokenFile or null) -> !inStore rendered.tokenFile;
          message = ''
            ${opt "settings"}.tokenFile points into the Nix store (${toString rendered.tokenFile}); remove it
            and set ${opt "tokenFile"} to a path outside the store.'';
        }
        {
          ok = options.switch == "substitute" -> options.cache.enable;
          message = ''
            ${opt "switch"} = "substitute" needs the fleet cache: set ${opt "cache.enable"} = true and
            ${opt "cache.publicKeys"} to the builders' keys, which sign the manifests this host switches by.'';
        }
        {
          ok = (options.cache.builder.secretKeyFile == null) == (options.cache.builder.cacheTokenFile == null);
          message = ''
            A builder host needs both ${opt "cache.builder.secretKeyFile"} (the key it signs with) and
            ${opt "cache.builder.cacheTokenFile"} (the cache token it uploads with); set both, or neither.'';
        }
      ]
      ++ map (
        name:
        let
          file = options.cache.builder.${name};
        in
        {
          ok = file == null || (hasPrefix "/" file && !inStore file);
          message = ''
            ${opt "cache.builder.${name}"} must be an absolute path outside the Nix store, where only
            the agent's user can read it (got ${quote file}).'';
        }
      ) [ "secretKeyFile" "cacheTokenFile" ]
      ++ [
        {
          ok = host.platform == "nixos" || options.activation == "switch";
          message = ''
            ${opt "activation"} = ${quote options.activation} is for NixOS only: ${host.platform}
            activates a new system without a reboot, so only "switch" is supported here. Remove the
            setting (or set it to "switch").'';
        }
        {
          ok = host.platform != "nixos" || detach == "systemd-run";
          message = ''
            ${opt "settings"}.tools.detach must stay "systemd-run" on NixOS (got ${quote detach}):
            a switch has to run in its own transient unit, outside the agent's sandboxed service, so that
            activation can write /etc, /boot and /nix and is not stopped when the switch restarts the agent.'';
        }
      ];
    in
    map (check: check.message) (filter (check: !check.ok) checks) ++ testProblems;
in
{
  inherit render problems agentConfigKeys;
}
