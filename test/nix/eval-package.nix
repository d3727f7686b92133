# Evaluates nix/package.nix with the real lib and stand-ins for the build
# functions (nothing is built): what buildNpmPackage would be given. Forcing
# `src` copies the package's source into the store, so the test can list it
# (on Nix 2.14 or later; older Nix cannot evaluate lib.fileset).
#
#   NIXPKGS_LIB=/path/to/nixpkgs/lib nix-instantiate --eval --strict --json \
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
  # lib.fileset needs builtins.readFileType (Nix 2.14 and later).
  src = if builtins ? readFileType then "${args.src}" else null;
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
