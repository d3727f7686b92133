# The agent package's own package.json and package-lock.json, cut out of the
# repository's: only the packages reachable from the runtime `dependencies`
# and from the few development dependencies the build needs (esbuild, which
# bundles the agent), so the Nix build fetches those and not the worker's and
# dashboard's tooling (wrangler, workerd, playwright, vitest …). Packages for
# another operating system or CPU (esbuild's prebuilt binaries), when `os`
# and `cpu` are given, stay in the lockfile (`npm ci` wants them listed) but
# get no URL, so importNpmLock does not fetch them; npm skips them anyway.
#
# Every kept package gets back its `resolved` registry URL: the repository's
# lockfile is written with npm's omit-lockfile-registry-resolved, and Nix can
# only fetch what has a URL. The download is still pinned by the lockfile's
# `integrity` hash.
#
# Builtins only, so test/nix can evaluate it with plain nix-instantiate.
{
  manifest,
  lockfile,
  registry ? "https://registry.npmjs.org",
  # Development dependencies the package's build runs.
  buildDependencies ? [ "esbuild" ],
  # npm's names for the build machine's platform (`linux`, `x64`); null keeps every platform.
  os ? null,
  cpu ? null,
}:
let
  inherit (builtins)
    attrNames
    elemAt
    filter
    listToAttrs
    map
    match
    ;

  pick =
    keys: attrs:
    listToAttrs (
      map (name: {
        inherit name;
        value = attrs.${name};
      }) (filter (key: attrs ? ${key}) keys)
    );

  buildDevDependencies = pick buildDependencies (manifest.devDependencies or { });

  agentManifest =
    pick [
      "name"
      "version"
      "description"
      "type"
      "license"
      "engines"
      "bin"
      "dependencies"
    ] manifest
    // {
      devDependencies = buildDevDependencies;
    };

  # `node_modules/@scope/name` (possibly nested) → `@scope/name`.
  nameAt =
    path:
    let
      found = match ".*node_modules/((@[^/]+/)?[^/]+)" path;
    in
    if found == null then null else elemAt found 0;

  # https://registry.npmjs.org/@scope/name/-/name-1.2.3.tgz
  tarballUrl =
    name: version:
    let
      unscoped = elemAt (match "(@[^/]+/)?(.+)" name) 1;
    in
    "${registry}/${name}/-/${unscoped}-${version}.tgz";

  withResolved =
    path: entry:
    let
      # An aliased dependency records the real package name.
      name = entry.name or (nameAt path);
    in
    if
      entry ? resolved
      || entry.link or false
      || entry.inBundle or false
      || !(entry ? version)
      || name == null
    then
      entry
    else
      entry // { resolved = tarballUrl name entry.version; };

  packages = lockfile.packages;

  # Where npm finds `name` for the package at `from`: in its own
  # node_modules, else in its parents', up to the top.
  resolve =
    from: name:
    let
      candidate = (if from == "" then "" else "${from}/") + "node_modules/${name}";
    in
    if packages ? ${candidate} then
      candidate
    else if from == "" then
      null
    else
      resolve (parentOf from) name;

  # node_modules/a/node_modules/@s/b → node_modules/a; node_modules/a → "" (the top).
  parentOf =
    path:
    let
      found = match "(.*)/node_modules/(@[^/]+/)?[^/]+" path;
    in
    if found == null then "" else elemAt found 0;

  # What a package needs at run time: its dependencies, optional dependencies
  # (when present in the lock: platform-specific ones may not be) and
  # non-optional peers. devDependencies only for the top, and only those the
  # build runs.
  needs =
    entry:
    let
      peers = entry.peerDependencies or { };
      optionalPeer = name: entry.peerDependenciesMeta.${name}.optional or false;
    in
    attrNames (entry.dependencies or { })
    ++ attrNames (entry.optionalDependencies or { })
    ++ filter (name: !optionalPeer name) (attrNames peers);

  # npm's `os`/`cpu` fields: a list of allowed values, or `!value` to exclude one.
  allows =
    wanted: values:
    wanted == null
    || values == null
    || builtins.elem wanted values
    || (!(builtins.elem "!${wanted}" values) && builtins.all (value: builtins.substring 0 1 value == "!") values);
  forThisPlatform = entry: allows os (entry.os or null) && allows cpu (entry.cpu or null);

  # Every lock entry reachable from the top's runtime and build dependencies.
  closure = builtins.genericClosure {
    startSet = [ { key = ""; } ];
    operator =
      item:
      map (path: { key = path; }) (
        filter (path: path != null) (
          map (resolve item.key) (
            if item.key == "" then attrNames agentManifest.dependencies ++ attrNames buildDevDependencies else needs packages.${item.key}
          )
        )
      );
  };

  root = packages."";
  agentRoot = root // {
    devDependencies = buildDevDependencies;
  };

  agentPackages = listToAttrs (
    map (
      { key, ... }:
      {
        name = key;
        value =
          if key == "" then
            agentRoot
          else if forThisPlatform packages.${key} then
            withResolved key packages.${key}
          else
            packages.${key};
      }
    ) closure
  );
in
{
  manifest = agentManifest;
  lockfile = lockfile // {
    packages = agentPackages;
  };
}
