import { describe, expect, it } from "vitest";
import type { LockChange, LockedRef } from "../../common/protocol.ts";
import {
  diffFlakeLocks,
  LockDiffJson,
  renderLockJson,
  renderLockMarkdown,
  renderLockText,
  renderLockTooltip,
} from "../../common/lock-diff.ts";
import { fixtureLock, rev } from "./helpers.ts";

const github = (repo: string, r: string, lastModified: string | null = "2025-12-10T06:00:00.000Z"): LockedRef => ({
  type: "github",
  rev: r,
  narHash: `sha256-${r.slice(0, 10)}AAAA=`,
  lastModified,
  url: `https://github.com/${repo}/tree/${r}`,
});

const updated = (input: string, repo: string, from: string, to: string, extra: Partial<LockChange> = {}): LockChange => ({
  input,
  kind: "updated",
  old: github(repo, from, "2025-12-10T06:00:00.000Z"),
  new: github(repo, to, "2025-12-17T06:00:00.000Z"),
  compareUrl: null,
  commits: null,
  ...extra,
});

const pathRef = (narHash: string): LockedRef => ({
  type: "path",
  rev: null,
  narHash,
  lastModified: null,
  url: "path:/home/mba/Code/nixcfg-private",
});

const nixpkgs = updated("nixpkgs", "NixOS/nixpkgs", rev("abc1234"), rev("def5678"), {
  compareUrl: `https://github.com/NixOS/nixpkgs/compare/${rev("abc1234")}...${rev("def5678")}`,
  commits: 123,
});
const homeManager = updated("home-manager", "nix-community/home-manager", rev("1111111"), rev("2222222"));
const added: LockChange = {
  input: "impermanence",
  kind: "added",
  old: null,
  new: github("nix-community/impermanence", rev("a05b1da"), "2025-11-01T16:13:39.000Z"),
  compareUrl: null,
  commits: null,
};
const removed: LockChange = {
  input: "emacs-overlay",
  kind: "removed",
  old: github("nix-community/emacs-overlay", rev("7cfa574"), "2025-11-19T02:51:25.000Z"),
  new: null,
  compareUrl: null,
  commits: null,
};
const privateInput: LockChange = {
  input: "private",
  kind: "updated",
  old: pathRef("sha256-QNVATd7gRhuJASat8p+bZqqEdFZAj4wG46haraSBq8s="),
  new: pathRef("sha256-yuomsDEn5A1H8BhpnWYu6m9i69ko9qGSLVwpko/kIz0="),
  compareUrl: null,
  commits: null,
};

describe("renderLockTooltip", () => {
  it("names the one changed input with 7-character revs", () => {
    expect(renderLockTooltip([nixpkgs])).toBe("Update PR pending: nixpkgs abc1234 → def5678");
  });

  it("prefers nixpkgs and counts the other inputs", () => {
    expect(renderLockTooltip([homeManager, nixpkgs, removed])).toBe(
      "Update PR pending: nixpkgs abc1234 → def5678 (+2 more inputs)",
    );
    expect(renderLockTooltip([nixpkgs, homeManager])).toBe("Update PR pending: nixpkgs abc1234 → def5678 (+1 more input)");
  });

  it("starts with the first change when nixpkgs did not change", () => {
    expect(renderLockTooltip([homeManager, removed])).toBe("Update PR pending: home-manager 1111111 → 2222222 (+1 more input)");
  });

  it("shortens the narHash of an input that has no rev", () => {
    expect(renderLockTooltip([privateInput])).toBe("Update PR pending: private sha256-QNVATd7 → sha256-yuomsDE");
  });

  it("says added or removed for inputs that appeared or disappeared", () => {
    expect(renderLockTooltip([added])).toBe("Update PR pending: impermanence added (a05b1da)");
    expect(renderLockTooltip([removed])).toBe("Update PR pending: emacs-overlay removed");
  });

  it("says so when the update PR changes no input", () => {
    expect(renderLockTooltip([])).toBe("Update PR pending: no input changes");
  });

  it("summarises the large fixture's weekly update", () => {
    const changes = diffFlakeLocks(fixtureLock("large-before.lock"), fixtureLock("large-after.lock"));
    expect(renderLockTooltip(changes)).toBe("Update PR pending: nixpkgs b0a433e → 4c0e023 (+16 more inputs)");
  });
});

