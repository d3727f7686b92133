import { describe, expect, it } from "vitest";
import { LockedRef } from "../../common/protocol.ts";
import { LockFileError, lockInputs, lockLastModified, parseFlakeLock } from "../../common/lock-diff.ts";
import { fixtureLock, githubNode, lockText, readFixture, rev } from "./helpers.ts";

describe("lockInputs on a large real-world-shaped lock", () => {
  const inputs = lockInputs(fixtureLock("large-before.lock"));

  it("lists every node reachable from the root once, at the input path nix flake update prints", () => {
    // 77 nodes, minus the root itself.
    expect(inputs.size).toBe(76);
    for (const path of [
      "nixpkgs",
      "home-manager",
      "nix-darwin",
      "agenix/systems",
      "hyprland/nixpkgs",
      "hyprland/hyprland-qtutils/hyprland-qt-support",
      "lanzaboote/pre-commit-hooks-nix/gitignore",
      "nixvim/nuschtosSearch/flake-utils/systems",
      "stylix/base16/fromYaml",
    ]) {
      expect(inputs.has(path), path).toBe(true);
    }
  });

  it("does not list an input that follows another, at any depth of the follows chain", () => {
    for (const path of [
      "home-manager/nixpkgs",
      "agenix/darwin",
      "agenix/home-manager",
      "flake-utils/systems",
      "hyprland/aquamarine/nixpkgs",
      "hyprland/hyprland-qtutils/hyprutils",
      "hyprland/hyprland-qtutils/hyprland-qt-support/hyprlang",
      "nixos-mailserver/nixpkgs",
      "nixvim/nuschtosSearch/ixx/nixpkgs",
      "stylix/home-manager",
      "stylix/nur",
    ]) {
      expect(inputs.has(path), path).toBe(false);
    }
  });

  it("lists duplicated nodes such as nixpkgs_2 under their own input path", () => {
    expect(inputs.get("hyprland/nixpkgs")?.rev).toBe("70858f56bebaad00423046855b3efb141242679d");
    expect(inputs.get("nixpkgs")?.rev).toBe("b0a433e26d48d6c4f8bac71e9277744aa404f730");
  });

  it("describes a github input with its rev, narHash, ISO lastModified and tree URL", () => {
    expect(inputs.get("nixpkgs")).toEqual({
      type: "github",
      rev: "b0a433e26d48d6c4f8bac71e9277744aa404f730",
      narHash: "sha256-l51x5nnHZmOFrengl7BBpd0KTh2a+bU5EiXgVYITWw0=",
      lastModified: "2025-12-06T21:14:54.000Z",
      url: "https://github.com/NixOS/nixpkgs/tree/b0a433e26d48d6c4f8bac71e9277744aa404f730",
    });
  });

  it("includes flake = false inputs", () => {
    expect(inputs.get("stylix/base16-vim")?.type).toBe("github");
    expect(inputs.get("lix")?.type).toBe("git");
    expect(inputs.get("nmd")?.type).toBe("sourcehut");
    expect(inputs.get("nixos-mailserver/blobs")?.type).toBe("gitlab");
  });

  it("describes the non-GitHub inputs of the large lock with their own URLs", () => {
    expect(inputs.get("nixos-mailserver")?.url).toBe(
      "https://gitlab.com/simple-nixos-mailserver/nixos-mailserver/-/tree/bcdeaaf0ac70249f4e5f4183622a529504a2ca15",
    );
    expect(inputs.get("stylix/gnome-shell")?.url).toMatch(/^https:\/\/gitlab\.gnome\.org\/GNOME\/gnome-shell\/-\/tree\/[0-9a-f]{40}$/);
    expect(inputs.get("nmd")?.url).toMatch(/^https:\/\/git\.sr\.ht\/~rycee\/nmd\/tree\/[0-9a-f]{40}$/);
    expect(inputs.get("lix")).toMatchObject({
      type: "git",
      rev: "91223b038641b841126ea5493b71b0c78dd4cc7d",
      url: "https://git.lix.systems/lix-project/lix",
    });
    expect(inputs.get("determinate")).toMatchObject({ type: "tarball", rev: "ca831dcd75d4e0c7ac7fbcb85ae25dc6a84e6eea" });
    expect(inputs.get("hosts-blocklist")).toEqual({
      type: "file",
      rev: null,
      narHash: "sha256-6DI6GjRZ2t3ETFnO9UpFpXfalxHn6GK9ORmrYGRPEog=",
      lastModified: null,
      url: "https://raw.githubusercontent.com/StevenBlack/hosts/master/hosts",
    });
    expect(inputs.get("private")).toEqual({
      type: "path",
      rev: null,
      narHash: "sha256-QNVATd7gRhuJASat8p+bZqqEdFZAj4wG46haraSBq8s=",
      lastModified: "2025-12-07T09:33:20.000Z",
      url: "path:/home/mba/Code/nixcfg-private",
    });
  });

  it("produces values that the protocol's LockedRef schema accepts unchanged", () => {
    for (const [path, ref] of inputs) expect(LockedRef.parse(ref), path).toEqual(ref);
  });
});

