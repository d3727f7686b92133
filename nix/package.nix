# The NixFleet host agent (`nixfleet-agent`), with the administrator's small
# CLI (`nixfleet lock-diff`, used by the update-PR workflow) beside it.
# TypeScript that Node runs directly (type stripping), so there is no build
# step. callPackage-able:
#
#   pkgs.callPackage ./nix/package.nix { }
#
# Dependencies come from the repository's package-lock.json through
# importNpmLock: each package is fetched on its own and checked against the
# lockfile's integrity hash, so there is no dependency hash to keep up to date
# by hand. Only the agent's runtime dependencies are fetched (agent-lockfile.nix).
{
  lib,
  buildNpmPackage,
  importNpmLock,
  makeWrapper,
  nodejs_24,
}:
let
  repository = ../.;
  agentLock = import ./agent-lockfile.nix {
    manifest = lib.importJSON (repository + "/package.json");
    lockfile = lib.importJSON (repository + "/package-lock.json");
  };
  nodejs = nodejs_24;
  inherit (agentLock.manifest) version;
in
buildNpmPackage {
  pname = "nixfleet-agent";
  inherit version nodejs;

  # Only what the two commands run; package.json and package-lock.json are
  # the package's own, written below.
  src = lib.fileset.toSource {
    root = repository;
    fileset = lib.fileset.unions [
      (repository + "/bin/nixfleet-agent.js")
      (repository + "/bin/nixfleet.js")
      (repository + "/agent")
      (repository + "/cli")
      (repository + "/common")
    ];
  };

  postPatch = ''
    cp ${builtins.toFile "package.json" (builtins.toJSON agentLock.manifest)} package.json
    cp ${builtins.toFile "package-lock.json" (builtins.toJSON agentLock.lockfile)} package-lock.json
  '';

  npmDeps = importNpmLock {
    package = agentLock.manifest;
    packageLock = agentLock.lockfile;
  };
  npmConfigHook = importNpmLock.npmConfigHook;
  # The agent lockfile holds no dev dependencies; this keeps it so if one
  # slips in.
  npmInstallFlags = [ "--omit=dev" ];
  dontNpmBuild = true;

  nativeBuildInputs = [ makeWrapper ];

  # Not npmInstallHook: it would put the sources under lib/node_modules/, and
  # Node refuses to strip types from files inside node_modules.
  installPhase = ''
    runHook preInstall

    mkdir -p $out/lib/nixfleet-agent $out/bin
    cp -r package.json bin agent cli common node_modules $out/lib/nixfleet-agent/
    makeWrapper ${lib.getExe nodejs} $out/bin/nixfleet-agent \
      --add-flags $out/lib/nixfleet-agent/bin/nixfleet-agent.js
    makeWrapper ${lib.getExe nodejs} $out/bin/nixfleet \
      --add-flags $out/lib/nixfleet-agent/bin/nixfleet.js

    runHook postInstall
  '';

  # Both commands start: every module loads, every runtime dependency
  # resolves, and the agent knows its own version.
  doInstallCheck = true;
  installCheckPhase = ''
    runHook preInstallCheck

    printed=$($out/bin/nixfleet-agent --version)
    if [ "$printed" != ${lib.escapeShellArg version} ]; then
      echo "nixfleet-agent --version printed '$printed', expected ${version}" >&2
      exit 1
    fi
    $out/bin/nixfleet --help >/dev/null

    runHook postInstallCheck
  '';

  meta = {
    description = "Host agent of NixFleet: reports a NixOS, nix-darwin or Home Manager host and runs its pull, switch, test and rollback commands";
    license = lib.licenses.mit;
    mainProgram = "nixfleet-agent";
    platforms = lib.platforms.linux ++ lib.platforms.darwin;
  };
}
