# Evaluates the flake's `outputs` function against a stand-in nixpkgs input
# (the real lib, fake packages), to check its shape and the wiring of the
# flake's modules to the flake's package, without fetching nixpkgs.
#
#   NIXPKGS_LIB=/path/to/nixpkgs/lib nix-instantiate --eval --strict --json \
#     --expr 'import ./test/nix/eval-flake.nix { }'
{
  lib ? import (builtins.getEnv "NIXPKGS_LIB"),
}:
let
  root = ../..;

  fakeHash = name: builtins.substring 0 32 (builtins.hashString "sha256" name);
  fake = name: {
    type = "derivation";
    inherit name;
    outPath = "${builtins.storeDir}/${
      builtins.substring 0 32 (builtins.hashString "sha256" name)
    }-${name}";
    meta.mainProgram = name;
  };

  fakePkgs =
    system:
    let
      isDarwin = lib.hasSuffix "-darwin" system;
    in
    {
      stdenv.hostPlatform = {
        inherit system isDarwin;
        isLinux = !isDarwin;
      };
      # The agent package stand-in records which file it was called with.
      callPackage = file: _args: fake "${baseNameOf (toString file)}-${system}";
      mkShell = _attrs: fake "shell-${system}";
      writeText = name: _text: fake name;
      runCommand =
        name: _env: _script:
        fake name;
      nodejs_24 = fake "nodejs-24";
      git = fake "git";
      nixfmt-rfc-style = fake "nixfmt";
    };

  nixpkgs = {
    inherit lib;
    legacyPackages = lib.genAttrs [
      "x86_64-linux"
      "aarch64-linux"
      "x86_64-darwin"
      "aarch64-darwin"
    ] fakePkgs;
  };

  flake = (import (root + "/flake.nix")).outputs {
    self = flake // {
      outPath = root;
    };
    inherit nixpkgs;
  };

  # What `package` becomes when a host imports the flake's NixOS module.
  packageThroughModule =
    system:
    (lib.evalModules {
      modules = [
        flake.nixosModules.default
        {
          options = {
            assertions = lib.mkOption {
              type = lib.types.listOf lib.types.unspecified;
              default = [ ];
            };
            networking.hostName = lib.mkOption { default = "check-host"; };
            nix.package = lib.mkOption { default = fake "nix"; };
            nix.daemonCPUSchedPolicy = lib.mkOption { default = "other"; };
            nix.daemonIOSchedPriority = lib.mkOption { default = 4; };
            nix.settings = lib.mkOption {
              type = lib.types.attrsOf lib.types.anything;
              default = { };
            };
            programs.ssh.package = lib.mkOption { default = fake "openssh"; };
            system.build = lib.mkOption {
              type = lib.types.lazyAttrsOf lib.types.unspecified;
              default = { };
            };
            systemd.services = lib.mkOption {
              type = lib.types.attrsOf lib.types.anything;
              default = { };
            };
            systemd.paths = lib.mkOption {
              type = lib.types.attrsOf lib.types.anything;
              default = { };
            };
          };
        }
        {
          _module.args.pkgs = (fakePkgs system) // {
            formats.json = { }: {
              type = lib.types.anything;
              generate = name: _value: fake name;
            };
          };
        }
      ];
    }).config.services.nixfleet-agent.package.name;
in
{
  outputs = builtins.attrNames flake;
  systems = lib.mapAttrs (_name: builtins.attrNames) {
    inherit (flake)
      packages
      devShells
      formatter
      checks
      ;
  };
  packages = lib.mapAttrs (_system: lib.mapAttrs (_name: package: package.name)) flake.packages;
  checks = lib.mapAttrs (_system: builtins.attrNames) flake.checks;
  modules = {
    nixos = builtins.attrNames flake.nixosModules;
    darwin = builtins.attrNames flake.darwinModules;
    homeManager = builtins.attrNames flake.homeManagerModules;
  };
  # Forces the check's assertions (modules accept good hosts, refuse bad ones).
  moduleEvaluationCheck = flake.checks.x86_64-linux.module-evaluation.name;
  overlayPackage = (flake.overlays.default (fakePkgs "x86_64-linux") { }).nixfleet-agent.name;
  packageThroughModule = {
    x86_64-linux = packageThroughModule "x86_64-linux";
    aarch64-darwin = packageThroughModule "aarch64-darwin";
  };
}
