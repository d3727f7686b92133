{
  description = "NixFleet: one dashboard for a fleet of NixOS, nix-darwin and Home Manager hosts — the host agent and its modules";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;

      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      # The modules work when imported by path too; through the flake they
      # also get the flake's agent package as the default of `package`.
      withAgentPackage =
        module:
        { lib, pkgs, ... }:
        {
          imports = [ module ];
          services.nixfleet-agent.package =
            lib.mkDefault
              self.packages.${pkgs.stdenv.hostPlatform.system}.nixfleet-agent;
        };

      nixFiles = lib.fileset.toSource {
        root = ./.;
        fileset = lib.fileset.unions [
          ./flake.nix
          ./nix
          ./templates
          ./test/nix
        ];
      };
    in
    {
      overlays.default = final: _prev: {
        nixfleet-agent = final.callPackage ./nix/package.nix { };
      };

      packages = forAllSystems (
        pkgs:
        let
          nixfleet-agent = pkgs.callPackage ./nix/package.nix { };
        in
        {
          inherit nixfleet-agent;
          default = nixfleet-agent;
        }
      );

      nixosModules.default = withAgentPackage ./nix/nixos-module.nix;
      nixosModules.nixfleet-agent = self.nixosModules.default;
      darwinModules.default = withAgentPackage ./nix/darwin-module.nix;
      darwinModules.nixfleet-agent = self.darwinModules.default;
      homeManagerModules.default = withAgentPackage ./nix/home-manager-module.nix;
      homeManagerModules.nixfleet-agent = self.homeManagerModules.default;

      devShells = forAllSystems (pkgs: {
        # Node 24 runs the TypeScript directly; `npm ci` brings wrangler,
        # vitest and the rest of the tooling into node_modules/.bin.
        default = pkgs.mkShell {
          packages = [
            pkgs.nodejs_24
            pkgs.git
            pkgs.nixfmt-rfc-style
          ];
          shellHook = ''
            export PATH="$PWD/node_modules/.bin:$PATH"
          '';
        };
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt-rfc-style);

      checks = forAllSystems (
        pkgs:
        let
          inherit (pkgs.stdenv.hostPlatform) system;

          # The same evaluation test/nix/eval-modules.test.ts checks, with
          # this flake's nixpkgs lib.
          moduleEvaluation = import ./test/nix/eval-modules.nix { inherit lib; };
          inherit (moduleEvaluation) summary;

          # A real NixOS system with the agent and the fleet cache enabled;
          # building its unit file also builds the agent package.
          nixos = lib.nixosSystem {
            modules = [
              self.nixosModules.default
              {
                nixpkgs.hostPlatform = system;
                boot.isContainer = true;
                networking.hostName = "check-host";
                system.stateVersion = lib.trivial.release;
                services.nixfleet-agent = {
                  enable = true;
                  url = "https://fleet.example.com";
                  tokenFile = "/run/secrets/nixfleet-agent-token";
                  repoUrl = "https://github.com/example/nixcfg.git";
                  tests.commands.no-failed-units = "test -z \"$(systemctl --failed --no-legend)\"";
                  cache = {
                    enable = true;
                    publicKeys = [ "builder-1:sNhYDcLoNqQlpvKaS0G/9p5krkUYBsinY57CW5NeUxE=" ];
                  };
                };
              }
            ];
          };
          failedAssertions = map (a: a.message) (lib.filter (a: !a.assertion) nixos.config.assertions);
        in
        {
          package = self.packages.${system}.nixfleet-agent;

          module-evaluation =
            assert lib.assertMsg (
              summary.cleanButRefused == [ ]
            ) "modules refused well-formed hosts: ${toString summary.cleanButRefused}";
            assert lib.assertMsg (
              summary.refusedButClean == [ ]
            ) "modules accepted malformed hosts: ${toString summary.refusedButClean}";
            pkgs.writeText "nixfleet-module-evaluation.json" (builtins.toJSON moduleEvaluation);

          formatting =
            pkgs.runCommand "nixfleet-nix-formatting" { nativeBuildInputs = [ pkgs.nixfmt-rfc-style ]; }
              ''
                cd ${nixFiles}
                find . -name '*.nix' -exec nixfmt --check {} +
                touch $out
              '';
        }
        // lib.optionalAttrs pkgs.stdenv.hostPlatform.isLinux {
          nixos-module =
            assert lib.assertMsg (failedAssertions == [ ]) (lib.concatStringsSep "\n" failedAssertions);
            pkgs.runCommand "nixfleet-nixos-module" { } ''
              mkdir $out
              cp ${nixos.config.systemd.units."nixfleet-agent.service".unit}/nixfleet-agent.service $out/
              cp ${nixos.config.services.nixfleet-agent.configFile} $out/nixfleet-agent.json
              cp ${nixos.config.systemd.units."nixfleet-agent-cache-netrc.service".unit}/nixfleet-agent-cache-netrc.service $out/
              cp ${nixos.config.systemd.units."nixfleet-agent-cache-netrc.path".unit}/nixfleet-agent-cache-netrc.path $out/
              cp ${nixos.config.environment.etc."nix/nix.conf".source} $out/nix.conf
            '';
        }
      );
    };
}
