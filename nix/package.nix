# The NixFleet host agent (`nixfleet-agent`), with the administrator's small
# CLI (`nixfleet lock-diff`, used by the update-PR workflow) beside it.
# Both are bundled at build time (scripts/build-agent.mjs, esbuild) into one
# plain JavaScript file each, with their dependencies inside (and the safety
# net's watchdog, bundled apart): the package is those files and Node, no
# node_modules and no TypeScript at run time (an agent run through Node's type
# stripping held far more memory; docs/hosts.md).
# callPackage-able:
#
#   pkgs.callPackage ./nix/package.nix { }
#
# Build dependencies come from the repository's package-lock.json through
# importNpmLock: each package is fetched on its own and checked against the
# lockfile's integrity hash, so there is no dependency hash to keep up to date
# by hand. Only what the bundles are made of and esbuild (for the build
# machine's platform) are fetched (agent-lockfile.nix).
{
  lib,
  stdenv,
  buildNpmPackage,
  importNpmLock,
  makeWrapper,
  nodejs_24,
}:
let
  repository = ../.;
  # npm's names for the build machine, which runs esbuild's prebuilt binary.
  npmCpu =
    {
      x86_64 = "x64";
      aarch64 = "arm64";
      armv7l = "arm";
      i686 = "ia32";
    }
    .${stdenv.buildPlatform.parsed.cpu.name} or stdenv.buildPlatform.parsed.cpu.name;
  agentLock = import ./agent-lockfile.nix {
    manifest = lib.importJSON (repository + "/package.json");
    lockfile = lib.importJSON (repository + "/package-lock.json");
    os = stdenv.buildPlatform.parsed.kernel.name;
    cpu = npmCpu;
  };
  nodejs = nodejs_24;
  inherit (agentLock.manifest) version;
in
buildNpmPackage {
  pname = "nixfleet-agent";
  inherit version nodejs;

  # Only what the two bundles are built from; package.json and
  # package-lock.json are the package's own, written below. A path filter
  # rather than lib.fileset, which needs builtins.readFileType (Nix 2.14 and
  # later): the source is the same on any Nix, and the test that lists it
  # (test/nix/eval-modules.test.ts) runs on the Nix 2.8 that CI has.
  src = lib.cleanSourceWith {
    name = "source";
    src = repository;
    filter =
      path: _type:
      let
        relative = lib.removePrefix "${toString repository}/" (toString path);
      in
      builtins.elem relative [
        "scripts"
        "scripts/build-agent.mjs"
        "scripts/zod-without-json-schema.mjs"
        "tsconfig.base.json"
      ]
      || lib.any (dir: relative == dir || lib.hasPrefix "${dir}/" relative) [
        "agent"
        "cli"
        "common"
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
  nativeBuildInputs = [ makeWrapper ];

  buildPhase = ''
    runHook preBuild

    node scripts/build-agent.mjs "$PWD/dist/agent"

    runHook postBuild
  '';

  # Not npmInstallHook: the bundles carry their dependencies, so node_modules
  # (esbuild, and the sources of what is bundled) stays behind.
  installPhase = ''
    runHook preInstall

    mkdir -p $out/lib/nixfleet-agent $out/bin
    cp dist/agent/nixfleet-agent.mjs dist/agent/nixfleet-watchdog.mjs dist/agent/nixfleet.mjs $out/lib/nixfleet-agent/
    # The agent's Node flags (low-memory V8) come from the build script, which
    # says why; the short-lived CLI needs none.
    makeWrapper ${lib.getExe nodejs} $out/bin/nixfleet-agent \
      --add-flags "$(cat dist/agent/node-flags)" \
      --add-flags $out/lib/nixfleet-agent/nixfleet-agent.mjs
    makeWrapper ${lib.getExe nodejs} $out/bin/nixfleet \
      --add-flags $out/lib/nixfleet-agent/nixfleet.mjs

    runHook postInstall
  '';

  # Both commands start from the bundles alone (nothing else is installed),
  # and the agent knows its own version.
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
