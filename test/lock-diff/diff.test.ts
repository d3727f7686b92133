import { describe, expect, it } from "vitest";
import { LockChange } from "../../common/protocol.ts";
import { diffFlakeLocks, parseFlakeLock } from "../../common/lock-diff.ts";
import { fixtureLock, githubNode, lockText, rev } from "./helpers.ts";

const single = (locked: unknown, extra: Record<string, unknown> = {}) =>
  parseFlakeLock(lockText({ root: { inputs: { dep: "dep" } }, dep: { locked, ...extra } }));

describe("diffFlakeLocks on a weekly update of the large lock", () => {
  const changes = diffFlakeLocks(fixtureLock("large-before.lock"), fixtureLock("large-after.lock"));

  it("reports one change per changed input path, sorted by path, and nothing for unchanged inputs", () => {
    expect(changes.map((c) => [c.input, c.kind])).toEqual([
      ["determinate", "updated"],
      ["determinate/determinate-nixd-aarch64-darwin", "updated"],
      ["determinate/determinate-nixd-x86_64-linux", "updated"],
      ["emacs-overlay", "removed"],
      ["home-manager", "updated"],
      ["hosts-blocklist", "updated"],
      ["hyprland", "updated"],
      ["hyprland/hyprutils", "updated"],
      ["hyprland/nixpkgs", "updated"],
      ["impermanence", "added"],
      ["lix", "updated"],
      ["nix-darwin", "updated"],
      ["nixpkgs", "updated"],
      ["nixpkgs-stable", "updated"],
      ["private", "updated"],
      ["stylix", "updated"],
      ["stylix/tinted-schemes", "updated"],
    ]);
  });

  it("returns changes the protocol's LockChange schema accepts unchanged", () => {
    for (const change of changes) expect(LockChange.parse(change), change.input).toEqual(change);
  });

  it("describes an updated github input with both refs and a compare URL, leaving commits for the GitHub client", () => {
    expect(changes.find((c) => c.input === "nixpkgs")).toEqual({
      input: "nixpkgs",
      kind: "updated",
      old: {
        type: "github",
        rev: "b0a433e26d48d6c4f8bac71e9277744aa404f730",
        narHash: "sha256-l51x5nnHZmOFrengl7BBpd0KTh2a+bU5EiXgVYITWw0=",
        lastModified: "2025-12-06T21:14:54.000Z",
        url: "https://github.com/NixOS/nixpkgs/tree/b0a433e26d48d6c4f8bac71e9277744aa404f730",
      },
      new: {
        type: "github",
        rev: "4c0e02330c815905448c749f307620123f79ea84",
        narHash: "sha256-LL52C+sMDTmsbXgaWwocuV8YAAVD01hQv8X4iHx3wt0=",
        lastModified: "2025-12-13T20:14:54.000Z",
        url: "https://github.com/NixOS/nixpkgs/tree/4c0e02330c815905448c749f307620123f79ea84",
      },
      compareUrl:
        "https://github.com/NixOS/nixpkgs/compare/b0a433e26d48d6c4f8bac71e9277744aa404f730...4c0e02330c815905448c749f307620123f79ea84",
      commits: null,
    });
  });

  it("describes an added input with no old ref and a removed input with no new ref", () => {
    expect(changes.find((c) => c.input === "impermanence")).toMatchObject({
      kind: "added",
      old: null,
      new: { type: "github", rev: "2a252ed4554628421156ed329638b491ef99b059" },
      compareUrl: null,
    });
    expect(changes.find((c) => c.input === "emacs-overlay")).toMatchObject({
      kind: "removed",
      old: { type: "github", rev: "7cfa574f8dea943dd94b4de59eae9d232cee08d1" },
      new: null,
      compareUrl: null,
    });
  });

  it("reports inputs without a rev as updated when their narHash changed", () => {
    expect(changes.find((c) => c.input === "private")).toMatchObject({
      kind: "updated",
      old: { type: "path", rev: null, narHash: "sha256-QNVATd7gRhuJASat8p+bZqqEdFZAj4wG46haraSBq8s=" },
      new: { type: "path", rev: null, narHash: "sha256-yuomsDEn5A1H8BhpnWYu6m9i69ko9qGSLVwpko/kIz0=" },
      compareUrl: null,
    });
    expect(changes.find((c) => c.input === "hosts-blocklist")).toMatchObject({ kind: "updated", compareUrl: null });
  });

  it("gives no compare URL for forges without one or for non-forge inputs", () => {
    expect(changes.find((c) => c.input === "lix")?.compareUrl).toBeNull();
    expect(changes.find((c) => c.input === "determinate")?.compareUrl).toBeNull();
  });

  it("finds no changes between a lock and itself", () => {
    expect(diffFlakeLocks(fixtureLock("large-after.lock"), fixtureLock("large-after.lock"))).toEqual([]);
  });
});

