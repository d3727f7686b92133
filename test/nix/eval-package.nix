# Evaluates nix/package.nix with the real lib and stand-ins for the build
# functions (nothing is built): what buildNpmPackage would be given. Forcing
# `src` copies the package's source into the store (with --read-write-mode),
# so the test can list it.
#
#   NIXPKGS_LIB=/path/to/nixpkgs/lib nix-instantiate --read-write-mode --eval --strict --json \
#     --expr 'import ./test/nix/eval-package.nix { }'
{
  lib ? import (builtins.getEnv "NIXPKGS_LIB"),
}:
let
  fake = name: mainProgram: {
    type = "derivation";
    inherit name;
    outPath = "${builtins.storeDir}/${
      builtins.substring 0 32 (builtins.hashString "sha256" name)
    }-${name}";
    meta.mainProgram = mainProgram;
  };

  args = import ../../nix/package.nix {
    inherit lib;
    stdenv.buildPlatform.parsed = {
      kernel.name = "linux";
      cpu.name = "x86_64";
    };
    buildNpmPackage = attrs: attrs;
    importNpmLock = {
      __functor = _self: lockArgs: { imported = lockArgs; };
      npmConfigHook = "importNpmLock.npmConfigHook";
    };
    makeWrapper = fake "make-wrapper" "makeWrapper";
    nodejs_24 = fake "nodejs-24.11.0" "node";
  };
in
{
  inherit (args)
    pname
    version
    postPatch
    installPhase
    buildPhase
    installCheckPhase
    npmConfigHook
    doInstallCheck
    ;
  src = "${args.src}";
  nodejs = args.nodejs.name;
  importedManifest = args.npmDeps.imported.package;
  importedPackages = builtins.attrNames args.npmDeps.imported.packageLock.packages;
  # importNpmLock fetches only the entries with a URL.
  fetchedPackages = builtins.attrNames (
    lib.filterAttrs (_: entry: entry ? resolved) args.npmDeps.imported.packageLock.packages
  );
  meta = {
    inherit (args.meta) mainProgram license;
    platforms = builtins.length args.meta.platforms;
  };
}
