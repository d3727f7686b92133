# The agent package's own package.json and package-lock.json, cut out of the
# repository's: only the packages reachable from the runtime `dependencies`,
# so the Nix build fetches the agent's few runtime dependencies and not the
# worker's and dashboard's tooling (wrangler, workerd, playwright, vitest …).
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

  agentManifest = pick [
    "name"
    "version"
    "description"
    "type"
    "license"
    "engines"
    "bin"
    "dependencies"
  ] manifest;

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
  # non-optional peers. Never devDependencies.
  needs =
    entry:
    let
      peers = entry.peerDependencies or { };
      optionalPeer = name: entry.peerDependenciesMeta.${name}.optional or false;
    in
    attrNames (entry.dependencies or { })
    ++ attrNames (entry.optionalDependencies or { })
    ++ filter (name: !optionalPeer name) (attrNames peers);

  # Every lock entry reachable from the top's runtime dependencies.
  runtimeClosure = builtins.genericClosure {
    startSet = [ { key = ""; } ];
    operator =
      item:
      map (path: { key = path; }) (
        filter (path: path != null) (map (resolve item.key) (needs packages.${item.key}))
      );
  };

  root = packages."";
  agentRoot = builtins.removeAttrs root [ "devDependencies" ];

  productionPackages = listToAttrs (
    map (
      { key, ... }:
      {
        name = key;
        value = if key == "" then agentRoot else withResolved key packages.${key};
      }
    ) runtimeClosure
  );
in
{
  manifest = agentManifest;
  lockfile = lockfile // {
    packages = productionPackages;
  };
}