describe("lockInputs on other forges and source types", () => {
  const inputs = lockInputs(fixtureLock("forges.lock"));

  it("links a GitHub Enterprise input on its own host", () => {
    expect(inputs.get("corp-modules")?.url).toBe(
      "https://github.corp.example.com/platform/nix-modules/tree/ee0bfd2552fbd840c02cc48b6e823320543c450f",
    );
  });

  it("links GitLab inputs on gitlab.com and on a self-hosted GitLab, decoding %2F subgroups", () => {
    expect(inputs.get("fleet")?.url).toBe(
      "https://gitlab.com/infra/nix/fleet-modules/-/tree/f35f940f055fcd1badde7e5fecb2531e079eaa52",
    );
    expect(inputs.get("mesa")?.url).toBe(
      "https://gitlab.freedesktop.org/mesa/mesa/-/tree/f04cc316d72ba737f35309ed8e4cd7100a7660bd",
    );
  });

  it("links a sourcehut input on git.sr.ht", () => {
    expect(inputs.get("hare")?.url).toBe("https://git.sr.ht/~sircmpwn/hare/tree/b0d1e9e4a4e27620745ff49be9000da3174a4cc6");
  });

  it("reports Mercurial (hg) inputs as mercurial with their URL and rev", () => {
    expect(inputs.get("wofi")).toMatchObject({
      type: "mercurial",
      rev: "363d88cea18a38047b6ea1e0eadd227d6ee6fdf9",
      url: "https://hg.sr.ht/~scoopta/wofi",
      lastModified: null,
    });
  });

  it("describes indirect and relative path inputs", () => {
    expect(inputs.get("templates")).toEqual({
      type: "indirect",
      rev: null,
      narHash: null,
      lastModified: null,
      url: "flake:templates",
    });
    expect(inputs.get("vendored")).toMatchObject({ type: "path", rev: null, url: "path:./vendor/patches" });
  });

  it("reports an unrecognised locked shape with its raw attrs instead of throwing", () => {
    expect(inputs.get("relic")).toEqual({
      type: "unrecognised",
      rev: null,
      narHash: "sha256-XUeYEbF3kkRcTMwYUDgXuG7mWHOyYCllnzlMQV7jSbY=",
      lastModified: null,
      url: null,
      raw: {
        checkin: "102bfe156a778afa741230b7760bc2779c0d463e102bfe156a778afa741230b7",
        narHash: "sha256-XUeYEbF3kkRcTMwYUDgXuG7mWHOyYCllnzlMQV7jSbY=",
        type: "fossil",
        url: "https://fossil.example.org/relic",
      },
    });
  });
});

describe("lockInputs graph walk", () => {
  it("lists an input that follows through a chain of follows as the node the chain ends at", () => {
    const lock = parseFlakeLock(
      lockText({
        root: { inputs: { a: "a", b: "b", nixpkgs: "nixpkgs" } },
        a: githubNode("o", "a", rev("a"), { inputs: { nixpkgs: ["b", "nixpkgs"] } }),
        // b/nixpkgs follows the root's nixpkgs, so a/nixpkgs → b/nixpkgs → nixpkgs.
        b: githubNode("o", "b", rev("b"), { inputs: { nixpkgs: ["nixpkgs"] } }),
        nixpkgs: githubNode("NixOS", "nixpkgs", rev("c")),
      }),
    );
    expect([...lockInputs(lock).keys()]).toEqual(["a", "b", "nixpkgs"]);
  });

  it("lists a node reachable through two paths once, at its first breadth-first path", () => {
    const lock = parseFlakeLock(
      lockText({
        root: { inputs: { alpha: "alpha", beta: "beta", zeta: "shared" } },
        alpha: githubNode("o", "alpha", rev("a"), { inputs: { deep: "shared" } }),
        beta: githubNode("o", "beta", rev("b"), { inputs: { x: "x" } }),
        x: githubNode("o", "x", rev("c"), { inputs: { y: "shared" } }),
        shared: githubNode("o", "shared", rev("d")),
      }),
    );
    // The shallow path `zeta` wins over `alpha/deep`, although `alpha` sorts first.
    expect([...lockInputs(lock).keys()]).toEqual(["alpha", "beta", "zeta", "beta/x"]);
  });

  it("stops at cycles between nodes instead of walking forever", () => {
    const lock = parseFlakeLock(
      lockText({
        root: { inputs: { a: "a" } },
        a: githubNode("o", "a", rev("a"), { inputs: { b: "b" } }),
        b: githubNode("o", "b", rev("b"), { inputs: { a: "a", root: "root" } }),
      }),
    );
    expect([...lockInputs(lock).keys()]).toEqual(["a", "a/b"]);
  });

  it("orders sibling inputs by name whatever the key order in the file", () => {
    const lock = parseFlakeLock(
      lockText({
        root: { inputs: { zed: "zed", alpha: "alpha" } },
        zed: githubNode("o", "zed", rev("a"), { inputs: { shared: "shared" } }),
        alpha: githubNode("o", "alpha", rev("b"), { inputs: { shared: "shared" } }),
        shared: githubNode("o", "shared", rev("c")),
      }),
    );
    expect([...lockInputs(lock).keys()]).toEqual(["alpha", "zed", "alpha/shared"]);
  });

  it("never crashes on odd locked values: each is an unrecognised input with its raw value", () => {
    const lock = parseFlakeLock(
      lockText({
        root: { inputs: { a: "a", b: "b", c: "c", d: "d", e: "e" } },
        a: { locked: "github:NixOS/nixpkgs" },
        b: {},
        c: { locked: { type: "github", repo: "nixpkgs", rev: rev("c") } },
        d: { locked: { type: "github", owner: "NixOS", repo: "nixpkgs", lastModified: "yesterday" } },
        e: { locked: { type: "git", rev: rev("e"), narHash: "sha256-x=" } },
      }),
    );
    const inputs = lockInputs(lock);
    expect(inputs.get("a")).toEqual({
      type: "unrecognised",
      rev: null,
      narHash: null,
      lastModified: null,
      url: null,
      raw: "github:NixOS/nixpkgs",
    });
    expect(inputs.get("b")).toMatchObject({ type: "unrecognised", raw: null });
    // A github lock without an owner cannot be linked, but its rev still identifies it.
    expect(inputs.get("c")).toMatchObject({ type: "unrecognised", rev: rev("c") });
    expect(inputs.get("d")).toMatchObject({ type: "github", lastModified: null, url: "https://github.com/NixOS/nixpkgs" });
    expect(inputs.get("e")).toMatchObject({ type: "unrecognised", rev: rev("e"), narHash: "sha256-x=" });
  });
});