describe("diffFlakeLocks rules", () => {
  it("does not count a narHash change under the same rev as an update: the rev is the identity", () => {
    const before = single({ type: "github", owner: "o", repo: "r", rev: rev("a"), narHash: "sha256-old=" });
    const after = single({ type: "github", owner: "o", repo: "r", rev: rev("a"), narHash: "sha256-new=" });
    expect(diffFlakeLocks(before, after)).toEqual([]);
  });

  it("reports a move from GitHub to a tarball as an update without a compare URL", () => {
    const before = single({ type: "github", owner: "NixOS", repo: "nixpkgs", rev: rev("a"), narHash: "sha256-a=" });
    const after = single({ type: "tarball", url: "https://channels.nixos.org/nixos-unstable/nixexprs.tar.xz", narHash: "sha256-b=" });
    expect(diffFlakeLocks(before, after)).toMatchObject([
      { input: "dep", kind: "updated", old: { type: "github" }, new: { type: "tarball", rev: null }, compareUrl: null },
    ]);
  });

  it("reports a changed url with the same narHash as an update", () => {
    const before = single({ type: "file", url: "https://example.org/v1/hosts", narHash: "sha256-same=" });
    const after = single({ type: "file", url: "https://example.org/v2/hosts", narHash: "sha256-same=" });
    expect(diffFlakeLocks(before, after)).toMatchObject([{ kind: "updated" }]);
  });

  it("reports an input that starts following another as removed, and the followed node stays unchanged", () => {
    const nixpkgs = githubNode("NixOS", "nixpkgs", rev("a"));
    const before = parseFlakeLock(
      lockText({
        root: { inputs: { "home-manager": "home-manager", nixpkgs: "nixpkgs" } },
        "home-manager": githubNode("nix-community", "home-manager", rev("b"), { inputs: { nixpkgs: "nixpkgs_2" } }),
        nixpkgs,
        nixpkgs_2: githubNode("NixOS", "nixpkgs", rev("c")),
      }),
    );
    const after = parseFlakeLock(
      lockText({
        root: { inputs: { "home-manager": "home-manager", nixpkgs: "nixpkgs" } },
        "home-manager": githubNode("nix-community", "home-manager", rev("b"), { inputs: { nixpkgs: ["nixpkgs"] } }),
        nixpkgs,
      }),
    );
    expect(diffFlakeLocks(before, after).map((c) => [c.input, c.kind])).toEqual([["home-manager/nixpkgs", "removed"]]);
  });

  it("reports an unrecognised input as updated when its raw attrs changed, whatever their key order", () => {
    const before = single({ type: "fossil", url: "https://fossil.example.org/r", checkin: "1111" });
    const reordered = single({ checkin: "1111", url: "https://fossil.example.org/r", type: "fossil" });
    const after = single({ type: "fossil", url: "https://fossil.example.org/r", checkin: "2222" });
    expect(diffFlakeLocks(before, reordered)).toEqual([]);
    expect(diffFlakeLocks(before, after)).toMatchObject([
      { input: "dep", kind: "updated", old: { type: "unrecognised" }, new: { type: "unrecognised", raw: { checkin: "2222" } } },
    ]);
  });
});

describe("compare URLs", () => {
  const forge = (attrs: Record<string, string>, r: string) => single({ ...attrs, rev: r, narHash: `sha256-${r}=` });

  it("links a GitLab compare page, on gitlab.com with subgroups and on a self-hosted GitLab", () => {
    const gitlab = { type: "gitlab", owner: "infra%2Fnix", repo: "fleet-modules" };
    expect(diffFlakeLocks(forge(gitlab, rev("a")), forge(gitlab, rev("b")))[0]?.compareUrl).toBe(
      `https://gitlab.com/infra/nix/fleet-modules/-/compare/${rev("a")}...${rev("b")}`,
    );
    const selfHosted = { type: "gitlab", host: "gitlab.gnome.org", owner: "GNOME", repo: "gnome-shell" };
    expect(diffFlakeLocks(forge(selfHosted, rev("a")), forge(selfHosted, rev("b")))[0]?.compareUrl).toBe(
      `https://gitlab.gnome.org/GNOME/gnome-shell/-/compare/${rev("a")}...${rev("b")}`,
    );
  });

  it("links a GitHub Enterprise compare page on its host", () => {
    const ghe = { type: "github", host: "github.corp.example.com", owner: "platform", repo: "nix-modules" };
    expect(diffFlakeLocks(forge(ghe, rev("a")), forge(ghe, rev("b")))[0]?.compareUrl).toBe(
      `https://github.corp.example.com/platform/nix-modules/compare/${rev("a")}...${rev("b")}`,
    );
  });

  it("still links when only the owner's letter case differs between the locks", () => {
    const before = forge({ type: "github", owner: "nixos", repo: "nixpkgs" }, rev("a"));
    const after = forge({ type: "github", owner: "NixOS", repo: "nixpkgs" }, rev("b"));
    expect(diffFlakeLocks(before, after)[0]?.compareUrl).toBe(
      `https://github.com/NixOS/nixpkgs/compare/${rev("a")}...${rev("b")}`,
    );
  });

  it("gives none when the input moved to another repository (a fork)", () => {
    const before = forge({ type: "github", owner: "nix-community", repo: "home-manager" }, rev("a"));
    const after = forge({ type: "github", owner: "someone", repo: "home-manager" }, rev("b"));
    expect(diffFlakeLocks(before, after)[0]).toMatchObject({ kind: "updated", compareUrl: null });
  });

  it("gives none for sourcehut, which has no compare page", () => {
    const srht = { type: "sourcehut", owner: "~rycee", repo: "nmd" };
    expect(diffFlakeLocks(forge(srht, rev("a")), forge(srht, rev("b")))[0]).toMatchObject({
      kind: "updated",
      compareUrl: null,
    });
  });
});