describe("renderLockMarkdown", () => {
  it("lists each change under an Updated inputs heading, with links, dates, commit counts and compare links", () => {
    expect(renderLockMarkdown([removed, homeManager, added, nixpkgs, privateInput])).toBe(
      [
        "### Updated inputs",
        "",
        `- emacs-overlay: removed, was [7cfa574](https://github.com/nix-community/emacs-overlay/tree/${rev("7cfa574")}) (2025-11-19)`,
        `- home-manager: [1111111](https://github.com/nix-community/home-manager/tree/${rev("1111111")}) → [2222222](https://github.com/nix-community/home-manager/tree/${rev("2222222")}) (2025-12-10 → 2025-12-17)`,
        `- impermanence: added [a05b1da](https://github.com/nix-community/impermanence/tree/${rev("a05b1da")}) (2025-11-01)`,
        `- nixpkgs: [abc1234](https://github.com/NixOS/nixpkgs/tree/${rev("abc1234")}) → [def5678](https://github.com/NixOS/nixpkgs/tree/${rev("def5678")}) (2025-12-10 → 2025-12-17, 123 commits, [compare](https://github.com/NixOS/nixpkgs/compare/${rev("abc1234")}...${rev("def5678")}))`,
        "- private: `sha256-QNVATd7` → `sha256-yuomsDE`",
        "",
      ].join("\n"),
    );
  });

  it("takes another heading, e.g. for a commit message where # lines could be stripped", () => {
    expect(renderLockMarkdown([], { heading: "Updated inputs:" })).toBe("Updated inputs:\n\nNo input changes.\n");
  });

  it("says so when no input changed", () => {
    expect(renderLockMarkdown([])).toBe("### Updated inputs\n\nNo input changes.\n");
  });

  it("writes one commit in the singular", () => {
    expect(renderLockMarkdown([{ ...homeManager, commits: 1 }])).toContain("(2025-12-10 → 2025-12-17, 1 commit)");
  });

  it("links only web URLs and keeps odd characters from breaking the Markdown", () => {
    const odd: LockChange = {
      input: "_weird*input",
      kind: "added",
      old: null,
      new: { type: "tarball", rev: null, narHash: "sha256-abcdefghij=", lastModified: null, url: "https://example.org/a (1).tar.gz" },
      compareUrl: null,
      commits: null,
    };
    const script: LockChange = { ...odd, input: "x86_64-tools", new: { ...odd.new!, url: "javascript:alert(1)" } };
    expect(renderLockMarkdown([odd, script])).toBe(
      [
        "### Updated inputs",
        "",
        "- \\_weird\\*input: added [sha256-abcdefg](https://example.org/a%20%281%29.tar.gz)",
        "- x86_64-tools: added `sha256-abcdefg`",
        "",
      ].join("\n"),
    );
  });
});

describe("renderLockJson", () => {
  it("returns every change with all fields present, in the documented shape", () => {
    const json = renderLockJson([nixpkgs, added, removed]);
    expect(LockDiffJson.parse(JSON.parse(JSON.stringify(json)))).toEqual(json);
    expect(json.changes[0]).toEqual({
      input: "nixpkgs",
      kind: "updated",
      old: github("NixOS/nixpkgs", rev("abc1234"), "2025-12-10T06:00:00.000Z"),
      new: github("NixOS/nixpkgs", rev("def5678"), "2025-12-17T06:00:00.000Z"),
      compareUrl: nixpkgs.compareUrl,
      commits: 123,
    });
    expect(json.changes[1]).toMatchObject({ kind: "added", old: null, compareUrl: null, commits: null });
  });

  it("keeps the raw attrs of an unrecognised input", () => {
    const raw = { type: "fossil", checkin: "1234" };
    const change: LockChange = {
      input: "relic",
      kind: "added",
      old: null,
      new: { type: "unrecognised", rev: null, narHash: null, lastModified: null, url: null, raw },
      compareUrl: null,
      commits: null,
    };
    expect(renderLockJson([change]).changes[0]?.new?.raw).toEqual(raw);
  });
});

describe("renderLockText", () => {
  it("prints one line per change with dates and the compare URL", () => {
    expect(renderLockText([nixpkgs, added, removed, privateInput])).toBe(
      [
        `nixpkgs: abc1234 → def5678 (2025-12-10 → 2025-12-17) 123 commits https://github.com/NixOS/nixpkgs/compare/${rev("abc1234")}...${rev("def5678")}`,
        "impermanence: added a05b1da (2025-11-01)",
        "emacs-overlay: removed 7cfa574 (2025-11-19)",
        "private: sha256-QNVATd7 → sha256-yuomsDE",
        "",
      ].join("\n"),
    );
  });

  it("says so when nothing changed", () => {
    expect(renderLockText([])).toBe("No input changes.\n");
  });
});