describe("lockLastModified", () => {
  it("maps input paths to lastModified seconds, leaving out inputs whose lock has none", () => {
    const ages = lockLastModified(fixtureLock("large-before.lock"));
    expect(ages["nixpkgs"]).toBe(1765055694);
    expect(ages["nixvim/nuschtosSearch/flake-utils/systems"]).toBe(1681028828);
    expect(ages["private"]).toBe(1765100000);
    expect("hosts-blocklist" in ages).toBe(false);
    expect("lix-module" in ages).toBe(false);
    expect("home-manager/nixpkgs" in ages).toBe(false);
    expect(Object.keys(ages)).toHaveLength(72);
  });
});

describe("parseFlakeLock", () => {
  const minimal = { root: { inputs: { nixpkgs: "nixpkgs" } }, nixpkgs: githubNode("NixOS", "nixpkgs", rev("a")) };

  it("accepts lock versions 5, 6 and 7", () => {
    for (const version of [5, 6, 7]) {
      expect(lockInputs(parseFlakeLock(lockText(minimal, version))).get("nixpkgs")?.rev).toBe(rev("a"));
    }
  });

  it("rejects other lock versions, naming the version", () => {
    expect(() => parseFlakeLock(lockText(minimal, 4))).toThrow(
      new LockFileError("flake.lock version 4 is not supported (expected 5, 6 or 7)"),
    );
  });

  it("rejects text that is not JSON with a LockFileError that says so", () => {
    const attempt = () => parseFlakeLock('{ "nodes": {');
    expect(attempt).toThrow(LockFileError);
    expect(attempt).toThrow(/^flake\.lock is not valid JSON: /);
  });

  it("rejects a lock without a root node", () => {
    expect(() => parseFlakeLock(JSON.stringify({ nodes: {}, version: 7 }))).toThrow(
      new LockFileError('flake.lock has no root node (the "root" field is missing)'),
    );
    expect(() => parseFlakeLock(JSON.stringify({ nodes: { nixpkgs: {} }, root: "root", version: 7 }))).toThrow(
      new LockFileError('flake.lock has no root node ("root" is not among its nodes)'),
    );
  });

  it("rejects a malformed node graph, saying where", () => {
    expect(() => parseFlakeLock(JSON.stringify({ nodes: [], root: "root", version: 7 }))).toThrow(
      /^flake\.lock is malformed: nodes: /,
    );
    expect(() =>
      parseFlakeLock(lockText({ root: { inputs: { nixpkgs: 42 } } })),
    ).toThrow(/^flake\.lock is malformed: nodes\.root\.inputs\.nixpkgs: /);
  });

  it("rejects an input that points to a missing node, even one named like an Object property", () => {
    expect(() => parseFlakeLock(lockText({ root: { inputs: { nixpkgs: "nixpkgs_9" } } }))).toThrow(
      new LockFileError('flake.lock node "root" has input "nixpkgs" pointing to a missing node "nixpkgs_9"'),
    );
    expect(() => parseFlakeLock(lockText({ root: { inputs: { x: "constructor" } } }))).toThrow(LockFileError);
  });

  it("reads a lock saved with a byte order mark", () => {
    expect(lockInputs(parseFlakeLock("\uFEFF" + readFixture("forges.lock"))).size).toBe(8);
  });
});
